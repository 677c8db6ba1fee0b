//! Encapsulation: writing the VXLAN header, or the whole outer IPv4/IPv6 + UDP + VXLAN
//! stack, into the headroom in front of an inner Ethernet frame.
//!
//! The daemon's normal path is [`push_vxlan`]: it sends through a UDP socket and the
//! kernel adds the outer IP and UDP headers. [`push_outer`] and
//! [`push_outer_ethernet`] write those headers too, for raw sends, captures and tests.
//!
//! Each function pushes all its headers with a single `push_front`, so a buffer with
//! too little headroom is left exactly as it was. The outer headers are written byte by
//! byte rather than through etherparse's header structs: they are fixed-layout (no
//! options, no extension headers), go straight into the headroom, and the struct route
//! would need fallible conversions of DSCP/ECN/flow-label values we already hold as
//! plain integers.
//!
//! UDP checksum: on IPv4 it is zero unless [`OuterParams::udp_checksum`] asks for it
//! (RFC 7348 section 5 allows zero, and Linux sends zero by default); on IPv6 it is
//! always computed, since we do not use the RFC 6935/6936 zero-checksum exception.

use std::net::IpAddr;

use crate::checksum;
use crate::header::{Vni, VxlanRepr};

/// Length of the VXLAN header.
pub const VXLAN_HLEN: usize = crate::header::HEADER_LEN;
/// Length of a UDP header.
pub const UDP_HLEN: usize = 8;
/// Length of an IPv4 header without options.
pub const IPV4_HLEN: usize = 20;
/// Length of an IPv6 header.
pub const IPV6_HLEN: usize = 40;
/// Length of an untagged Ethernet header.
pub const ETH_HLEN: usize = 14;
/// What the overlay costs an inner IP packet over an IPv4 underlay: inner Ethernet (14)
/// + VXLAN (8) + UDP (8) + IPv4 (20).
pub const OVERHEAD_V4: usize = ETH_HLEN + VXLAN_HLEN + UDP_HLEN + IPV4_HLEN;
/// The same over an IPv6 underlay: inner Ethernet (14) + VXLAN (8) + UDP (8) + IPv6 (40).
pub const OVERHEAD_V6: usize = ETH_HLEN + VXLAN_HLEN + UDP_HLEN + IPV6_HLEN;
/// The IANA-assigned VXLAN UDP port.
pub const VXLAN_PORT: u16 = 4789;

const IPPROTO_UDP: u8 = 17;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;

/// The buffer the daemon encapsulates into: its frame, and a way to grow it at the
/// front. The daemon's `PacketBuf` has exactly these two methods.
pub trait Headroom {
    /// The current frame.
    fn frame(&self) -> &[u8];
    /// Grows the frame by `n` bytes at the front and returns them to fill; `None`,
    /// with nothing changed, when the headroom is smaller than `n`.
    fn push_front(&mut self, n: usize) -> Option<&mut [u8]>;
}

/// A [`Headroom`] over a caller's slice: the frame is `buf[start..]`, the headroom
/// `buf[..start]`. For tests, captures and one-off replies.
#[derive(Debug)]
pub struct SliceBuf<'a> {
    buf: &'a mut [u8],
    start: usize,
}

