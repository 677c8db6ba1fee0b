//! The VXLAN underlay port: the UDP sockets that carry overlay frames between hosts
//! (RFC 7348, port 4789), read and written in batches, with UDP GSO and GRO where the
//! kernel has them. I/O only: the VXLAN header, the peer check and the flow hash are
//! `vtep`'s; what a payload means is the datapath's.
//!
//! Sockets. The kernel writes the outer IP and UDP headers, because UDP GSO/GRO exist
//! only for UDP sockets. A UDP socket has one source port, so the per-flow source ports
//! RFC 7348 asks for (ECMP and RSS spread flows by the outer 5-tuple) come from a pool
//! of transmit sockets, one bound to each port of the source port range (64 by
//! default); [`Transmit::flow_hash`] picks one through [`vtep::source_port`]. One receive
//! socket is bound to `local:port`. All sockets end up with `SO_REUSEPORT` so that
//! later workers can each bind their own; but the first socket on each address binds
//! without it and sets it only afterwards, so that a port held by anyone else, a second
//! daemon included, is reported as in use rather than silently shared.
//!
//! Checksums. IPv6 datagrams always carry a UDP checksum. On IPv4 the checksum is zero
//! unless `udp_checksum` is set (`SO_NO_CHECK`, what kernel VXLAN does by default). The
//! kernel refuses `UDP_SEGMENT` on a socket with `SO_NO_CHECK` (`EINVAL` from
//! `udp_send_skb`, even for a run of one; measured on 6.18), so when both apply a
//! second pool with checksums on carries the GSO sends: the checksum choice does not
//! defeat GSO. GSO sends carry a checksum (left to the device or to software
//! segmentation; across a veth it is never computed at all), single datagrams follow
//! the configured choice.
//!
//! Fragmentation. VTEPs must not fragment (RFC 7348 section 4.3): every transmit socket
//! sets `IP(V6)_PMTUDISC_PROBE` (and `IPV6_DONTFRAG`), so DF is set and a datagram
//! larger than the outgoing interface's MTU fails with `EMSGSIZE` and is counted, where
//! the default would have fragmented it. PROBE rather than DO: sizes follow the
//! interface MTU that [`Underlay::mtu`] reports and the overlay MTU derives from, not a
//! path MTU that any ICMP message could lower.
//!
//! GSO and GRO. A [`Transmit`] with `segment_size` is one `sendmsg` with `UDP_SEGMENT`
//! (at most [`MAX_GSO_SEGMENTS`] datagrams, [`MAX_GSO_PAYLOAD`] bytes). Support is
//! probed at open; if a GSO send later fails with `EIO` / `EINVAL` and the same
//! datagrams then go out one by one, GSO is switched off for good (one log line) and
//! later GSO transmits are split here. With GRO the kernel may hand one read holding
//! several datagrams of one sender ([`RxMeta::segment_size`]). Measured on a veth: a
//! GSO run arrives whole as one read; datagrams sent one by one are never coalesced,
//! even with `gro on` and `rx-udp-gro-forwarding on` on the receiving veth, because
//! each goes through its own softirq pass (GRO merges only what one NAPI poll sees, as
//! a NIC's interrupt batch or a GSO run split at the sending device).
//!
//! What the caller does around it: build a GSO run only from equal-size datagrams
//! (the last may be shorter) of at most [`Underlay::max_payload`] bytes each, at most
//! [`MAX_GSO_SEGMENTS`] of them; check [`Underlay::caps`] before building runs (a run
//! sent while GSO is off still arrives, but costs a call of its own); split a GRO read
//! into its datagrams and decapsulate each (one read comes from one sender and source
//! port, but inner flows that hash alike share a source port, so VNIs may differ);
//! count [`Underlay::take_drops`]; and treat a short `send_batch` count as a full
//! socket buffer.
//!
//! Never per packet: allocation (all arrays are sized for [`MAX_BATCH`] at open), logs,
//! or errors for a single datagram: those are counted in [`UnderlayDrops`].

