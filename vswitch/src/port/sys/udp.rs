//! A UDP socket for the VXLAN underlay, with one method per socket option it needs, and
//! the interface look-ups that go with it (which interface holds an address, its MTU).
//!
//! Which options are set, in what order and why, is decided by `port::underlay`; this
//! file only says what each one does to the kernel.

use std::ffi::CStr;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::ifname::to_ifr_name;
use super::{cvt, set_bpf_program, setsockopt};

// From <asm-generic/socket.h> and <linux/sock_diag.h> (not in libc for every Linux target).
const SO_MEMINFO: libc::c_int = 55;
const SK_MEMINFO_VARS: usize = 9;

/// A UDP socket, close-on-exec and non-blocking, IPv4 or IPv6.
#[derive(Debug)]
pub struct UdpSocket {
    fd: OwnedFd,
}

impl UdpSocket {
    /// A new unbound IPv4 or IPv6 socket, in the calling thread's network namespace.
    pub fn new(ipv6: bool) -> io::Result<UdpSocket> {
        let domain = if ipv6 { libc::AF_INET6 } else { libc::AF_INET };
        // SAFETY: socket() takes no pointers; the result is checked before use.
        let raw = cvt(unsafe {
            libc::socket(
                domain,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::IPPROTO_UDP,
            )
        })?;
        // SAFETY: `raw` is a descriptor we just opened and own exclusively.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(UdpSocket { fd })
    }

