//! The transmit path: which socket each [`Transmit`] leaves by, grouping consecutive
//! transmits on one socket into one `sendmmsg`, the datagram-by-datagram fallback, and
//! giving GSO up when the kernel refuses it.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};

use super::{
    MAX_GSO_PAYLOAD, MAX_GSO_SEGMENTS, Transmit, Underlay, UnderlayDrops, UnderlayError, with_scope,
};
use crate::packet::PacketBuf;
use crate::port::sys::udp::UdpSocket;
use crate::port::sys::udp_mmsg::OutDatagram;

/// The transmit sockets: `plain[i]` is bound to source port `first + i`; `gso[i]`, when
/// present, to the same port with checksums on, for GSO sends (see the module doc).
#[derive(Debug)]
pub(super) struct TxPools {
    pub(super) plain: Box<[UdpSocket]>,
    pub(super) gso: Option<Box<[UdpSocket]>>,
}

/// A transmit socket: which pool, which port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SockId {
    pub(super) gso_pool: bool,
    pub(super) index: usize,
}

impl TxPools {
    fn fd(&self, id: SockId) -> BorrowedFd<'_> {
        match (&self.gso, id.gso_pool) {
            (Some(gso), true) => gso[id.index].as_fd(),
            _ => self.plain[id.index].as_fd(),
        }
    }
}

/// How one transmit goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    /// One message on a socket: a datagram, or with `gso` a `UDP_SEGMENT` run.
    Msg { sock: SockId, gso: bool },
    /// Datagram by datagram (GSO off, or more than one GSO call may carry).
    Split { sock: SockId, seg: usize },
    /// Not sendable: `errno`, counted for this many datagrams.
    Drop { errno: i32, datagrams: u64 },
}

/// What a datagram-by-datagram send of one transmit achieved.
enum Split {
    /// The first datagram would block: nothing of it was sent.
    Blocked,
    /// Done with it: `sent_any` tells whether at least one datagram left.
    Done { sent_any: bool },
}

impl Underlay {
    /// Sends `txs` in order and returns how many, from the front, are done: sent, or
    /// dropped and counted in [`take_drops`](Self::take_drops). Fewer than `txs.len()`
    /// means the next would block (the socket buffer is full); it and the rest were not
    /// sent. Consecutive transmits on the same socket share one `sendmmsg`.
    ///
    /// # Panics
    /// If a `buf` index is out of `pool`'s bounds (a caller bug, not bad input).
    pub fn send_batch(
        &mut self,
        pool: &[PacketBuf],
        txs: &[Transmit],
    ) -> Result<usize, UnderlayError> {
        let mut i = 0;
        while i < txs.len() {
            let route = self.route(pool, &txs[i]);
            let (sock, gso) = match route {
                Route::Drop { errno, datagrams } => {
                    self.drops.count_tx(errno, datagrams);
                    i += 1;
                    continue;
                }
                Route::Split { sock, seg } => {
                    match self.send_split(pool, &txs[i], sock, seg)? {
                        Split::Blocked => return Ok(i),
                        Split::Done { .. } => i += 1,
                    }
                    continue;
                }
                Route::Msg { sock, gso } => (sock, gso),
            };
            // The run of transmits from `i` that go out as one message each on `sock`.
            let mut end = i + 1;
            while end < txs.len()
                && end - i < self.tx_batch.capacity()
                && matches!(self.route(pool, &txs[end]), Route::Msg { sock: s, .. } if s == sock)
            {
                end += 1;
            }
            let (port, gso_ok) = (self.local.port(), self.caps.gso);
            let msgs = txs[i..end].iter().map(|t| {
                let payload = t.payload(pool);
                OutDatagram {
                    payload,
                    dst: with_scope(SocketAddr::new(t.dst, port), self.local),
                    // Only on a real run: even a one-datagram UDP_SEGMENT send is refused
                    // on a socket with SO_NO_CHECK.
                    segment_size: t
                        .segment_size
                        .filter(|&s| gso_ok && s > 0 && payload.len() > usize::from(s)),
                }
            });
            let err = match self.tx_batch.send(self.tx.fd(sock), msgs) {
                Ok(0) => return Ok(i),
                Ok(sent) => {
                    i += sent;
                    continue;
                }
                Err(err) => err,
            };
            // The error concerns `txs[i]`: sendmmsg stops at the first failure.
            let errno = err.raw_os_error().unwrap_or(0);
            match errno {
                libc::EINTR => {}
                libc::EAGAIN => return Ok(i),
                libc::EIO | libc::EINVAL if gso => {
                    let seg = usize::from(txs[i].segment_size.unwrap_or(1));
                    match self.send_split(pool, &txs[i], sock_plain(sock), seg)? {
                        Split::Blocked => return Ok(i),
                        Split::Done { sent_any } => {
                            if sent_any {
                                self.gso_refused(err);
                            }
                            i += 1;
                        }
                    }
                }
                _ => {
                    let n = datagrams(txs[i].payload(pool).len(), txs[i].segment_size);
                    if !self.drops.count_tx(errno, n) {
                        return Err(UnderlayError::Send {
                            dst: txs[i].dst,
                            source: err,
                        });
                    }
                    i += 1;
                }
            }
        }
        Ok(i)
    }

