//! Decapsulation: checking a received VXLAN datagram and finding the inner frame.
//!
//! [`decapsulate`] takes the UDP payload as a socket hands it over (the daemon's normal
//! path: the kernel has already checked the outer IP and UDP headers) and the source
//! address. It checks, in this order, and refuses with a [`DecapError`] the daemon
//! counts:
//! 1. length: a VXLAN header and at least an Ethernet header behind it;
//! 2. flags: the policy of [`crate::header`] (I set, nothing else);
//! 3. the VNI is one this host has a network for ([`KnownVnis`]);
//! 4. the source is a peer that carries that VNI ([`PeerLookup`]).
//!
//! [`decapsulate_ip`] does the outer IPv4/IPv6 + UDP checks itself, for raw sockets,
//! captures and tests. Nothing is copied: both return where the inner frame lies.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::ops::Range;

use etherparse::{Ipv4HeaderSlice, Ipv6ExtensionsSlice, Ipv6HeaderSlice};

use crate::checksum;
use crate::header::{HEADER_LEN, HeaderError, Vni, VxlanPacket, VxlanRepr};
use crate::l2::ETH_HLEN;
use crate::peers::PeerLookup;

/// The VNIs this host has networks for.
pub trait KnownVnis {
    fn knows_vni(&self, vni: Vni) -> bool;
}

impl<F: Fn(Vni) -> bool> KnownVnis for F {
    fn knows_vni(&self, vni: Vni) -> bool {
        self(vni)
    }
}

impl KnownVnis for [Vni] {
    fn knows_vni(&self, vni: Vni) -> bool {
        self.contains(&vni)
    }
}

impl<S: std::hash::BuildHasher> KnownVnis for HashSet<Vni, S> {
    fn knows_vni(&self, vni: Vni) -> bool {
        self.contains(&vni)
    }
}

impl KnownVnis for BTreeSet<Vni> {
    fn knows_vni(&self, vni: Vni) -> bool {
        self.contains(&vni)
    }
}

/// Why a datagram was dropped. Small and `Copy`, for per-worker drop counters:
/// `counters[err.index()] += 1`, labelled with [`DecapError::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DecapError {
    #[error("datagram too short for a VXLAN header and an inner Ethernet header")]
    Truncated,
    #[error("VXLAN flags invalid: I flag missing or unsupported extension bits set")]
    BadFlags,
    #[error("VXLAN VNI not configured on this host")]
    UnknownVni,
    #[error("VXLAN datagram from a source that is not a peer for its VNI")]
    NotAPeer,
    #[error("outer IP or UDP header malformed")]
    BadOuter,
    #[error("outer IP datagram is a fragment (not reassembled)")]
    OuterFragment,
    #[error("not UDP to the VXLAN port")]
    NotVxlan,
    #[error("outer UDP checksum wrong (or zero over IPv6)")]
    BadChecksum,
}

impl DecapError {
    /// Number of variants, for counter arrays.
    pub const COUNT: usize = 8;

    /// Every variant, in [`index`](Self::index) order.
    pub const ALL: [DecapError; Self::COUNT] = [
        DecapError::Truncated,
        DecapError::BadFlags,
        DecapError::UnknownVni,
        DecapError::NotAPeer,
        DecapError::BadOuter,
        DecapError::OuterFragment,
        DecapError::NotVxlan,
        DecapError::BadChecksum,
    ];

    /// A dense index `< COUNT`.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A short snake_case name for stats output.
    pub const fn name(self) -> &'static str {
        match self {
            DecapError::Truncated => "vxlan_truncated",
            DecapError::BadFlags => "vxlan_bad_flags",
            DecapError::UnknownVni => "vxlan_unknown_vni",
            DecapError::NotAPeer => "vxlan_not_a_peer",
            DecapError::BadOuter => "vxlan_bad_outer",
            DecapError::OuterFragment => "vxlan_outer_fragment",
            DecapError::NotVxlan => "vxlan_not_vxlan",
            DecapError::BadChecksum => "vxlan_bad_checksum",
        }
    }
}

impl From<HeaderError> for DecapError {
    fn from(e: HeaderError) -> Self {
        match e {
            HeaderError::Truncated { .. } => DecapError::Truncated,
            HeaderError::MissingIFlag { .. } | HeaderError::UnknownFlags { .. } => {
                DecapError::BadFlags
            }
        }
    }
}

/// A datagram that passed the checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decapsulated {
    pub vni: Vni,
    /// Where the inner Ethernet frame lies in the buffer that was passed in.
    pub inner: Range<usize>,
}

