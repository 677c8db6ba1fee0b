//! The steering programs on real fanout groups: which queue gets which frame.

use std::net::UdpSocket;
use std::time::Duration;

use super::af_packet::recv_within;
use super::lab::{Ns, veth};
use crate::packet::PacketBuf;
use crate::port::Port;
use crate::port::af_packet::PacketPort;
use crate::port::steer;
use crate::port::sys::bpf::BpfProgram;
use crate::port::tap::TapPort;

const RANGE: std::ops::RangeInclusive<u16> = 40000..=40099;

/// ```text
///   sw: swp1 10.79.0.1/24 [PacketPort x2, steered] ==veth== ctr: eth0 10.79.0.2/24
/// ```
///
/// `ctr` sends UDP into the masquerade range (the destination port picks the queue),
/// outside it (the source port picks), and answers `sw`'s pings (the identifier picks).
#[test]
fn the_uplink_program_gives_each_reply_to_the_queue_of_its_port() {
    let sw = Ns::new("sw");
    let ctr = Ns::new("c");
    veth(&sw, "swp1", &ctr, "eth0");
    sw.ip(&["addr", "add", "10.79.0.1/24", "dev", "swp1"]);
    ctr.ip(&["addr", "add", "10.79.0.2/24", "dev", "eth0"]);
    let program = steer::nat_replies(&RANGE);
    let mut ports = sw.run(move || {
        PacketPort::open_queues_steered("swp1", 2, Some(&program)).expect("open steered")
    });
    // (source, destination): in the range, the destination decides; outside, the source.
    let sent: [(u16, u16); 6] = [
        (6000, 40000),
        (6002, 40001),
        (6004, 40098),
        (6006, 40099),
        (6001, 5000),
        (6002, 5001),
    ];
    ctr.run(move || {
        for (src, dst) in sent {
            let s = UdpSocket::bind(("10.79.0.2", src)).expect("bind");
            for _ in 0..3 {
                s.send_to(b"steer", ("10.79.0.1", dst)).expect("send");
            }
        }
    });
    sw.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.79.0.2"])
        .expect("ping ctr");
    let frames = read_all(&mut ports);
    assert_mirrored(&frames, |f| {
        steer::mirror::nat_reply_lane_of_frame(f, &RANGE)
    });
    let got = sent_flows(&frames);
    for (src, dst) in sent {
        let want = usize::from(if RANGE.contains(&dst) { dst } else { src } % 2);
        let queues: Vec<usize> = got
            .iter()
            .filter(|(_, f)| matches!(f, Flow::Udp { sport, dport, .. } if (*sport, *dport) == (src, dst)))
            .map(|(q, _)| *q)
            .collect();
        assert_eq!(queues, vec![want; 3], "{src} -> {dst}: {got:?}");
    }
    let replies: Vec<(usize, u16)> = got
        .iter()
        .filter_map(|(q, f)| match f {
            Flow::Echo { request: false, id } => Some((*q, *id)),
            _ => None,
        })
        .collect();
    assert_eq!(replies.len(), 3, "{got:?}");
    for (q, id) in replies {
        assert_eq!(q, usize::from(id % 2), "echo reply {id}");
    }
}

/// ```text
///   sw: swp1 10.79.1.1 fd00:79::1 [PacketPort x2, flow lanes] ==veth== ctr: eth0 .2 ::2
/// ```
///
/// Each UDP flow (IPv4 and IPv6) and the pings go to the queue of their flow hash: the
/// kernel runs the program, and it agrees with the hash computed here (which is the
/// same both ways, so an answer would go to the same queue as its request).
#[test]
fn local_port_queues_share_flows_by_the_hash_both_directions_agree_on() {
    let sw = Ns::new("sw");
    let ctr = Ns::new("c");
    veth(&sw, "swp1", &ctr, "eth0");
    sw.ip(&["addr", "add", "10.79.1.1/24", "dev", "swp1"]);
    ctr.ip(&["addr", "add", "10.79.1.2/24", "dev", "eth0"]);
    sw.ip(&["addr", "add", "fd00:79::1/64", "dev", "swp1", "nodad"]);
    ctr.ip(&["addr", "add", "fd00:79::2/64", "dev", "eth0", "nodad"]);
    let program = steer::flow_lanes();
    let mut ports = sw.run(move || {
        PacketPort::open_queues_steered("swp1", 2, Some(&program)).expect("open steered")
    });
    let flows = six_flows_each(
        ("10.79.1.2", "10.79.1.1"),
        ("fd00:79::2", "fd00:79::1"),
        7000,
    );
    let to_send = flows.clone();
    ctr.run(move || send_flows(&to_send));
    ctr.exec(&["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.79.1.1"])
        .expect("ping sw");
    let frames = read_all(&mut ports);
    assert_mirrored(&frames, |f| Some(steer::mirror::flow_hash_of_frame(f)));
    assert_on_their_lanes(&sent_flows(&frames), &flows, ("10.79.1.2", "10.79.1.1"));
}