use std::io;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::os::fd::{AsFd, BorrowedFd};

use super::MAX_BATCH;
use super::sys::ifname::{if_nametoindex, validate_ifname};
use super::sys::udp::{UdpSocket, interface_with_address};
use super::sys::udp_mmsg::{UdpRecvBatch, UdpSendBatch};
use crate::packet::PacketBuf;

mod send;
mod setup;
#[cfg(test)]
mod tests;

use send::TxPools;
pub use setup::UnderlayError;

/// The most datagrams one GSO transmit may carry: `UDP_MAX_SEGMENTS` of kernels before
/// 6.x (this machine's 6.18 takes 128; we keep to what every GSO kernel accepts).
pub const MAX_GSO_SEGMENTS: usize = 64;

/// The most payload bytes one GSO transmit may carry: what fits a 16-bit IPv4 total
/// length after the IPv4 and UDP headers (IPv6 could take 20 more; one figure for both).
pub const MAX_GSO_PAYLOAD: usize = 65535 - 20 - 8;

/// The most source ports (so transmit sockets, twice that with the GSO twins) a range
/// may hold. ECMP and RSS gain nothing from thousands of distinct ports, and each one
/// costs descriptors: the default soft limit of 1024 descriptors must still do.
pub const MAX_SOURCE_PORTS: u32 = 256;

/// Receive buffer of the receive socket and send buffer of each transmit socket: room
/// for about 60 GSO/GRO super-datagrams. We are root, so `*BUFFORCE` past the sysctls.
const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// How the underlay is set up: the daemon's `[underlay]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnderlayConfig {
    /// This host's VTEP address, IPv4 or IPv6; the source of every datagram.
    pub local: IpAddr,
    /// The UDP port VXLAN is received on and sent to (4789).
    pub port: u16,
    /// The outer UDP source ports; one transmit socket is bound to each.
    pub src_ports: vtep::PortRange,
    /// IPv4 only: send a real UDP checksum instead of zero. IPv6 always has one.
    pub udp_checksum: bool,
    /// Send and receive only through this interface (`SO_BINDTODEVICE`).
    pub interface: Option<String>,
    /// Use UDP GSO where the kernel has it.
    pub gso: bool,
    /// Use UDP GRO where the kernel has it.
    pub gro: bool,
}

impl UnderlayConfig {
    /// The defaults around `local`: port 4789, source ports 61000-61063, zero IPv4
    /// checksums, any interface, GSO and GRO allowed.
    pub fn new(local: IpAddr) -> UnderlayConfig {
        UnderlayConfig {
            local,
            port: vtep::VXLAN_PORT,
            src_ports: vtep::PortRange::DEFAULT,
            udp_checksum: false,
            interface: None,
            gso: true,
            gro: true,
        }
    }
}

/// The offloads in use now. `gso` may turn off at run time, never on again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnderlayCaps {
    pub gso: bool,
    pub gro: bool,
}

pub use crate::datapath::tunnel::{RxMeta, Transmit};

/// Datagrams the underlay dropped by itself, by reason (see [`Underlay::take_drops`]).
/// Counted in datagrams, so a refused GSO transmit of 40 segments counts 40.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UnderlayDrops {
    /// Received datagrams longer than a buffer, cut short by the kernel.
    pub rx_truncated: u64,
    /// Refused by the kernel: larger than the MTU allows with DF (`EMSGSIZE`), a
    /// destination of the other address family, a firewall (`EPERM`), ...
    pub tx_refused: u64,
    /// No route to the remote VTEP (`ENETUNREACH`, `EHOSTUNREACH`).
    pub tx_unreachable: u64,
    /// The interface is down (`ENETDOWN`) or gone.
    pub tx_link_down: u64,
    /// The device queue had no room (`ENOBUFS`), or the socket filled up halfway
    /// through a transmit sent datagram by datagram.
    pub tx_queue_full: u64,
    /// The errno of the last send drop, for a rate-limited log line.
    pub last_tx_errno: Option<i32>,
}

