//! The router's small tools: ARP at one interface, reading a frame's EtherType and IPv4
//! destination, and building frames into scratch buffers. Counters are optional: a
//! traced frame (see `observe`) passes none and counts nothing.

use std::net::Ipv4Addr;

use fdb::MacAddr;

use super::super::observe::{Observer, Step};
use super::super::pipeline::ETH_HLEN;
use super::super::pool::Pool;
use super::{Env, Out, RouterCounters, RouterDrop};
use crate::l3::{self, Arp, ArpOp, LearnKind, NeighCache, QueuedFrame};

/// One of the router's interfaces, as ARP sees it.
pub(super) struct ArpAt<'a> {
    /// The interface's MAC: what it answers with and sends from.
    pub mac: MacAddr,
    /// Whether an address is the interface's own.
    pub owns: &'a dyn Fn(Ipv4Addr) -> bool,
    /// Where answers go; `None`: requests are learned from, not answered.
    pub reply: Option<&'a dyn Fn(u32) -> Out>,
    /// Where frames that waited for an answer go.
    pub send: &'a dyn Fn(u32) -> Out,
}

/// ARP at one interface, in the order `l3` gives: a gratuitous one is learned; a request
/// for our address is answered and, unless a probe, teaches its sender; a reply to us is
/// learned. Frames that waited for the address are sent on. Traced (dry run), nothing is
/// learned. Returns what was learned, for the other workers.
pub(super) fn arp_at<O: Observer>(
    env: &mut Env<'_, O>,
    i: u32,
    counters: Option<&RouterCounters>,
    cache: &mut NeighCache,
    at: &ArpAt<'_>,
) -> Option<(Ipv4Addr, MacAddr, LearnKind)> {
    let Ok(arp) = Arp::parse(env.pool.get(i).frame()) else {
        env.obs.step(|| Step::RouterDrop(RouterDrop::Malformed));
        if let Some(c) = counters {
            c.count(RouterDrop::Malformed);
        }
        return None;
    };
    let kind = if arp.is_gratuitous() {
        Some(LearnKind::Gratuitous)
    } else if arp.op == ArpOp::Request && (at.owns)(arp.target_ip) {
        if let Some(reply) = at.reply
            && let Some(s) = build(env.pool, counters, |o| l3::build_reply(&arp, at.mac, o))
        {
            env.obs.step(|| Step::ArpAnswer { ip: arp.target_ip });
            if let Some(c) = counters {
                c.arp_replies.add(1);
            }
            env.out.push(reply(s));
        }
        (!arp.is_probe()).then_some(LearnKind::Request)
    } else if arp.op == ArpOp::Reply && arp.eth_dst == at.mac {
        Some(LearnKind::Reply)
    } else {
        None
    };
    let kind = kind.filter(|_| !O::DRY_RUN)?;
    let released = cache.learn(env.cx.now, arp.sender_ip, arp.sender_mac, kind);
    release(
        env.pool,
        counters,
        released,
        at.mac,
        arp.sender_mac,
        at.send,
        env.out,
    );
    Some((arp.sender_ip, arp.sender_mac, kind))
}

/// The EtherType of an untagged Ethernet frame (zeros when too short).
pub(super) fn ethertype(frame: &[u8]) -> [u8; 2] {
    match frame.get(12..14) {
        Some(&[a, b]) => [a, b],
        _ => [0, 0],
    }
}

/// The source address of an untagged Ethernet + IPv4 frame.
pub(super) fn ipv4_src(frame: &[u8]) -> Option<Ipv4Addr> {
    let b: [u8; 4] = frame.get(ETH_HLEN + 12..ETH_HLEN + 16)?.try_into().ok()?;
    Some(Ipv4Addr::from(b))
}

/// The destination address of an untagged Ethernet + IPv4 frame.
pub(super) fn ipv4_dst(frame: &[u8]) -> Option<Ipv4Addr> {
    let b: [u8; 4] = frame.get(ETH_HLEN + 16..ETH_HLEN + 20)?.try_into().ok()?;
    Some(Ipv4Addr::from(b))
}

/// Builds a frame into a fresh scratch buffer; `None` (counted) when there is none or
/// the builder refuses.
pub(super) fn build<E>(
    pool: &mut Pool,
    counters: Option<&RouterCounters>,
    f: impl FnOnce(&mut [u8]) -> Result<usize, E>,
) -> Option<u32> {
    let count = |r| {
        if let Some(c) = counters {
            c.count(r);
        }
    };
    let Some(s) = pool.scratch() else {
        count(RouterDrop::NoBuffer);
        return None;
    };
    let buf = pool.get_mut(s);
    match f(buf.rx_space()) {
        Ok(n) => {
            buf.set_len(n);
            Some(s)
        }
        Err(_) => {
            count(RouterDrop::Malformed);
            None
        }
    }
}

/// Like `build`, from the frame in buffer `i`.
pub(super) fn build_from<E>(
    pool: &mut Pool,
    i: u32,
    counters: Option<&RouterCounters>,
    f: impl FnOnce(&[u8], &mut [u8]) -> Result<usize, E>,
) -> Option<u32> {
    let count = |r| {
        if let Some(c) = counters {
            c.count(r);
        }
    };
    let Some(s) = pool.scratch() else {
        count(RouterDrop::NoBuffer);
        return None;
    };
    let (src, dst) = pool.pair(i, s);
    match f(src.frame(), dst.rx_space()) {
        Ok(n) => {
            dst.set_len(n);
            Some(s)
        }
        Err(_) => {
            count(RouterDrop::Malformed);
            None
        }
    }
}

/// Sends frames that waited for an ARP answer, now addressed to `mac`.
pub(super) fn release(
    pool: &mut Pool,
    counters: Option<&RouterCounters>,
    frames: Vec<QueuedFrame>,
    src_mac: MacAddr,
    mac: MacAddr,
    to: &dyn Fn(u32) -> Out,
    out: &mut Vec<Out>,
) {
    for q in frames {
        let Some(s) = pool.scratch() else {
            if let Some(c) = counters {
                c.count(RouterDrop::NoBuffer);
            }
            continue;
        };
        let buf = pool.get_mut(s);
        buf.set_frame(&q.frame);
        buf.vnet = q.vnet;
        let _ = l3::rewrite_l2(buf.frame_mut(), src_mac, mac);
        out.push(to(s));
    }
}