/// ```text
///   sw: tap1 10.79.2.1 fd00:79:2::1 [TapPort x2, tap lanes] -> .2, ::2 (static neighbours)
/// ```
///
/// The kernel sends UDP flows (IPv4 and IPv6) and pings out of a two-queue TAP: the
/// device runs the program translated to eBPF, and each flow reaches the queue of the
/// same hash as on a veth. Without the program (nothing is written into this TAP, so
/// its flow table is empty) the device's own hash put the first flow on the other
/// queue.
#[test]
fn tap_queues_share_flows_by_the_same_hash() {
    let sw = Ns::new("sw");
    let program = steer::tap_lanes();
    let mut ports = sw.run(move || {
        TapPort::open_queues("tap1", false, 2, Some(&program)).expect("open steered TAP")
    });
    sw.ip(&["link", "set", "tap1", "up"]);
    sw.ip(&["addr", "add", "10.79.2.1/24", "dev", "tap1"]);
    sw.ip(&["addr", "add", "fd00:79:2::1/64", "dev", "tap1", "nodad"]);
    for peer in ["10.79.2.2", "fd00:79:2::2"] {
        let mac = "02:00:00:79:02:02";
        sw.ip(&[
            "neigh",
            "add",
            peer,
            "lladdr",
            mac,
            "dev",
            "tap1",
            "nud",
            "permanent",
        ]);
    }
    let flows = six_flows_each(
        ("10.79.2.1", "10.79.2.2"),
        ("fd00:79:2::1", "fd00:79:2::2"),
        7200,
    );
    let to_send = flows.clone();
    sw.run(move || send_flows(&to_send));
    // Nobody answers: only the two requests matter.
    let _ = sw.exec(&["ping", "-c", "2", "-i", "0.2", "-W", "1", "10.79.2.2"]);
    let frames = read_all(&mut ports);
    assert_mirrored(&frames, |f| Some(steer::mirror::flow_hash_of_frame(f)));
    assert_on_their_lanes(&sent_flows(&frames), &flows, ("10.79.2.1", "10.79.2.2"));
}

/// A flow these tests send: source, destination, source port, destination port.
type UdpFlow = (&'static str, &'static str, u16, u16);

/// Six UDP flows between the IPv4 pair `v4` (source ports from `base`, to port 9000)
/// and six between the IPv6 pair `v6` (source ports from `base + 100`, to odd ports
/// from 9001).
fn six_flows_each(
    v4: (&'static str, &'static str),
    v6: (&'static str, &'static str),
    base: u16,
) -> Vec<UdpFlow> {
    (0..6)
        .flat_map(|k| {
            [
                (v4.0, v4.1, base + k, 9000),
                (v6.0, v6.1, base + 100 + k, 9001 + 2 * k),
            ]
        })
        .collect()
}

/// Three datagrams of each flow `(source, destination, source port, destination port)`.
fn send_flows(flows: &[UdpFlow]) {
    for &(src, dst, sport, dport) in flows {
        let s = UdpSocket::bind((src, sport)).expect("bind");
        for _ in 0..3 {
            s.send_to(b"lanes", (dst, dport)).expect("send");
        }
    }
}

