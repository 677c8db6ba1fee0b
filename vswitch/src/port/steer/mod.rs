//! Which worker's queue the kernel gives a received frame or datagram to, when several
//! workers share a port: classic BPF programs that keep both directions of a flow on
//! one worker, so a round trip wakes one thread and finds its state warm in one cache.
//! Steering is an optimisation only: every worker can handle every frame.
//!
//! - [`flow_lanes`], for the fanout group of a local AF_PACKET port: a hash of the IP
//!   flow that is the same both ways (the XOR of the two addresses and of the two
//!   ports), so a container's request and the answer coming back are read by the same
//!   worker.
//! - [`underlay_lanes`], for the underlay's `SO_REUSEPORT` group: the same hash of the
//!   *inner* frame of a VXLAN datagram, so what a peer sends for a flow is read by the
//!   worker that reads the local side of that flow, whatever outer source port the peer
//!   chose (a kernel VXLAN peer included).
//! - [`tap_lanes`], for a multi-queue TAP device: the same hash, read from the
//!   Ethernet header on (the device runs it in eBPF, translated by [`ebpf`]).
//! - [`nat_replies`], for the uplink's fanout group: the destination port of a
//!   masqueraded flow's reply. The NAT gives each worker's new flows external ports of
//!   the worker's own lane ([`crate::nat::Lane`]: the port modulo the workers), so the
//!   reply goes to the worker that sent the flow out.
//!
//! A fanout group gives a frame to queue `result % queues`, a TAP to queue `(result &
//! 0xffff) % queues` (the flow hash fits in 16 bits); a reuseport group
//! takes the result as the socket's index, so [`underlay_lanes`] takes the modulo
//! itself. Loads in fanout programs are relative to the network header (`SKF_NET_OFF`),
//! so they do not depend on where the frame's data starts when the hook runs; a
//! reuseport program sees the UDP payload from offset 0, a TAP's the Ethernet header.

pub mod ebpf;
pub mod mirror;

use std::collections::HashMap;
use std::ops::RangeInclusive;

use libc::{
    BPF_A, BPF_ABS, BPF_ALU, BPF_AND, BPF_B, BPF_H, BPF_IMM, BPF_IND, BPF_JEQ, BPF_JGE, BPF_JGT,
    BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_LDX, BPF_MEM, BPF_MISC, BPF_MOD, BPF_MSH, BPF_MUL,
    BPF_RET, BPF_RSH, BPF_ST, BPF_TAX, BPF_W, BPF_X, BPF_XOR, SKF_AD_OFF, SKF_AD_PROTOCOL,
    SKF_AD_RXHASH, SKF_NET_OFF, sock_filter,
};

const ETH_P_IP: i32 = 0x0800;
const ETH_P_IPV6: i32 = 0x86dd;
const IPPROTO_ICMP: i32 = 1;
const IPPROTO_TCP: i32 = 6;
const IPPROTO_UDP: i32 = 17;
const ICMP_ECHO_REPLY: i32 = 0;
/// The multiplier of the flow hash's last step (2^32 / the golden ratio, odd).
const GOLDEN: u32 = 0x9e37_79b1;
/// Where the inner frame's IP header starts in a VXLAN datagram's UDP payload.
const VXLAN_INNER_IP: i32 = 8 + 14;

/// A classic BPF program under construction, with named jump targets.
#[derive(Default)]
struct Asm {
    code: Vec<(u32, Option<&'static str>, Option<&'static str>, i32)>,
    labels: HashMap<&'static str, usize>,
}

impl Asm {
    fn op(&mut self, code: u32, k: i32) -> &mut Asm {
        self.code.push((code, None, None, k));
        self
    }

    /// A conditional jump: to `jt` if true, `jf` if false (`None`: the next one).
    fn jump(
        &mut self,
        cond: u32,
        k: i32,
        jt: Option<&'static str>,
        jf: Option<&'static str>,
    ) -> &mut Asm {
        self.code.push((BPF_JMP | cond | BPF_K, jt, jf, k));
        self
    }

    fn goto(&mut self, to: &'static str) -> &mut Asm {
        // A conditional jump whose two branches both go there: the same 8-bit offsets
        // as every other jump here (`ja` would keep its offset in k).
        self.code
            .push((BPF_JMP | BPF_JSET | BPF_K, Some(to), Some(to), 0));
        self
    }

    fn label(&mut self, name: &'static str) -> &mut Asm {
        self.labels.insert(name, self.code.len());
        self
    }

    fn ret_a(&mut self) -> &mut Asm {
        self.op(BPF_RET | BPF_A, 0)
    }

