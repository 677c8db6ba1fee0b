//! The neighbour cache's vocabulary: its configuration and defaults, what a lookup
//! answers, what learning and the timers hand back, and what is shown and counted.
//! The state machine that uses them is in the parent module.

use std::net::Ipv4Addr;
use std::time::Duration;

use fdb::MacAddr;

use crate::packet::VNET_HDR_LEN;

/// The cache's timers and limits. [`Default`] follows Linux's ARP defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighConfig {
    /// How long a confirmation keeps an entry REACHABLE (Linux `base_reachable_time`,
    /// 30 s; Linux draws a random time in 0.5..1.5 of it, we use it as is).
    pub reachable_time: Duration,
    /// How long an unused STALE entry stays (Linux `gc_stale_time`, 60 s).
    pub gc_stale_time: Duration,
    /// How long a used STALE entry waits for a confirmation before being probed
    /// (Linux `delay_first_probe_time`, 5 s).
    pub delay_first_probe: Duration,
    /// Time between two requests for the same address (Linux `retrans_time`, 1 s).
    pub retrans_time: Duration,
    /// Requests sent before giving up: broadcast ones when resolving, unicast ones
    /// when re-checking (Linux `mcast_solicit` and `ucast_solicit`, 3).
    pub max_probes: u8,
    /// How long a failed address answers [`Lookup::Failed`] before a new resolution
    /// may start, so that traffic to a dead host costs at most `max_probes` requests
    /// per `max_probes * retrans_time + failed_time` (5 s: Linux would re-probe at
    /// once on the next packet).
    pub failed_time: Duration,
    /// A reply changing a MAC learned less than this long ago is ignored (Linux
    /// `locktime`, 1 s).
    pub locktime: Duration,
    /// Frames queued per INCOMPLETE address. 64: a datagram the router cut into
    /// fragments waits whole (a 64 KiB one at MTU 1024), where Linux's historical
    /// `unres_qlen` of 3 would keep its head only; Linux now limits by bytes, about
    /// 212 KB per address. The cache-wide limits below still bound the total.
    pub queue_per_address: usize,
    /// Frames queued in the whole cache.
    pub queue_total_frames: usize,
    /// Bytes (frame and virtio_net_hdr) queued in the whole cache: 16 TSO
    /// super-frames of 64 KiB, or about 700 full-size frames.
    pub queue_total_bytes: usize,
    /// Addresses in the cache (Linux `gc_thresh3`, 1024).
    pub max_entries: usize,
}

impl Default for NeighConfig {
    fn default() -> Self {
        NeighConfig {
            reachable_time: Duration::from_secs(30),
            gc_stale_time: Duration::from_secs(60),
            delay_first_probe: Duration::from_secs(5),
            retrans_time: Duration::from_secs(1),
            max_probes: 3,
            failed_time: Duration::from_secs(5),
            locktime: Duration::from_secs(1),
            queue_per_address: 64,
            queue_total_frames: 256,
            queue_total_bytes: 1 << 20,
            max_entries: 1024,
        }
    }
}

/// What [`NeighCache::lookup`](super::NeighCache::lookup) found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Send to this MAC.
    Hit(MacAddr),
    /// Not resolved (yet). The frame given to the lookup was copied into the queue if
    /// `queued`, else dropped (queue limit, or the table is full) and counted. When
    /// `send_request`, the caller sends a broadcast ARP request for the address now
    /// (the first of the resolution; [`tick`](super::NeighCache::tick) asks for the
    /// retries).
    Miss { send_request: bool, queued: bool },
    /// The address did not answer recently: drop the frame (and answer it with an
    /// ICMP host unreachable if it may be answered).
    Failed,
}

/// A frame to hand to [`NeighCache::lookup`](super::NeighCache::lookup), queued in
/// case the address is not resolved.
#[derive(Clone, Copy, Debug)]
pub struct Waiting<'a> {
    pub vnet: [u8; VNET_HDR_LEN],
    pub frame: &'a [u8],
}

