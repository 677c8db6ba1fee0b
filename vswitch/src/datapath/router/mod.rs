//! The router stage of the packet path: what happens to a frame addressed to the router
//! (each network's gateway, the router MAC) or arriving on the uplink. It answers ARP for
//! the gateways and the uplink's addresses and ICMP echo to them, routes between networks
//! that `--route-to` joins, masquerades traffic for the outside through the NAT and
//! resolves the next hop on the uplink by its own ARP, and brings replies and published
//! ports back in. The host's kernel is never in the path.
//!
//! It decides and rewrites; the worker does the I/O: every result is an [`Out`] naming a
//! pool buffer and where it goes. Neighbour caches (one per network, one for the uplink)
//! are the worker's own: single-threaded, no locks; what one worker hears by ARP it tells
//! the others ([`NeighShare`]), since the answer may reach another worker than the one
//! that asked. The NAT is shared, lock-free for existing flows. The sequence of checks
//! follows `l3`'s module doc.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use fdb::{MacAddr, NetworkId, PortId};

use super::counters::{Counter, Mine, PerWorker};
use super::neigh_share::{Heard, HeardAt, NeighShare};
use super::observe::{Live, Observer, Step};
use super::offload::VnetHdr;
use super::pipeline::{Batch, ETH_HLEN};
use super::pool::Pool;
use super::topology::{Topology, UplinkParams};
use crate::l3::{self, NeighCache, NeighConfig};
use crate::nat::{Lane, Nat, NatDrop};
use wire::{ArpAt, arp_at, build, build_from, ethertype, ipv4_dst, release};

mod fit;
mod inside;
#[cfg(test)]
mod tests;
mod wire;

const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];
/// How often neighbour caches retry and age.
pub const TICK_EVERY: Duration = Duration::from_millis(100);

/// Where the router sends a pool buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    /// Back out of a local port (answers to ARP and ICMP echo, ICMP errors).
    Port(PortId, u32),
    /// Into a network, addressed to a MAC there (or broadcast): to be switched.
    Network(NetworkId, u32),
    /// Out of the uplink.
    Uplink(u32),
}

/// Why the router dropped a frame. Counted per reason; NAT reasons separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouterDrop {
    /// To another network that `--route-to` does not join to this one.
    Denied,
    /// Nowhere to go: no uplink, an internal network, a non-unicast destination.
    NoRoute,
    /// To the gateway itself, and not an echo request.
    ToGateway,
    /// TTL ran out (an ICMP time exceeded was sent when allowed).
    TtlExpired,
    /// Not well-formed ARP or IPv4.
    Malformed,
    /// Neither ARP nor IPv4 (IPv6 is not routed yet).
    NotIpv4,
    /// The neighbour did not answer ARP.
    Unresolved,
    /// Too big for the uplink and not to be cut into fragments: with DF (answered with
    /// "fragmentation needed" where the sender can be reached), or not fragmentable.
    UplinkTooBig,
    /// Routed into a network whose MTU it exceeds and not fragmentable: with DF,
    /// answered with "fragmentation needed" where the sender can be reached.
    TooBigForNetwork,
    /// On the uplink, for an address or MAC that is not the switch's.
    NotForUs,
    /// The batch had no scratch buffer left for an answer.
    NoBuffer,
}

impl RouterDrop {
    pub const ALL: [RouterDrop; 11] = [
        RouterDrop::Denied,
        RouterDrop::NoRoute,
        RouterDrop::ToGateway,
        RouterDrop::TtlExpired,
        RouterDrop::Malformed,
        RouterDrop::NotIpv4,
        RouterDrop::Unresolved,
        RouterDrop::UplinkTooBig,
        RouterDrop::TooBigForNetwork,
        RouterDrop::NotForUs,
        RouterDrop::NoBuffer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RouterDrop::Denied => "route_denied",
            RouterDrop::NoRoute => "no_route",
            RouterDrop::ToGateway => "to_gateway_not_echo",
            RouterDrop::TtlExpired => "ttl_expired",
            RouterDrop::Malformed => "malformed",
            RouterDrop::NotIpv4 => "not_ipv4",
            RouterDrop::Unresolved => "arp_unresolved",
            RouterDrop::UplinkTooBig => "uplink_too_big",
            RouterDrop::TooBigForNetwork => "too_big_for_network",
            RouterDrop::NotForUs => "uplink_not_for_us",
            RouterDrop::NoBuffer => "no_buffer",
        }
    }
}

