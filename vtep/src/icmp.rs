//! ICMP errors telling a sender its packet was too big for the overlay: IPv4
//! "fragmentation needed" (type 3 code 4, RFC 792/1191) and ICMPv6 "packet too big"
//! (type 2, RFC 4443/8201).
//!
//! The builders write a complete Ethernet frame, from the network's gateway (its router
//! MAC and address) back to the sender's MAC, repeating any VLAN tags of the original.
//! They check only that the original is the right kind of IP packet; whether to answer
//! at all is [`crate::oversize::needs_icmp`]'s call (RFC 1122 / RFC 4443 rules).

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::{
    Icmpv4Header, Icmpv4Type, Icmpv6Header, Icmpv6Type, IpDscp, IpNumber, Ipv4Header, Ipv6Header,
};

use crate::l2::{self, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ipv4_at, ipv6_at};

/// Largest IPv4 datagram carrying a "fragmentation needed": 576 bytes, as Linux
/// (RFC 1812 4.3.2.3: as much of the original as fits in 576).
pub const MAX_ICMPV4_ERROR: usize = 576;
/// Largest IPv6 packet carrying a "packet too big": the minimum MTU, 1280 (RFC 4443).
pub const MAX_ICMPV6_ERROR: usize = 1280;
/// An output buffer this large always holds a full reply (Ethernet + two VLAN tags +
/// the largest error packet).
pub const MAX_REPLY_FRAME: usize = 14 + 8 + MAX_ICMPV6_ERROR;

const ICMP_HLEN: usize = 8;
const TTL: u8 = 64;

/// Why an ICMP error could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IcmpError {
    #[error("original frame is not {0}")]
    WrongProtocol(&'static str),
    #[error("original frame has a malformed IP header")]
    Malformed,
    #[error("output buffer too small for the ICMP error: {needed} bytes needed")]
    BufferTooSmall { needed: usize },
}

/// Writes the reply's Ethernet header (and the original's VLAN tags) into `out`.
fn write_l2(frame: &[u8], l3: usize, router_mac: [u8; 6], out: &mut [u8]) {
    out[0..6].copy_from_slice(&frame[6..12]);
    out[6..12].copy_from_slice(&router_mac);
    out[12..l3].copy_from_slice(&frame[12..l3]);
}

/// Builds an IPv4 "fragmentation needed" (type 3 code 4) with `next_hop_mtu` (clamped
/// to 65535) into `out`, about the IPv4 packet in `frame`, from `gateway` and
/// `router_mac` to the frame's sender. Quotes the original from its IP header on, as
/// much as fits in 576 bytes (at least the header and 8 bytes). Returns the reply's
/// length. TTL 64, TOS 0xc0 (internetwork control, as Linux), DF set, ID 0.
pub fn build_frag_needed(
    frame: &[u8],
    next_hop_mtu: u32,
    router_mac: [u8; 6],
    gateway: Ipv4Addr,
    out: &mut [u8],
) -> Result<usize, IcmpError> {
    let (l3, ethertype) = l2::network_offset(frame).ok_or(IcmpError::Malformed)?;
    if ethertype != ETHERTYPE_IPV4 {
        return Err(IcmpError::WrongProtocol("IPv4"));
    }
    let (ip, total) = ipv4_at(frame, l3).ok_or(IcmpError::Malformed)?;
    let header_len = l3 + Ipv4Header::MIN_LEN + ICMP_HLEN;
    let min_quote = total.min(ip.slice().len() + 8);
    let room = out.len().saturating_sub(header_len);
    if room < min_quote {
        return Err(IcmpError::BufferTooSmall {
            needed: header_len + min_quote,
        });
    }
    let quote_len = total
        .min(MAX_ICMPV4_ERROR - Ipv4Header::MIN_LEN - ICMP_HLEN)
        .min(room);
    let quote = &frame[l3..l3 + quote_len];

    let mut iph = Ipv4Header::new(
        (ICMP_HLEN + quote_len) as u16,
        TTL,
        IpNumber::ICMP,
        gateway.octets(),
        ip.source(),
    )
    .map_err(|_| IcmpError::Malformed)?;
    iph.dscp = IpDscp::CS6;
    iph.header_checksum = iph.calc_header_checksum();
    let mtu = u16::try_from(next_hop_mtu).unwrap_or(u16::MAX);
    let icmp = Icmpv4Header::with_checksum(
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
            next_hop_mtu: mtu,
        }),
        quote,
    );

    write_l2(frame, l3, router_mac, out);
    out[l3..l3 + Ipv4Header::MIN_LEN].copy_from_slice(&iph.to_bytes());
    out[l3 + Ipv4Header::MIN_LEN..header_len].copy_from_slice(&icmp.to_bytes());
    out[header_len..header_len + quote_len].copy_from_slice(quote);
    Ok(header_len + quote_len)
}

