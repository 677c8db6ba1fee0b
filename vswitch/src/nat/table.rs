//! The engine: the connection table and the per-packet entry points
//! ([`Nat::outbound`], [`Nat::inbound`]), flow creation, expiry and reporting.
//!
//! Locking (see also the module doc of [`super`]): the table is a `papaya` map, read
//! without locks; a packet of an existing flow pins the map, finds its slot and
//! refreshes it with atomics. Creating or removing a connection takes one mutex, the
//! creation lock, which owns the port pools; under it the table size, the pools and
//! the map's pairs of keys change together, so a port is never handed out while a key
//! using it is still in the map, and two workers racing to create the same flow end
//! up with one entry (the second finds the first's under the lock).

use std::fmt;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use vtep::ChecksumState;

use super::config::{NatConfig, NatConfigError, Timeouts};
use super::conn::{Conn, Egress, NatKind, Slot, nanos};
use super::drop::NatDrop;
use super::fragments::{FragKey, FragRecord, Fragments};
use super::icmp_error;
use super::info::{ConnInfo, NatCounters, PortUsage};
use super::packet::{self, Kind, Parsed};
use super::ports::{Lane, PortPool};
use super::published::PublishedPorts;
use super::state::{self, ConnState, Dir};
use super::tuple::{Key, Proto, Side, Tuple};

type Map = papaya::HashMap<Key, Slot>;
type MapRef<'m> = papaya::HashMapRef<'m, Key, Slot, std::hash::RandomState, papaya::LocalGuard<'m>>;

/// What happened to a translated packet and where it goes now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translated {
    /// The kind of connection it belongs to.
    pub kind: NatKind,
    /// Out of the uplink, or to a local network.
    pub egress: Egress,
    /// The packet's destination address after translation: route by it.
    pub dst: Ipv4Addr,
    /// Whether this packet created the connection.
    pub created: bool,
}

/// The NAT engine. Shared by all workers (`Send + Sync`, every method takes `&self`).
pub struct Nat {
    pub(super) external: Ipv4Addr,
    /// The port range the pools were built for: fixed for the engine's life.
    port_range: std::ops::RangeInclusive<u16>,
    // The next three may change at run time ([`Nat::set_tunables`]).
    max_entries: AtomicUsize,
    tcp_loose: AtomicBool,
    timeouts: ArcSwap<Timeouts>,
    pub(super) map: Map,
    /// The creation lock: port pools, indexed by [`Proto::index`].
    pools: Mutex<[PortPool; 3]>,
    live: AtomicUsize,
    pub(super) published: ArcSwap<PublishedPorts>,
    frags: Fragments,
    created: AtomicU64,
    removed: AtomicU64,
    refused: [AtomicU64; 3],
}

const REFUSED_FULL: usize = 0;
const REFUSED_PORTS: usize = 1;
const REFUSED_TUPLE: usize = 2;

impl fmt::Debug for Nat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nat")
            .field("external", &self.external)
            .field("entries", &self.live.load(Relaxed))
            .field("max_entries", &self.max_entries.load(Relaxed))
            .finish_non_exhaustive()
    }
}

/// How a new connection is to be built from its first packet.
pub(super) struct NewFlow {
    pub kind: NatKind,
    pub state: ConnState,
    /// The translated destination (SNAT: unchanged).
    pub dst: (Ipv4Addr, u16),
    /// Whether the source becomes the external address and a pool port.
    pub masquerade: bool,
}

impl Nat {
    /// An engine with an empty table and no published ports.
    pub fn new(cfg: NatConfig) -> Result<Nat, NatConfigError> {
        cfg.validate()?;
        let pool = || PortPool::new(&cfg.port_range);
        Ok(Nat {
            external: cfg.external,
            port_range: cfg.port_range.clone(),
            max_entries: AtomicUsize::new(cfg.max_entries),
            tcp_loose: AtomicBool::new(cfg.tcp_loose),
            timeouts: ArcSwap::from_pointee(cfg.timeouts),
            map: papaya::HashMap::builder()
                .capacity(cfg.max_entries.min(4096) * 2)
                .build(),
            pools: Mutex::new([pool(), pool(), pool()]),
            live: AtomicUsize::new(0),
            published: ArcSwap::from_pointee(PublishedPorts::new()),
            frags: Fragments::default(),
            created: AtomicU64::new(0),
            removed: AtomicU64::new(0),
            refused: Default::default(),
        })
    }