impl UnderlayDrops {
    /// Whether anything was dropped.
    pub fn any(&self) -> bool {
        self.rx_truncated
            + self.tx_refused
            + self.tx_unreachable
            + self.tx_link_down
            + self.tx_queue_full
            > 0
    }
}

/// The underlay's sockets and batch arrays. See the module doc.
#[derive(Debug)]
pub struct Underlay {
    rx: UdpSocket,
    rx_batch: UdpRecvBatch,
    tx: TxPools,
    tx_batch: UdpSendBatch,
    local: SocketAddr,
    src_ports: vtep::PortRange,
    /// The interface whose MTU [`Underlay::mtu`] reports.
    mtu_ifindex: Option<u32>,
    caps: UnderlayCaps,
    drops: UnderlayDrops,
    /// The receive socket's kernel drop count when last read (`take_rx_overruns`).
    rx_drops_seen: u32,
}

impl Underlay {
    /// Opens the receive socket and the transmit pool(s) in the calling thread's network
    /// namespace (they stay there whichever thread uses them).
    pub fn open(cfg: &UnderlayConfig) -> Result<Underlay, UnderlayError> {
        let ifindex = match &cfg.interface {
            Some(name) => Some(interface_index(name)?),
            None => None,
        };
        let local = setup::check_local(cfg, ifindex)?;
        let mut caps = UnderlayCaps::default();

        let rx = setup::new_socket(cfg)?;
        if cfg.gro {
            caps.gro = match rx.set_udp_gro(true) {
                Ok(()) => true,
                Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => false,
                Err(source) => return Err(UnderlayError::option("UDP_GRO", source)),
            };
        }
        rx.set_rcvbuf(SOCKET_BUFFER_BYTES)
            .map_err(|e| UnderlayError::option("SO_RCVBUF", e))?;
        setup::bind_first(&rx, cfg, local, false)?;
        let local = rx.local_addr().unwrap_or(local);

        let no_check = local.is_ipv4() && !cfg.udp_checksum;
        let mut plain = Vec::with_capacity(cfg.src_ports.count() as usize);
        for port in cfg.src_ports.iter() {
            let addr = with_scope(SocketAddr::new(local.ip(), port), local);
            plain.push(setup::tx_socket(cfg, addr, no_check, false)?);
        }
        if cfg.gso {
            caps.gso = match plain[0].set_udp_segment(0) {
                Ok(()) => true,
                Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => false,
                Err(source) => return Err(UnderlayError::option("UDP_SEGMENT", source)),
            };
        }
        let gso = if caps.gso && no_check {
            let mut twins = Vec::with_capacity(plain.len());
            for port in cfg.src_ports.iter() {
                let addr = with_scope(SocketAddr::new(local.ip(), port), local);
                twins.push(setup::tx_socket(cfg, addr, false, true)?);
            }
            Some(twins.into_boxed_slice())
        } else {
            None
        };

        let mtu_ifindex = match ifindex {
            Some(i) => Some(i),
            None => interface_with_address(local.ip())
                .ok()
                .flatten()
                .and_then(|name| if_nametoindex(&name).ok()),
        };
        Ok(Underlay {
            rx,
            rx_batch: UdpRecvBatch::new(MAX_BATCH),
            tx: TxPools {
                plain: plain.into_boxed_slice(),
                gso,
            },
            tx_batch: UdpSendBatch::new(MAX_BATCH),
            local,
            src_ports: cfg.src_ports,
            mtu_ifindex,
            caps,
            drops: UnderlayDrops::default(),
            rx_drops_seen: 0,
        })
    }

