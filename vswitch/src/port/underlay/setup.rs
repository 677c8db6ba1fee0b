//! Opening the underlay's sockets: the options each kind gets, binding so that nobody
//! else shares our ports while our own later sockets can, and the errors of every
//! underlay operation, worded for the operator who has to fix them.

use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};

use super::{MAX_SOURCE_PORTS, SOCKET_BUFFER_BYTES, UnderlayConfig};
use crate::port::sys::udp::UdpSocket;

/// What went wrong opening or using the underlay.
#[derive(Debug, thiserror::Error)]
pub enum UnderlayError {
    #[error(
        "{addr} cannot be a VTEP address: set [underlay] local to one of this host's own \
         unicast addresses"
    )]
    InvalidLocal { addr: IpAddr },
    #[error("{addr} is a link-local address: set [underlay] interface to say on which link")]
    LinkLocalNeedsInterface { addr: IpAddr },
    #[error(
        "the UDP source port range {first}-{last} contains the VXLAN port {port}: choose a \
         range without it"
    )]
    SourcePortsContainPort { first: u16, last: u16, port: u16 },
    #[error(
        "the UDP source port range {first}-{last} has {count} ports; the underlay binds one \
         socket to each and takes at most {MAX_SOURCE_PORTS}: choose a smaller range"
    )]
    TooManySourcePorts { first: u16, last: u16, count: u32 },
    #[error("{name:?} is not a valid interface name for [underlay] interface: {source}")]
    InvalidInterface {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "underlay interface {name} does not exist in the daemon's network namespace; create \
         it or fix [underlay] interface"
    )]
    NoSuchInterface { name: String },
    #[error("cannot open a UDP socket for the underlay: {source}")]
    Socket {
        #[source]
        source: io::Error,
    },
    #[error("cannot set {option} on an underlay socket: {source}")]
    SetOption {
        option: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot bind the underlay sockets to interface {name}: {source} (SO_BINDTODEVICE \
         needs CAP_NET_RAW)"
    )]
    BindToDevice {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "local address {addr} is not configured on any interface in the daemon's namespace; \
         add it (ip addr add {addr}/PREFIX dev IFACE) or fix [underlay] local (a new IPv6 \
         address cannot be used for a second or two, during duplicate address detection)"
    )]
    AddressNotLocal { addr: IpAddr },
    #[error(
        "UDP port {} on {} is already in use (another vswitch, or a kernel VXLAN device; \
         see `ss -uapn 'sport = :{}'`): stop it or set another [underlay] port",
        addr.port(), addr.ip(), addr.port()
    )]
    PortInUse { addr: SocketAddr },
    #[error(
        "UDP source port {} on {} (of the source port range {first}-{last}) is already in \
         use (see `ss -uapn 'sport = :{}'`): free it or choose another range",
        addr.port(), addr.ip(), addr.port()
    )]
    SourcePortInUse {
        addr: SocketAddr,
        first: u16,
        last: u16,
    },
    #[error("cannot bind an underlay socket to {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("receiving from the underlay socket failed: {source}")]
    Receive {
        #[source]
        source: io::Error,
    },
    #[error("sending to VTEP {dst} failed: {source}")]
    Send {
        dst: IpAddr,
        #[source]
        source: io::Error,
    },
}

impl UnderlayError {
    pub(super) fn option(option: &'static str, source: io::Error) -> UnderlayError {
        UnderlayError::SetOption { option, source }
    }
}

/// The address to bind the receive socket to: `local:port`, with the interface as scope
/// when `local` is IPv6 link-local. Refuses what cannot be a VTEP address and a source
/// port range that would take the receive port.
pub(super) fn check_local(
    cfg: &UnderlayConfig,
    ifindex: Option<u32>,
) -> Result<SocketAddr, UnderlayError> {
    let ip = cfg.local;
    let unusable = ip.is_unspecified()
        || ip.is_multicast()
        || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
    if unusable {
        return Err(UnderlayError::InvalidLocal { addr: ip });
    }
    let range = cfg.src_ports;
    if range.contains(cfg.port) {
        return Err(UnderlayError::SourcePortsContainPort {
            first: range.first(),
            last: range.last(),
            port: cfg.port,
        });
    }
    if range.count() > MAX_SOURCE_PORTS {
        return Err(UnderlayError::TooManySourcePorts {
            first: range.first(),
            last: range.last(),
            count: range.count(),
        });
    }
    match ip {
        IpAddr::V6(v6) if v6.is_unicast_link_local() => {
            let scope = ifindex.ok_or(UnderlayError::LinkLocalNeedsInterface { addr: ip })?;
            Ok(SocketAddr::V6(SocketAddrV6::new(v6, cfg.port, 0, scope)))
        }
        _ => Ok(SocketAddr::new(ip, cfg.port)),
    }
}