    /// How `tx` goes out: which socket, as one message or datagram by datagram, or not
    /// at all (a destination of the other address family).
    pub(super) fn route(&self, pool: &[PacketBuf], tx: &Transmit) -> Route {
        let len = tx.payload(pool).len();
        let seg = tx
            .segment_size
            .map(usize::from)
            .filter(|&s| s > 0 && len > s);
        if tx.dst.is_ipv6() != self.local.is_ipv6() {
            return Route::Drop {
                errno: libc::EAFNOSUPPORT,
                datagrams: datagrams(len, tx.segment_size),
            };
        }
        let index = usize::from(self.source_port(tx.flow_hash) - self.src_ports.first());
        let plain = SockId {
            gso_pool: false,
            index,
        };
        match seg {
            None => Route::Msg {
                sock: plain,
                gso: false,
            },
            Some(seg)
                if !self.caps.gso
                    || len.div_ceil(seg) > MAX_GSO_SEGMENTS
                    || len > MAX_GSO_PAYLOAD =>
            {
                Route::Split { sock: plain, seg }
            }
            Some(_) => Route::Msg {
                sock: SockId {
                    gso_pool: self.tx.gso.is_some(),
                    index,
                },
                gso: true,
            },
        }
    }

    /// Sends `tx` datagram by datagram, `seg` bytes each, in as few `sendmmsg` as hold
    /// them (one for up to `MAX_BATCH` datagrams; runs are never merged across
    /// transmits, so with GSO off each run costs at least one call of its own).
    fn send_split(
        &mut self,
        pool: &[PacketBuf],
        tx: &Transmit,
        sock: SockId,
        seg: usize,
    ) -> Result<Split, UnderlayError> {
        let payload = tx.payload(pool);
        let dst = with_scope(SocketAddr::new(tx.dst, self.local.port()), self.local);
        let total = payload.len().div_ceil(seg).max(1);
        let (mut done, mut sent_any) = (0, false);
        while done < total {
            let msgs = payload.chunks(seg).skip(done).map(|c| OutDatagram {
                payload: c,
                dst,
                segment_size: None,
            });
            let err = match self.tx_batch.send(self.tx.fd(sock), msgs) {
                Ok(0) => return Ok(Split::Done { sent_any }),
                Ok(sent) => {
                    done += sent;
                    sent_any = true;
                    continue;
                }
                Err(err) => err,
            };
            match err.raw_os_error().unwrap_or(0) {
                libc::EINTR => {}
                libc::EAGAIN if done == 0 => return Ok(Split::Blocked),
                // Part of it left already: drop the rest rather than send it twice later.
                libc::EAGAIN => {
                    self.drops.count_tx(libc::EAGAIN, (total - done) as u64);
                    return Ok(Split::Done { sent_any });
                }
                errno if self.drops.count_tx(errno, 1) => done += 1,
                _ => {
                    return Err(UnderlayError::Send {
                        dst: tx.dst,
                        source: err,
                    });
                }
            }
        }
        Ok(Split::Done { sent_any })
    }

    /// A GSO send failed where the same datagrams one by one did not: the kernel or the
    /// device refuses UDP GSO. Stop using it, for good, and say so once.
    fn gso_refused(&mut self, err: io::Error) {
        if self.caps.gso {
            self.caps.gso = false;
            tracing::warn!(
                "underlay: the kernel refused a UDP GSO send ({err}); sending datagram by \
                 datagram from now on"
            );
        }
    }
}

/// How many datagrams a payload of `len` bytes is with this segment size.
fn datagrams(len: usize, segment_size: Option<u16>) -> u64 {
    match segment_size {
        Some(s) if s > 0 && len > usize::from(s) => len.div_ceil(usize::from(s)) as u64,
        _ => 1,
    }
}

/// The same port on the plain (configured checksum) pool.
fn sock_plain(sock: SockId) -> SockId {
    SockId {
        gso_pool: false,
        ..sock
    }
}

impl UnderlayDrops {
    /// Counts `n` datagrams refused with `errno`; `false` when the errno is not one a
    /// single datagram can cause (then the socket itself is in trouble).
    fn count_tx(&mut self, errno: i32, n: u64) -> bool {
        let counter = match errno {
            libc::EMSGSIZE
            | libc::EINVAL
            | libc::EPERM
            | libc::EACCES
            | libc::EAFNOSUPPORT
            | libc::EADDRNOTAVAIL
            | libc::ENOMEM => &mut self.tx_refused,
            libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EHOSTDOWN | libc::ECONNREFUSED => {
                &mut self.tx_unreachable
            }
            libc::ENETDOWN | libc::ENODEV | libc::ENXIO => &mut self.tx_link_down,
            libc::ENOBUFS | libc::EAGAIN => &mut self.tx_queue_full,
            _ => return false,
        };
        *counter += n;
        self.last_tx_errno = Some(errno);
        true
    }
}
