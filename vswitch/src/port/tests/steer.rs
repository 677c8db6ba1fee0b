//! The steering programs on real fanout groups: which queue gets which frame.

use std::net::UdpSocket;
use std::time::Duration;

use super::af_packet::recv_within;
use super::lab::{Ns, veth};
use crate::packet::PacketBuf;
use crate::port::af_packet::PacketPort;
use crate::port::steer;

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
    let got = read_all(&mut ports);
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
    use std::net::IpAddr;
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
    let flows: Vec<(&str, &str, u16, u16)> = (0..6)
        .flat_map(|k| {
            [
                ("10.79.1.2", "10.79.1.1", 7000 + k, 9000),
                ("fd00:79::2", "fd00:79::1", 7100 + k, 9001 + 2 * k),
            ]
        })
        .collect();
    let to_send = flows.clone();
    ctr.run(move || {
        for (src, dst, sport, dport) in to_send {
            let s = UdpSocket::bind((src, sport)).expect("bind");
            for _ in 0..3 {
                s.send_to(b"lanes", (dst, dport)).expect("send");
            }
        }
    });
    ctr.exec(&["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.79.1.1"])
        .expect("ping sw");
    let got = read_all(&mut ports);
    let mut used = [false; 2];
    for (src, dst, sport, dport) in flows {
        let (s, d): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        let want = (steer::reference_hash(s, d, Some((sport, dport))) % 2) as usize;
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
    let want = (steer::reference_hash(
        "10.79.1.2".parse().unwrap(),
        "10.79.1.1".parse().unwrap(),
        None,
    ) % 2) as usize;
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
fn read_all(ports: &mut [PacketPort]) -> Vec<(usize, Flow)> {
    let mut bufs: Vec<PacketBuf> = (0..64).map(|_| PacketBuf::new()).collect();
    let mut got = Vec::new();
    for (queue, port) in ports.iter_mut().enumerate() {
        loop {
            let n = recv_within(port, &mut bufs, Duration::from_millis(300));
            if n == 0 {
                break;
            }
            got.extend(
                bufs[..n]
                    .iter()
                    .filter_map(|b| flow_of(b.frame()))
                    .map(|f| (queue, f)),
            );
        }
    }
    got
}