    /// A second descriptor for the same socket (`dup`), for another thread to send on.
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            fd: self.fd.try_clone()?,
        })
    }

    /// `SO_REUSEPORT`: lets other sockets that set it too (and only those) bind the same
    /// address and port; the kernel spreads received datagrams over them by flow hash.
    pub fn set_reuseport(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::SOL_SOCKET, libc::SO_REUSEPORT, on.into())
    }

    /// `SO_ATTACH_REUSEPORT_CBPF`: the classic BPF program that picks which socket of
    /// this socket's `SO_REUSEPORT` group receives a datagram (its result is the index
    /// of the socket, in the order they joined; out of range, the kernel's hash picks).
    /// Call after `bind`; it serves the whole group.
    pub fn attach_reuseport_program(&self, program: &[libc::sock_filter]) -> io::Result<()> {
        const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;
        set_bpf_program(
            self.fd.as_fd(),
            libc::SOL_SOCKET,
            SO_ATTACH_REUSEPORT_CBPF,
            program,
        )
    }

    /// `IPV6_V6ONLY`: an IPv6 socket that never speaks IPv4 through mapped addresses.
    pub fn set_v6only(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, on.into())
    }

    /// `SO_NO_CHECK`: IPv4 datagrams leave with a zero UDP checksum. No effect on IPv6.
    /// The kernel refuses `UDP_SEGMENT` sends on such a socket (`EINVAL`).
    pub fn set_no_check(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::SOL_SOCKET, libc::SO_NO_CHECK, on.into())
    }

    /// `UDP_GRO`: the kernel may deliver several datagrams of one flow as one read, with
    /// their size in a `(SOL_UDP, UDP_GRO)` control message. `ENOPROTOOPT` before 5.0.
    pub fn set_udp_gro(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::SOL_UDP, libc::UDP_GRO, on.into())
    }

    /// `UDP_SEGMENT` as a socket-wide default segment size; 0 means none. Used to ask
    /// whether the kernel knows the option at all (`ENOPROTOOPT` before 4.18).
    pub fn set_udp_segment(&self, size: u16) -> io::Result<()> {
        self.set_int(libc::SOL_UDP, libc::UDP_SEGMENT, size.into())
    }

    /// `IP_MTU_DISCOVER` / `IPV6_MTU_DISCOVER` = `*_PMTUDISC_PROBE`: set DF, never
    /// fragment locally, size against the outgoing interface's MTU (not a path MTU learnt
    /// from ICMP): a larger send fails with `EMSGSIZE`. For IPv6 also `IPV6_DONTFRAG`,
    /// without which the kernel still fragments datagrams larger than the MTU.
    pub fn set_pmtudisc_probe(&self, ipv6: bool) -> io::Result<()> {
        if ipv6 {
            self.set_int(
                libc::IPPROTO_IPV6,
                libc::IPV6_MTU_DISCOVER,
                libc::IPV6_PMTUDISC_PROBE,
            )?;
            self.set_int(libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, 1)
        } else {
            self.set_int(
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                libc::IP_PMTUDISC_PROBE,
            )
        }
    }

    /// `SO_BINDTODEVICE`: send only through, and receive only from, interface `name`.
    /// `ENODEV` when there is no such interface; `EPERM` without CAP_NET_RAW.
    pub fn bind_to_device(&self, name: &str) -> io::Result<()> {
        let ifr_name = to_ifr_name(name)?;
        setsockopt(
            self.fd.as_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            &ifr_name,
        )
    }

    /// `SO_RCVBUFFORCE`, or `SO_RCVBUF` (capped by `net.core.rmem_max`) without
    /// CAP_NET_ADMIN.
    pub fn set_rcvbuf(&self, bytes: usize) -> io::Result<()> {
        let value = clamp_int(bytes);
        self.set_int(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, value)
            .or_else(|_| self.set_int(libc::SOL_SOCKET, libc::SO_RCVBUF, value))
    }

    /// `SO_SNDBUFFORCE`, or `SO_SNDBUF` (capped by `net.core.wmem_max`) without
    /// CAP_NET_ADMIN.
    pub fn set_sndbuf(&self, bytes: usize) -> io::Result<()> {
        let value = clamp_int(bytes);
        self.set_int(libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, value)
            .or_else(|_| self.set_int(libc::SOL_SOCKET, libc::SO_SNDBUF, value))
    }

    /// How many datagrams the kernel has dropped for this socket since it was opened
    /// (`SO_MEMINFO`, `SK_MEMINFO_DROPS`): mostly a full receive queue.
    pub fn drops_so_far(&self) -> io::Result<u32> {
        let mut info = [0u32; SK_MEMINFO_VARS];
        let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
        // SAFETY: `info` is a live, exclusively borrowed array of `len` bytes; the kernel
        // writes at most `len` bytes to it and updates `len`.
        let ret = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_MEMINFO,
                info.as_mut_ptr().cast::<libc::c_void>(),
                &raw mut len,
            )
        };
        cvt(ret)?;
        let at = libc::SK_MEMINFO_DROPS as usize;
        if (len as usize) < (at + 1) * std::mem::size_of::<u32>() {
            return Err(io::Error::from(io::ErrorKind::Unsupported));
        }
        Ok(info[at])
    }

    /// Binds to `addr`. `EADDRNOTAVAIL`: the address is on no interface (or is an IPv6
    /// address still in duplicate address detection); `EADDRINUSE`: the port is taken.
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        let (storage, len) = encode_sockaddr(addr);
        // SAFETY: `storage` holds a valid sockaddr_in/sockaddr_in6 of `len` bytes, alive
        // for the call, which only reads it.
        let ret = unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                (&raw const storage).cast::<libc::sockaddr>(),
                len,
            )
        };
        cvt(ret).map(drop)
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        // SAFETY: an all-zero sockaddr_storage is a valid value.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `storage` has room for `len` bytes, the kernel writes at most that and
        // stores the real length in `len`; both are exclusively borrowed for the call.
        let ret = unsafe {
            libc::getsockname(
                self.fd.as_raw_fd(),
                (&raw mut storage).cast::<libc::sockaddr>(),
                &raw mut len,
            )
        };
        cvt(ret)?;
        decode_sockaddr(&storage).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))
    }

    /// The MTU of interface `ifindex` in this socket's namespace (`SIOCGIFNAME`, then
    /// `SIOCGIFMTU`). `ENODEV` when the interface is gone.
    pub fn interface_mtu(&self, ifindex: u32) -> io::Result<u32> {
        // SAFETY: an all-zero ifreq is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        ifr.ifr_ifru.ifru_ifindex =
            libc::c_int::try_from(ifindex).map_err(|_| io::ErrorKind::InvalidInput)?;
        // SAFETY: SIOCGIFNAME reads and writes one ifreq, which `ifr` is, alive and
        // exclusively borrowed for the call.
        cvt(unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::SIOCGIFNAME, &raw mut ifr) })?;
        // SAFETY: as above, for SIOCGIFMTU; the name was filled in by SIOCGIFNAME.
        cvt(unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::SIOCGIFMTU, &raw mut ifr) })?;
        // SAFETY: SIOCGIFMTU stored the MTU in the `ifru_mtu` member of the union.
        let mtu = unsafe { ifr.ifr_ifru.ifru_mtu };
        u32::try_from(mtu).map_err(|_| io::ErrorKind::InvalidData.into())
    }

    fn set_int(&self, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
        setsockopt(self.fd.as_fd(), level, name, &value)
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The name of the interface that holds address `ip`, in the calling thread's network
/// namespace (`getifaddrs`), or `None` when no interface has it.
pub fn interface_with_address(ip: IpAddr) -> io::Result<Option<String>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head to `head`; the list is freed below.
    cvt(unsafe { libc::getifaddrs(&raw mut head) })?;
    let mut found = None;
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: `ifa_addr` points to a sockaddr of the family it names; we read only
        // the family here and the matching struct in `sockaddr_ip`.
        let addr = unsafe { sockaddr_ip(ifa.ifa_addr) };
        if addr == Some(ip) {
            // SAFETY: `ifa_name` is a NUL-terminated string owned by the list.
            let name = unsafe { CStr::from_ptr(ifa.ifa_name) };
            found = Some(name.to_string_lossy().into_owned());
            break;
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed once; no node is used after this.
    unsafe { libc::freeifaddrs(head) };
    Ok(found)
}

/// The IP address in the sockaddr at `sa`, when it is AF_INET or AF_INET6.
///
/// # Safety
/// `sa` must point to a valid sockaddr whose real type matches its `sa_family`.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    // SAFETY: the caller promises a valid sockaddr; its family says which struct it is.
    unsafe {
        match libc::c_int::from((*sa).sa_family) {
            libc::AF_INET => {
                let sin = &*sa.cast::<libc::sockaddr_in>();
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))))
            }
            libc::AF_INET6 => {
                let sin6 = &*sa.cast::<libc::sockaddr_in6>();
                Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
            }
            _ => None,
        }
    }
}