    /// The external address.
    pub fn external(&self) -> Ipv4Addr {
        self.external
    }

    /// The external ports (and ICMP identifiers) masqueraded flows use.
    pub fn port_range(&self) -> &std::ops::RangeInclusive<u16> {
        &self.port_range
    }

    /// The configuration in force (with the current table limit, `tcp_loose` and
    /// timeouts).
    pub fn config(&self) -> NatConfig {
        NatConfig {
            external: self.external,
            port_range: self.port_range.clone(),
            max_entries: self.max_entries.load(Relaxed),
            tcp_loose: self.tcp_loose.load(Relaxed),
            timeouts: **self.timeouts.load(),
        }
    }

    /// Changes what can change at run time: the table limit, `tcp_loose` and the
    /// timeouts, taken from `cfg` (validated first; nothing changes if it is refused).
    /// The external address and the port range are the engine's for life: the pools
    /// hold ports of that range. Tracked connections stay; a lower limit refuses new
    /// flows until enough have expired, and new timeouts apply from the next
    /// [`Nat::expire`].
    pub fn set_tunables(&self, cfg: &NatConfig) -> Result<(), NatConfigError> {
        NatConfig {
            external: self.external,
            port_range: self.port_range.clone(),
            ..cfg.clone()
        }
        .validate()?;
        self.max_entries.store(cfg.max_entries, Relaxed);
        self.tcp_loose.store(cfg.tcp_loose, Relaxed);
        self.timeouts.store(Arc::new(cfg.timeouts));
        Ok(())
    }

    /// Replaces the published ports. Connections already tracked keep their
    /// translation until they expire (as with Docker's iptables rules); use
    /// [`Nat::remove_endpoint`] to cut those of a container that left.
    pub fn set_published(&self, ports: PublishedPorts) {
        self.published.store(Arc::new(ports));
    }