/// One worker's router counters (kept [`PerWorker`]: every worker routes).
#[derive(Debug, Default)]
pub struct RouterCounters {
    drops: [Counter; RouterDrop::ALL.len()],
    nat: [Counter; NatDrop::COUNT],
    pub arp_replies: Counter,
    pub echo_replies: Counter,
    pub routed: Counter,
    pub masqueraded: Counter,
    pub inbound: Counter,
}

impl RouterCounters {
    fn count(&self, r: RouterDrop) {
        self.drops[r as usize].add(1);
    }

    fn nat_drop(&self, r: NatDrop) {
        self.nat[r.index()].add(1);
    }
}

impl PerWorker<RouterCounters> {
    /// Every worker's counts added up, for `vswitch stats` and the metrics page.
    pub fn snapshot(&self) -> serde_json::Value {
        let named = |pairs: Vec<(&str, u64)>| -> serde_json::Map<String, serde_json::Value> {
            pairs
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| (k.to_string(), n.into()))
                .collect()
        };
        serde_json::json!({
            "arp_replies": self.sum(|c| c.arp_replies.get()),
            "echo_replies": self.sum(|c| c.echo_replies.get()),
            "routed": self.sum(|c| c.routed.get()),
            "masqueraded": self.sum(|c| c.masqueraded.get()),
            "inbound": self.sum(|c| c.inbound.get()),
            "drops": named(RouterDrop::ALL.iter().map(|r| (r.name(), self.sum(|c| c.drops[*r as usize].get()))).collect()),
            "nat_drops": named(NatDrop::ALL.iter().map(|r| (r.name(), self.sum(|c| c.nat[r.index()].get()))).collect()),
        })
    }
}

/// What stays the same while the router handles a batch.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub now: Duration,
    pub topo: &'a Topology,
}

impl<'a> Ctx<'a> {
    /// The time and topology of batch `b`.
    pub fn of(b: &Batch<'a>) -> Ctx<'a> {
        Ctx {
            now: b.now,
            topo: b.topo,
        }
    }
}

/// The environment of a routing call, besides the frame it routes: the time and
/// topology, the pool the frame and its answers live in, where results go (the worker
/// does the I/O), and who watches ([`Live`] on the packet path, a trace's recorder
/// otherwise).
#[derive(Debug)]
pub struct Env<'a, O> {
    pub cx: Ctx<'a>,
    pub pool: &'a mut Pool,
    pub out: &'a mut Vec<Out>,
    pub obs: &'a mut O,
}

/// The router of one worker.
#[derive(Debug)]
pub struct Router {
    nat: Option<Arc<Nat>>,
    caches: HashMap<NetworkId, NeighCache>,
    /// The permanent bindings installed per network, to take back when they go.
    installed: HashMap<NetworkId, HashSet<Ipv4Addr>>,
    uplink_cache: NeighCache,
    generation: Option<u64>,
    announced: bool,
    last_tick: Duration,
    counters: Mine<RouterCounters>,
    share: NeighShare,
    /// The NAT ports this worker gives the flows it masquerades.
    lane: Lane,
}

impl Router {
    pub fn new(nat: Option<Arc<Nat>>, counters: Mine<RouterCounters>, share: NeighShare) -> Router {
        Router {
            nat,
            caches: HashMap::new(),
            installed: HashMap::new(),
            uplink_cache: NeighCache::new(NeighConfig::default()),
            generation: None,
            announced: false,
            last_tick: Duration::ZERO,
            counters,
            share,
            lane: Lane::ANY,
        }
    }

