//! AF_PACKET ports: an existing interface (the switch's end of a veth pair, or any other
//! interface) read and written through a raw packet socket.
//!
//! The socket carries a virtio_net_hdr in front of every frame (`PACKET_VNET_HDR`), so a
//! container's 64 KiB TSO super-frames cross the switch whole and partial checksums stay
//! partial. It is bound to one interface, puts it in promiscuous mode for as long as it
//! is open (a physical NIC then hands us frames for every MAC behind the switch), and
//! ignores frames leaving the interface, ours included. Frames move in batches with
//! `recvmmsg` / `sendmmsg`, two iovecs per frame (header, frame), into arrays
//! preallocated here.
//!
//! When the interface is deleted the kernel unhooks the socket: the next receive fails
//! with `ENETDOWN` (once), sends fail with `ENXIO`. A link that is merely down gives the
//! same `ENETDOWN`, so on that error we ask the kernel (`SIOCGIFNAME` on our own socket,
//! hence in the port's namespace) whether the interface index still exists. Gone is
//! final; down is not (the socket rebinds itself when the link comes back up).
//!
//! Two deletions escape the receive path, and only a send or
//! [`Port::check_alive`] reveals them: an interface deleted while it was down (the
//! socket is already unhooked, the kernel sets no error: receives just see nothing), and
//! one whose `ENETDOWN` we read in the instant between the kernel closing the device and
//! unlisting it. The worker calls `check_alive` on its housekeeping tick; the daemon's
//! rtnetlink watch sees the deletion too.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use super::sys::ifname::if_nametoindex;
use super::sys::mmsg::MmsgBatch;
use super::sys::packet_socket::PacketSocket;
use super::{MAX_BATCH, Port, PortDrops, PortError};
use crate::packet::{PacketBuf, VNET_HDR_LEN};

/// Receive and send buffer of each socket. Room for about 60 super-frames of 64 KiB
/// (the kernel doubles the value for its bookkeeping); we are root, so `*BUFFORCE`.
pub const SOCKET_BUFFER_BYTES: usize = 4 << 20;

/// Whether sends skip the qdisc (`PACKET_QDISC_BYPASS`). Off: on a veth (no qdisc) it
/// measured no faster, and it hides our sends from `tcpdump` on the interface and from
/// a physical NIC's queue discipline (no backpressure, `ENOBUFS` drops instead).
const QDISC_BYPASS: bool = false;

