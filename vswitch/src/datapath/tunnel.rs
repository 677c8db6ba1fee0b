//! What the worker needs from the VXLAN underlay, as a trait: batch receive of UDP
//! payloads (several datagrams per buffer when the kernel coalesced them with GRO), and
//! batch send of transmits (one datagram, or several of one size sent with UDP GSO).
//! The real one is `port::underlay::Underlay`; tests can use an in-memory one.
//!
//! Also the underlay's counters: datagrams and bytes each way, and every datagram
//! dropped on the way in by its reason.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::os::fd::BorrowedFd;

use vtep::DecapError;

use super::counters::{Counter, DropReason, PerWorker};
use crate::packet::PacketBuf;

/// One received buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxMeta {
    /// The sending VTEP's address and source port.
    pub src: SocketAddr,
    /// With GRO: the buffer holds datagrams of this size back to back (the last may be
    /// shorter). `None`: one datagram.
    pub segment_size: Option<u16>,
}

impl Default for RxMeta {
    fn default() -> Self {
        RxMeta {
            src: SocketAddr::from(([0, 0, 0, 0], 0)),
            segment_size: None,
        }
    }
}

/// One send: UDP payload from a pool buffer's frame to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub buf: u32,
    /// The part of the buffer's frame to send (`None`: all of it). A split super-frame
    /// can exceed what one GSO send takes; its runs are ranges of one buffer.
    pub range: Option<Range<usize>>,
    /// The remote VTEP; the port is the configured one.
    pub dst: IpAddr,
    /// `vtep::flow_hash` of the inner frame: selects the source port, so each inner flow
    /// keeps one outer 5-tuple.
    pub flow_hash: u32,
    /// Several datagrams of this size (the last may be shorter), in one GSO send.
    pub segment_size: Option<u16>,
}

impl Transmit {
    /// The bytes to send.
    pub fn payload<'a>(&self, pool: &'a [PacketBuf]) -> &'a [u8] {
        let frame = pool[self.buf as usize].frame();
        match &self.range {
            Some(r) => frame.get(r.clone()).unwrap_or_default(),
            None => frame,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error("underlay I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// The VXLAN underlay, from the worker's side.
pub trait Tunnel: Send {
    fn as_fd(&self) -> BorrowedFd<'_>;
    /// Reads up to `bufs.len()` buffers; `meta[i]` describes `bufs[i]`.
    fn recv_batch(
        &mut self,
        bufs: &mut [PacketBuf],
        meta: &mut [RxMeta],
    ) -> Result<usize, TunnelError>;
    /// Sends in order; returns how many transmits are done (sent or dropped and counted).
    fn send_batch(&mut self, pool: &[PacketBuf], txs: &[Transmit]) -> Result<usize, TunnelError>;
    /// Datagrams the underlay dropped by itself since the last call (refused sends).
    fn take_tx_drops(&mut self) -> u64 {
        0
    }
    /// Received datagrams cut short (longer than a buffer) since the last call.
    fn take_rx_truncated(&mut self) -> u64 {
        0
    }
    /// Datagrams the kernel dropped before we read them (a full receive queue) since
    /// the last call. A system call: for the housekeeping tick, not every batch.
    fn take_rx_overruns(&mut self) -> u64 {
        0
    }
}

/// One worker's underlay counters (kept [`PerWorker`]: each worker has a socket of the
/// underlay).
#[derive(Debug, Default)]
pub struct TunnelCounters {
    pub rx_datagrams: Counter,
    pub rx_bytes: Counter,
    pub tx_datagrams: Counter,
    pub tx_bytes: Counter,
    /// Sends the kernel refused or that would have blocked.
    pub tx_dropped: Counter,
    /// Decapsulated frames dropped because the batch had no scratch buffer left.
    pub rx_no_buffer: Counter,
    /// Frames too big for the tunnel answered with an ICMP error to their sender.
    pub icmp_too_big_sent: Counter,
    /// IPv4 packets without DF too big for the tunnel, fragmented on their way in.
    pub fragmented: Counter,
    /// Received datagrams longer than a buffer (cut by the kernel), dropped.
    pub rx_truncated: Counter,
    /// Datagrams the kernel dropped because the receive queue was full.
    pub rx_overrun: Counter,
    decap: [Counter; DecapError::COUNT],
    /// Frames that decapsulated cleanly and that the switching pipeline then dropped
    /// (a group or zero inner source, a tagged inner frame, split horizon, ...).
    inner: [Counter; DropReason::COUNT],
    /// Per-peer counters, by underlay address, one entry per configured peer. The
    /// worker keeps its own map of these and comes here (a lock) only when a new
    /// topology snapshot is published; the control plane comes here to read them.
    peers: std::sync::Mutex<std::collections::BTreeMap<IpAddr, std::sync::Arc<PeerCounters>>>,
}

/// Datagrams and bytes exchanged with one peer (by one worker).
#[derive(Debug, Default)]
pub struct PeerCounters {
    pub rx_datagrams: Counter,
    pub rx_bytes: Counter,
    pub tx_datagrams: Counter,
    pub tx_bytes: Counter,
}

impl TunnelCounters {
    pub fn decap_drop(&self, e: DecapError) {
        self.decap[e.index()].add(1);
    }

    /// Counts a decapsulated frame the pipeline dropped.
    pub fn inner_drop(&self, r: DropReason) {
        self.inner[r as usize].add(1);
    }

    /// The counters of peer `ip`, made if it has none yet.
    pub fn peer(&self, ip: IpAddr) -> std::sync::Arc<PeerCounters> {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.entry(ip).or_default().clone()
    }

    /// Drops the counters of every peer for which `keep` is false.
    pub fn retain_peers(&self, keep: impl Fn(IpAddr) -> bool) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.retain(|ip, _| keep(*ip));
    }

    /// The peers with counters here, in address order (for the tests).
    #[cfg(test)]
    pub(crate) fn peer_ips(&self) -> Vec<IpAddr> {
        let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.keys().copied().collect()
    }
}

/// One peer's counters summed over the workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    pub rx_datagrams: u64,
    pub rx_bytes: u64,
    pub tx_datagrams: u64,
    pub tx_bytes: u64,
}

