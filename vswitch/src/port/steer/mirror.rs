//! What the steering programs decide, computed in Rust from the same bytes: which
//! worker reads a frame, for `vswitch trace` (it runs a frame on that worker, whose
//! NAT lane and caches are the ones the real frame meets), and what the tests that run
//! the programs on the kernel expect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;

use super::GOLDEN;

/// The flow hash of [`super::flow_lanes`] and [`super::tap_lanes`] ([`super::underlay_lanes`]
/// returns it modulo the queues): the addresses XORed (as 32-bit words), XORed with the
/// two ports XORed (`ports`: TCP or UDP, not a fragment), multiplied and shifted.
pub fn flow_hash(src: IpAddr, dst: IpAddr, ports: Option<(u16, u16)>) -> u32 {
    let fold = |ip: IpAddr| -> u32 {
        match ip {
            IpAddr::V4(a) => u32::from(a),
            IpAddr::V6(a) => a
                .octets()
                .chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .fold(0, |h, w| h ^ w),
        }
    };
    let mut h = fold(src) ^ fold(dst);
    if let Some((s, d)) = ports {
        h ^= u32::from(s ^ d);
    }
    h.wrapping_mul(GOLDEN) >> 16
}

/// [`flow_hash`] of an Ethernet frame, read as the programs read it: 0 for anything
/// but untagged IPv4 and IPv6, and for a frame too short for what they load (a load
/// past the end ends a program with 0).
pub fn flow_hash_of_frame(frame: &[u8]) -> u32 {
    hashed_flow(frame).unwrap_or(0)
}

/// The big-endian 16 bits at `at`, if the frame has them.
fn be16_at(frame: &[u8], at: usize) -> Option<u16> {
    frame
        .get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
}

fn hashed_flow(frame: &[u8]) -> Option<u32> {
    let be16 = |at: usize| be16_at(frame, at);
    let ports_at = |at: usize| Some((be16(at)?, be16(at + 2)?));
    match be16(12)? {
        0x0800 => {
            let ip = frame.get(14..34)?;
            let addr = |at: usize| Ipv4Addr::new(ip[at], ip[at + 1], ip[at + 2], ip[at + 3]);
            let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
            let ports = match ip[9] {
                6 | 17 if !fragment => Some(ports_at(14 + usize::from(ip[0] & 0x0f) * 4)?),
                _ => None,
            };
            Some(flow_hash(addr(12).into(), addr(16).into(), ports))
        }
        0x86dd => {
            let ip = frame.get(14..54)?;
            let addr = |at: usize| {
                let octets: [u8; 16] = ip[at..at + 16].try_into().unwrap_or_default();
                Ipv6Addr::from(octets)
            };
            let ports = match ip[6] {
                6 | 17 => Some(ports_at(54)?),
                _ => None,
            };
            Some(flow_hash(addr(8).into(), addr(24).into(), ports))
        }
        _ => Some(0),
    }
}

/// What [`super::nat_replies`] returns for a frame from the uplink whose masqueraded
/// flows use `range`; `None` where the program returns the kernel's receive hash,
/// which only the device knows (or 0, for a frame too short for its loads).
pub fn nat_reply_lane_of_frame(frame: &[u8], range: &RangeInclusive<u16>) -> Option<u32> {
    let be16 = |at: usize| be16_at(frame, at);
    if be16(12)? != 0x0800 {
        return None;
    }
    let l4 = 14 + usize::from(frame.get(14)? & 0x0f) * 4;
    match frame.get(23)? {
        6 | 17 => {
            let dport = be16(l4 + 2)?;
            let port = if range.contains(&dport) {
                dport
            } else {
                be16(l4)?
            };
            Some(u32::from(port))
        }
        1 if frame.get(l4) == Some(&0) => be16(l4 + 4).map(u32::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_the_same_both_ways() {
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        assert_eq!(
            flow_hash(a, b, Some((40000, 80))),
            flow_hash(b, a, Some((80, 40000)))
        );
        assert_ne!(
            flow_hash(a, b, Some((40000, 80))),
            flow_hash(a, b, Some((40001, 80)))
        );
    }

    /// Sixteen connections from one client to one server, with the even source ports
    /// Linux gives `connect()`, spread over two and over four queues.
    #[test]
    fn even_source_ports_still_spread() {
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for queues in [2, 4] {
            let mut per = vec![0; queues];
            for k in 0..16u16 {
                per[(flow_hash(a, b, Some((40000 + 2 * k, 5201))) % queues as u32) as usize] += 1;
            }
            assert!(
                per.iter().all(|&n| n >= 16 / queues / 2),
                "{queues} queues: {per:?}"
            );
        }
    }

    /// A UDP frame (IPv4 with `flags_fragment`), from 10.0.0.1:4660 to 10.0.0.2:5201.
    fn udp4(flags_fragment: [u8; 2]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend([0x08, 0x00, 0x45, 0, 0, 28, 0, 0]);
        f.extend(flags_fragment);
        f.extend([
            64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x12, 0x34, 0x14, 0x51, 0, 8, 0, 0,
        ]);
        f
    }

    #[test]
    fn frames_are_read_as_the_programs_read_them() {
        let (a, b) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let whole = udp4([0x40, 0]);
        assert_eq!(
            flow_hash_of_frame(&whole),
            flow_hash(a, b, Some((4660, 5201)))
        );
        // A fragment has no ports; a frame cut inside its ports ends the program.
        assert_eq!(flow_hash_of_frame(&udp4([0x20, 0])), flow_hash(a, b, None));
        assert_eq!(flow_hash_of_frame(&whole[..37]), 0);
        // ARP, and a tagged frame: 0.
        let mut arp = whole.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(flow_hash_of_frame(&arp), 0);
        // From the uplink: the destination port when it is in the range, else the source.
        assert_eq!(nat_reply_lane_of_frame(&whole, &(5000..=6000)), Some(5201));
        assert_eq!(
            nat_reply_lane_of_frame(&whole, &(40000..=60999)),
            Some(4660)
        );
        assert_eq!(nat_reply_lane_of_frame(&arp, &(5000..=6000)), None);
    }
}