    /// The program; jumps only go forward, at most 255 instructions.
    fn finish(&self) -> Vec<sock_filter> {
        let offset = |pc: usize, to: Option<&str>| -> u8 {
            let Some(to) = to else { return 0 };
            let target = self.labels[to];
            u8::try_from(target - (pc + 1)).expect("a forward jump within 255")
        };
        self.code
            .iter()
            .enumerate()
            .map(|(pc, &(code, jt, jf, k))| sock_filter {
                code: code as u16,
                jt: offset(pc, jt),
                jf: offset(pc, jf),
                k: k as u32,
            })
            .collect()
    }
}

/// Where a program finds the IP header: its offset (`SKF_NET_OFF`-relative or
/// absolute), and how it loads the EtherType.
#[derive(Clone, Copy)]
struct At {
    ip: i32,
    ethertype: (u32, i32),
}

const AT_NETWORK: At = At {
    ip: SKF_NET_OFF,
    ethertype: (BPF_LD | BPF_H | BPF_ABS, SKF_AD_OFF + SKF_AD_PROTOCOL),
};
/// A frame from its Ethernet header on, with no ancillary loads (which eBPF lacks).
const AT_ETHERNET: At = At {
    ip: 14,
    ethertype: (BPF_LD | BPF_H | BPF_ABS, 12),
};
const AT_VXLAN_INNER: At = At {
    ip: VXLAN_INNER_IP,
    ethertype: (BPF_LD | BPF_H | BPF_ABS, VXLAN_INNER_IP - 2),
};

/// Leaves in A the flow hash of the IP packet at `at` (0 for anything else): the
/// addresses XORed, XORed with the two ports XORed (TCP and UDP, not in fragments),
/// multiplied and shifted so the low bits see every input bit. The same both ways.
fn flow_hash(a: &mut Asm, at: At) {
    let ld = |size: u32| BPF_LD | size | BPF_ABS;
    let xor_x = BPF_ALU | BPF_XOR | BPF_X;
    a.op(at.ethertype.0, at.ethertype.1)
        .jump(BPF_JEQ, ETH_P_IP, Some("v4"), None)
        .jump(BPF_JEQ, ETH_P_IPV6, Some("v6"), Some("other"));
    // IPv4: M[0] = source ^ destination.
    a.label("v4")
        .op(ld(BPF_W), at.ip + 12)
        .op(BPF_MISC | BPF_TAX, 0)
        .op(ld(BPF_W), at.ip + 16)
        .op(xor_x, 0)
        .op(BPF_ST, 0)
        .op(ld(BPF_H), at.ip + 6)
        .jump(BPF_JSET, 0x3fff, Some("fold"), None) // a fragment: no ports
        .op(ld(BPF_B), at.ip + 9)
        .jump(BPF_JEQ, IPPROTO_TCP, Some("v4ports"), None)
        .jump(BPF_JEQ, IPPROTO_UDP, Some("v4ports"), Some("fold"));
    a.label("v4ports")
        .op(BPF_LDX | BPF_B | BPF_MSH, at.ip)
        .op(BPF_LD | BPF_W | BPF_IND, at.ip)
        .goto("ports");
    // IPv6: M[0] = the XOR of the eight words of the two addresses.
    a.label("v6").op(ld(BPF_W), at.ip + 8).op(BPF_ST, 0);
    for word in 1..8 {
        a.op(BPF_LDX | BPF_W | BPF_MEM, 0)
            .op(ld(BPF_W), at.ip + 8 + 4 * word)
            .op(xor_x, 0)
            .op(BPF_ST, 0);
    }
    a.op(ld(BPF_B), at.ip + 6)
        .jump(BPF_JEQ, IPPROTO_TCP, Some("v6ports"), None)
        .jump(BPF_JEQ, IPPROTO_UDP, Some("v6ports"), Some("fold"));
    a.label("v6ports").op(ld(BPF_W), at.ip + 40);
    // A = source port << 16 | destination port: M[0] ^= source ^ destination.
    a.label("ports")
        .op(BPF_MISC | BPF_TAX, 0)
        .op(BPF_ALU | BPF_RSH | BPF_K, 16)
        .op(xor_x, 0)
        .op(BPF_ALU | BPF_AND | BPF_K, 0xffff)
        .op(BPF_LDX | BPF_W | BPF_MEM, 0)
        .op(xor_x, 0)
        .op(BPF_ST, 0);
    // Multiply-shift: every bit of the XOR moves the result's low bits, which are what
    // picks the queue (a plain fold would not do: Linux gives connect() even ephemeral
    // ports, so the ports' lowest bit alone says nothing).
    a.label("fold")
        .op(BPF_LD | BPF_W | BPF_MEM, 0)
        .op(BPF_ALU | BPF_MUL | BPF_K, GOLDEN as i32)
        .op(BPF_ALU | BPF_RSH | BPF_K, 16)
        .goto("hashed");
    a.label("other").op(BPF_LD | BPF_W | BPF_IMM, 0);
    a.label("hashed");
}

