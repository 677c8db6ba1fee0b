//! Oracles the targets judge results with: small, independent readings of IPv4/IPv6
//! headers and Internet checksums, written here rather than borrowed from the code under
//! test (only the checksum arithmetic is vtep's, which has its own tests against the
//! RFC 1071 examples).

use std::net::{Ipv4Addr, Ipv6Addr};

use vtep::checksum::{add_bytes, finish, pseudo_header_v4, pseudo_header_v6};

pub const ETH_HLEN: usize = 14;

pub fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// The network header's offset and EtherType, behind at most two VLAN tags.
pub fn l3_of(frame: &[u8]) -> Option<(usize, u16)> {
    let mut at = 12;
    for _ in 0..3 {
        let t = be16(frame, at)?;
        if matches!(t, 0x8100 | 0x88a8 | 0x9100) {
            at += 4;
        } else {
            return Some((at + 2, t));
        }
    }
    None
}

/// The fields of an IPv4 header the oracles need.
#[derive(Debug, Clone, Copy)]
pub struct Ip4 {
    pub ihl: usize,
    pub total: usize,
    pub proto: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub df: bool,
    pub mf: bool,
    /// Fragment offset in bytes.
    pub offset: usize,
}

/// Reads an IPv4 header at the start of `p` (version 4, IHL >= 5, header present).
pub fn ipv4(p: &[u8]) -> Option<Ip4> {
    let first = *p.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 || p.len() < ihl {
        return None;
    }
    let frag = be16(p, 6)?;
    Some(Ip4 {
        ihl,
        total: usize::from(be16(p, 2)?),
        proto: p[9],
        src: Ipv4Addr::new(p[12], p[13], p[14], p[15]),
        dst: Ipv4Addr::new(p[16], p[17], p[18], p[19]),
        df: frag & 0x4000 != 0,
        mf: frag & 0x2000 != 0,
        offset: usize::from(frag & 0x1fff) * 8,
    })
}

/// Whether the IPv4 header at the start of `p` has a right header checksum.
pub fn ipv4_header_ok(p: &[u8]) -> bool {
    ipv4(p).is_some_and(|ip| finish(add_bytes(0, &p[..ip.ihl])) == 0)
}

/// Whether the TCP, UDP or ICMP checksum of the IPv4 packet at the start of `p` is right;
/// `None` when it cannot be judged (a fragment, lengths that do not fit, UDP without a
/// checksum, another protocol).
pub fn l4_ok_v4(p: &[u8]) -> Option<bool> {
    let ip = ipv4(p)?;
    if ip.mf || ip.offset != 0 || ip.total < ip.ihl || ip.total > p.len() {
        return None;
    }
    let l4 = &p[ip.ihl..ip.total];
    let len = u16::try_from(l4.len()).ok()?;
    let sum = match ip.proto {
        1 => add_bytes(0, l4),
        6 if l4.len() >= 20 => add_bytes(pseudo_header_v4(ip.src, ip.dst, 6, len), l4),
        17 if l4.len() >= 8 => {
            if be16(l4, 6)? == 0 {
                return None;
            }
            add_bytes(pseudo_header_v4(ip.src, ip.dst, 17, len), l4)
        }
        _ => return None,
    };
    Some(finish(sum) == 0)
}

/// The same for an IPv6 packet without extension headers (TCP, UDP, ICMPv6).
pub fn l4_ok_v6(p: &[u8]) -> Option<bool> {
    if p.first()? >> 4 != 6 || p.len() < 40 {
        return None;
    }
    let end = 40 + usize::from(be16(p, 4)?);
    let l4 = p.get(40..end)?;
    let next = p[6];
    let min = match next {
        6 => 20,
        17 | 58 => 8,
        _ => return None,
    };
    if l4.len() < min {
        return None;
    }
    let addr = |at: usize| -> Option<Ipv6Addr> {
        let b: [u8; 16] = p.get(at..at + 16)?.try_into().ok()?;
        Some(Ipv6Addr::from(b))
    };
    let pseudo = pseudo_header_v6(addr(8)?, addr(24)?, next, l4.len() as u32);
    Some(finish(add_bytes(pseudo, l4)) == 0)
}

/// The L4 checksum of the IP packet in an Ethernet frame, v4 or v6.
pub fn frame_l4_ok(frame: &[u8]) -> Option<bool> {
    let (l3, t) = l3_of(frame)?;
    let p = frame.get(l3..)?;
    match t {
        0x0800 => l4_ok_v4(p),
        0x86dd => l4_ok_v6(p),
        _ => None,
    }
}

/// Offsets at which `a` and `b` (same length) differ.
pub fn diff(a: &[u8], b: &[u8]) -> Vec<usize> {
    assert_eq!(a.len(), b.len(), "a rewrite in place changed the length");
    a.iter()
        .zip(b)
        .enumerate()
        .filter(|(_, (x, y))| x != y)
        .map(|(i, _)| i)
        .collect()
}
