//! A routed frame against the MTU of the network it is routed into, or of the uplink,
//! as a router on the boundary between two links does: a frame that fits goes on; a TCP
//! super-frame has its segment size lowered to fit (the segments are cut later, by the
//! egress port's kernel or by a tunnel); an IPv4 packet without DF is cut into
//! fragments (towards the uplink after the NAT has translated it whole); one with DF is
//! answered with "fragmentation needed" naming the MTU, so that the sender's path-MTU
//! discovery starts. The TTL is checked before all this, as Linux's `ip_forward` does.
//!
//! The answer goes to whoever sent the frame ([`Sender`]): back on a local port, into
//! the network of a sender behind a peer, or back through the NAT for a packet it
//! translated (the error quotes the translated packet; the NAT's ICMP-error translation
//! turns it into one about the packet the sender sent): out of the uplink, from the
//! switch's external address, or, for a hairpinned flow, back in to the local sender.
//!
//! A UDP super-frame keeps its size: its segments are the application's datagrams, and
//! cutting them differently would change its messages. One whose datagrams do not fit
//! reaches the egress as it is: a local port delivers it (a veth lets GSO frames past
//! its MTU check, and a receiving stack does not hold datagrams to its MTU); a tunnel
//! refuses it, counted as `split_failed`.

use std::net::Ipv4Addr;

use fdb::{NetworkId, PortId};

use super::super::counters::DropReason;
use super::super::egress::fit_gso;
use super::super::fragment;
use super::super::observe::{MtuVerdict, Observer, Step};
use super::super::offload::{self, VnetHdr};
use super::super::pipeline::ETH_HLEN;
use super::wire::{build_from, ipv4_src};
use super::{Env, Out, Router, RouterDrop};
use crate::nat::{ChecksumState, Egress};

/// Who sent a routed frame: where an ICMP error about it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sender {
    /// A local port of this network.
    Port(PortId, NetworkId),
    /// A host behind a peer, in this network.
    Peer(NetworkId),
    /// A host outside, through the uplink and the NAT.
    Uplink,
    /// A local host whose packet the NAT turned back inward (to a published port on the
    /// switch's own address): through the NAT, which sends the answer back in.
    Hairpinned,
    /// Nobody the router can answer (an answer being routed already).
    Unreachable,
}

impl Sender {
    /// The sender of a frame from `network`, from a local port when `in_port` is set.
    pub(super) fn in_network(network: NetworkId, in_port: Option<PortId>) -> Sender {
        match in_port {
            Some(p) => Sender::Port(p, network),
            None => Sender::Peer(network),
        }
    }
}

/// Where routed fragments go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dest {
    /// To this address in this network.
    Network(NetworkId, Ipv4Addr),
    /// Out of the uplink, towards this address.
    Uplink(Ipv4Addr),
}

/// What to do with a routed frame after the MTU check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fit {
    /// Send it as it is (its GSO size may have been lowered).
    Whole,
    /// Cut it into IPv4 fragments of at most this MTU.
    Fragments(u32),
    /// Not sent: answered, or dropped and counted.
    Stop,
}

impl Router {
    /// Checks buffer `i` against the MTU of network `to`; see the module doc.
    pub(super) fn fit<O: Observer>(
        &mut self,
        env: &mut Env<'_, O>,
        i: u32,
        to: NetworkId,
        sender: Sender,
    ) -> Fit {
        match env.cx.topo.networks.get(&to) {
            Some(info) => self.fit_mtu(env, i, info.mtu, Some(to), sender),
            None => Fit::Whole,
        }
    }

    /// Checks buffer `i` against `mtu`: of network `to`, or of the uplink (`None`),
    /// where a packet that cannot go is counted as `uplink_too_big`.
    pub(super) fn fit_mtu<O: Observer>(
        &mut self,
        env: &mut Env<'_, O>,
        i: u32,
        mtu: u32,
        to: Option<NetworkId>,
        sender: Sender,
    ) -> Fit {
        let too_big = match to {
            Some(_) => RouterDrop::TooBigForNetwork,
            None => RouterDrop::UplinkTooBig,
        };
        let max_frame = mtu as usize + ETH_HLEN;
        // A frame that fits costs one compare; the rest is for those that do not.
        let len = env.pool.get(i).len();
        if len <= max_frame {
            return Fit::Whole;
        }
        let hdr = VnetHdr::parse(&env.pool.get(i).vnet);
        if hdr.is_gso() {
            let fitted = fit_gso(env.pool.get(i).frame(), &hdr, max_frame);
            if fitted.gso_size != hdr.gso_size {
                env.obs.step(|| Step::Mtu {
                    len,
                    mtu,
                    verdict: MtuVerdict::Split,
                });
                env.pool.get_mut(i).vnet = fitted.to_bytes();
            }
            return Fit::Whole;
        }
        match vtep::needs_icmp(env.pool.get(i).frame(), mtu) {
            vtep::Verdict::Fits => {
                // The packet fits; bytes after it (padding, junk) would not.
                let total = env.pool.get(i).frame().get(ETH_HLEN + 2..ETH_HLEN + 4);
                if let Some(&[a, b]) = total {
                    env.pool
                        .get_mut(i)
                        .truncate(ETH_HLEN + usize::from(u16::from_be_bytes([a, b])));
                }
                Fit::Whole
            }
            vtep::Verdict::Ipv4NoDf => Fit::Fragments(mtu),
            vtep::Verdict::Ipv4Df => {
                env.obs.step(|| Step::Mtu {
                    len,
                    mtu,
                    verdict: MtuVerdict::IcmpTooBig,
                });
                self.tally::<O>(|c| c.count(too_big));
                self.frag_needed(env, i, to, mtu, sender);
                Fit::Stop
            }
            // IPv6 is not routed; the rest (an ICMP error, a broadcast, a later
            // fragment with DF) is never answered with an error.
            vtep::Verdict::Ipv6 | vtep::Verdict::Drop(_) => {
                env.obs.step(|| Step::Mtu {
                    len,
                    mtu,
                    verdict: MtuVerdict::Dropped,
                });
                self.tally::<O>(|c| c.count(too_big));
                Fit::Stop
            }
        }
    }