/// `addr` as a `sockaddr_storage` holding a sockaddr_in or sockaddr_in6, and its length.
pub(super) fn encode_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for every sockaddr.
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in>().write(sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above.
            unsafe { (&raw mut storage).cast::<libc::sockaddr_in6>().write(sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// The address in `storage` when it holds a sockaddr_in or sockaddr_in6.
pub(super) fn decode_sockaddr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in; storage is large
            // enough and suitably aligned for it.
            let sin = unsafe { &*std::ptr::from_ref(storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*std::ptr::from_ref(storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn clamp_int(bytes: usize) -> libc::c_int {
    libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddrs_round_trip() {
        for addr in [
            "192.0.2.1:4789".parse().unwrap(),
            SocketAddr::V6(SocketAddrV6::new(
                "2001:db8::1".parse().unwrap(),
                61000,
                7,
                3,
            )),
        ] {
            let (storage, _) = encode_sockaddr(addr);
            assert_eq!(decode_sockaddr(&storage), Some(addr));
        }
    }

    #[test]
    fn loopback_holds_127_0_0_1() {
        let name = interface_with_address(IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
        assert_eq!(name.as_deref(), Some("lo"));
        assert_eq!(
            interface_with_address("192.0.2.254".parse().unwrap()).unwrap(),
            None
        );
    }
}