impl<'a> SliceBuf<'a> {
    /// The frame is `buf[start..]`; `None` if `start` is past the end.
    pub fn new(buf: &'a mut [u8], start: usize) -> Option<SliceBuf<'a>> {
        (start <= buf.len()).then_some(SliceBuf { buf, start })
    }

    /// Where the frame starts in the slice.
    pub fn start(&self) -> usize {
        self.start
    }
}

impl Headroom for SliceBuf<'_> {
    fn frame(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn push_front(&mut self, n: usize) -> Option<&mut [u8]> {
        let start = self.start.checked_sub(n)?;
        let end = self.start;
        self.start = start;
        Some(&mut self.buf[start..end])
    }
}

/// The outer headers of a VXLAN datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OuterParams {
    /// This VTEP's underlay address.
    pub src: IpAddr,
    /// The remote VTEP; the same family as `src`.
    pub dst: IpAddr,
    /// From [`crate::flow::source_port`], so ECMP and RSS spread flows.
    pub src_port: u16,
    /// [`VXLAN_PORT`] unless the peers were configured otherwise.
    pub dst_port: u16,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 TOS byte or IPv6 traffic class (DSCP << 2 | ECN).
    pub tos: u8,
    /// IPv4 only: set DF. Off by default, as in Linux (`df unset`).
    pub dont_fragment: bool,
    /// IPv4 only: the identification field. The caller keeps a counter: with DF
    /// clear, the datagram may be fragmented by the underlay and needs a fresh ID.
    pub ipv4_id: u16,
    /// IPv6 only: the flow label (low 20 bits used); a hash of the inner flow helps
    /// ECMP on IPv6 underlays that hash the label.
    pub flow_label: u32,
    /// IPv4 only: compute the UDP checksum (otherwise zero). Ignored on IPv6, where it
    /// is always computed.
    pub udp_checksum: bool,
}

impl OuterParams {
    /// Outer headers from `src` to `dst` with the defaults: destination port 4789,
    /// TTL 64, TOS 0, DF clear, ID 0, flow label 0, no UDP checksum on IPv4.
    pub fn new(src: IpAddr, dst: IpAddr, src_port: u16) -> OuterParams {
        OuterParams {
            src,
            dst,
            src_port,
            dst_port: VXLAN_PORT,
            ttl: 64,
            tos: 0,
            dont_fragment: false,
            ipv4_id: 0,
            flow_label: 0,
            udp_checksum: false,
        }
    }

    /// Bytes [`push_outer`] adds: IP + UDP + VXLAN headers.
    pub fn outer_len(&self) -> usize {
        ip_hlen(self.src) + UDP_HLEN + VXLAN_HLEN
    }
}

/// Why a frame could not be encapsulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncapError {
    #[error("not enough headroom for the outer headers: {needed} bytes needed")]
    NoHeadroom { needed: usize },
    #[error("outer source {src} and destination {dst} are not the same address family")]
    FamilyMismatch { src: IpAddr, dst: IpAddr },
    #[error("frame of {len} bytes is too long for one datagram (at most {max} bytes)")]
    TooLong { len: usize, max: usize },
}

fn ip_hlen(addr: IpAddr) -> usize {
    match addr {
        IpAddr::V4(_) => IPV4_HLEN,
        IpAddr::V6(_) => IPV6_HLEN,
    }
}

/// Pushes the 8-byte VXLAN header (I flag, `vni`, reserved zero) in front of the frame.
pub fn push_vxlan<H: Headroom + ?Sized>(buf: &mut H, vni: Vni) -> Result<(), EncapError> {
    let hdr = buf
        .push_front(VXLAN_HLEN)
        .ok_or(EncapError::NoHeadroom { needed: VXLAN_HLEN })?;
    VxlanRepr { vni }
        .write(hdr)
        .ok_or(EncapError::NoHeadroom { needed: VXLAN_HLEN })
}

/// Pushes outer IP + UDP + VXLAN headers in front of the frame. Returns the number of
/// bytes pushed ([`OuterParams::outer_len`]).
pub fn push_outer<H: Headroom + ?Sized>(
    buf: &mut H,
    vni: Vni,
    outer: &OuterParams,
) -> Result<usize, EncapError> {
    push_headers(buf, vni, outer, None)
}

/// Like [`push_outer`], with an outer Ethernet header in front (`src_mac` -> `dst_mac`,
/// the next hop's MAC). Returns the number of bytes pushed.
pub fn push_outer_ethernet<H: Headroom + ?Sized>(
    buf: &mut H,
    vni: Vni,
    outer: &OuterParams,
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
) -> Result<usize, EncapError> {
    push_headers(buf, vni, outer, Some((src_mac, dst_mac)))
}

