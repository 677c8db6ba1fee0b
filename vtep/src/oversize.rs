//! What to do with an inner frame too big for the overlay MTU.
//!
//! [`needs_icmp`] classifies an oversize frame from a local port: IPv4 with DF and
//! IPv6 get an ICMP error back ([`crate::icmp`]), IPv4 without DF is fragmented
//! ([`crate::fragment`]), non-IP frames are dropped. The rules for not answering with
//! an error (RFC 1122 section 3.2.2, RFC 4443 section 2.4 (e)):
//! - never about an ICMP error message (IPv4 types 3, 4, 5, 11, 12; ICMPv6 types below
//!   128), so two hosts cannot bounce errors forever;
//! - IPv4: never about a non-first fragment, nor a datagram to a broadcast or multicast
//!   address (IP or MAC);
//! - IPv6: "packet too big" is the one error RFC 4443 allows for multicast
//!   destinations (path MTU discovery for multicast needs it), so those are answered;
//!   non-first fragments are answered too (the sender fragments again, smaller);
//! - never to a source that cannot be answered: unspecified, loopback, multicast,
//!   broadcast or class E IPv4, unspecified/loopback/multicast IPv6, or a group MAC.
//!
//! Frames not answered are dropped with an [`OversizeDrop`] reason, for counting.
//!
//! VLAN tags: the MTU is the IP packet's limit, as for any link. A tunnel carries
//! frames up to its overlay MTU plus an untagged Ethernet header, though, so a tagged
//! frame has less room there for its packet: [`tunnel_ip_mtu`] says how much.

use std::net::Ipv4Addr;

use etherparse::{IpNumber, Ipv6ExtensionsSlice};

use crate::l2::{self, ETH_HLEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ipv4_at, ipv6_at};

/// The largest IP packet `frame` can carry through a tunnel of overlay MTU `mtu`. The
/// overlay MTU is the underlay's less the encapsulation counted with an untagged inner
/// Ethernet header, so the tunnel takes frames of at most `mtu` + 14 bytes, and each
/// VLAN tag of the frame takes 4 bytes from its packet. Untagged (or too short to
/// tell): `mtu`. Use it for [`needs_icmp`] and for the MTU that the ICMP error reports
/// and the fragments are cut to, so that the sender behind the tag learns what fits.
pub fn tunnel_ip_mtu(frame: &[u8], mtu: u32) -> u32 {
    match l2::network_offset(frame) {
        Some((l3, _)) => {
            let room = (mtu as usize + ETH_HLEN).saturating_sub(l3);
            u32::try_from(room).unwrap_or(mtu)
        }
        None => mtu,
    }
}

/// What to do with a frame, given the overlay MTU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The IP packet (or non-IP payload) is within the MTU: forward it.
    Fits,
    /// IPv4 with DF: answer with [`crate::icmp::build_frag_needed`], drop the frame.
    Ipv4Df,
    /// IPv4 without DF: fragment it ([`crate::fragment`]).
    Ipv4NoDf,
    /// IPv6: answer with [`crate::icmp::build_packet_too_big`], drop the frame.
    Ipv6,
    /// Drop without an answer, counted under this reason.
    Drop(OversizeDrop),
}

/// Why an oversize frame is dropped without an ICMP answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum OversizeDrop {
    #[error("oversize frame is not IP")]
    NotIp,
    #[error("oversize frame has a malformed IP header")]
    Malformed,
    #[error("oversize packet is an ICMP error: no error about an error")]
    IcmpError,
    #[error("oversize packet is a non-first IPv4 fragment")]
    NonFirstFragment,
    #[error("oversize IPv4 packet to a broadcast or multicast destination")]
    GroupDestination,
    #[error("oversize packet from a source that cannot be answered")]
    BadSource,
}

impl OversizeDrop {
    /// Number of variants, for counter arrays.
    pub const COUNT: usize = 6;

    /// Every variant, in [`index`](Self::index) order.
    pub const ALL: [OversizeDrop; Self::COUNT] = [
        OversizeDrop::NotIp,
        OversizeDrop::Malformed,
        OversizeDrop::IcmpError,
        OversizeDrop::NonFirstFragment,
        OversizeDrop::GroupDestination,
        OversizeDrop::BadSource,
    ];

