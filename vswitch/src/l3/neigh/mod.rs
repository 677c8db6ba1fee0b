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
//! | PERMANENT | yes | [`NeighCache::remove`]: set by the control plane, never aged, evicted or changed by ARP |
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
//! scan is linear, and only on that rare miss path. PERMANENT entries are never
//! evicted, and always accepted.
//!
//! **Time and threads.** Every method takes `now` (time since any fixed origin); no
//! clock is read and nothing expires unless [`NeighCache::tick`] is called (call it at
//! least every 100 ms, it is cheap when nothing is due; lookups also age what they
//! touch). `&mut self` throughout: one cache lives in one worker, unshared. Lookups of
//! a known address do not allocate; a miss copies the frame.

mod entry;
mod types;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use fdb::MacAddr;

use crate::packet::VNET_HDR_LEN;
use entry::{Entry, State};

pub use types::{
    ArpRequest, LearnKind, Lookup, NeighConfig, NeighCounters, NeighEntry, NeighState, QueuedFrame,
    Tick, Waiting,
};

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
                State::Reachable { mac }
                | State::Delay { mac, .. }
                | State::Probe { mac, .. }
                | State::Permanent { mac } => {
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

    /// What `lookup` would answer now, changing nothing (no resolution started, no
    /// entry touched, no counter): for `vswitch trace`.
    pub fn peek(&self, now: Duration, ip: Ipv4Addr) -> Lookup {
        let Some(e) = self.entries.get(&ip) else {
            // A full table that cannot evict sends no request.
            let room = self.entries.len() < self.cfg.max_entries
                || self
                    .entries
                    .values()
                    .any(|e| matches!(e.state, State::Failed { .. } | State::Stale { .. }));
            return Lookup::Miss {
                send_request: room,
                queued: false,
            };
        };
        match &e.state {
            State::Reachable { mac }
            | State::Delay { mac, .. }
            | State::Probe { mac, .. }
            | State::Permanent { mac }
            | State::Stale { mac } => Lookup::Hit(*mac),
            State::Failed { until } if now < *until => Lookup::Failed,
            State::Failed { .. } => Lookup::Miss {
                send_request: true,
                queued: false,
            },
            State::Incomplete { .. } => Lookup::Miss {
                send_request: false,
                queued: false,
            },
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
        if matches!(e.state, State::Permanent { .. }) {
            return Vec::new();
        }
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

    /// Sets `ip` to `mac` for good (the control plane knows the binding, for example
    /// an endpoint whose address it assigned): no ARP needed, and no ARP can change
    /// it; only [`NeighCache::remove`] or another call does. Always accepted, even
    /// over `max_entries` when nothing can be evicted. Returns the frames that were
    /// waiting for `ip`, as [`NeighCache::learn`] does.
    pub fn insert_permanent(
        &mut self,
        now: Duration,
        ip: Ipv4Addr,
        mac: MacAddr,
    ) -> Vec<QueuedFrame> {
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.cfg.max_entries {
            self.evict_one();
        }
        let entry = Entry {
            state: State::Permanent { mac },
            used: now,
            updated: now,
            confirmed: now,
        };
        let released = match self.entries.insert(ip, entry).map(|e| e.state) {
            Some(State::Incomplete { queue, .. }) => queue,
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