fn push_headers<H: Headroom + ?Sized>(
    buf: &mut H,
    vni: Vni,
    outer: &OuterParams,
    ethernet: Option<([u8; 6], [u8; 6])>,
) -> Result<usize, EncapError> {
    let ip_len = match (outer.src, outer.dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => IPV4_HLEN,
        (IpAddr::V6(_), IpAddr::V6(_)) => IPV6_HLEN,
        (src, dst) => return Err(EncapError::FamilyMismatch { src, dst }),
    };
    let inner_len = buf.frame().len();
    // The IPv4 total length (which counts the IP header) and the IPv6 payload length
    // (which does not) are both 16-bit fields.
    let counted_ip = if ip_len == IPV4_HLEN { IPV4_HLEN } else { 0 };
    let max = usize::from(u16::MAX) - UDP_HLEN - VXLAN_HLEN - counted_ip;
    if inner_len > max {
        return Err(EncapError::TooLong {
            len: inner_len,
            max,
        });
    }
    let udp_len = (UDP_HLEN + VXLAN_HLEN + inner_len) as u16;
    let want_csum = outer.udp_checksum || ip_len == IPV6_HLEN;
    // Sum the inner frame before pushing: afterwards `frame()` includes the headers.
    let inner_sum = if want_csum {
        checksum::add_bytes(0, buf.frame())
    } else {
        0
    };

    let eth_len = if ethernet.is_some() { ETH_HLEN } else { 0 };
    let pushed = eth_len + ip_len + UDP_HLEN + VXLAN_HLEN;
    let hdr = buf
        .push_front(pushed)
        .ok_or(EncapError::NoHeadroom { needed: pushed })?;
    let (eth, rest) = hdr.split_at_mut(eth_len);
    let (ip, rest) = rest.split_at_mut(ip_len);
    let (udp, vxlan) = rest.split_at_mut(UDP_HLEN);

    VxlanRepr { vni }
        .write(vxlan)
        .ok_or(EncapError::NoHeadroom { needed: pushed })?;
    udp[0..2].copy_from_slice(&outer.src_port.to_be_bytes());
    udp[2..4].copy_from_slice(&outer.dst_port.to_be_bytes());
    udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
    udp[6..8].copy_from_slice(&[0, 0]);

    let (pseudo, ethertype) = match (outer.src, outer.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            write_ipv4(ip, outer, udp_len + IPV4_HLEN as u16);
            let pseudo = checksum::pseudo_header_v4(src, dst, IPPROTO_UDP, udp_len);
            (pseudo, ETHERTYPE_IPV4)
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            write_ipv6(ip, outer, udp_len);
            let pseudo = checksum::pseudo_header_v6(src, dst, IPPROTO_UDP, u32::from(udp_len));
            (pseudo, ETHERTYPE_IPV6)
        }
        // Checked above; nothing was written yet that a caller could misread.
        (src, dst) => return Err(EncapError::FamilyMismatch { src, dst }),
    };
    if want_csum {
        let acc = checksum::add_bytes(pseudo, udp);
        let acc = checksum::add_bytes(acc, vxlan);
        let acc = checksum::add_u16(acc, checksum::fold(inner_sum));
        // RFC 768: a computed zero is sent as all ones (zero means "no checksum").
        let csum = match checksum::finish(acc) {
            0 => 0xffff,
            c => c,
        };
        udp[6..8].copy_from_slice(&csum.to_be_bytes());
    }
    if let Some((src_mac, dst_mac)) = ethernet {
        eth[0..6].copy_from_slice(&dst_mac);
        eth[6..12].copy_from_slice(&src_mac);
        eth[12..14].copy_from_slice(&ethertype.to_be_bytes());
    }
    Ok(pushed)
}