    /// "Fragmentation needed" naming `mtu`, about buffer `i`, to its sender.
    fn frag_needed<O: Observer>(
        &mut self,
        env: &mut Env<'_, O>,
        i: u32,
        to: Option<NetworkId>,
        mtu: u32,
        sender: Sender,
    ) {
        // From the sender's gateway; an error that goes back through the NAT comes from
        // the gateway of the network the packet was going to, which the NAT rewrites.
        let from = match sender {
            Sender::Port(_, n) | Sender::Peer(n) => n,
            Sender::Uplink | Sender::Hairpinned => match to {
                Some(n) => n,
                None => return,
            },
            Sender::Unreachable => return,
        };
        let Some(gw) = env.cx.topo.networks.get(&from).map(|n| n.gateway) else {
            return;
        };
        // Traced, the error goes back to the quoted packet's source (`error_through_nat`).
        let about = if O::DRY_RUN {
            ipv4_src(env.pool.get(i).frame())
        } else {
            None
        };
        let Some(s) = build_from(env.pool, i, self.live::<O>(), |f, o| {
            vtep::build_frag_needed(f, mtu, env.cx.topo.router_mac.0, gw, o)
        }) else {
            return;
        };
        match sender {
            Sender::Port(p, _) => env.out.push(Out::Port(p, s)),
            Sender::Peer(n) => env.out.push(Out::Network(n, s)),
            Sender::Uplink | Sender::Hairpinned => self.error_through_nat(env, s, sender, about),
            Sender::Unreachable => {}
        }
    }

    /// Sends the ICMP error in buffer `s`, about a packet the NAT translated, back
    /// through it: out of the uplink, or (hairpinned) to the inside sender. Traced, it
    /// goes to `about`, the source of the packet the error quotes, out of the uplink
    /// or back in as `sender` says.
    fn error_through_nat<O: Observer>(
        &mut self,
        env: &mut Env<'_, O>,
        s: u32,
        sender: Sender,
        about: Option<Ipv4Addr>,
    ) {
        let (Some(nat), Some(up)) = (self.nat.clone(), env.cx.topo.uplink.as_ref()) else {
            return;
        };
        if O::DRY_RUN {
            // Traced, the packet was previewed, not translated, and no connection was
            // made for the error to find: it quotes the packet as its sender sent it,
            // and goes back to that sender, where the translated error would go.
            let Some(to) = about else {
                return;
            };
            return match sender {
                Sender::Uplink => self.send_uplink(env, s, up, to),
                Sender::Hairpinned => self.hairpin(env, s, to, Sender::Unreachable),
                Sender::Port(..) | Sender::Peer(_) | Sender::Unreachable => {}
            };
        }
        let packet = &mut env.pool.get_mut(s).frame_mut()[ETH_HLEN..];
        match nat.outbound_on(self.lane, env.cx.now, packet, ChecksumState::Complete) {
            Ok(t) if t.egress == Egress::Uplink => self.send_uplink(env, s, up, t.dst),
            Ok(t) => self.hairpin(env, s, t.dst, Sender::Unreachable),
            Err(e) => self.counters.nat_drop(e),
        }
    }

    /// Cuts buffer `i` (IPv4 without DF, TTL already lowered) into fragments of at most
    /// `mtu` and sends each to `dest`.
    pub(super) fn deliver_fragments<O: Observer>(
        &mut self,
        env: &mut Env<'_, O>,
        i: u32,
        dest: Dest,
        mtu: u32,
    ) {
        let len = env.pool.get(i).len();
        let hdr = VnetHdr::parse(&env.pool.get(i).vnet);
        if hdr.needs_csum() {
            // The transport checksum covers every fragment's bytes: finish it whole.
            let buf = env.pool.get_mut(i);
            if offload::complete_checksum(buf.frame_mut(), &hdr).is_err() {
                return self.dropped(env.obs, RouterDrop::Malformed);
            }
            buf.vnet = VnetHdr::NONE.to_bytes();
        }
        let pieces = match fragment::cut(env.pool, i, mtu, 0) {
            Ok(r) => r,
            Err(DropReason::NoBuffer) => return self.dropped(env.obs, RouterDrop::NoBuffer),
            Err(_) => return self.dropped(env.obs, RouterDrop::Malformed),
        };
        env.obs.step(|| Step::Mtu {
            len,
            mtu,
            verdict: MtuVerdict::Fragmented {
                pieces: pieces.len(),
            },
        });
        for s in pieces {
            match (dest, &env.cx.topo.uplink) {
                (Dest::Network(to, dst), _) => self.deliver(env, s, to, dst),
                (Dest::Uplink(dst), Some(up)) => self.send_uplink(env, s, up, dst),
                (Dest::Uplink(_), None) => self.dropped(env.obs, RouterDrop::NoRoute),
            }
        }
    }
}
