//! The router for frames from a network: ARP for the gateway, echo to it, routing to
//! another network, masquerade to the outside. Every function takes an [`Env`], whose
//! [`Observer`] is `Live` on the packet path; a trace's dry-run observer sees each
//! decision and makes the same code change nothing (no counters, no neighbour entries or
//! queued frames, no conntrack entry: NAT is previewed, addresses are peeked).

use std::net::Ipv4Addr;

use fdb::{MacAddr, NetworkId, PortId};

use super::super::neigh_share::{Heard, HeardAt};
use super::super::observe::{MtuVerdict, Observer, Resolution, Step};
use super::super::offload::VnetHdr;
use super::super::pipeline::ETH_HLEN;
use super::super::pool::Pool;
use super::super::topology::UplinkParams;
use super::fit::{Dest, Fit, Sender};
use super::wire::{ArpAt, arp_at, build, build_from, ethertype, ipv4_dst};
use super::{Ctx, ETHERTYPE_ARP, ETHERTYPE_IPV4, Env, Out, Router, RouterDrop};
use crate::l3::{self, Lookup, NeighCache, Route, Waiting};
use crate::nat::{Egress, NatDrop};

impl Router {
    /// A frame for the router from network `network` (from a local port when `in_port`
    /// is set, else from a peer).
    #[inline]
    pub fn from_network(
        &mut self,
        cx: Ctx<'_>,
        pool: &mut Pool,
        i: u32,
        network: NetworkId,
        in_port: Option<PortId>,
        out: &mut Vec<Out>,
    ) {
        let mut env = Env {
            cx,
            pool,
            out,
            obs: &mut super::Live,
        };
        self.from_network_with(&mut env, i, network, in_port);
    }

    /// `from_network`, watched by `env.obs`.
    pub fn from_network_with<O: Observer>(
        &mut self,
        env: &mut Env<'_, O>,
        i: u32,
        network: NetworkId,
        in_port: Option<PortId>,
    ) {
        self.sync(env.cx);
        match ethertype(env.pool.get(i).frame()) {
            ETHERTYPE_ARP => return self.arp_in_network(env, i, network, in_port),
            ETHERTYPE_IPV4 => {}
            _ => return self.dropped(env.obs, RouterDrop::NotIpv4),
        }
        let Some(dst) = ipv4_dst(env.pool.get(i).frame()) else {
            return self.dropped(env.obs, RouterDrop::Malformed);
        };
        let route = env.cx.topo.routes.route(network, dst);
        env.obs.step(|| {
            let (kind, to) = match route {
                Route::ToGateway => ("gateway", None),
                Route::Local(to) => ("network", Some(to)),
                Route::External => ("external", None),
                Route::Denied(to) => ("denied", Some(to)),
                Route::NoRoute => ("none", None),
            };
            Step::Route { dst, kind, to }
        });
        match route {
            Route::ToGateway => {
                let Some(p) = in_port.filter(|_| l3::is_echo_request(env.pool.get(i).frame()))
                else {
                    return self.dropped(env.obs, RouterDrop::ToGateway);
                };
                if let Some(s) = build_from(env.pool, i, self.live::<O>(), l3::build_echo_reply) {
                    env.obs.step(|| Step::EchoReply);
                    self.tally::<O>(|c| c.echo_replies.add(1));
                    env.out.push(Out::Port(p, s));
                }
            }
            Route::Local(to) => {
                // TTL first, then the size, as Linux's ip_forward checks them.
                if !self.ttl(env, i, network, in_port) {
                    return;
                }
                let sender = Sender::in_network(network, in_port);
                let fit = self.fit(env, i, to, sender);
                if fit != Fit::Stop {
                    self.tally::<O>(|c| c.routed.add(1));
                    self.deliver_fitted(env, i, to, dst, fit);
                }
            }
            Route::External => self.masquerade(env, i, network, in_port),
            Route::Denied(_) => self.dropped(env.obs, RouterDrop::Denied),
            Route::NoRoute => self.dropped(env.obs, RouterDrop::NoRoute),
        }
    }

    fn arp_in_network<O: Observer>(
        &mut self,
        env: &mut Env<'_, O>,
        i: u32,
        network: NetworkId,
        in_port: Option<PortId>,
    ) {
        let (Some(info), Some(cache)) = (
            env.cx.topo.networks.get(&network),
            self.caches.get_mut(&network),
        ) else {
            return;
        };
        let port = in_port.unwrap_or_default();
        let reply = move |s| Out::Port(port, s);
        let at = ArpAt {
            mac: env.cx.topo.router_mac,
            owns: &|ip| ip == info.gateway,
            // Only local senders are answered: a peer's hosts have their own gateway.
            reply: in_port.map(|_| &reply as &dyn Fn(u32) -> Out),
            send: &|s| Out::Network(network, s),
        };
        let counters = (!O::DRY_RUN).then_some(&*self.counters);
        if let Some((ip, mac, kind)) = arp_at(env, i, counters, cache, &at) {
            self.share.tell(Heard {
                at: HeardAt::Network(network),
                ip,
                mac,
                kind,
            });
        }
    }