    /// A dense index `< COUNT`.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A short snake_case name for stats output.
    pub const fn name(self) -> &'static str {
        match self {
            OversizeDrop::NotIp => "oversize_not_ip",
            OversizeDrop::Malformed => "oversize_malformed",
            OversizeDrop::IcmpError => "oversize_icmp_error",
            OversizeDrop::NonFirstFragment => "oversize_non_first_fragment",
            OversizeDrop::GroupDestination => "oversize_group_destination",
            OversizeDrop::BadSource => "oversize_bad_source",
        }
    }
}

fn bad_v4_source(a: Ipv4Addr) -> bool {
    a.is_unspecified()
        || a.is_loopback()
        || a.is_multicast()
        || a.is_broadcast()
        || a.octets()[0] >= 240
}

/// Classifies `frame` against `mtu`, the largest inner IP packet; see the module doc.
/// A frame whose IP packet fits but which carries bytes after it (Ethernet padding
/// or junk) is `Fits`; trimming it to the IP length is the caller's choice. For a GSO
/// super-frame compare the segment size instead: it is cut up later.
pub fn needs_icmp(frame: &[u8], mtu: u32) -> Verdict {
    let mtu = mtu as usize;
    let Some((l3, ethertype)) = l2::network_offset(frame) else {
        return Verdict::Drop(OversizeDrop::Malformed);
    };
    // The fast path, and the only answer for a frame that is not oversize, however
    // malformed: this function judges size, not well-formedness.
    if frame.len() - l3 <= mtu {
        return Verdict::Fits;
    }
    let src_mac_group = l2::is_group_mac(frame.get(6..12).unwrap_or_default());
    match ethertype {
        ETHERTYPE_IPV4 => {
            let Some((ip, total)) = ipv4_at(frame, l3) else {
                return Verdict::Drop(OversizeDrop::Malformed);
            };
            if total <= mtu {
                return Verdict::Fits;
            }
            if !ip.dont_fragment() {
                return Verdict::Ipv4NoDf;
            }
            if ip.fragments_offset().value() != 0 {
                return Verdict::Drop(OversizeDrop::NonFirstFragment);
            }
            let dst = ip.destination_addr();
            if l2::is_group_mac(&frame[..6]) || dst.is_multicast() || dst.is_broadcast() {
                return Verdict::Drop(OversizeDrop::GroupDestination);
            }
            if src_mac_group || bad_v4_source(ip.source_addr()) {
                return Verdict::Drop(OversizeDrop::BadSource);
            }
            if ip.protocol() == IpNumber::ICMP {
                let at = l3 + ip.slice().len();
                match frame.get(at) {
                    Some(3 | 4 | 5 | 11 | 12) => return Verdict::Drop(OversizeDrop::IcmpError),
                    Some(_) => {}
                    None => return Verdict::Drop(OversizeDrop::Malformed),
                }
            }
            Verdict::Ipv4Df
        }
        ETHERTYPE_IPV6 => {
            let Some((ip, total)) = ipv6_at(frame, l3) else {
                return Verdict::Drop(OversizeDrop::Malformed);
            };
            if ip.payload_length() == 0 {
                // A jumbogram (payload length 0, RFC 2675) larger than the MTU, or junk.
                return Verdict::Drop(OversizeDrop::Malformed);
            }
            if total <= mtu {
                return Verdict::Fits;
            }
            let src = ip.source_addr();
            if src_mac_group || src.is_unspecified() || src.is_loopback() || src.is_multicast() {
                return Verdict::Drop(OversizeDrop::BadSource);
            }
            let body = &frame[l3 + 40..l3 + total];
            let Ok((exts, next, rest)) = Ipv6ExtensionsSlice::from_slice(ip.next_header(), body)
            else {
                return Verdict::Drop(OversizeDrop::Malformed);
            };
            if !exts.is_fragmenting_payload() && next == IpNumber::IPV6_ICMP {
                match rest.first() {
                    Some(t) if *t < 128 => return Verdict::Drop(OversizeDrop::IcmpError),
                    Some(_) => {}
                    None => return Verdict::Drop(OversizeDrop::Malformed),
                }
            }
            Verdict::Ipv6
        }
        _ => Verdict::Drop(OversizeDrop::NotIp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_frames::*;

    #[test]
    fn verdicts() {
        assert_eq!(
            needs_icmp(&udp4(1450, true, [10, 0, 0, 2]), 1450),
            Verdict::Fits
        );
        assert_eq!(
            needs_icmp(&udp4(1451, true, [10, 0, 0, 2]), 1450),
            Verdict::Ipv4Df
        );
        assert_eq!(
            needs_icmp(&udp4(1500, false, [10, 0, 0, 2]), 1450),
            Verdict::Ipv4NoDf
        );
        assert_eq!(needs_icmp(&udp6(1500, V6_PEER), 1430), Verdict::Ipv6);
        assert_eq!(needs_icmp(&udp6(1430, V6_PEER), 1430), Verdict::Fits);
        // Tagged: 4 bytes less room per tag in the tunnel.
        let mut tagged = udp4(1450, true, [10, 0, 0, 2]);
        tagged.splice(12..12, [0x81, 0x00, 0x00, 0x09]);
        assert_eq!(tunnel_ip_mtu(&tagged, 1450), 1446);
        assert_eq!(needs_icmp(&tagged, 1446), Verdict::Ipv4Df);
        tagged.splice(12..12, [0x88, 0xa8, 0x00, 0x05]);
        assert_eq!(tunnel_ip_mtu(&tagged, 1450), 1442);
        assert_eq!(tunnel_ip_mtu(&udp4(1450, true, [10, 0, 0, 2]), 1450), 1450);
        assert_eq!(tunnel_ip_mtu(&[0u8; 8], 1450), 1450);
        let mut arp = vec![0u8; 1500];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(needs_icmp(&arp, 1450), Verdict::Drop(OversizeDrop::NotIp));
        assert_eq!(needs_icmp(&arp[..60], 1450), Verdict::Fits);
        assert_eq!(
            needs_icmp(&[1, 2, 3], 1450),
            Verdict::Drop(OversizeDrop::Malformed)
        );
    }

    #[test]
    fn no_answer_cases() {
        let drop = |d| Verdict::Drop(d);
        let f = udp4(1500, true, [224, 0, 0, 5]);
        assert_eq!(needs_icmp(&f, 1450), drop(OversizeDrop::GroupDestination));
        let f = udp4(1500, true, [255, 255, 255, 255]);
        assert_eq!(needs_icmp(&f, 1450), drop(OversizeDrop::GroupDestination));
        let mut f = udp4(1500, true, [10, 0, 0, 2]);
        f[0] = 0xff; // broadcast MAC
        assert_eq!(needs_icmp(&f, 1450), drop(OversizeDrop::GroupDestination));
        let mut f = udp4(1500, true, [10, 0, 0, 2]);
        f[14 + 12..14 + 16].copy_from_slice(&[0, 0, 0, 0]);
        assert_eq!(needs_icmp(&f, 1450), drop(OversizeDrop::BadSource));
        let mut f = udp4(1500, true, [10, 0, 0, 2]);
        f[14 + 7] = 1; // offset 8 bytes: a non-first fragment
        assert_eq!(needs_icmp(&f, 1450), drop(OversizeDrop::NonFirstFragment));
        let mut f = udp4(1500, true, [10, 0, 0, 2]);
        f[14 + 9] = 1; // ICMP ...
        f[34] = 3; // ... destination unreachable
        assert_eq!(needs_icmp(&f, 1450), drop(OversizeDrop::IcmpError));
        f[34] = 8; // echo request is answered
        assert_eq!(needs_icmp(&f, 1450), Verdict::Ipv4Df);
        let mut f = udp6(1500, V6_PEER);
        f[14 + 6] = 58;
        f[54] = 1; // ICMPv6 destination unreachable
        assert_eq!(needs_icmp(&f, 1430), drop(OversizeDrop::IcmpError));
        f[54] = 128; // echo request
        assert_eq!(needs_icmp(&f, 1430), Verdict::Ipv6);
        // Multicast destinations get a packet too big on IPv6 (RFC 4443 2.4 e.3).
        let mut mc = [0u8; 16];
        mc[0] = 0xff;
        mc[15] = 1;
        assert_eq!(needs_icmp(&udp6(1500, mc), 1430), Verdict::Ipv6);
        let mut f = udp4(1500, true, [10, 0, 0, 2]);
        f[14 + 2..14 + 4].copy_from_slice(&4000u16.to_be_bytes()); // longer than the frame
        assert_eq!(needs_icmp(&f, 1450), drop(OversizeDrop::Malformed));
        for (i, d) in OversizeDrop::ALL.iter().enumerate() {
            assert_eq!(d.index(), i);
            assert!(d.name().starts_with("oversize_"));
        }
    }
}
