//! Which queue of a multi-queue AF_PACKET port the kernel gives a received frame to,
//! when the flow hash is not the best answer: on the uplink, the replies of a
//! masqueraded flow go to the worker that masqueraded it.
//!
//! The NAT gives each worker's new flows external ports of the worker's own *lane*
//! (port modulo the number of workers, [`crate::nat::Lane`]), and the uplink's fanout
//! group picks the queue by the reply's destination port with the same modulo. So
//! the worker that sent a flow out also reads its answers: one thread, warm caches,
//! and no second worker to wake for a round trip (with the kernel's flow hash the
//! translated reply lands on either, as its addresses are not the request's).
//! Steering is an optimisation only: every worker can translate every packet.
//!
//! The choice is a classic BPF program for `PACKET_FANOUT_CBPF`; the kernel runs it on
//! each frame and gives the frame to queue `result % queues`. What it returns:
//! - IPv4 TCP or UDP to a port in the masquerade range: that port;
//! - IPv4 TCP or UDP to any other port (published ports): the source port, which
//!   spreads the clients of one published port over the workers;
//! - an ICMP echo reply: its identifier (the NAT's "port" for echo);
//! - anything else (ARP, IPv6, ICMP errors): the kernel's receive hash, where the
//!   device set one (0 otherwise: the first queue).
//!
//! Loads are relative to the network header (`SKF_NET_OFF`), so the program does not
//! depend on where the frame's data starts when the fanout hook runs.

use std::ops::RangeInclusive;

/// An instruction of a classic BPF program.
fn insn(code: u32, jt: u8, jf: u8, k: i32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k: k as u32,
    }
}

const ETH_P_IP: i32 = 0x0800;
const IPPROTO_ICMP: i32 = 1;
const IPPROTO_TCP: i32 = 6;
const IPPROTO_UDP: i32 = 17;
const ICMP_ECHO_REPLY: i32 = 0;

/// The fanout program for an uplink whose masqueraded flows use external ports (and
/// ICMP echo identifiers) in `range`.
pub fn nat_replies(range: &RangeInclusive<u16>) -> Vec<libc::sock_filter> {
    use libc::{
        BPF_A, BPF_ABS, BPF_B, BPF_H, BPF_IND, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JMP, BPF_K, BPF_LD,
        BPF_LDX, BPF_MSH, BPF_RET, BPF_W, SKF_AD_OFF, SKF_AD_PROTOCOL, SKF_AD_RXHASH, SKF_NET_OFF,
    };
    let (lo, hi) = (i32::from(*range.start()), i32::from(*range.end()));
    let jeq = BPF_JMP | BPF_JEQ | BPF_K;
    let ret_a = insn(BPF_RET | BPF_A, 0, 0, 0);
    // Jump offsets count the instructions skipped; the numbers on the right are the
    // instructions' indices, for checking them.
    vec![
        insn(BPF_LD | BPF_H | BPF_ABS, 0, 0, SKF_AD_OFF + SKF_AD_PROTOCOL), // 0
        insn(jeq, 0, 15, ETH_P_IP),                                         // 1: else 17
        insn(BPF_LDX | BPF_B | BPF_MSH, 0, 0, SKF_NET_OFF),                 // 2: X = IHL * 4
        insn(BPF_LD | BPF_B | BPF_ABS, 0, 0, SKF_NET_OFF + 9),              // 3: protocol
        insn(jeq, 6, 0, IPPROTO_TCP),                                       // 4: to 11
        insn(jeq, 5, 0, IPPROTO_UDP),                                       // 5: to 11
        insn(jeq, 0, 10, IPPROTO_ICMP),                                     // 6: else 17
        insn(BPF_LD | BPF_B | BPF_IND, 0, 0, SKF_NET_OFF),                  // 7: ICMP type
        insn(jeq, 0, 8, ICMP_ECHO_REPLY),                                   // 8: else 17
        insn(BPF_LD | BPF_H | BPF_IND, 0, 0, SKF_NET_OFF + 4),              // 9: identifier
        ret_a,                                                              // 10
        insn(BPF_LD | BPF_H | BPF_IND, 0, 0, SKF_NET_OFF + 2),              // 11: dst port
        insn(BPF_JMP | BPF_JGE | BPF_K, 0, 2, lo),                          // 12: else 15
        insn(BPF_JMP | BPF_JGT | BPF_K, 1, 0, hi),                          // 13: to 15
        ret_a,                                                              // 14
        insn(BPF_LD | BPF_H | BPF_IND, 0, 0, SKF_NET_OFF),                  // 15: src port
        ret_a,                                                              // 16
        insn(BPF_LD | BPF_W | BPF_ABS, 0, 0, SKF_AD_OFF + SKF_AD_RXHASH),   // 17
        ret_a,                                                              // 18
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every jump lands inside the program and the program ends in a return: what the
    /// kernel's checker asks first (the ports' namespace tests run it for real).
    #[test]
    fn jumps_stay_inside_the_program() {
        let prog = nat_replies(&(32768..=60999));
        for (pc, i) in prog.iter().enumerate() {
            if u32::from(i.code) & 0x07 == libc::BPF_JMP {
                let next = pc + 1;
                assert!(next + usize::from(i.jt) < prog.len(), "jt of {pc}");
                assert!(next + usize::from(i.jf) < prog.len(), "jf of {pc}");
            }
        }
        let last = prog.last().unwrap();
        assert_eq!(u32::from(last.code) & 0x07, libc::BPF_RET);
    }
}