/// Each flow's three datagrams on the queue of its hash (of two), the flows on both
/// queues, and the two echo requests of `ping` on the queue of its addresses' hash.
fn assert_on_their_lanes(got: &[(usize, Flow)], flows: &[UdpFlow], ping: (&str, &str)) {
    use std::net::IpAddr;
    let mut used = [false; 2];
    for &(src, dst, sport, dport) in flows {
        let (s, d): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        let want = (steer::mirror::flow_hash(s, d, Some((sport, dport))) % 2) as usize;
        used[want] = true;
        let queues: Vec<usize> = got
            .iter()
            .filter(|(_, f)| {
                *f == Flow::Udp {
                    src: s,
                    dst: d,
                    sport,
                    dport,
                }
            })
            .map(|(q, _)| *q)
            .collect();
        assert_eq!(queues, vec![want; 3], "{src}:{sport} -> {dst}:{dport}");
    }
    assert_eq!(
        used,
        [true, true],
        "the flows chosen should use both queues"
    );
    let want = (steer::mirror::flow_hash(ping.0.parse().unwrap(), ping.1.parse().unwrap(), None)
        % 2) as usize;
    let pings: Vec<usize> = got
        .iter()
        .filter(|(_, f)| matches!(f, Flow::Echo { request: true, .. }))
        .map(|(q, _)| *q)
        .collect();
    assert_eq!(pings, vec![want; 2]);
}

/// A frame these tests sent: UDP over IPv4 or IPv6, or an IPv4 echo request or reply
/// (with its identifier).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Udp {
        src: std::net::IpAddr,
        dst: std::net::IpAddr,
        sport: u16,
        dport: u16,
    },
    Echo {
        request: bool,
        id: u16,
    },
}

fn flow_of(frame: &[u8]) -> Option<Flow> {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let be = |b: &[u8], at: usize| Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]));
    let (src, dst, proto, l4): (IpAddr, IpAddr, u8, &[u8]) = match frame.get(12..14)? {
        [0x08, 0x00] => {
            let ip = frame.get(14..34)?;
            let a: [u8; 4] = ip[12..16].try_into().ok()?;
            let b: [u8; 4] = ip[16..20].try_into().ok()?;
            let l4 = frame.get(14 + usize::from(ip[0] & 0x0f) * 4..)?;
            (
                Ipv4Addr::from(a).into(),
                Ipv4Addr::from(b).into(),
                ip[9],
                l4,
            )
        }
        [0x86, 0xdd] => {
            let ip = frame.get(14..54)?;
            let a: [u8; 16] = ip[8..24].try_into().ok()?;
            let b: [u8; 16] = ip[24..40].try_into().ok()?;
            (
                Ipv6Addr::from(a).into(),
                Ipv6Addr::from(b).into(),
                ip[6],
                frame.get(54..)?,
            )
        }
        _ => return None,
    };
    match proto {
        17 => Some(Flow::Udp {
            src,
            dst,
            sport: be(l4, 0)?,
            dport: be(l4, 2)?,
        }),
        1 if matches!(l4.first(), Some(0 | 8)) => Some(Flow::Echo {
            request: l4[0] == 8,
            id: be(l4, 4)?,
        }),
        _ => None,
    }
}

/// Every frame waiting on each queue, with the queue's index.
fn read_all<P: Port>(ports: &mut [P]) -> Vec<(usize, Vec<u8>)> {
    let mut bufs: Vec<PacketBuf> = (0..64).map(|_| PacketBuf::new()).collect();
    let mut got = Vec::new();
    for (queue, port) in ports.iter_mut().enumerate() {
        loop {
            let n = recv_within(port, &mut bufs, Duration::from_millis(300));
            if n == 0 {
                break;
            }
            got.extend(bufs[..n].iter().map(|b| (queue, b.frame().to_vec())));
        }
    }
    got
}

/// The frames these tests sent, with their queues.
fn sent_flows(frames: &[(usize, Vec<u8>)]) -> Vec<(usize, Flow)> {
    (frames.iter())
        .filter_map(|(q, f)| Some((*q, flow_of(f)?)))
        .collect()
}

/// Every frame read (the tests' own and whatever else the kernel sent: neighbour
/// discovery, MLD) on the queue the Rust mirror of the program names.
fn assert_mirrored(frames: &[(usize, Vec<u8>)], queue_of: impl Fn(&[u8]) -> Option<u32>) {
    for (q, f) in frames {
        if let Some(want) = queue_of(f) {
            assert_eq!(*q, (want % 2) as usize, "frame {f:02x?}");
        }
    }
}