    /// `queues` underlays on one address, one per worker: the first opened as by
    /// [`open`](Self::open); each further one receives on a socket that joins the first
    /// one's address (`SO_REUSEPORT`), and sends on the first one's transmit sockets (a
    /// second descriptor of each). A datagram goes to the queue of its inner flow
    /// ([`crate::port::steer::underlay_lanes`]), the one whose worker also reads that
    /// flow's local side.
    pub fn open_queues(
        cfg: &UnderlayConfig,
        queues: usize,
    ) -> Result<Vec<Underlay>, UnderlayError> {
        let first = Underlay::open(cfg)?;
        let mut all = Vec::with_capacity(queues.max(1));
        for _ in 1..queues.max(1) {
            all.push(first.join(cfg)?);
        }
        if queues > 1 {
            // Joined in order: the group's k-th socket is queue k.
            first
                .rx
                .attach_reuseport_program(&crate::port::steer::underlay_lanes(queues))
                .map_err(|e| UnderlayError::option("SO_ATTACH_REUSEPORT_CBPF", e))?;
        }
        all.insert(0, first);
        Ok(all)
    }

    /// Another queue on this underlay's address (see [`open_queues`](Self::open_queues)).
    fn join(&self, cfg: &UnderlayConfig) -> Result<Underlay, UnderlayError> {
        let rx = setup::new_socket(cfg)?;
        if self.caps.gro {
            rx.set_udp_gro(true)
                .map_err(|e| UnderlayError::option("UDP_GRO", e))?;
        }
        rx.set_rcvbuf(SOCKET_BUFFER_BYTES)
            .map_err(|e| UnderlayError::option("SO_RCVBUF", e))?;
        setup::bind_joining(&rx, cfg, self.local, false)?;
        let clone_all = |socks: &[UdpSocket]| -> Result<Box<[UdpSocket]>, UnderlayError> {
            socks
                .iter()
                .map(|s| {
                    s.try_clone()
                        .map_err(|source| UnderlayError::Socket { source })
                })
                .collect()
        };
        let gso = match &self.tx.gso {
            Some(twins) => Some(clone_all(twins)?),
            None => None,
        };
        Ok(Underlay {
            rx,
            rx_batch: UdpRecvBatch::new(MAX_BATCH),
            tx: TxPools {
                plain: clone_all(&self.tx.plain)?,
                gso,
            },
            tx_batch: UdpSendBatch::new(MAX_BATCH),
            local: self.local,
            src_ports: self.src_ports,
            mtu_ifindex: self.mtu_ifindex,
            caps: self.caps,
            drops: UnderlayDrops::default(),
            rx_drops_seen: 0,
        })
    }

    /// The receive socket, to wait on for readability.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.rx.as_fd()
    }

    /// The address datagrams are received on (and sent from, with other ports).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The offloads in use now.
    pub fn caps(&self) -> UnderlayCaps {
        self.caps
    }

    /// The outer UDP source port a flow with this hash leaves from.
    pub fn source_port(&self, flow_hash: u32) -> u16 {
        vtep::source_port(flow_hash, self.src_ports)
    }

    /// The MTU of the configured interface, or else of the one holding the local address
    /// (looked up at open); `None` when neither is known (any more). The overlay MTU is
    /// this minus the VXLAN overhead (50 bytes over IPv4, 70 over IPv6).
    pub fn mtu(&self) -> Option<u32> {
        self.rx.interface_mtu(self.mtu_ifindex?).ok()
    }

    /// The largest UDP payload (VXLAN header and inner frame) one datagram can carry
    /// without `EMSGSIZE`: [`mtu`](Self::mtu) minus the outer IP and UDP headers. Also
    /// the largest `segment_size` of a GSO run.
    pub fn max_payload(&self) -> Option<u32> {
        let ip = if self.local.is_ipv6() { 40 } else { 20 };
        self.mtu()?.checked_sub(ip + 8)
    }

    /// Reads up to `min(bufs.len(), meta.len(), MAX_BATCH)` reads into `bufs[0..n]` and
    /// `meta[0..n]`; `Ok(0)` when nothing is waiting. Each buffer's frame is the UDP
    /// payload (VXLAN header first), after the usual headroom: `pull_front` the VXLAN
    /// header. With GRO one buffer may hold several datagrams (`meta[i].segment_size`).
    pub fn recv_batch(
        &mut self,
        bufs: &mut [PacketBuf],
        meta: &mut [RxMeta],
    ) -> Result<usize, UnderlayError> {
        let n = bufs.len().min(meta.len());
        let got = match self.rx_batch.recv(self.rx.as_fd(), &mut bufs[..n]) {
            Ok(got) => got,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) => {
                return Ok(0);
            }
            Err(source) => return Err(UnderlayError::Receive { source }),
        };
        let mut kept = 0;
        for i in 0..got {
            let src = self.rx_batch.source(i);
            let (false, Some(src)) = (self.rx_batch.truncated(i), src) else {
                self.drops.rx_truncated += 1;
                continue;
            };
            let len = self.rx_batch.len(i);
            let segment_size = self
                .rx_batch
                .gro_segment_size(i)
                .and_then(|s| u16::try_from(s).ok())
                .filter(|&s| s > 0 && usize::from(s) < len);
            bufs[i].set_len(len);
            bufs.swap(kept, i);
            meta[kept] = RxMeta { src, segment_size };
            kept += 1;
        }
        Ok(kept)
    }

    /// The datagrams dropped since the last call, by reason; resets the counts.
    pub fn take_drops(&mut self) -> UnderlayDrops {
        std::mem::take(&mut self.drops)
    }
}