    /// Decrements the TTL; when it runs out, answers with time exceeded from the source
    /// network's gateway and says no.
    pub(super) fn ttl<O: Observer>(
        &mut self,
        env: &mut Env<'_, O>,
        i: u32,
        network: NetworkId,
        in_port: Option<PortId>,
    ) -> bool {
        match l3::decrement_ttl(env.pool.get_mut(i).frame_mut()) {
            Ok(()) => true,
            Err(l3::ForwardError::TtlExpired) => {
                self.dropped(env.obs, RouterDrop::TtlExpired);
                let gw = env.cx.topo.networks.get(&network).map(|n| n.gateway);
                if let (Some(p), Some(gw)) = (in_port, gw)
                    && let Some(s) = build_from(env.pool, i, self.live::<O>(), |f, o| {
                        l3::build_time_exceeded(f, env.cx.topo.router_mac, gw, o)
                    })
                {
                    env.out.push(Out::Port(p, s));
                }
                false
            }
            Err(_) => {
                self.dropped(env.obs, RouterDrop::Malformed);
                false
            }
        }
    }

    /// Sends buffer `i` to `dst` in network `to`: resolves its MAC (asking by ARP from the
    /// gateway if needed, the frame waiting meanwhile) and rewrites the Ethernet header.
    pub(super) fn deliver<O: Observer>(
        &mut self,
        env: &mut Env<'_, O>,
        i: u32,
        to: NetworkId,
        dst: Ipv4Addr,
    ) {
        let (Some(info), Some(cache)) = (env.cx.topo.networks.get(&to), self.caches.get_mut(&to))
        else {
            return self.dropped(env.obs, RouterDrop::NoRoute);
        };
        let buf = env.pool.get(i);
        let waiting = Waiting {
            vnet: buf.vnet,
            frame: buf.frame(),
        };
        let found = resolve::<O>(cache, env.cx.now, dst, waiting);
        env.obs.step(|| Step::Neighbour {
            ip: dst,
            network: Some(to),
            resolution: resolution(&found),
        });
        match found {
            Lookup::Hit(mac) => {
                let _ =
                    l3::rewrite_l2(env.pool.get_mut(i).frame_mut(), env.cx.topo.router_mac, mac);
                env.out.push(Out::Network(to, i));
            }
            Lookup::Miss { send_request, .. } => {
                if send_request
                    && let Some(s) = build(env.pool, self.live::<O>(), |o| {
                        l3::build_request(
                            env.cx.topo.router_mac,
                            info.gateway,
                            dst,
                            MacAddr::BROADCAST,
                            o,
                        )
                    })
                {
                    env.out.push(Out::Network(to, s));
                }
            }
            Lookup::Failed => self.dropped(env.obs, RouterDrop::Unresolved),
        }
    }

    /// To the outside: uplink MTU, TTL, masquerade, next hop by ARP.
    fn masquerade<O: Observer>(
        &mut self,
        env: &mut Env<'_, O>,
        i: u32,
        network: NetworkId,
        in_port: Option<PortId>,
    ) {
        let (Some(nat), Some(up)) = (self.nat.clone(), env.cx.topo.uplink.as_ref()) else {
            return self.dropped(env.obs, RouterDrop::NoRoute);
        };
        if !self.ttl(env, i, network, in_port) {
            return;
        }
        // The uplink's MTU: a super-frame's segments are made to fit, a packet without
        // DF is cut after the NAT has translated it whole, one with DF is answered.
        let len = env.pool.get(i).len();
        if len <= up.mtu as usize + ETH_HLEN {
            env.obs.step(|| Step::Mtu {
                len,
                mtu: up.mtu,
                verdict: MtuVerdict::Fits,
            });
        }
        let sender = Sender::in_network(network, in_port);
        let fit = self.fit_mtu(env, i, up.mtu, None, sender);
        if fit == Fit::Stop {
            return;
        }
        let csum = VnetHdr::parse(&env.pool.get(i).vnet).checksum_state();
        let packet = &mut env.pool.get_mut(i).frame_mut()[ETH_HLEN..];
        let translated = if O::DRY_RUN {
            // What the NAT would do, then the same rewrite on this copy of the frame
            // would follow; routing needs only the destination.
            nat.preview_outbound(self.lane, packet).map(|p| {
                env.obs.step(|| Step::Nat(p));
                (p.egress, p.translated.dst.0)
            })
        } else {
            nat.outbound_on(self.lane, env.cx.now, packet, csum)
                .map(|t| (t.egress, t.dst))
        };
        let (egress, dst) = match translated {
            Ok(t) => t,
            Err(e) => return self.nat_refused(env.obs, e),
        };
        match egress {
            Egress::Uplink => {
                self.tally::<O>(|c| c.masqueraded.add(1));
                match fit {
                    Fit::Fragments(mtu) => {
                        self.deliver_fragments(env, i, Dest::Uplink(dst), mtu);
                    }
                    _ => self.send_uplink(env, i, up, dst),
                }
            }
            Egress::Internal => self.hairpin(env, i, dst, Sender::Hairpinned),
        }
    }