/// The translation to eBPF, run by the kernel (`BPF_PROG_TEST_RUN`) on a UDP frame: a
/// classic program that touches every kind of instruction the translation knows, and
/// a load past the frame's end, which ends a program with 0 in both kinds.
#[test]
fn translated_programs_compute_what_the_classic_ones_do() {
    use libc::*;
    let f = |code: u32, jt: u8, jf: u8, k: u32| sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let every_kind = [
        f(BPF_LDX | BPF_B | BPF_MSH, 0, 0, 0),    // X = 20
        f(BPF_LD | BPF_H | BPF_IND, 0, 0, 2),     // A = 5201, the destination port
        f(BPF_ST, 0, 0, 3),                       // M[3] = 5201
        f(BPF_LD | BPF_W | BPF_IMM, 0, 0, 7),     // A = 7
        f(BPF_ALU | BPF_ADD | BPF_X, 0, 0, 0),    // A = 27
        f(BPF_MISC | BPF_TAX, 0, 0, 0),           // X = 27
        f(BPF_STX, 0, 0, 5),                      // M[5] = 27
        f(BPF_LD | BPF_W | BPF_MEM, 0, 0, 3),     // A = 5201
        f(BPF_ALU | BPF_SUB | BPF_X, 0, 0, 0),    // A = 5174
        f(BPF_ALU | BPF_DIV | BPF_K, 0, 0, 2),    // A = 2587
        f(BPF_ALU | BPF_NEG, 0, 0, 0),            // A = -2587
        f(BPF_ALU | BPF_NEG, 0, 0, 0),            // A = 2587
        f(BPF_JMP | BPF_JGT | BPF_K, 2, 0, 3000), // not taken
        f(BPF_JMP | BPF_JGE | BPF_K, 0, 1, 2587), // taken
        f(BPF_JMP | BPF_JA, 0, 0, 1),             // over the wrong answer
        f(BPF_RET | BPF_K, 0, 0, 1),              // the wrong answer
        f(BPF_LDX | BPF_W | BPF_MEM, 0, 0, 5),    // X = 27
        f(BPF_LD | BPF_W | BPF_LEN, 0, 0, 0),     // A = 36, from the IP header on
        f(BPF_ALU | BPF_ADD | BPF_X, 0, 0, 0),    // A = 63
        f(BPF_LDX | BPF_W | BPF_IMM, 0, 0, 63),   // X = 63
        f(BPF_JMP | BPF_JEQ | BPF_X, 1, 0, 0),    // A == X: taken
        f(BPF_RET | BPF_K, 0, 0, 2),              // the wrong answer
        f(BPF_LDX | BPF_W | BPF_IMM, 0, 0, 2587), // X = 2587
        f(BPF_ALU | BPF_ADD | BPF_X, 0, 0, 0),    // A = 2650
        f(BPF_MISC | BPF_TAX, 0, 0, 0),           // X = 2650
        f(BPF_LD | BPF_W | BPF_IMM, 0, 0, 0),     // A = 0
        f(BPF_MISC | BPF_TXA, 0, 0, 0),           // A = 2650
        f(BPF_RET | BPF_X, 0, 0, 0),              // 2650
    ];
    let past_the_end = [
        f(BPF_LD | BPF_W | BPF_ABS, 0, 0, 1000),
        f(BPF_RET | BPF_K, 0, 0, 5),
    ];
    // Ethernet, IPv4 (20 bytes, 36 in all), UDP 4660 -> 5201, 8 bytes of payload.
    let mut frame = vec![0u8; 12];
    frame.extend([0x08, 0x00, 0x45, 0, 0, 36, 0, 0, 0x40, 0, 64, 17, 0, 0]);
    frame.extend([
        10, 0, 0, 1, 10, 0, 0, 2, 0x12, 0x34, 0x14, 0x51, 0, 16, 0, 0,
    ]);
    frame.extend(b"payload!");
    for (program, want) in [(&every_kind[..], 2650), (&past_the_end[..], 0)] {
        let insns = steer::ebpf::from_classic(program).expect("translate");
        let prog = BpfProgram::load_socket_filter("vsw_test", &insns).expect("load");
        assert_eq!(prog.test_run(&frame).expect("test run"), want);
    }
}

/// A program the verifier refuses (it returns a register it never set): the error
/// carries the verifier's reason.
#[test]
fn a_refused_program_says_why() {
    use crate::port::sys::bpf::BpfInsn;
    let exit = BpfInsn {
        code: 0x95,
        regs: 0,
        off: 0,
        imm: 0,
    };
    let refused = BpfProgram::load_socket_filter("vsw_test", &[exit]).expect_err("R0 unset");
    assert!(refused.to_string().contains("R0 !read_ok"), "{refused}");
}