/// `addr` with the scope of `local` when `local` is an IPv6 link-local address.
fn with_scope(addr: SocketAddr, local: SocketAddr) -> SocketAddr {
    match (addr, local) {
        (SocketAddr::V6(a), SocketAddr::V6(l)) if l.scope_id() != 0 => {
            SocketAddr::V6(SocketAddrV6::new(*a.ip(), a.port(), 0, l.scope_id()))
        }
        _ => addr,
    }
}

fn interface_index(name: &str) -> Result<u32, UnderlayError> {
    validate_ifname(name).map_err(|source| UnderlayError::InvalidInterface {
        name: name.to_owned(),
        source,
    })?;
    if_nametoindex(name).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => UnderlayError::NoSuchInterface {
            name: name.to_owned(),
        },
        _ => UnderlayError::InvalidInterface {
            name: name.to_owned(),
            source,
        },
    })
}

impl crate::datapath::tunnel::Tunnel for Underlay {
    fn as_fd(&self) -> BorrowedFd<'_> {
        Underlay::as_fd(self)
    }

    fn recv_batch(
        &mut self,
        bufs: &mut [PacketBuf],
        meta: &mut [RxMeta],
    ) -> Result<usize, crate::datapath::tunnel::TunnelError> {
        Underlay::recv_batch(self, bufs, meta).map_err(|e| io::Error::other(e.to_string()).into())
    }

    fn send_batch(
        &mut self,
        pool: &[PacketBuf],
        txs: &[Transmit],
    ) -> Result<usize, crate::datapath::tunnel::TunnelError> {
        Underlay::send_batch(self, pool, txs).map_err(|e| io::Error::other(e.to_string()).into())
    }

    fn take_tx_drops(&mut self) -> u64 {
        // Only the send side: the receive side's counts are taken by their own calls.
        let d = &mut self.drops;
        let n = d.tx_refused + d.tx_unreachable + d.tx_link_down + d.tx_queue_full;
        (
            d.tx_refused,
            d.tx_unreachable,
            d.tx_link_down,
            d.tx_queue_full,
        ) = (0, 0, 0, 0);
        n
    }

    fn take_rx_truncated(&mut self) -> u64 {
        std::mem::take(&mut self.drops.rx_truncated)
    }

    fn take_rx_overruns(&mut self) -> u64 {
        let Ok(now) = self.rx.drops_so_far() else {
            return 0;
        };
        let new = now.wrapping_sub(self.rx_drops_seen);
        self.rx_drops_seen = now;
        u64::from(new)
    }
}