    /// The published ports in force.
    pub fn published(&self) -> Arc<PublishedPorts> {
        self.published.load_full()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, [PortPool; 3]> {
        // A panic elsewhere cannot leave the pools half-updated in a way that matters
        // more than stopping NAT altogether would.
        self.pools.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A packet from a local network (not an `internal` one) to an address outside
    /// all local networks, including the switch's own addresses (hairpin). Rewritten
    /// in place: masqueraded (new flows are created), a reply of a published-port or
    /// hairpin flow, or an ICMP error about a tracked flow.
    pub fn outbound(
        &self,
        now: Duration,
        pkt: &mut [u8],
        csum: ChecksumState,
    ) -> Result<Translated, NatDrop> {
        self.translate(now, pkt, csum, Side::Inside, Lane::ANY)
    }

    /// [`outbound`](Self::outbound) from the worker of `lane`: a masqueraded flow it
    /// creates gets an external port of that lane where one is free.
    pub fn outbound_on(
        &self,
        lane: Lane,
        now: Duration,
        pkt: &mut [u8],
        csum: ChecksumState,
    ) -> Result<Translated, NatDrop> {
        self.translate(now, pkt, csum, Side::Inside, lane)
    }

    /// A packet from the uplink addressed to the switch (the external address, or a
    /// host address of a published port). Rewritten in place: a reply of a
    /// masqueraded flow, a packet to a published port (new flows are created), or an
    /// ICMP error about a tracked flow.
    pub fn inbound(
        &self,
        now: Duration,
        pkt: &mut [u8],
        csum: ChecksumState,
    ) -> Result<Translated, NatDrop> {
        self.translate(now, pkt, csum, Side::Outside, Lane::ANY)
    }

    fn translate(
        &self,
        now: Duration,
        pkt: &mut [u8],
        csum: ChecksumState,
        side: Side,
        lane: Lane,
    ) -> Result<Translated, NatDrop> {
        let p = match packet::parse(pkt) {
            Err(NatDrop::Fragment) => return self.frags.translate(pkt, side),
            p => p?,
        };
        let Kind::Flow { flags } = p.kind else {
            return self.icmp_error(now, pkt, &p, side, csum);
        };
        let map = self.map.pin();
        let key = Key {
            proto: p.proto,
            side,
            tuple: p.tuple,
        };
        let (slot, created) = match map.get(&key) {
            Some(slot) => (slot, false),
            None => self.create(&map, now, key, flags, lane)?,
        };
        slot.conn.touch(now, slot.dir, flags);
        let new = slot.conn.translate(slot.dir);
        packet::rewrite(pkt, p.ihl, p.proto, p.tuple, new, csum);
        let t = Translated {
            kind: slot.conn.kind,
            egress: slot.conn.egress(slot.dir),
            dst: new.dst,
            created,
        };
        self.remember_fragments(now, &p, side, new.src, &t);
        Ok(t)
    }

    /// If `p` was the first fragment of a datagram, records what its later fragments
    /// become.
    fn remember_fragments(
        &self,
        now: Duration,
        p: &Parsed,
        side: Side,
        new_src: Ipv4Addr,
        t: &Translated,
    ) {
        if let Some(id) = p.first_fragment {
            let key = FragKey {
                side,
                protocol: p.proto.number(),
                src: p.tuple.src,
                dst: p.tuple.dst,
                id,
            };
            let rec = FragRecord {
                src: new_src,
                dst: t.dst,
                kind: t.kind,
                egress: t.egress,
                created_ns: nanos(now),
            };
            self.frags.record(key, rec);
        }
    }

    /// Whether the first packet of an unknown flow may start one, and how: the rule
    /// (masquerade, hairpin to a published port, a published port from outside), the
    /// initial state and the translated destination. Changes nothing.
    pub(super) fn plan(
        &self,
        key: &Key,
        flags: u8,
        published: &PublishedPorts,
    ) -> Result<NewFlow, NatDrop> {
        let t = key.tuple;
        Ok(match key.side {
            Side::Inside if published.is_host_address(t.dst, self.external) => {
                let pp = published
                    .lookup_hairpin(key.proto, t.dst, t.dport, self.external)
                    .ok_or(NatDrop::NotPublished)?;
                NewFlow {
                    kind: NatKind::Hairpin,
                    state: state::initial(key.proto, flags, self.tcp_loose.load(Relaxed))
                        .ok_or(NatDrop::NoFlow)?,
                    dst: (*pp.target.ip(), pp.target.port()),
                    masquerade: true,
                }
            }
            Side::Inside => NewFlow {
                kind: NatKind::Snat,
                state: state::initial(key.proto, flags, self.tcp_loose.load(Relaxed))
                    .ok_or(NatDrop::NoFlow)?,
                dst: (t.dst, t.dport),
                masquerade: true,
            },
            Side::Outside => {
                let Some(pp) = published.lookup_inbound(key.proto, t.dst, t.dport) else {
                    let ours = published.is_host_address(t.dst, self.external);
                    return Err(if ours {
                        NatDrop::NoFlow
                    } else {
                        NatDrop::NotForUs
                    });
                };
                NewFlow {
                    kind: NatKind::Dnat,
                    // Inbound TCP starts at a SYN only, whatever `tcp_loose` says.
                    state: state::initial(key.proto, flags, false).ok_or(NatDrop::NoFlow)?,
                    dst: (*pp.target.ip(), pp.target.port()),
                    masquerade: false,
                }
            }
        })
    }

    /// Whether the table holds as many connections as it may: a new one is refused.
    pub(super) fn is_full(&self) -> bool {
        self.live.load(Relaxed) >= self.max_entries.load(Relaxed)
    }

    /// Decides whether the first packet of an unknown flow may start one, and how;
    /// returns its slot and whether this call created it (another worker may have).
    fn create<'r>(
        &self,
        map: &'r MapRef<'_>,
        now: Duration,
        key: Key,
        flags: u8,
        lane: Lane,
    ) -> Result<(&'r Slot, bool), NatDrop> {
        let t = key.tuple;
        let published = self.published.load();
        let flow = self.plan(&key, flags, &published)?;

        let mut pools = self.lock();
        if let Some(slot) = map.get(&key) {
            return Ok((slot, false)); // another worker created it meanwhile
        }
        if self.is_full() {
            self.refused[REFUSED_FULL].fetch_add(1, Relaxed);
            return Err(NatDrop::TableFull);
        }
        let pool = &mut pools[key.proto.index()];
        let (src, sport, port) = if flow.masquerade {
            // The identifier of an echo request is its sport; keep it if we can.
            let reserved = |p: u16| published.reserves(key.proto, p, self.external);
            let Some(p) = pool.take_for(t.sport, lane, reserved) else {
                self.refused[REFUSED_PORTS].fetch_add(1, Relaxed);
                return Err(NatDrop::PortsExhausted);
            };
            (self.external, p, Some(p))
        } else {
            (t.src, t.sport, None)
        };
        let xlat = Tuple {
            src,
            sport,
            dst: flow.dst.0,
            dport: flow.dst.1,
        };
        let conn = Conn::new(key.proto, flow.kind, t, xlat, port, flow.state, now);
        let [orig_key, reply_key] = conn.keys();
        if map.contains_key(&reply_key) {
            if let Some(p) = port {
                pool.release(p);
            }
            self.refused[REFUSED_TUPLE].fetch_add(1, Relaxed);
            return Err(NatDrop::TupleInUse);
        }
        let conn = Arc::new(conn);
        map.insert(
            reply_key,
            Slot {
                conn: Arc::clone(&conn),
                dir: Dir::Reply,
            },
        );
        let old = map.insert(
            orig_key,
            Slot {
                conn,
                dir: Dir::Orig,
            },
        );
        debug_assert!(old.is_none(), "the orig key was checked under the lock");
        self.live.fetch_add(1, Relaxed);
        self.created.fetch_add(1, Relaxed);
        // Removals take the lock we hold: the entry is there.
        let slot = map.get(&orig_key).ok_or(NatDrop::TupleInUse)?;
        drop(pools);
        Ok((slot, true))
    }

    /// An ICMP error: find the flow the quoted packet belongs to and translate both
    /// the quote and the outer header. Never creates or refreshes an entry.
    fn icmp_error(
        &self,
        now: Duration,
        pkt: &mut [u8],
        p: &Parsed,
        side: Side,
        csum: ChecksumState,
    ) -> Result<Translated, NatDrop> {
        let q = icmp_error::quoted(pkt, p.ihl)?;
        let map = self.map.pin();
        // The quote is a packet that went the other way; its reverse is what a packet
        // of the same flow arriving from this side looks like.
        let key = Key {
            proto: q.proto,
            side,
            tuple: q.tuple.reversed(),
        };
        let slot = map.get(&key).ok_or(NatDrop::NotTracked)?;
        let t = slot.conn.translate(slot.dir);
        let egress = slot.conn.egress(slot.dir);
        // The quote becomes the packet as its sender sent it: t reversed. The error
        // goes to that sender. Its source: if the quoted packet's destination sent
        // the error, that host's address as the sender knows it; a router inside
        // whose error leaves through the uplink hides behind the external address;
        // any other router keeps its own.
        let outer_src = if p.tuple.src == q.tuple.dst {
            t.src
        } else if side == Side::Inside && egress == Egress::Uplink {
            self.external
        } else {
            p.tuple.src
        };
        icmp_error::translate(pkt, p.ihl, &q, t.reversed(), outer_src, t.dst, csum);
        let done = Translated {
            kind: slot.conn.kind,
            egress,
            dst: t.dst,
            created: false,
        };
        self.remember_fragments(now, p, side, outer_src, &done);
        Ok(done)
    }

    /// Removes the connections idle longer than their state's timeout at `now`, and
    /// frees their ports; also forgets fragmented datagrams older than the fragment
    /// timeout. Returns how many connections were removed. Call it periodically (once
    /// a second is plenty) from one thread; it allocates a list of the expired entries.
    pub fn expire(&self, now: Duration) -> usize {
        let timeouts = **self.timeouts.load();
        self.frags.expire(now, timeouts.fragment);
        self.remove_where(|c| c.expired(now, &timeouts))
    }

    /// Removes every connection of a local endpoint at `ip` (it left its network),
    /// freeing their ports. Returns how many were removed.
    pub fn remove_endpoint(&self, ip: Ipv4Addr) -> usize {
        self.remove_where(|c| c.involves_local(ip))
    }

    fn remove_where(&self, doomed: impl Fn(&Conn) -> bool) -> usize {
        let map = self.map.pin();
        let victims: Vec<Arc<Conn>> = map
            .iter()
            .filter(|(_, s)| s.dir == Dir::Orig && doomed(&s.conn))
            .map(|(_, s)| Arc::clone(&s.conn))
            .collect();
        let mut removed = 0;
        for conn in victims {
            let mut pools = self.lock();
            // Re-checked under the lock: a packet may have refreshed it since.
            if conn.removed.load(Relaxed) || !doomed(&conn) {
                continue;
            }
            conn.removed.store(true, Relaxed);
            for key in conn.keys() {
                let _ = map.remove_if(&key, |_, s| Arc::ptr_eq(&s.conn, &conn));
            }
            if let Some(p) = conn.port {
                pools[conn.proto.index()].release(p);
            }
            self.live.fetch_sub(1, Relaxed);
            removed += 1;
        }
        self.removed.fetch_add(removed as u64, Relaxed);
        removed
    }

    /// The tracked connections at `now`, oldest first.
    pub fn entries(&self, now: Duration) -> Vec<ConnInfo> {
        let map = self.map.pin();
        let timeouts = **self.timeouts.load();
        let now_ns = nanos(now);
        let mut out: Vec<(u64, ConnInfo)> = map
            .iter()
            .filter(|(_, s)| s.dir == Dir::Orig)
            .map(|(_, s)| {
                let c = &s.conn;
                let info = ConnInfo {
                    proto: c.proto,
                    kind: c.kind,
                    original: c.orig.flow(),
                    translated: c.xlat.flow(),
                    state: c.state(),
                    age: Duration::from_nanos(now_ns.saturating_sub(c.created_ns)),
                    idle: Duration::from_nanos(now_ns.saturating_sub(c.last_seen_ns())),
                    expires_in: c.remaining(now, &timeouts),
                };
                (c.created_ns, info)
            })
            .collect();
        out.sort_by_key(|(created, info)| (*created, info.original));
        out.into_iter().map(|(_, i)| i).collect()
    }

    /// The table counters.
    pub fn counters(&self) -> NatCounters {
        let pools = self.lock();
        let usage = |p: Proto| PortUsage {
            proto: p,
            used: pools[p.index()].used(),
            capacity: pools[p.index()].capacity(),
        };
        NatCounters {
            entries: self.live.load(Relaxed),
            limit: self.max_entries.load(Relaxed),
            created: self.created.load(Relaxed),
            removed: self.removed.load(Relaxed),
            refused_table_full: self.refused[REFUSED_FULL].load(Relaxed),
            refused_ports_exhausted: self.refused[REFUSED_PORTS].load(Relaxed),
            refused_tuple_in_use: self.refused[REFUSED_TUPLE].load(Relaxed),
            ports: Proto::ALL.map(usage),
            fragmented_datagrams: self.frags.len(),
        }
    }
}