    /// The router of the worker of `lane`: the flows it masquerades get external ports
    /// of that lane where it can (their replies then come back to it).
    pub fn with_lane(self, lane: Lane) -> Router {
        Router { lane, ..self }
    }

    /// Whether another worker heard an ARP binding this one has not applied yet.
    pub fn has_news(&self) -> bool {
        self.share.has_news()
    }

    /// Applies what the other workers heard by ARP, sending on frames that waited here.
    pub fn hear_others(&mut self, cx: Ctx<'_>, pool: &mut Pool, out: &mut Vec<Out>) {
        self.sync(cx);
        while let Some(h) = self.share.next() {
            let (cache, mac, send): (_, _, &dyn Fn(u32) -> Out) = match h.at {
                HeardAt::Uplink => match &cx.topo.uplink {
                    Some(up) => (&mut self.uplink_cache, up.mac, &Out::Uplink),
                    None => continue,
                },
                HeardAt::Network(n) => match self.caches.get_mut(&n) {
                    Some(c) => (c, cx.topo.router_mac, &move |s| Out::Network(n, s)),
                    None => continue,
                },
            };
            let released = cache.learn(cx.now, h.ip, h.mac, h.kind);
            release(pool, Some(&self.counters), released, mac, h.mac, send, out);
        }
    }

    /// Brings the caches in line with a new topology: one per network, with the
    /// bindings the control plane made set for good.
    fn sync(&mut self, cx: Ctx<'_>) {
        if self.generation == Some(cx.topo.generation) {
            return;
        }
        self.generation = Some(cx.topo.generation);
        self.caches.retain(|n, _| cx.topo.networks.contains_key(n));
        self.installed
            .retain(|n, _| cx.topo.networks.contains_key(n));
        for &n in cx.topo.networks.keys() {
            let cache = self
                .caches
                .entry(n)
                .or_insert_with(|| NeighCache::new(NeighConfig::default()));
            let now_hosts: HashSet<Ipv4Addr> = cx
                .topo
                .hosts
                .get(&n)
                .into_iter()
                .flatten()
                .map(|(ip, _)| *ip)
                .collect();
            let installed = self.installed.entry(n).or_default();
            for gone in installed.difference(&now_hosts) {
                cache.remove(*gone);
            }
            for (ip, mac) in cx.topo.hosts.get(&n).into_iter().flatten() {
                // Nothing can be waiting for an address the control plane knew all along.
                let _ = cache.insert_permanent(cx.now, *ip, *mac);
            }
            *installed = now_hosts;
        }
    }

    /// Retries ARP and ages caches; announces the uplink address once. Call often; it
    /// acts every `TICK_EVERY`.
    pub fn tick(&mut self, cx: Ctx<'_>, pool: &mut Pool, out: &mut Vec<Out>) {
        self.sync(cx);
        if let Some(up) = &cx.topo.uplink
            && !self.announced
        {
            self.announced = true;
            if let Some(s) = build(pool, Some(&self.counters), |o| {
                l3::build_gratuitous(up.mac, up.addresses[0], o)
            }) {
                out.push(Out::Uplink(s));
            }
        }
        if cx.now.saturating_sub(self.last_tick) < TICK_EVERY {
            return;
        }
        self.last_tick = cx.now;
        let mut nets: Vec<NetworkId> = self.caches.keys().copied().collect();
        nets.sort();
        for n in nets {
            let Some(info) = cx.topo.networks.get(&n) else {
                continue;
            };
            let Some(cache) = self.caches.get_mut(&n) else {
                continue;
            };
            let t = cache.tick(cx.now);
            for _ in &t.unresolved {
                self.counters.count(RouterDrop::Unresolved);
            }
            for r in t.requests {
                if let Some(s) = build(pool, Some(&self.counters), |o| {
                    l3::build_request(cx.topo.router_mac, info.gateway, r.target, r.dst, o)
                }) {
                    out.push(Out::Network(n, s));
                }
            }
        }
        if let Some(up) = &cx.topo.uplink {
            let t = self.uplink_cache.tick(cx.now);
            for _ in &t.unresolved {
                self.counters.count(RouterDrop::Unresolved);
            }
            for r in t.requests {
                if let Some(s) = build(pool, Some(&self.counters), |o| {
                    l3::build_request(up.mac, up.addresses[0], r.target, r.dst, o)
                }) {
                    out.push(Out::Uplink(s));
                }
            }
        }
    }