    /// A packet the NAT sent inward (from the uplink, or hairpinned): to `dst` in the
    /// network that holds it.
    pub(super) fn hairpin<O: Observer>(
        &mut self,
        env: &mut Env<'_, O>,
        i: u32,
        dst: Ipv4Addr,
        sender: Sender,
    ) {
        let Some(to) = env.cx.topo.routes.network_of(dst).map(|n| n.id) else {
            return self.dropped(env.obs, RouterDrop::NoRoute);
        };
        let fit = self.fit(env, i, to, sender);
        if fit != Fit::Stop {
            self.tally::<O>(|c| c.inbound.add(1));
            self.deliver_fitted(env, i, to, dst, fit);
        }
    }

    /// `deliver`, whole or in the fragments `fit` asked for.
    fn deliver_fitted<O: Observer>(
        &mut self,
        env: &mut Env<'_, O>,
        i: u32,
        to: NetworkId,
        dst: Ipv4Addr,
        fit: Fit,
    ) {
        match fit {
            Fit::Fragments(mtu) => {
                self.deliver_fragments(env, i, Dest::Network(to, dst), mtu);
            }
            _ => self.deliver(env, i, to, dst),
        }
    }

    pub(super) fn send_uplink<O: Observer>(
        &mut self,
        env: &mut Env<'_, O>,
        i: u32,
        up: &UplinkParams,
        dst: Ipv4Addr,
    ) {
        let next = if up.subnet.contains(&dst) {
            dst
        } else {
            up.gateway
        };
        let buf = env.pool.get(i);
        let waiting = Waiting {
            vnet: buf.vnet,
            frame: buf.frame(),
        };
        let found = resolve::<O>(&mut self.uplink_cache, env.cx.now, next, waiting);
        env.obs.step(|| Step::Neighbour {
            ip: next,
            network: None,
            resolution: resolution(&found),
        });
        match found {
            Lookup::Hit(mac) => {
                let _ = l3::rewrite_l2(env.pool.get_mut(i).frame_mut(), up.mac, mac);
                env.out.push(Out::Uplink(i));
            }
            Lookup::Miss { send_request, .. } => {
                if send_request
                    && let Some(s) = build(env.pool, self.live::<O>(), |o| {
                        l3::build_request(up.mac, up.addresses[0], next, MacAddr::BROADCAST, o)
                    })
                {
                    env.out.push(Out::Uplink(s));
                }
            }
            Lookup::Failed => self.dropped(env.obs, RouterDrop::Unresolved),
        }
    }

    /// Counts a drop (on the packet path) or records it (traced).
    pub(super) fn dropped<O: Observer>(&self, obs: &mut O, r: RouterDrop) {
        obs.step(|| Step::RouterDrop(r));
        if !O::DRY_RUN {
            self.counters.count(r);
        }
    }

    /// Counts the NAT's refusal (on the packet path) or records it (traced).
    pub(super) fn nat_refused<O: Observer>(&self, obs: &mut O, e: NatDrop) {
        obs.step(|| Step::NatRefused(e));
        if !O::DRY_RUN {
            self.counters.nat_drop(e);
        }
    }

    /// Adds to a counter, unless traced.
    pub(super) fn tally<O: Observer>(&self, add: impl FnOnce(&super::RouterCounters)) {
        if !O::DRY_RUN {
            add(&self.counters);
        }
    }

    /// The counters a frame may touch: none when traced.
    pub(super) fn live<O: Observer>(&self) -> Option<&super::RouterCounters> {
        (!O::DRY_RUN).then_some(&*self.counters)
    }
}

/// The neighbour's MAC: looked up (starting a resolution, the frame waiting) on the
/// packet path, only peeked at when traced.
fn resolve<O: Observer>(
    cache: &mut NeighCache,
    now: std::time::Duration,
    ip: Ipv4Addr,
    waiting: Waiting<'_>,
) -> Lookup {
    if O::DRY_RUN {
        cache.peek(now, ip)
    } else {
        cache.lookup(now, ip, Some(waiting))
    }
}

fn resolution(l: &Lookup) -> Resolution {
    match *l {
        Lookup::Hit(mac) => Resolution::Known(mac),
        Lookup::Miss { send_request, .. } => Resolution::Resolving {
            request: send_request,
        },
        Lookup::Failed => Resolution::Failed,
    }
}
