//! An AF_PACKET raw socket bound to one interface.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{cvt, set_bpf_program, setsockopt};

/// `ETH_P_ALL` in network byte order, as `sockaddr_ll` and `socket()` want it.
const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();

// From <linux/if_packet.h> (stable kernel ABI; not in every libc release for Linux).
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_AUXDATA: libc::c_int = 8;
/// `skb->pkt_type` of a frame leaving the interface.
const PACKET_OUTGOING: u32 = 4;

/// `struct tpacket_stats`.
#[repr(C)]
#[derive(Debug, Default)]
struct TpacketStats {
    tp_packets: u32,
    tp_drops: u32,
}

/// An AF_PACKET `SOCK_RAW` socket, close-on-exec and non-blocking. Created with
/// protocol 0 so that nothing is queued on it before `bind` names the interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    /// A new socket in the calling thread's network namespace, receiving nothing yet.
    pub fn new() -> io::Result<PacketSocket> {
        // SAFETY: socket() takes no pointers; the result is checked before use.
        let raw = cvt(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        })?;
        // SAFETY: `raw` is a descriptor we just opened and own exclusively.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(PacketSocket { fd })
    }

    /// `PACKET_VNET_HDR`: every frame read or written is preceded by a 10-byte
    /// virtio_net_hdr, so GSO super-frames and partial checksums pass whole.
    pub fn set_vnet_hdr(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::SOL_PACKET, libc::PACKET_VNET_HDR, on.into())
    }

    /// `PACKET_IGNORE_OUTGOING`: do not read back frames leaving the interface (ours, or
    /// the local stack's).
    pub fn set_ignore_outgoing(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, on.into())
    }

    /// `SO_ATTACH_FILTER` with a classic BPF program that drops frames leaving the
    /// interface (`pkttype` OUTGOING: the local stack's own, such as the IPv6 router
    /// solicitations and MLD reports of an interface without addresses).
    ///
    /// [`set_ignore_outgoing`](Self::set_ignore_outgoing) does this for a lone socket
    /// and spares the kernel the copy, but a socket in a `PACKET_FANOUT` group receives
    /// through the group's hook, which does not look at the option (only the group flag
    /// `PACKET_FANOUT_FLAG_IGNORE_OUTGOING`, Linux 6.9, does; older kernels ignore the
    /// flag silently). The filter runs on the socket the group picked, on every kernel.
    /// What the switch itself sends never comes back either way: the kernel skips the
    /// sending socket, and with fanout every socket of its group.
    pub fn drop_outgoing(&self) -> io::Result<()> {
        let insn = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
            code: code as u16,
            jt,
            jf,
            k,
        };
        let filter = [
            // A = skb->pkt_type (an ancillary load: a negative offset names it).
            insn(
                libc::BPF_LD | libc::BPF_B | libc::BPF_ABS,
                0,
                0,
                (libc::SKF_AD_OFF + libc::SKF_AD_PKTTYPE) as u32,
            ),
            insn(
                libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
                0,
                1,
                PACKET_OUTGOING,
            ),
            // Outgoing: keep 0 bytes (drop). Otherwise the whole frame.
            insn(libc::BPF_RET | libc::BPF_K, 0, 0, 0),
            insn(libc::BPF_RET | libc::BPF_K, 0, 0, u32::MAX),
        ];
        set_bpf_program(
            self.fd.as_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &filter,
        )
    }

    /// `PACKET_FANOUT` with defragmentation: joins fanout group `group` of this
    /// namespace, so the kernel spreads the interface's received frames over the group's
    /// sockets (the fragments of one datagram to one socket, as one): by flow hash, or
    /// with `program` (`PACKET_FANOUT_CBPF`) by what that classic BPF program returns,
    /// modulo the group's size. Call after `bind`; every socket of a group must use the
    /// same mode.
    pub fn join_fanout(&self, group: u16, program: Option<&[libc::sock_filter]>) -> io::Result<()> {
        const PACKET_FANOUT: libc::c_int = 18;
        const PACKET_FANOUT_DATA: libc::c_int = 22;
        const PACKET_FANOUT_HASH: u32 = 0;
        const PACKET_FANOUT_CBPF: u32 = 6;
        const PACKET_FANOUT_FLAG_DEFRAG: u32 = 0x8000;
        let mode = if program.is_some() {
            PACKET_FANOUT_CBPF
        } else {
            PACKET_FANOUT_HASH
        };
        let arg = u32::from(group) | ((mode | PACKET_FANOUT_FLAG_DEFRAG) << 16);
        setsockopt(self.fd.as_fd(), libc::SOL_PACKET, PACKET_FANOUT, &arg)?;
        let Some(filter) = program else {
            return Ok(());
        };
        // The group's program (every member may set it; the last one set is used).
        set_bpf_program(
            self.fd.as_fd(),
            libc::SOL_PACKET,
            PACKET_FANOUT_DATA,
            filter,
        )
    }

    /// `PACKET_QDISC_BYPASS`: hand frames straight to the driver, skipping the qdisc
    /// (and the taps that `tcpdump` on the interface would see).
    pub fn set_qdisc_bypass(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, on.into())
    }

    /// `SO_RCVBUFFORCE`: the receive buffer, past `rmem_max` (needs CAP_NET_ADMIN).
    pub fn set_rcvbuf_force(&self, bytes: usize) -> io::Result<()> {
        self.set_int(libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, clamp_int(bytes))
    }

    /// `SO_SNDBUFFORCE`: the send buffer, past `wmem_max` (needs CAP_NET_ADMIN).
    pub fn set_sndbuf_force(&self, bytes: usize) -> io::Result<()> {
        self.set_int(libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, clamp_int(bytes))
    }

    /// `PACKET_ADD_MEMBERSHIP` / `PACKET_MR_PROMISC`: puts the interface in promiscuous
    /// mode for as long as this socket is open (the kernel counts holders and drops the
    /// membership when the socket closes).
    pub fn add_promisc(&self, ifindex: u32) -> io::Result<()> {
        let mreq = libc::packet_mreq {
            mr_ifindex: ifindex_int(ifindex)?,
            mr_type: libc::PACKET_MR_PROMISC as libc::c_ushort,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        setsockopt(
            self.fd.as_fd(),
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            &mreq,
        )
    }

    /// Binds to interface `ifindex`, all protocols. On an interface that is down the
    /// bind succeeds, the socket reports `ENETDOWN` once and receives when it comes up.
    pub fn bind(&self, ifindex: u32) -> io::Result<()> {
        // SAFETY: an all-zero sockaddr_ll is a valid value (plain integers and arrays).
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as libc::c_ushort;
        sll.sll_protocol = ETH_P_ALL_BE;
        sll.sll_ifindex = ifindex_int(ifindex)?;
        let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `sll` is a valid sockaddr_ll of `len` bytes, alive for the call, which
        // only reads it.
        let ret = unsafe {
            libc::bind(
                self.fd.as_raw_fd(),
                (&raw const sll).cast::<libc::sockaddr>(),
                len,
            )
        };
        cvt(ret).map(drop)
    }

    /// `PACKET_AUXDATA`: every received frame comes with a `tpacket_auxdata` control
    /// message. The kernel moves a frame's outer VLAN tag out of the data into
    /// `skb->vlan_tci` before packet sockets see it (`__netif_receive_skb_core`), so this
    /// is the only way to learn that a frame was tagged.
    pub fn set_auxdata(&self, on: bool) -> io::Result<()> {
        self.set_int(libc::SOL_PACKET, PACKET_AUXDATA, on.into())
    }

    /// `PACKET_STATISTICS`: frames the kernel dropped because the socket's receive queue
    /// was full, since the last call (reading resets the kernel's counts).
    pub fn take_rx_overruns(&self) -> io::Result<u32> {
        let mut stats = TpacketStats::default();
        let mut len = std::mem::size_of::<TpacketStats>() as libc::socklen_t;
        // SAFETY: `stats` is a live, exclusively borrowed `tpacket_stats` of `len` bytes;
        // the kernel writes at most `len` bytes to it and updates `len`.
        let ret = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                (&raw mut stats).cast::<libc::c_void>(),
                &raw mut len,
            )
        };
        cvt(ret).map(|_| stats.tp_drops)
    }

    /// Whether interface `ifindex` still exists in the socket's own network namespace
    /// (which may differ from the calling thread's): `SIOCGIFNAME` on this socket.
    pub fn ifindex_exists(&self, ifindex: u32) -> io::Result<bool> {
        // SAFETY: an all-zero ifreq is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        ifr.ifr_ifru.ifru_ifindex = ifindex_int(ifindex)?;
        // SAFETY: SIOCGIFNAME reads and writes one ifreq, which `ifr` is, alive and
        // exclusively borrowed for the call.
        let ret = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::SIOCGIFNAME, &raw mut ifr) };
        match cvt(ret) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn set_int(&self, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
        setsockopt(self.fd.as_fd(), level, name, &value)
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn clamp_int(bytes: usize) -> libc::c_int {
    libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX)
}

fn ifindex_int(ifindex: u32) -> io::Result<libc::c_int> {
    libc::c_int::try_from(ifindex).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}
