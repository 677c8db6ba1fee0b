//! The neighbour (ARP) cache of one L3 interface: IPv4 address -> MAC, the state of
//! each entry, the frames waiting for an answer, and the requests to send.
//!
//! **Key and scope.** Keyed by IPv4 address only, so one [`NeighCache`] serves one L3
//! interface: the uplink (its next hop and its on-link hosts) or one network's
//! gateway (the endpoints routed to). It knows nothing of its own address: what it
//! asks the caller to send is an [`ArpRequest`] (target and Ethernet destination) that
//! the caller turns into a frame with [`super::arp::build_request`].
//!
//! **States** (Linux's NUD machine, without its randomisation of the reachable time):
//!
//! | state | usable | leaves when |
//! |---|---|---|
//! | INCOMPLETE | no, frames queue | an answer (-> REACHABLE or STALE), or `max_probes` requests unanswered (-> FAILED) |
//! | REACHABLE | yes | `reachable_time` after the last confirmation (-> STALE) |
//! | STALE | yes | used (-> DELAY), or unused for `gc_stale_time` (removed) |
//! | DELAY | yes | a confirmation (-> REACHABLE), or `delay_first_probe` later (-> PROBE) |
//! | PROBE | yes | a confirmation (-> REACHABLE), or `max_probes` unicast requests unanswered (-> FAILED) |
//! | FAILED | no, frames refused | `failed_time` later (removed; the next use starts over) |
//!
//! DELAY and PROBE are why a STALE entry in use is re-checked: without them an entry
//! whose host changed its MAC silently would be used forever. A confirmation is an ARP
//! reply addressed to us; a request or a gratuitous ARP only proves that the host
//! exists, so it leaves (or puts) the entry in STALE.
//!
//! **Learning** ([`LearnKind`], like Linux with `arp_accept=0`): a request to one of
//! our addresses creates or updates its sender's entry; a reply or a gratuitous ARP
//! only updates an existing entry (an INCOMPLETE one included — that is how a
//! resolution completes), so unsolicited ARP cannot fill the table. A reply that would
//! change a MAC set less than `locktime` ago is ignored (the first of several answers
//! wins, as Linux's `locktime`); a gratuitous ARP always overrides.
//!
//! **Queue.** While an address is INCOMPLETE, [`NeighCache::lookup`] keeps owned copies
//! of the frames sent to it (with their virtio_net_hdr: they may be TSO super-frames):
//! at most `queue_per_address` per address, `queue_total_frames` and
//! `queue_total_bytes` over the cache. A frame over a limit is dropped (tail drop: the
//! first frames of a flow, a TCP SYN for one, are the ones worth keeping) and counted.
//! An answer hands them back in arrival order; a failed resolution hands them back
//! too, so that the caller can answer each with an ICMP host unreachable as Linux does.
//!
//! **Size.** At most `max_entries` addresses (Linux's `gc_thresh3`). At the limit a new
//! address evicts a FAILED entry, else the least recently used STALE one; if every
//! entry is in use the new address is refused (counted as `table_full`). The eviction
//! scan is linear, and only on that rare miss path.
//!
//! **Time and threads.** Every method takes `now` (time since any fixed origin); no
//! clock is read and nothing expires unless [`NeighCache::tick`] is called (call it at
//! least every 100 ms, it is cheap when nothing is due; lookups also age what they
//! touch). `&mut self` throughout: one cache lives in one worker, unshared. Lookups of
//! a known address do not allocate; a miss copies the frame.

use std::collections::HashMap;
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
    /// Frames queued per INCOMPLETE address (Linux's historical `unres_qlen`, 3).
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
            queue_per_address: 3,
            queue_total_frames: 256,
            queue_total_bytes: 1 << 20,
            max_entries: 1024,
        }
    }
}

/// What [`NeighCache::lookup`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Send to this MAC.
    Hit(MacAddr),
    /// Not resolved (yet). The frame given to the lookup was copied into the queue if
    /// `queued`, else dropped (queue limit, or the table is full) and counted. When
    /// `send_request`, the caller sends a broadcast ARP request for the address now
    /// (the first of the resolution; [`NeighCache::tick`] asks for the retries).
    Miss { send_request: bool, queued: bool },
    /// The address did not answer recently: drop the frame (and answer it with an
    /// ICMP host unreachable if it may be answered).
    Failed,
}

