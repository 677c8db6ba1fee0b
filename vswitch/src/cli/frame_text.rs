//! One line about an Ethernet frame, for `vswitch capture` without `-w`: MACs, EtherType
//! and a short summary of what it carries (ARP, IPv4/IPv6 with ICMP, TCP, UDP; VXLAN
//! on UDP 4789 with its VNI). Never fails: what does not parse is shown as such.

use std::fmt::Write;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

const ETHERTYPE_ARP: u16 = 0x0806;

/// `SRC > DST TYPE SUMMARY, length N`.
pub fn summary(frame: &[u8]) -> String {
    let mut s = String::new();
    let Some(eth) = frame.get(..14) else {
        return format!("runt frame, length {}", frame.len());
    };
    let _ = write!(s, "{} > {} ", mac(&eth[6..12]), mac(&eth[0..6]));
    let ethertype = u16::from_be_bytes([eth[12], eth[13]]);
    match ethertype {
        0x0800 => s.push_str("IPv4 "),
        0x86dd => s.push_str("IPv6 "),
        ETHERTYPE_ARP => s.push_str("ARP "),
        0x8100 => s.push_str("802.1Q "),
        other => {
            let _ = write!(s, "ethertype 0x{other:04x} ");
        }
    }
    if ethertype == ETHERTYPE_ARP {
        s.push_str(&arp(&frame[14..]));
    } else {
        s.push_str(&l3(frame));
    }
    let _ = write!(s, ", length {}", frame.len());
    s
}

fn mac(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn arp(p: &[u8]) -> String {
    if p.len() < 28 {
        return "truncated".into();
    }
    let ip = |b: &[u8]| format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]);
    match u16::from_be_bytes([p[6], p[7]]) {
        1 => format!("request who-has {} tell {}", ip(&p[24..28]), ip(&p[14..18])),
        2 => format!("reply {} is-at {}", ip(&p[14..18]), mac(&p[8..14])),
        op => format!("op {op}"),
    }
}

fn l3(frame: &[u8]) -> String {
    let Ok(p) = SlicedPacket::from_ethernet(frame) else {
        return "malformed".into();
    };
    let (src, dst) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => (
            ip.header().source_addr().to_string(),
            ip.header().destination_addr().to_string(),
        ),
        Some(NetSlice::Ipv6(ip)) => (
            ip.header().source_addr().to_string(),
            ip.header().destination_addr().to_string(),
        ),
        _ => return String::new(),
    };
    let fragment = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            ip.header().more_fragments() || ip.header().fragments_offset().value() > 0
        }
        _ => false,
    };
    match &p.transport {
        Some(TransportSlice::Tcp(t)) => {
            let flags: String = [
                (t.syn(), 'S'),
                (t.fin(), 'F'),
                (t.rst(), 'R'),
                (t.psh(), 'P'),
                (t.ack(), '.'),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, c)| *c)
            .collect();
            format!(
                "{src}.{} > {dst}.{} TCP [{flags}] len {}",
                t.source_port(),
                t.destination_port(),
                t.payload().len()
            )
        }
        Some(TransportSlice::Udp(u)) => {
            let mut s = format!(
                "{src}.{} > {dst}.{} UDP len {}",
                u.source_port(),
                u.destination_port(),
                u.payload().len()
            );
            if u.destination_port() == vtep::VXLAN_PORT
                && let Ok(v) = vtep::VxlanPacket::new_checked(u.payload())
            {
                let _ = write!(s, " VXLAN vni {}", v.vni().get());
            }
            s
        }
        Some(TransportSlice::Icmpv4(i)) => {
            let b = i.slice();
            let what = match (i.type_u8(), i.code_u8()) {
                (8, _) => format!("echo request id {} seq {}", be16(b, 4), be16(b, 6)),
                (0, _) => format!("echo reply id {} seq {}", be16(b, 4), be16(b, 6)),
                (3, 4) => format!("unreachable, frag needed mtu {}", be16(b, 6)),
                (3, c) => format!("unreachable code {c}"),
                (11, _) => "time exceeded".into(),
                (t, c) => format!("type {t} code {c}"),
            };
            format!("{src} > {dst} ICMP {what}")
        }
        Some(TransportSlice::Icmpv6(i)) => {
            let b = i.slice();
            let what = match i.type_u8() {
                128 => format!("echo request id {} seq {}", be16(b, 4), be16(b, 6)),
                129 => format!("echo reply id {} seq {}", be16(b, 4), be16(b, 6)),
                2 => format!(
                    "packet too big mtu {}",
                    u32::from_be_bytes([b[4], b[5], b[6], b[7]])
                ),
                135 => "neighbor solicitation".into(),
                136 => "neighbor advertisement".into(),
                t => format!("type {t}"),
            };
            format!("{src} > {dst} ICMP6 {what}")
        }
        _ if fragment => format!("{src} > {dst} fragment"),
        _ => format!("{src} > {dst}"),
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    #[test]
    fn echo_request_udp_and_arp_lines() {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .icmpv4_echo_request(7, 3)
            .write(&mut f, b"ping")
            .unwrap();
        assert_eq!(
            summary(&f),
            "02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 10.0.0.1 > 10.0.0.2 ICMP echo request id 7 seq 3, length 46"
        );
        let mut f = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1000, 53)
            .write(&mut f, b"q")
            .unwrap();
        assert!(summary(&f).contains("10.0.0.1.1000 > 10.0.0.2.53 UDP len 1"));
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1]);
        arp.extend_from_slice(&[0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
        assert!(summary(&arp).ends_with("ARP request who-has 10.0.0.2 tell 10.0.0.1, length 42"));
        assert_eq!(summary(&[1, 2]), "runt frame, length 2");
    }
}