fn write_ipv4(ip: &mut [u8], outer: &OuterParams, total_len: u16) {
    let (IpAddr::V4(src), IpAddr::V4(dst)) = (outer.src, outer.dst) else {
        return;
    };
    ip[0] = 0x45; // version 4, IHL 5
    ip[1] = outer.tos;
    ip[2..4].copy_from_slice(&total_len.to_be_bytes());
    ip[4..6].copy_from_slice(&outer.ipv4_id.to_be_bytes());
    let flags: u16 = if outer.dont_fragment { 0x4000 } else { 0 };
    ip[6..8].copy_from_slice(&flags.to_be_bytes());
    ip[8] = outer.ttl;
    ip[9] = IPPROTO_UDP;
    ip[10..12].copy_from_slice(&[0, 0]);
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&dst.octets());
    let csum = checksum::checksum(&ip[..IPV4_HLEN]);
    ip[10..12].copy_from_slice(&csum.to_be_bytes());
}

fn write_ipv6(ip: &mut [u8], outer: &OuterParams, payload_len: u16) {
    let (IpAddr::V6(src), IpAddr::V6(dst)) = (outer.src, outer.dst) else {
        return;
    };
    let first = (6u32 << 28) | (u32::from(outer.tos) << 20) | (outer.flow_label & 0x000f_ffff);
    ip[0..4].copy_from_slice(&first.to_be_bytes());
    ip[4..6].copy_from_slice(&payload_len.to_be_bytes());
    ip[6] = IPPROTO_UDP;
    ip[7] = outer.ttl;
    ip[8..24].copy_from_slice(&src.octets());
    ip[24..40].copy_from_slice(&dst.octets());
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn inner_frame() -> Vec<u8> {
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1234, 5678)
            .write(&mut f, b"some inner payload")
            .unwrap();
        f
    }

    fn with_headroom(frame: &[u8], headroom: usize) -> Vec<u8> {
        let mut v = vec![0u8; headroom];
        v.extend_from_slice(frame);
        v
    }

    #[test]
    fn overheads() {
        assert_eq!(OVERHEAD_V4, 50);
        assert_eq!(OVERHEAD_V6, 70);
    }

    #[test]
    fn push_vxlan_writes_the_header() {
        let inner = inner_frame();
        let mut v = with_headroom(&inner, 16);
        let mut b = SliceBuf::new(&mut v, 16).unwrap();
        push_vxlan(&mut b, Vni::new(0x123456).unwrap()).unwrap();
        assert_eq!(&b.frame()[..8], &[0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
        assert_eq!(&b.frame()[8..], &inner[..]);
    }

    #[test]
    fn no_headroom_leaves_the_buffer_alone() {
        let inner = inner_frame();
        let mut v = with_headroom(&inner, 40);
        let mut b = SliceBuf::new(&mut v, 40).unwrap();
        let outer = OuterParams::new("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap(), 1);
        let err = push_outer(&mut b, Vni::new(1).unwrap(), &outer).unwrap_err();
        assert_eq!(err, EncapError::NoHeadroom { needed: 56 });
        assert_eq!(b.start(), 40);
        assert_eq!(b.frame(), &inner[..]);
    }

    #[test]
    fn family_mismatch_is_refused() {
        let mut v = with_headroom(&inner_frame(), 100);
        let mut b = SliceBuf::new(&mut v, 100).unwrap();
        let outer = OuterParams::new("10.0.0.1".parse().unwrap(), "fd00::2".parse().unwrap(), 1);
        let err = push_outer(&mut b, Vni::new(1).unwrap(), &outer).unwrap_err();
        assert!(matches!(err, EncapError::FamilyMismatch { .. }));
        assert!(err.to_string().contains("address family"));
    }

    #[test]
    fn too_long_is_refused() {
        let big = vec![0u8; 65535 - 36 + 1];
        let mut v = with_headroom(&big, 64);
        let mut b = SliceBuf::new(&mut v, 64).unwrap();
        let outer = OuterParams::new("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), 1);
        let err = push_outer(&mut b, Vni::new(1).unwrap(), &outer).unwrap_err();
        assert_eq!(
            err,
            EncapError::TooLong {
                len: big.len(),
                max: 65535 - 36
            }
        );
    }

    /// Encapsulates `inner` and checks every outer field with etherparse.
    fn check_outer(outer: OuterParams, with_eth: bool) {
        let inner = inner_frame();
        let mut v = with_headroom(&inner, 128);
        let mut b = SliceBuf::new(&mut v, 128).unwrap();
        let vni = Vni::new(4242).unwrap();
        let n = if with_eth {
            push_outer_ethernet(
                &mut b,
                vni,
                &outer,
                [2, 0, 0, 0, 0, 0xa],
                [2, 0, 0, 0, 0, 0xb],
            )
            .unwrap()
        } else {
            push_outer(&mut b, vni, &outer).unwrap()
        };
        assert_eq!(n, outer.outer_len() + if with_eth { 14 } else { 0 });
        let pkt = if with_eth {
            SlicedPacket::from_ethernet(b.frame()).unwrap()
        } else {
            SlicedPacket::from_ip(b.frame()).unwrap()
        };
        let payload = match pkt.transport {
            Some(TransportSlice::Udp(ref udp)) => {
                assert_eq!(udp.source_port(), outer.src_port);
                assert_eq!(udp.destination_port(), outer.dst_port);
                assert_eq!(usize::from(udp.length()), 16 + inner.len());
                udp.payload()
            }
            _ => panic!("no UDP"),
        };
        assert_eq!(&payload[..8], &[0x08, 0, 0, 0, 0, 0x10, 0x92, 0]);
        assert_eq!(&payload[8..], &inner[..]);
        let udp = etherparse::UdpHeader::from_slice(&b.frame()[n - 16..])
            .unwrap()
            .0;
        match pkt.net {
            Some(NetSlice::Ipv4(ref ip)) => {
                let h = ip.header().to_header();
                assert_eq!(h.calc_header_checksum(), h.header_checksum);
                assert_eq!(h.time_to_live, outer.ttl);
                assert_eq!(h.dont_fragment, outer.dont_fragment);
                assert_eq!(h.identification, outer.ipv4_id);
                assert_eq!((h.dscp.value() << 2) | h.ecn.value(), outer.tos);
                assert_eq!(IpAddr::V4(h.source.into()), outer.src);
                assert_eq!(IpAddr::V4(h.destination.into()), outer.dst);
                if outer.udp_checksum {
                    assert_eq!(udp.calc_checksum_ipv4(&h, payload).unwrap(), udp.checksum);
                } else {
                    assert_eq!(udp.checksum, 0);
                }
            }
            Some(NetSlice::Ipv6(ref ip)) => {
                let h = ip.header().to_header();
                assert_eq!(h.hop_limit, outer.ttl);
                assert_eq!(h.traffic_class, outer.tos);
                assert_eq!(h.flow_label.value(), outer.flow_label & 0xfffff);
                assert_eq!(IpAddr::V6(h.source.into()), outer.src);
                assert_ne!(udp.checksum, 0);
                assert_eq!(udp.calc_checksum_ipv6(&h, payload).unwrap(), udp.checksum);
            }
            _ => panic!("no IP"),
        }
    }

    #[test]
    fn outer_ipv4_fields() {
        let mut o = OuterParams::new(
            "192.0.2.1".parse().unwrap(),
            "192.0.2.2".parse().unwrap(),
            49200,
        );
        check_outer(o, false);
        o.udp_checksum = true;
        o.dont_fragment = true;
        o.ipv4_id = 777;
        o.tos = 0xb9;
        o.ttl = 9;
        check_outer(o, false);
        check_outer(o, true);
    }

    #[test]
    fn outer_ipv6_fields() {
        let mut o = OuterParams::new(
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
            61000,
        );
        check_outer(o, false);
        o.flow_label = 0xfff_abcde;
        o.tos = 0x2e;
        o.udp_checksum = false; // ignored: IPv6 always carries a checksum
        check_outer(o, false);
        check_outer(o, true);
    }
}