/// Builds an ICMPv6 "packet too big" (type 2) with `mtu` into `out`, about the IPv6
/// packet in `frame`, from `gateway` and `router_mac` to the frame's sender. Quotes
/// as much of the original packet as fits in a 1280-byte IPv6 packet (and in `out`,
/// which must hold at least the original's fixed header and 8 bytes). Hop limit 64.
/// Returns the reply's length.
pub fn build_packet_too_big(
    frame: &[u8],
    mtu: u32,
    router_mac: [u8; 6],
    gateway: Ipv6Addr,
    out: &mut [u8],
) -> Result<usize, IcmpError> {
    let (l3, ethertype) = l2::network_offset(frame).ok_or(IcmpError::Malformed)?;
    if ethertype != ETHERTYPE_IPV6 {
        return Err(IcmpError::WrongProtocol("IPv6"));
    }
    let (ip, total) = ipv6_at(frame, l3).ok_or(IcmpError::Malformed)?;
    let header_len = l3 + Ipv6Header::LEN + ICMP_HLEN;
    let min_quote = total.min(Ipv6Header::LEN + 8);
    let room = out.len().saturating_sub(header_len);
    if room < min_quote {
        return Err(IcmpError::BufferTooSmall {
            needed: header_len + min_quote,
        });
    }
    let quote_len = total
        .min(MAX_ICMPV6_ERROR - Ipv6Header::LEN - ICMP_HLEN)
        .min(room);
    let quote = &frame[l3..l3 + quote_len];

    let src = gateway.octets();
    let dst = ip.source();
    let iph = Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: (ICMP_HLEN + quote_len) as u16,
        next_header: IpNumber::IPV6_ICMP,
        hop_limit: TTL,
        source: src,
        destination: dst,
    };
    let icmp = Icmpv6Header::with_checksum(Icmpv6Type::PacketTooBig { mtu }, src, dst, quote)
        .map_err(|_| IcmpError::Malformed)?;

    write_l2(frame, l3, router_mac, out);
    out[l3..l3 + Ipv6Header::LEN].copy_from_slice(&iph.to_bytes());
    out[l3 + Ipv6Header::LEN..header_len].copy_from_slice(&icmp.to_bytes());
    out[header_len..header_len + quote_len].copy_from_slice(quote);
    Ok(header_len + quote_len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_frames::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    #[test]
    fn frag_needed_is_well_formed() {
        let orig = udp4(1500, true, [10, 0, 0, 2]);
        let mut out = [0u8; MAX_REPLY_FRAME];
        let gw = Ipv4Addr::new(10, 0, 0, 254);
        let n = build_frag_needed(&orig, 1450, ROUTER, gw, &mut out).unwrap();
        assert_eq!(n, 14 + 576);
        let p = SlicedPacket::from_ethernet(&out[..n]).unwrap();
        let Some(etherparse::LinkSlice::Ethernet2(eth)) = p.link else {
            panic!()
        };
        assert_eq!((eth.destination(), eth.source()), (HOST, ROUTER));
        let Some(NetSlice::Ipv4(ip)) = p.net else {
            panic!()
        };
        let h = ip.header().to_header();
        assert_eq!(h.calc_header_checksum(), h.header_checksum);
        assert_eq!(
            (h.source, h.destination, h.time_to_live),
            (gw.octets(), [10, 0, 0, 1], 64)
        );
        assert_eq!(usize::from(h.total_len), 576);
        let Some(TransportSlice::Icmpv4(icmp)) = p.transport else {
            panic!()
        };
        let want = Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
            next_hop_mtu: 1450,
        });
        assert_eq!(icmp.icmp_type(), want);
        assert_eq!(icmp.payload(), &orig[14..14 + 548]);
        assert_eq!(
            Icmpv4Header::with_checksum(want, icmp.payload()).checksum,
            icmp.checksum()
        );
    }

    #[test]
    fn frag_needed_shrinks_to_the_buffer() {
        let orig = udp4(1500, true, [10, 0, 0, 2]);
        let mut out = [0u8; 100];
        let n =
            build_frag_needed(&orig, 1450, ROUTER, Ipv4Addr::new(10, 0, 0, 254), &mut out).unwrap();
        assert_eq!(n, 100);
        let mut small = [0u8; 69];
        assert_eq!(
            build_frag_needed(&orig, 1450, ROUTER, Ipv4Addr::LOCALHOST, &mut small),
            Err(IcmpError::BufferTooSmall { needed: 70 })
        );
        let v6 = udp6(1500, V6_PEER);
        assert_eq!(
            build_frag_needed(&v6, 1450, ROUTER, Ipv4Addr::LOCALHOST, &mut out),
            Err(IcmpError::WrongProtocol("IPv4"))
        );
    }

    #[test]
    fn packet_too_big_is_well_formed() {
        // With a VLAN tag, which the reply repeats.
        let plain = udp6(3000, V6_PEER);
        let mut orig = plain[..12].to_vec();
        orig.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        orig.extend_from_slice(&plain[12..]);
        let gw: Ipv6Addr = "fd00::fe".parse().unwrap();
        let mut out = [0u8; MAX_REPLY_FRAME];
        let n = build_packet_too_big(&orig, 1430, ROUTER, gw, &mut out).unwrap();
        assert_eq!(n, 18 + 1280);
        assert_eq!(&out[12..16], &[0x81, 0x00, 0x00, 0x07]);
        let p = SlicedPacket::from_ethernet(&out[..n]).unwrap();
        let Some(NetSlice::Ipv6(ip)) = p.net else {
            panic!()
        };
        let h = ip.header().to_header();
        assert_eq!(
            (h.source, h.destination),
            (gw.octets(), plain[22..38].try_into().unwrap())
        );
        let Some(TransportSlice::Icmpv6(icmp)) = p.transport else {
            panic!()
        };
        assert_eq!(icmp.icmp_type(), Icmpv6Type::PacketTooBig { mtu: 1430 });
        assert_eq!(icmp.payload(), &orig[18..18 + 1232]);
        let want =
            Icmpv6Header::with_checksum(icmp.icmp_type(), h.source, h.destination, icmp.payload());
        assert_eq!(want.unwrap().checksum, icmp.checksum());
        let mut out = [0u8; MAX_REPLY_FRAME];
        assert_eq!(
            build_packet_too_big(&udp4(1500, true, [10, 0, 0, 2]), 1430, ROUTER, gw, &mut out),
            Err(IcmpError::WrongProtocol("IPv6"))
        );
    }
}