/// A frame to hand to [`NeighCache::lookup`] in case the address is not resolved.
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
    fn cost(&self) -> usize {
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

/// What [`NeighCache::tick`] asks of the caller.
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

#[derive(Debug)]
enum State {
    Incomplete {
        probes: u8,
        next: Duration,
        queue: Vec<QueuedFrame>,
    },
    Reachable {
        mac: MacAddr,
    },
    Stale {
        mac: MacAddr,
    },
    Delay {
        mac: MacAddr,
        until: Duration,
    },
    Probe {
        mac: MacAddr,
        probes: u8,
        next: Duration,
    },
    Failed {
        until: Duration,
    },
}

#[derive(Debug)]
struct Entry {
    state: State,
    /// Last time a lookup wanted it (or when it was created).
    used: Duration,
    /// Last time its binding was learned (any kind).
    updated: Duration,
    /// Last confirmation (a reply to us); drives REACHABLE.
    confirmed: Duration,
}

impl Entry {
    fn mac(&self) -> Option<MacAddr> {
        match self.state {
            State::Reachable { mac }
            | State::Stale { mac }
            | State::Delay { mac, .. }
            | State::Probe { mac, .. } => Some(mac),
            State::Incomplete { .. } | State::Failed { .. } => None,
        }
    }

    fn public_state(&self) -> NeighState {
        match self.state {
            State::Incomplete { .. } => NeighState::Incomplete,
            State::Reachable { .. } => NeighState::Reachable,
            State::Stale { .. } => NeighState::Stale,
            State::Delay { .. } => NeighState::Delay,
            State::Probe { .. } => NeighState::Probe,
            State::Failed { .. } => NeighState::Failed,
        }
    }

    /// REACHABLE past its time becomes STALE. The one transition that needs no
    /// caller action, so lookups apply it too and need not wait for a tick.
    fn age(&mut self, now: Duration, cfg: &NeighConfig) {
        if let State::Reachable { mac } = self.state
            && now >= self.confirmed.saturating_add(cfg.reachable_time)
        {
            self.state = State::Stale { mac };
        }
    }
}

/// The neighbour cache of one L3 interface. See the module doc.
#[derive(Debug)]
pub struct NeighCache {
    cfg: NeighConfig,
    entries: HashMap<Ipv4Addr, Entry>,
    queued_frames: usize,
    queued_bytes: usize,
    counters: NeighCounters,
}

impl NeighCache {
    pub fn new(cfg: NeighConfig) -> NeighCache {
        NeighCache {
            cfg,
            entries: HashMap::new(),
            queued_frames: 0,
            queued_bytes: 0,
            counters: NeighCounters::default(),
        }
    }

    pub fn config(&self) -> &NeighConfig {
        &self.cfg
    }

    pub fn counters(&self) -> NeighCounters {
        self.counters
    }

    /// Addresses in the cache, whatever their state.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The MAC to send to `ip`, or why not. A miss starts a resolution (and asks for
    /// the first request) unless one is running; `waiting`, if given, is copied into
    /// the queue while the address is INCOMPLETE. Using a STALE entry starts its
    /// re-check (DELAY); the entry is still a hit.
    pub fn lookup(&mut self, now: Duration, ip: Ipv4Addr, waiting: Option<Waiting<'_>>) -> Lookup {
        let cfg = self.cfg;
        if let Some(e) = self.entries.get_mut(&ip) {
            e.age(now, &cfg);
            e.used = e.used.max(now);
            match &mut e.state {
                State::Reachable { mac } | State::Delay { mac, .. } | State::Probe { mac, .. } => {
                    self.counters.hits += 1;
                    return Lookup::Hit(*mac);
                }
                State::Stale { mac } => {
                    let mac = *mac;
                    e.state = State::Delay {
                        mac,
                        until: now.saturating_add(cfg.delay_first_probe),
                    };
                    self.counters.hits += 1;
                    return Lookup::Hit(mac);
                }
                State::Failed { until } if now < *until => {
                    self.counters.failed_lookups += 1;
                    return Lookup::Failed;
                }
                State::Failed { .. } => {
                    // Failed long enough: start over as a new resolution.
                    e.state = State::Incomplete {
                        probes: 1,
                        next: now.saturating_add(cfg.retrans_time),
                        queue: Vec::new(),
                    };
                    self.counters.requests_sent += 1;
                    self.counters.misses += 1;
                    let queued = waiting.is_some_and(|w| self.enqueue(now, ip, w));
                    return Lookup::Miss {
                        send_request: true,
                        queued,
                    };
                }
                State::Incomplete { .. } => {
                    self.counters.misses += 1;
                    let queued = waiting.is_some_and(|w| self.enqueue(now, ip, w));
                    return Lookup::Miss {
                        send_request: false,
                        queued,
                    };
                }
            }
        }

        self.counters.misses += 1;
        if self.entries.len() >= cfg.max_entries && !self.evict_one() {
            self.counters.table_full += 1;
            if waiting.is_some() {
                self.counters.queue_drops += 1;
            }
            return Lookup::Miss {
                send_request: false,
                queued: false,
            };
        }
        self.entries.insert(
            ip,
            Entry {
                state: State::Incomplete {
                    probes: 1,
                    next: now.saturating_add(cfg.retrans_time),
                    queue: Vec::new(),
                },
                used: now,
                updated: now,
                confirmed: Duration::ZERO,
            },
        );
        self.counters.requests_sent += 1;
        let queued = waiting.is_some_and(|w| self.enqueue(now, ip, w));
        Lookup::Miss {
            send_request: true,
            queued,
        }
    }

    /// Copies `w` into the queue of INCOMPLETE `ip` if every limit allows it.
    fn enqueue(&mut self, now: Duration, ip: Ipv4Addr, w: Waiting<'_>) -> bool {
        let cost = w.frame.len() + VNET_HDR_LEN;
        let fits_globally = self.queued_frames < self.cfg.queue_total_frames
            && self.queued_bytes.saturating_add(cost) <= self.cfg.queue_total_bytes;
        let queue = match self.entries.get_mut(&ip).map(|e| &mut e.state) {
            Some(State::Incomplete { queue, .. }) => queue,
            _ => return false,
        };
        if !fits_globally || queue.len() >= self.cfg.queue_per_address {
            self.counters.queue_drops += 1;
            return false;
        }
        queue.push(QueuedFrame {
            vnet: w.vnet,
            frame: w.frame.to_vec(),
            queued_at: now,
        });
        self.queued_frames += 1;
        self.queued_bytes += cost;
        self.counters.queued += 1;
        true
    }

    /// Takes the queue of an entry out of the global accounting.
    fn unaccount(&mut self, queue: &[QueuedFrame]) {
        self.queued_frames -= queue.len();
        self.queued_bytes -= queue.iter().map(QueuedFrame::cost).sum::<usize>();
    }

    /// Makes room for one entry: a FAILED one, else the least recently used STALE one.
    fn evict_one(&mut self) -> bool {
        let victim = self
            .entries
            .iter()
            .filter_map(|(ip, e)| match e.state {
                State::Failed { .. } => Some((0, Duration::ZERO, *ip)),
                State::Stale { .. } => Some((1, e.used, *ip)),
                _ => None,
            })
            .min();
        match victim {
            Some((_, _, ip)) => {
                self.entries.remove(&ip);
                true
            }
            None => false,
        }
    }

    /// Records that `ip` is at `mac`, heard as `kind` (see the module doc for what each
    /// kind may create or change). Returns the frames that were waiting for `ip`, in
    /// arrival order, for the caller to send to `mac` now; empty (no allocation) when
    /// none were.
    pub fn learn(
        &mut self,
        now: Duration,
        ip: Ipv4Addr,
        mac: MacAddr,
        kind: LearnKind,
    ) -> Vec<QueuedFrame> {
        if mac.is_multicast() || mac.is_zero() || !super::wire::is_unicast(ip) {
            return Vec::new();
        }
        let cfg = self.cfg;
        if !self.entries.contains_key(&ip) {
            if kind != LearnKind::Request {
                return Vec::new();
            }
            if self.entries.len() >= cfg.max_entries && !self.evict_one() {
                self.counters.table_full += 1;
                return Vec::new();
            }
            let entry = Entry {
                state: State::Stale { mac },
                used: now,
                updated: now,
                confirmed: Duration::ZERO,
            };
            self.entries.insert(ip, entry);
            return Vec::new();
        }
        let Some(e) = self.entries.get_mut(&ip) else {
            return Vec::new();
        };
        e.age(now, &cfg);
        let old = e.mac();
        let changes = old.is_some_and(|m| m != mac);
        if changes && kind == LearnKind::Reply && now < e.updated.saturating_add(cfg.locktime) {
            return Vec::new();
        }
        let connected = matches!(e.state, State::Reachable { .. });
        let new_state = match kind {
            LearnKind::Reply => {
                e.confirmed = now;
                State::Reachable { mac }
            }
            // Hearing the same MAC again does not undo a confirmation.
            LearnKind::Request | LearnKind::Gratuitous if connected && !changes => {
                State::Reachable { mac }
            }
            // A request from a host being re-checked with the same MAC: keep checking.
            LearnKind::Request | LearnKind::Gratuitous
                if !changes && matches!(e.state, State::Delay { .. } | State::Probe { .. }) =>
            {
                return Vec::new();
            }
            LearnKind::Request | LearnKind::Gratuitous => State::Stale { mac },
        };
        e.updated = now;
        let released = match std::mem::replace(&mut e.state, new_state) {
            State::Incomplete { queue, .. } => queue,
            _ => Vec::new(),
        };
        if !released.is_empty() {
            self.unaccount(&released);
            self.counters.released += released.len() as u64;
        }
        released
    }

    /// Forgets `ip` (an administrative flush); its queued frames are dropped.
    pub fn remove(&mut self, ip: Ipv4Addr) {
        if let Some(e) = self.entries.remove(&ip)
            && let State::Incomplete { queue, .. } = e.state
        {
            self.unaccount(&queue);
        }
    }

    /// Forgets every entry; queued frames are dropped.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.queued_frames = 0;
        self.queued_bytes = 0;
    }

    /// Runs the timers: retries and re-check probes due, resolutions that failed, aging
    /// and garbage collection. Linear in the number of entries.
    pub fn tick(&mut self, now: Duration) -> Tick {
        let cfg = self.cfg;
        let mut out = Tick::default();
        let mut freed_frames = 0;
        let mut freed_bytes = 0;
        let mut failed = 0;
        self.entries.retain(|&ip, e| {
            e.age(now, &cfg);
            match &mut e.state {
                State::Incomplete {
                    probes,
                    next,
                    queue,
                } if now >= *next => {
                    if *probes < cfg.max_probes {
                        *probes += 1;
                        *next = now.saturating_add(cfg.retrans_time);
                        out.requests.push(ArpRequest {
                            target: ip,
                            dst: MacAddr::BROADCAST,
                        });
                    } else {
                        freed_frames += queue.len();
                        freed_bytes += queue.iter().map(QueuedFrame::cost).sum::<usize>();
                        out.unresolved.extend(queue.drain(..).map(|f| (ip, f)));
                        e.state = State::Failed {
                            until: now.saturating_add(cfg.failed_time),
                        };
                        failed += 1;
                    }
                    true
                }
                State::Delay { mac, until } if now >= *until => {
                    let mac = *mac;
                    e.state = State::Probe {
                        mac,
                        probes: 1,
                        next: now.saturating_add(cfg.retrans_time),
                    };
                    out.requests.push(ArpRequest {
                        target: ip,
                        dst: mac,
                    });
                    true
                }
                State::Probe { mac, probes, next } if now >= *next => {
                    if *probes < cfg.max_probes {
                        *probes += 1;
                        *next = now.saturating_add(cfg.retrans_time);
                        out.requests.push(ArpRequest {
                            target: ip,
                            dst: *mac,
                        });
                    } else {
                        e.state = State::Failed {
                            until: now.saturating_add(cfg.failed_time),
                        };
                        failed += 1;
                    }
                    true
                }
                State::Stale { .. } => {
                    let last = e.used.max(e.updated);
                    now < last.saturating_add(cfg.gc_stale_time)
                }
                State::Failed { until } => now < *until,
                _ => true,
            }
        });
        self.queued_frames -= freed_frames;
        self.queued_bytes -= freed_bytes;
        self.counters.requests_sent += out.requests.len() as u64;
        self.counters.unresolved += out.unresolved.len() as u64;
        self.counters.failed += failed;
        out
    }

    /// Every entry with its state as of `now`, sorted by address.
    pub fn entries(&self, now: Duration) -> Vec<NeighEntry> {
        let mut v: Vec<NeighEntry> = self
            .entries
            .iter()
            .map(|(&ip, e)| {
                let mut state = e.public_state();
                if state == NeighState::Reachable
                    && now >= e.confirmed.saturating_add(self.cfg.reachable_time)
                {
                    state = NeighState::Stale;
                }
                let queued = match &e.state {
                    State::Incomplete { queue, .. } => queue.len(),
                    _ => 0,
                };
                let mac = e.mac();
                NeighEntry {
                    ip,
                    mac,
                    state,
                    queued,
                    idle: now.saturating_sub(e.used),
                    learned_ago: mac.map(|_| now.saturating_sub(e.updated)),
                }
            })
            .collect();
        v.sort_by_key(|e| e.ip);
        v
    }

    /// Frames and bytes queued over the whole cache.
    pub fn queued(&self) -> (usize, usize) {
        (self.queued_frames, self.queued_bytes)
    }
}