/// A frame that waited for an address, as it was given to the lookup: the caller sets
/// its Ethernet destination (and whatever else it deferred) before sending it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedFrame {
    pub vnet: [u8; VNET_HDR_LEN],
    pub frame: Vec<u8>,
    pub queued_at: Duration,
}

impl QueuedFrame {
    pub(super) fn cost(&self) -> usize {
        self.frame.len() + VNET_HDR_LEN
    }
}

/// How an address-to-MAC binding was heard. See the module doc for what each may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LearnKind {
    /// An ARP reply addressed to us (unicast): confirms reachability.
    Reply,
    /// An ARP request for one of our addresses: its sender exists.
    Request,
    /// A gratuitous ARP (sender address == target address), request or reply.
    Gratuitous,
}

/// An ARP request the caller should send from this interface's address and MAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArpRequest {
    pub target: Ipv4Addr,
    /// [`MacAddr::BROADCAST`] while resolving; the cached MAC when re-checking it.
    pub dst: MacAddr,
}

/// What [`NeighCache::tick`](super::NeighCache::tick) asks of the caller.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Requests to send now.
    pub requests: Vec<ArpRequest>,
    /// Frames whose address failed to resolve, with the address: drop them, or answer
    /// each with an ICMP host unreachable (type 3 code 1) as Linux does.
    pub unresolved: Vec<(Ipv4Addr, QueuedFrame)>,
}

/// An entry's state, as shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NeighState {
    Incomplete,
    Reachable,
    Stale,
    Delay,
    Probe,
    Failed,
    Permanent,
}

impl NeighState {
    /// The lowercase name `ip neigh` would print.
    pub const fn name(self) -> &'static str {
        match self {
            NeighState::Incomplete => "incomplete",
            NeighState::Reachable => "reachable",
            NeighState::Stale => "stale",
            NeighState::Delay => "delay",
            NeighState::Probe => "probe",
            NeighState::Failed => "failed",
            NeighState::Permanent => "permanent",
        }
    }
}

/// One entry, for display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NeighEntry {
    pub ip: Ipv4Addr,
    /// `None` while INCOMPLETE or FAILED.
    pub mac: Option<MacAddr>,
    pub state: NeighState,
    /// Frames waiting (INCOMPLETE only).
    pub queued: usize,
    /// Time since a lookup last wanted the entry.
    pub idle: Duration,
    /// Time since the binding was last learned; `None` when there is none.
    pub learned_ago: Option<Duration>,
}

/// Event counts. Plain numbers: the cache has one owner; sum workers' with
/// [`NeighCounters::merge`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NeighCounters {
    /// Lookups answered with a MAC.
    pub hits: u64,
    /// Lookups of an address not (yet) resolved.
    pub misses: u64,
    /// Requests the cache asked to send (first requests, retries, unicast probes).
    pub requests_sent: u64,
    /// Frames queued for an answer.
    pub queued: u64,
    /// Frames refused by a queue limit or a full table.
    pub queue_drops: u64,
    /// Queued frames handed back on an answer.
    pub released: u64,
    /// Resolutions (or re-checks) that got no answer.
    pub failed: u64,
    /// Queued frames handed back because their resolution failed.
    pub unresolved: u64,
    /// Lookups answered [`Lookup::Failed`].
    pub failed_lookups: u64,
    /// New addresses refused because every entry was in use.
    pub table_full: u64,
}

impl NeighCounters {
    /// Adds another cache's counts.
    pub fn merge(&mut self, o: &NeighCounters) {
        self.hits += o.hits;
        self.misses += o.misses;
        self.requests_sent += o.requests_sent;
        self.queued += o.queued;
        self.queue_drops += o.queue_drops;
        self.released += o.released;
        self.failed += o.failed;
        self.unresolved += o.unresolved;
        self.failed_lookups += o.failed_lookups;
        self.table_full += o.table_full;
    }
}