/// Checks a VXLAN UDP payload received from `src`; see the module doc.
pub fn decapsulate<V, P>(
    udp_payload: &[u8],
    src: IpAddr,
    vnis: &V,
    peers: &P,
) -> Result<Decapsulated, DecapError>
where
    V: KnownVnis + ?Sized,
    P: PeerLookup + ?Sized,
{
    if udp_payload.len() < HEADER_LEN + ETH_HLEN {
        return Err(DecapError::Truncated);
    }
    let repr = VxlanRepr::parse(&VxlanPacket::new_unchecked(udp_payload))?;
    if !vnis.knows_vni(repr.vni) {
        return Err(DecapError::UnknownVni);
    }
    if !peers.is_peer(src, repr.vni) {
        return Err(DecapError::NotAPeer);
    }
    Ok(Decapsulated {
        vni: repr.vni,
        inner: HEADER_LEN..udp_payload.len(),
    })
}

/// A full outer datagram that passed the checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecapDatagram {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub vni: Vni,
    /// Where the inner Ethernet frame lies in the packet that was passed in.
    pub inner: Range<usize>,
}

/// Checks an outer IPv4 or IPv6 packet: the IPv4 header checksum, lengths, no
/// fragmentation, UDP to `vxlan_port`, the UDP checksum when present (always on IPv6);
/// then [`decapsulate`]. Bytes past the IP length (Ethernet padding) are ignored.
pub fn decapsulate_ip<V, P>(
    packet: &[u8],
    vxlan_port: u16,
    vnis: &V,
    peers: &P,
) -> Result<DecapDatagram, DecapError>
where
    V: KnownVnis + ?Sized,
    P: PeerLookup + ?Sized,
{
    let (src, dst, proto, l4, end, pseudo): (IpAddr, IpAddr, u8, usize, usize, u32) =
        match packet.first().map(|b| b >> 4) {
            Some(4) => {
                let ip = Ipv4HeaderSlice::from_slice(packet).map_err(|_| DecapError::BadOuter)?;
                let hlen = ip.slice().len();
                let total = usize::from(ip.total_len());
                if total < hlen || total > packet.len() || checksum::checksum(ip.slice()) != 0 {
                    return Err(DecapError::BadOuter);
                }
                if ip.is_fragmenting_payload() {
                    return Err(DecapError::OuterFragment);
                }
                let (s, d) = (ip.source_addr(), ip.destination_addr());
                let len = (total - hlen) as u16;
                let pseudo = checksum::pseudo_header_v4(s, d, ip.protocol().0, len);
                (s.into(), d.into(), ip.protocol().0, hlen, total, pseudo)
            }
            Some(6) => {
                let ip = Ipv6HeaderSlice::from_slice(packet).map_err(|_| DecapError::BadOuter)?;
                let end = 40 + usize::from(ip.payload_length());
                let body = packet.get(40..end).ok_or(DecapError::BadOuter)?;
                let (exts, proto, _) = Ipv6ExtensionsSlice::from_slice(ip.next_header(), body)
                    .map_err(|_| DecapError::BadOuter)?;
                if exts.is_fragmenting_payload() {
                    return Err(DecapError::OuterFragment);
                }
                let l4 = 40 + exts.slice().len();
                let (s, d) = (ip.source_addr(), ip.destination_addr());
                let pseudo = checksum::pseudo_header_v6(s, d, proto.0, (end - l4) as u32);
                (s.into(), d.into(), proto.0, l4, end, pseudo)
            }
            _ => return Err(DecapError::BadOuter),
        };
    if proto != 17 {
        return Err(DecapError::NotVxlan);
    }
    let udp = packet.get(l4..end).ok_or(DecapError::BadOuter)?;
    let (Some(src_port), Some(dst_port), Some(len), Some(csum)) = (
        crate::l2::be16(udp, 0),
        crate::l2::be16(udp, 2),
        crate::l2::be16(udp, 4),
        crate::l2::be16(udp, 6),
    ) else {
        return Err(DecapError::BadOuter);
    };
    if dst_port != vxlan_port {
        return Err(DecapError::NotVxlan);
    }
    if usize::from(len) != udp.len() {
        return Err(DecapError::BadOuter);
    }
    // Zero means "no checksum", which only IPv4 allows (RFC 6935 mode is not used).
    let must_verify = csum != 0 || src.is_ipv6();
    if must_verify && (csum == 0 || checksum::finish(checksum::add_bytes(pseudo, udp)) != 0) {
        return Err(DecapError::BadChecksum);
    }
    let d = decapsulate(&udp[8..], src, vnis, peers)?;
    let base = l4 + 8;
    Ok(DecapDatagram {
        src,
        dst,
        src_port,
        vni: d.vni,
        inner: base + d.inner.start..base + d.inner.end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encap::{Headroom, OuterParams, SliceBuf, push_outer};
    use crate::peers::{PeerTable, PeerVnis};

    fn vni(n: u32) -> Vni {
        Vni::new(n).unwrap()
    }

    fn peers() -> PeerTable {
        let mut t = PeerTable::new();
        t.add("192.0.2.1".parse().unwrap(), PeerVnis::only([vni(100)]))
            .unwrap();
        t.add("2001:db8::1".parse().unwrap(), PeerVnis::All)
            .unwrap();
        t
    }

    fn datagram(flags: u8, v: u32, inner_len: usize) -> Vec<u8> {
        let mut d = vec![flags, 0, 0, 0, (v >> 16) as u8, (v >> 8) as u8, v as u8, 0];
        d.extend((0..inner_len).map(|i| i as u8));
        d
    }

    #[test]
    fn accepts_a_good_datagram() {
        let d = datagram(0x08, 100, 60);
        let known = [vni(100)];
        let got = decapsulate(&d, "192.0.2.1".parse().unwrap(), &known[..], &peers()).unwrap();
        assert_eq!(
            got,
            Decapsulated {
                vni: vni(100),
                inner: 8..68
            }
        );
        assert_eq!(d[got.inner][0], 0);
    }

    #[test]
    fn drop_reasons() {
        let p = peers();
        let known = |v: Vni| v.get() == 100 || v.get() == 200;
        let v4 = "192.0.2.1".parse().unwrap();
        let run = |d: &[u8], src| decapsulate(d, src, &known, &p);
        assert_eq!(
            run(&datagram(0x08, 100, 13), v4),
            Err(DecapError::Truncated)
        );
        assert_eq!(
            run(&datagram(0x08, 100, 0)[..5], v4),
            Err(DecapError::Truncated)
        );
        assert_eq!(run(&datagram(0x00, 100, 14), v4), Err(DecapError::BadFlags));
        assert_eq!(run(&datagram(0x88, 100, 14), v4), Err(DecapError::BadFlags));
        assert_eq!(
            run(&datagram(0x08, 300, 14), v4),
            Err(DecapError::UnknownVni)
        );
        // A peer, but not for VNI 200.
        assert_eq!(run(&datagram(0x08, 200, 14), v4), Err(DecapError::NotAPeer));
        let stranger = "192.0.2.99".parse().unwrap();
        assert_eq!(
            run(&datagram(0x08, 100, 14), stranger),
            Err(DecapError::NotAPeer)
        );
        // The all-VNI peer, and its IPv4-mapped twin check.
        assert!(run(&datagram(0x08, 200, 14), "2001:db8::1".parse().unwrap()).is_ok());
        assert!(
            run(
                &datagram(0x08, 100, 14),
                "::ffff:192.0.2.1".parse().unwrap()
            )
            .is_ok()
        );
    }

    #[test]
    fn error_index_and_names_are_dense() {
        for (i, e) in DecapError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
            assert!(e.name().starts_with("vxlan_"));
            assert!(!e.to_string().is_empty());
        }
    }

    fn encapsulated(src: &str, dst: &str, csum: bool) -> Vec<u8> {
        let inner = vec![0xabu8; 64];
        let mut v = vec![0u8; 64];
        v.extend_from_slice(&inner);
        let mut b = SliceBuf::new(&mut v, 64).unwrap();
        let mut o = OuterParams::new(src.parse().unwrap(), dst.parse().unwrap(), 61000);
        o.udp_checksum = csum;
        push_outer(&mut b, vni(100), &o).unwrap();
        b.frame().to_vec()
    }

    #[test]
    fn full_datagram_checks() {
        let p = peers();
        let known = [vni(100)];
        for (src, dst) in [("192.0.2.1", "192.0.2.2"), ("2001:db8::1", "2001:db8::2")] {
            for csum in [false, true] {
                let pkt = encapsulated(src, dst, csum);
                let got = decapsulate_ip(&pkt, 4789, &known[..], &p).unwrap();
                assert_eq!(got.src, src.parse::<IpAddr>().unwrap());
                assert_eq!(got.dst, dst.parse::<IpAddr>().unwrap());
                assert_eq!(got.src_port, 61000);
                assert_eq!(&pkt[got.inner], &[0xab; 64][..]);
                assert_eq!(
                    decapsulate_ip(&pkt, 4790, &known[..], &p),
                    Err(DecapError::NotVxlan)
                );
                let mut bad = pkt.clone();
                *bad.last_mut().unwrap() ^= 1;
                let want = if csum || src.contains(':') {
                    Err(DecapError::BadChecksum)
                } else {
                    Ok(())
                };
                assert_eq!(decapsulate_ip(&bad, 4789, &known[..], &p).map(|_| ()), want);
                assert_eq!(
                    decapsulate_ip(&pkt[..pkt.len() - 1], 4789, &known[..], &p),
                    Err(DecapError::BadOuter)
                );
            }
        }
        let mut frag = encapsulated("192.0.2.1", "192.0.2.2", false);
        frag[6] = 0x20; // MF
        frag[10..12].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&frag[..20]);
        frag[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            decapsulate_ip(&frag, 4789, &known[..], &p),
            Err(DecapError::OuterFragment)
        );
        assert_eq!(
            decapsulate_ip(&[0x50; 40], 4789, &known[..], &p),
            Err(DecapError::BadOuter)
        );
        assert_eq!(
            decapsulate_ip(&[], 4789, &known[..], &p),
            Err(DecapError::BadOuter)
        );
    }
}