impl PerWorker<TunnelCounters> {
    /// Decapsulated frames dropped per pipeline reason, zeros left out.
    pub fn inner_drops(&self) -> Vec<(&'static str, u64)> {
        DropReason::ALL
            .iter()
            .map(|r| (r.name(), self.sum(|c| c.inner[*r as usize].get())))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Every peer's counters, summed over the workers, for stats and metrics.
    pub fn peers(&self) -> Vec<(IpAddr, PeerStats)> {
        let mut sums = std::collections::BTreeMap::<IpAddr, PeerStats>::new();
        for block in self.blocks() {
            let peers = block.peers.lock().unwrap_or_else(|p| p.into_inner());
            for (ip, c) in peers.iter() {
                let s = sums.entry(*ip).or_default();
                s.rx_datagrams += c.rx_datagrams.get();
                s.rx_bytes += c.rx_bytes.get();
                s.tx_datagrams += c.tx_datagrams.get();
                s.tx_bytes += c.tx_bytes.get();
            }
        }
        sums.into_iter().collect()
    }

    /// Drops on receipt per reason (decapsulation, truncation, receive overrun), zeros
    /// left out.
    pub fn decap_drops(&self) -> Vec<(&'static str, u64)> {
        DecapError::ALL
            .iter()
            .map(|e| (e.name(), self.sum(|c| c.decap[e.index()].get())))
            .chain([
                ("rx_truncated", self.sum(|c| c.rx_truncated.get())),
                ("rx_overrun", self.sum(|c| c.rx_overrun.get())),
            ])
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Every worker's counts added up, for `vswitch stats`.
    pub fn snapshot(&self) -> serde_json::Value {
        let drops: serde_json::Map<String, serde_json::Value> = self
            .decap_drops()
            .into_iter()
            .map(|(k, n)| (k.to_string(), n.into()))
            .collect();
        let peers: serde_json::Map<String, serde_json::Value> = self
            .peers()
            .into_iter()
            .map(|(ip, c)| {
                let v = serde_json::json!({
                    "rx_datagrams": c.rx_datagrams,
                    "rx_bytes": c.rx_bytes,
                    "tx_datagrams": c.tx_datagrams,
                    "tx_bytes": c.tx_bytes,
                });
                (ip.to_string(), v)
            })
            .collect();
        serde_json::json!({
            "peers": peers,
            "rx_datagrams": self.sum(|c| c.rx_datagrams.get()),
            "rx_bytes": self.sum(|c| c.rx_bytes.get()),
            "tx_datagrams": self.sum(|c| c.tx_datagrams.get()),
            "tx_bytes": self.sum(|c| c.tx_bytes.get()),
            "tx_dropped": self.sum(|c| c.tx_dropped.get()),
            "rx_no_buffer": self.sum(|c| c.rx_no_buffer.get()),
            "icmp_too_big_sent": self.sum(|c| c.icmp_too_big_sent.get()),
            "fragmented": self.sum(|c| c.fragmented.get()),
            "drops": drops,
            "inner_drops": self
                .inner_drops()
                .into_iter()
                .map(|(k, n)| (k.to_string(), serde_json::Value::from(n)))
                .collect::<serde_json::Map<_, _>>(),
        })
    }
}