/// A socket of the local address's family with what every underlay socket has:
/// `IPV6_V6ONLY`, and `SO_BINDTODEVICE` when an interface is configured.
pub(super) fn new_socket(cfg: &UnderlayConfig) -> Result<UdpSocket, UnderlayError> {
    let ipv6 = cfg.local.is_ipv6();
    let sock = UdpSocket::new(ipv6).map_err(|source| UnderlayError::Socket { source })?;
    if ipv6 {
        sock.set_v6only(true)
            .map_err(|e| UnderlayError::option("IPV6_V6ONLY", e))?;
    }
    if let Some(name) = &cfg.interface {
        sock.bind_to_device(name)
            .map_err(|source| match source.raw_os_error() {
                Some(libc::ENODEV) => UnderlayError::NoSuchInterface { name: name.clone() },
                _ => UnderlayError::BindToDevice {
                    name: name.clone(),
                    source,
                },
            })?;
    }
    Ok(sock)
}

/// A transmit socket bound to `addr` (the first of ours there, or `joining` one that
/// is): DF set and never fragmented locally, a large send buffer, a minimal receive
/// buffer (nothing is read from it; this bounds what stray datagrams to the port can
/// pin), and a zero IPv4 checksum when `no_check`.
pub(super) fn tx_socket(
    cfg: &UnderlayConfig,
    addr: SocketAddr,
    no_check: bool,
    joining: bool,
) -> Result<UdpSocket, UnderlayError> {
    let sock = new_socket(cfg)?;
    sock.set_pmtudisc_probe(addr.is_ipv6())
        .map_err(|e| UnderlayError::option("IP_MTU_DISCOVER", e))?;
    sock.set_sndbuf(SOCKET_BUFFER_BYTES)
        .map_err(|e| UnderlayError::option("SO_SNDBUF", e))?;
    sock.set_rcvbuf(0)
        .map_err(|e| UnderlayError::option("SO_RCVBUF", e))?;
    if no_check {
        sock.set_no_check(true)
            .map_err(|e| UnderlayError::option("SO_NO_CHECK", e))?;
    }
    if joining {
        bind_joining(&sock, cfg, addr, true)?;
    } else {
        bind_first(&sock, cfg, addr, true)?;
    }
    Ok(sock)
}

/// Binds `sock` to `addr` as the first of our sockets there: without `SO_REUSEPORT`,
/// so that the bind fails if any other socket holds the address, sharing or not; then
/// sets `SO_REUSEPORT`, which lets sockets that set it before their bind (ours opened
/// later: the GSO twins, further workers) join. Setting it first would let a second
/// daemon join us just as silently and take half of our traffic. (A throw-away probe
/// bind before the real one is no better: closing it races with any fork in the
/// process, whose child briefly holds the probe's descriptor and so the port.)
pub(super) fn bind_first(
    sock: &UdpSocket,
    cfg: &UnderlayConfig,
    addr: SocketAddr,
    source_port: bool,
) -> Result<(), UnderlayError> {
    bind(sock, cfg, addr, source_port)?;
    sock.set_reuseport(true)
        .map_err(|e| UnderlayError::option("SO_REUSEPORT", e))
}

/// Binds `sock` to `addr`, which one of our sockets holds already ([`bind_first`]).
pub(super) fn bind_joining(
    sock: &UdpSocket,
    cfg: &UnderlayConfig,
    addr: SocketAddr,
    source_port: bool,
) -> Result<(), UnderlayError> {
    sock.set_reuseport(true)
        .map_err(|e| UnderlayError::option("SO_REUSEPORT", e))?;
    bind(sock, cfg, addr, source_port)
}

/// Binds `sock` to `addr`, naming the usual failures for the operator.
fn bind(
    sock: &UdpSocket,
    cfg: &UnderlayConfig,
    addr: SocketAddr,
    source_port: bool,
) -> Result<(), UnderlayError> {
    sock.bind(addr)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::EADDRNOTAVAIL) => UnderlayError::AddressNotLocal { addr: addr.ip() },
            Some(libc::EADDRINUSE) if source_port => UnderlayError::SourcePortInUse {
                addr,
                first: cfg.src_ports.first(),
                last: cfg.src_ports.last(),
            },
            Some(libc::EADDRINUSE) => UnderlayError::PortInUse { addr },
            _ => UnderlayError::Bind { addr, source },
        })
}