/// Why a packet port could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum PacketPortError {
    #[error("{name:?} is not a valid interface name: {source}")]
    InvalidName {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "interface {name} does not exist in the switch's network namespace; create it first or check the name"
    )]
    NoSuchInterface {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot look up interface {name}: {source}")]
    Lookup {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot open an AF_PACKET socket for {name}: {source} (the daemon needs CAP_NET_RAW)")]
    Socket {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot enable PACKET_VNET_HDR on the socket for {name}: {source}")]
    SetVnetHdr {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot set PACKET_IGNORE_OUTGOING on the socket for {name}: {source} (needs Linux 4.20 or later)"
    )]
    SetIgnoreOutgoing {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot attach the socket filter that drops outgoing frames to {name}: {source}")]
    SetOutgoingFilter {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot set PACKET_QDISC_BYPASS on the socket for {name}: {source}")]
    SetQdiscBypass {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot size the socket buffers for {name}: {source} (SO_RCVBUFFORCE / SO_SNDBUFFORCE need CAP_NET_ADMIN)"
    )]
    SetBufferSize {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot put interface {name} in promiscuous mode: {source}")]
    AddPromisc {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot join the PACKET_FANOUT group of interface {name}: {source}")]
    Fanout {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot enable PACKET_AUXDATA on the socket for {name}: {source}")]
    SetAuxdata {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot bind to interface {name}: {source} (was it deleted meanwhile?)")]
    Bind {
        name: String,
        #[source]
        source: io::Error,
    },
}

/// An interface attached through AF_PACKET with `PACKET_VNET_HDR`.
#[derive(Debug)]
pub struct PacketPort {
    name: String,
    ifindex: u32,
    sock: PacketSocket,
    rx: MmsgBatch,
    tx: MmsgBatch,
    drops: PortDrops,
    gone: bool,
}

impl PacketPort {
    /// `queues` ports on interface `ifname`, one per worker. With more than one, they
    /// form a `PACKET_FANOUT` group (hash mode, named after the interface's index): the
    /// kernel gives each received flow to one of them; any of them can send.
    pub fn open_queues(ifname: &str, queues: usize) -> Result<Vec<PacketPort>, PacketPortError> {
        PacketPort::open_queues_steered(ifname, queues, None)
    }

    /// [`open_queues`](Self::open_queues), with the queue of each received frame chosen
    /// by `steer` (a classic BPF program, [`crate::port::steer`]) instead of the flow
    /// hash. Queue `k` is the `k`-th port returned.
    pub fn open_queues_steered(
        ifname: &str,
        queues: usize,
        steer: Option<&[libc::sock_filter]>,
    ) -> Result<Vec<PacketPort>, PacketPortError> {
        let ports = (0..queues.max(1))
            .map(|_| PacketPort::open(ifname))
            .collect::<Result<Vec<_>, _>>()?;
        if ports.len() > 1 {
            for p in &ports {
                // Fanout ids are 16 bits; two interfaces whose indices agree in the low 16
                // bits in one namespace would have to be 65536 apart.
                // Joined in order: the group's k-th member, the one a program's
                // result k picks, is the k-th port.
                p.sock
                    .join_fanout((p.ifindex & 0xffff) as u16, steer)
                    .map_err(|source| PacketPortError::Fanout {
                        name: p.name.clone(),
                        source,
                    })?;
            }
        }
        Ok(ports)
    }

    /// Attaches to interface `ifname` in the calling thread's network namespace (the
    /// port stays in that namespace whichever thread uses it later). Bring the link up
    /// before or after: a port on a down link receives nothing and drops what it sends
    /// (counted as `tx_link_down`) until the link comes up.
    pub fn open(ifname: &str) -> Result<PacketPort, PacketPortError> {
        let name = ifname.to_owned();
        let ifindex = if_nametoindex(ifname).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => PacketPortError::NoSuchInterface {
                name: name.clone(),
                source,
            },
            io::ErrorKind::InvalidInput => PacketPortError::InvalidName {
                name: name.clone(),
                source,
            },
            _ => PacketPortError::Lookup {
                name: name.clone(),
                source,
            },
        })?;
        let sock = PacketSocket::new().map_err(|source| PacketPortError::Socket {
            name: name.clone(),
            source,
        })?;
        sock.set_vnet_hdr(true)
            .map_err(|source| PacketPortError::SetVnetHdr {
                name: name.clone(),
                source,
            })?;
        sock.set_auxdata(true)
            .map_err(|source| PacketPortError::SetAuxdata {
                name: name.clone(),
                source,
            })?;
        sock.set_ignore_outgoing(true)
            .map_err(|source| PacketPortError::SetIgnoreOutgoing {
                name: name.clone(),
                source,
            })?;
        // Once the socket joins a fanout group (several workers) the option above stops
        // counting; the filter holds in both cases (see `drop_outgoing`).
        sock.drop_outgoing()
            .map_err(|source| PacketPortError::SetOutgoingFilter {
                name: name.clone(),
                source,
            })?;
        if QDISC_BYPASS {
            sock.set_qdisc_bypass(true)
                .map_err(|source| PacketPortError::SetQdiscBypass {
                    name: name.clone(),
                    source,
                })?;
        }
        sock.set_rcvbuf_force(SOCKET_BUFFER_BYTES)
            .and_then(|()| sock.set_sndbuf_force(SOCKET_BUFFER_BYTES))
            .map_err(|source| PacketPortError::SetBufferSize {
                name: name.clone(),
                source,
            })?;
        sock.add_promisc(ifindex)
            .map_err(|source| PacketPortError::AddPromisc {
                name: name.clone(),
                source,
            })?;
        sock.bind(ifindex)
            .map_err(|source| match source.raw_os_error() {
                Some(libc::ENODEV) | Some(libc::ENXIO) => PacketPortError::NoSuchInterface {
                    name: name.clone(),
                    source,
                },
                _ => PacketPortError::Bind {
                    name: name.clone(),
                    source,
                },
            })?;
        Ok(PacketPort {
            name,
            ifindex,
            sock,
            rx: MmsgBatch::with_auxdata(MAX_BATCH),
            tx: MmsgBatch::new(MAX_BATCH),
            drops: PortDrops::default(),
            gone: false,
        })
    }

    /// The interface index the socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    fn gone(&mut self) -> PortError {
        self.gone = true;
        PortError::Gone(self.name.clone())
    }

    fn io_error(&self, source: io::Error) -> PortError {
        PortError::Io {
            port: self.name.clone(),
            source,
        }
    }

    /// After `ENETDOWN`: is the interface gone, or only down?
    fn still_exists(&self) -> Result<bool, PortError> {
        self.sock
            .ifindex_exists(self.ifindex)
            .map_err(|e| self.io_error(e))
    }
}

impl Port for PacketPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }

    fn vnet_hdr(&self) -> bool {
        true
    }

    fn recv_batch(&mut self, bufs: &mut [PacketBuf]) -> Result<usize, PortError> {
        if self.gone {
            return Err(PortError::Gone(self.name.clone()));
        }
        let got = match self.rx.recv(self.sock.as_fd(), bufs) {
            Ok(got) => got,
            Err(e) => {
                return match e.raw_os_error() {
                    Some(libc::EAGAIN | libc::EINTR) => Ok(0),
                    Some(libc::ENXIO | libc::ENODEV) => Err(self.gone()),
                    // The socket's error slot said the link went down or away; it is
                    // now cleared, so this does not repeat (no spin on a down link).
                    Some(libc::ENETDOWN) if self.still_exists()? => Ok(0),
                    Some(libc::ENETDOWN) => Err(self.gone()),
                    // packet_recvmsg could not express the frame's GSO type in a
                    // virtio_net_hdr; the kernel has already discarded that frame.
                    Some(libc::EINVAL) => {
                        self.drops.rx_offload_unsupported += 1;
                        Ok(0)
                    }
                    _ => Err(self.io_error(e)),
                };
            }
        };
        // Keep the frames that arrived whole at the front of `bufs`; swapping buffers
        // moves only their pointers.
        let mut kept = 0;
        for i in 0..got {
            let len = self.rx.received_len(i);
            if self.rx.truncated(i) || len < VNET_HDR_LEN {
                self.drops.rx_truncated += 1;
                continue;
            }
            // The kernel took the tag off; forwarding the rest would silently untag it.
            if self.rx.vlan_tagged(i) {
                self.drops.rx_vlan_tagged += 1;
                continue;
            }
            bufs[i].set_len(len - VNET_HDR_LEN);
            bufs.swap(kept, i);
            kept += 1;
        }
        Ok(kept)
    }

    fn send_batch(&mut self, pool: &[PacketBuf], which: &[u32]) -> Result<usize, PortError> {
        if self.gone {
            return Err(PortError::Gone(self.name.clone()));
        }
        let mut done = 0;
        while done < which.len() {
            let err = match self.tx.send(self.sock.as_fd(), pool, &which[done..]) {
                // sendmmsg takes at least one message or fails; never spin if not.
                Ok(0) => return Ok(done),
                Ok(sent) => {
                    done += sent;
                    continue;
                }
                Err(err) => err,
            };
            // The error concerns `which[done]`: sendmmsg stops at the first failure.
            match err.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(done),
                Some(libc::EINTR) => {}
                Some(libc::ENXIO | libc::ENODEV) => return Err(self.gone()),
                Some(libc::ENETDOWN) if !self.still_exists()? => return Err(self.gone()),
                Some(libc::ENETDOWN) => {
                    self.drops.tx_link_down += (which.len() - done) as u64;
                    return Ok(which.len());
                }
                Some(errno @ libc::ENOBUFS) => {
                    self.drops.tx_queue_full += 1;
                    self.drops.last_tx_errno = Some(errno);
                    done += 1;
                }
                // This frame only. EMSGSIZE: longer than the MTU without a GSO type.
                // EINVAL: a virtio_net_hdr the kernel rejects, or shorter than an
                // Ethernet header. ENOMEM: the device's transmit validation dropped it
                // (`__dev_queue_xmit` answers ENOMEM for any frame `validate_xmit_skb`
                // discards, e.g. a GSO frame software segmentation cannot cut).
                Some(errno @ (libc::EMSGSIZE | libc::EINVAL | libc::ENOMEM)) => {
                    self.drops.tx_refused += 1;
                    self.drops.last_tx_errno = Some(errno);
                    done += 1;
                }
                _ => return Err(self.io_error(err)),
            }
        }
        Ok(done)
    }

    fn check_alive(&mut self) -> Result<(), PortError> {
        if self.gone {
            return Err(PortError::Gone(self.name.clone()));
        }
        // Collected here, on the housekeeping tick: frames lost to a full receive queue
        // never reach `recv_batch`, but must be counted all the same.
        if let Ok(n) = self.sock.take_rx_overruns() {
            self.drops.rx_overrun += u64::from(n);
        }
        if self.still_exists()? {
            Ok(())
        } else {
            Err(self.gone())
        }
    }

    fn take_drops(&mut self) -> PortDrops {
        std::mem::take(&mut self.drops)
    }
}