    /// A frame that arrived on the uplink.
    pub fn from_uplink(&mut self, cx: Ctx<'_>, pool: &mut Pool, i: u32, out: &mut Vec<Out>) {
        let mut env = Env {
            cx,
            pool,
            out,
            obs: &mut Live,
        };
        self.from_uplink_with(&mut env, i);
    }

    /// `from_uplink`, watched by `env.obs`. Traced, the NAT is only previewed (no connection
    /// is made or refreshed) and ARP is not looked at (the trace builds none).
    pub fn from_uplink_with<O: Observer>(&mut self, env: &mut Env<'_, O>, i: u32) {
        let cx = env.cx;
        self.sync(cx);
        let (Some(up), Some(nat)) = (cx.topo.uplink.as_ref(), self.nat.clone()) else {
            return;
        };
        let frame = env.pool.get(i).frame();
        let Some(dst_mac) = MacAddr::from_slice(frame) else {
            return self.dropped(env.obs, RouterDrop::Malformed);
        };
        if dst_mac != up.mac && !dst_mac.is_broadcast() {
            return self.dropped(env.obs, RouterDrop::NotForUs);
        }
        match ethertype(frame) {
            ETHERTYPE_ARP if O::DRY_RUN => return,
            ETHERTYPE_ARP => return self.arp_on_uplink(env, i, up),
            ETHERTYPE_IPV4 => {}
            _ => return self.dropped(env.obs, RouterDrop::NotIpv4),
        }
        let Some(dst) = ipv4_dst(env.pool.get(i).frame()) else {
            return self.dropped(env.obs, RouterDrop::Malformed);
        };
        if !up.owns(dst) {
            return self.dropped(env.obs, RouterDrop::NotForUs);
        }
        if l3::is_echo_request(env.pool.get(i).frame()) {
            if let Some(s) = build_from(env.pool, i, self.live::<O>(), l3::build_echo_reply) {
                env.obs.step(|| Step::EchoReply);
                self.tally::<O>(|c| c.echo_replies.add(1));
                env.out.push(Out::Uplink(s));
            }
            return;
        }
        let translated = if O::DRY_RUN {
            // Routing needs only the destination the NAT would give.
            nat.preview_inbound(&env.pool.get(i).frame()[ETH_HLEN..])
                .map(|p| {
                    env.obs.step(|| Step::Nat(p));
                    p.translated.dst.0
                })
        } else {
            let csum = VnetHdr::parse(&env.pool.get(i).vnet).checksum_state();
            nat.inbound(
                cx.now,
                &mut env.pool.get_mut(i).frame_mut()[ETH_HLEN..],
                csum,
            )
            .map(|t| t.dst)
        };
        let dst = match translated {
            Ok(dst) => dst,
            Err(e) => return self.nat_refused(env.obs, e),
        };
        if l3::decrement_ttl(env.pool.get_mut(i).frame_mut()).is_err() {
            return self.dropped(env.obs, RouterDrop::TtlExpired);
        }
        self.hairpin(env, i, dst, fit::Sender::Uplink);
    }

    fn arp_on_uplink<O: Observer>(&mut self, env: &mut Env<'_, O>, i: u32, up: &UplinkParams) {
        let at = ArpAt {
            mac: up.mac,
            owns: &|ip| up.owns(ip),
            reply: Some(&Out::Uplink),
            send: &Out::Uplink,
        };
        let heard = arp_at(env, i, Some(&self.counters), &mut self.uplink_cache, &at);
        if let Some((ip, mac, kind)) = heard {
            self.share.tell(Heard {
                at: HeardAt::Uplink,
                ip,
                mac,
                kind,
            });
        }
    }
}