/// The fanout program of a local port's queues: the flow hash, the same both ways.
pub fn flow_lanes() -> Vec<sock_filter> {
    let mut a = Asm::default();
    flow_hash(&mut a, AT_NETWORK);
    a.ret_a().finish()
}

/// The steering program of a multi-queue TAP's queues: the flow hash, as
/// [`flow_lanes`] computes it, of the frame the device is about to give us. A
/// VLAN-tagged frame (the tag in the frame, not in the kernel's metadata) goes to the
/// first queue.
pub fn tap_lanes() -> Vec<sock_filter> {
    let mut a = Asm::default();
    flow_hash(&mut a, AT_ETHERNET);
    a.ret_a().finish()
}

/// The reuseport program of the underlay's `queues` receive sockets: the flow hash of
/// the inner frame (as [`flow_lanes`] computes it on the local side), modulo `queues`.
pub fn underlay_lanes(queues: usize) -> Vec<sock_filter> {
    let mut a = Asm::default();
    flow_hash(&mut a, AT_VXLAN_INNER);
    let n = i32::try_from(queues.max(1)).unwrap_or(i32::MAX);
    a.op(BPF_ALU | BPF_MOD | BPF_K, n).ret_a().finish()
}

/// The fanout program for an uplink whose masqueraded flows use external ports (and
/// ICMP echo identifiers) in `range`. It returns: for IPv4 TCP or UDP to a port in the
/// range, that port; to any other port (published ports), the source port, which
/// spreads the clients of one published port over the workers; for an ICMP echo reply,
/// its identifier; for anything else (ARP, IPv6, ICMP errors), the kernel's receive
/// hash where the device set one (0 otherwise: the first queue).
pub fn nat_replies(range: &RangeInclusive<u16>) -> Vec<sock_filter> {
    let (lo, hi) = (i32::from(*range.start()), i32::from(*range.end()));
    let ind = |size: u32| BPF_LD | size | BPF_IND;
    let mut a = Asm::default();
    a.op(AT_NETWORK.ethertype.0, AT_NETWORK.ethertype.1)
        .jump(BPF_JEQ, ETH_P_IP, None, Some("hash"))
        .op(BPF_LDX | BPF_B | BPF_MSH, SKF_NET_OFF) // X = the IPv4 header's length
        .op(BPF_LD | BPF_B | BPF_ABS, SKF_NET_OFF + 9)
        .jump(BPF_JEQ, IPPROTO_TCP, Some("ports"), None)
        .jump(BPF_JEQ, IPPROTO_UDP, Some("ports"), None)
        .jump(BPF_JEQ, IPPROTO_ICMP, None, Some("hash"))
        .op(ind(BPF_B), SKF_NET_OFF) // ICMP type
        .jump(BPF_JEQ, ICMP_ECHO_REPLY, None, Some("hash"))
        .op(ind(BPF_H), SKF_NET_OFF + 4) // the identifier
        .ret_a();
    a.label("ports")
        .op(ind(BPF_H), SKF_NET_OFF + 2) // destination port
        .jump(BPF_JGE, lo, None, Some("source"))
        .jump(BPF_JGT, hi, Some("source"), None)
        .ret_a();
    a.label("source").op(ind(BPF_H), SKF_NET_OFF).ret_a();
    a.label("hash")
        .op(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_RXHASH)
        .ret_a();
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every jump lands inside the program and it ends in a return: what the kernel's
    /// checker asks first (the ports' namespace tests run the programs for real).
    #[test]
    fn jumps_stay_inside_the_programs() {
        for prog in [
            nat_replies(&(32768..=60999)),
            flow_lanes(),
            tap_lanes(),
            underlay_lanes(3),
        ] {
            for (pc, i) in prog.iter().enumerate() {
                if u32::from(i.code) & 0x07 == BPF_JMP {
                    let next = pc + 1;
                    assert!(next + usize::from(i.jt) < prog.len(), "jt of {pc}");
                    assert!(next + usize::from(i.jf) < prog.len(), "jf of {pc}");
                }
            }
            let last = prog.last().unwrap();
            assert_eq!(u32::from(last.code) & 0x07, BPF_RET);
        }
    }
}
