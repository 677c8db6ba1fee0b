//! Reading the fields NAT needs from an IPv4 packet and rewriting addresses and ports in
//! place with incremental checksum updates (RFC 1624).
//!
//! The buffer starts at the IPv4 header. Only the headers are required to be present:
//! the total length may describe a TSO super-frame bigger than what is checked here,
//! or a frame with Ethernet padding, and neither matters to an incremental update.
//! After [`parse`] succeeds, every offset the rewrite functions touch is inside the
//! buffer; the writes still go through bounds-checked helpers, so a logic error can
//! only leave a field unchanged, never panic.
//!
//! Checksums: the IPv4 header checksum is always complete. The TCP/UDP checksum is
//! either complete (updated for every changed address and port) or partial
//! (virtio_net_hdr `NEEDS_CSUM`: it holds the pseudo-header sum, so only address
//! changes touch it (as `vtep::checksum::partial_replace` would); the device completes it over
//! the segment as rewritten). A UDP checksum of 0 means "none" and stays 0; an updated
//! complete UDP checksum that comes out 0 is written as 0xffff. ICMP has no
//! pseudo-header: its checksum changes only with the identifier (or the quoted packet
//! of an error), and is left alone when partial.

use std::net::Ipv4Addr;

use vtep::ChecksumState;
use vtep::checksum;

use super::NatDrop;
use super::tuple::{Proto, Tuple};

pub(crate) const IP_MIN: usize = 20;
const TCP_MIN: usize = 20;
const UDP_LEN: usize = 8;
const ICMP_MIN: usize = 8;

pub(crate) const ICMP_ECHO_REPLY: u8 = 0;
pub(crate) const ICMP_DEST_UNREACH: u8 = 3;
pub(crate) const ICMP_ECHO_REQUEST: u8 = 8;
pub(crate) const ICMP_TIME_EXCEEDED: u8 = 11;
pub(crate) const ICMP_PARAM_PROBLEM: u8 = 12;

/// What kind of packet [`parse`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// TCP, UDP or an ICMP echo request/reply. `flags`: the TCP flags byte, the ICMP
    /// type for echo, 0 for UDP.
    Flow { flags: u8 },
    /// An ICMP error (destination unreachable, time exceeded, parameter problem):
    /// its own tuple means nothing; the quoted packet identifies the flow.
    IcmpError,
}

/// The translatable fields of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// IPv4 header length (the transport header's offset).
    pub ihl: usize,
    pub proto: Proto,
    pub tuple: Tuple,
    pub kind: Kind,
    /// The IPv4 identification if this is the first fragment of a fragmented
    /// datagram (the later ones will need the same address translation).
    pub first_fragment: Option<u16>,
}

pub(crate) fn be16(buf: &[u8], at: usize) -> Option<u16> {
    let b = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

pub(crate) fn put16(buf: &mut [u8], at: usize, v: u16) {
    if let Some(b) = at.checked_add(2).and_then(|end| buf.get_mut(at..end)) {
        b.copy_from_slice(&v.to_be_bytes());
    }
}

fn addr(buf: &[u8], at: usize) -> Option<Ipv4Addr> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}

fn put_addr(buf: &mut [u8], at: usize, a: Ipv4Addr) {
    if let Some(b) = at.checked_add(4).and_then(|end| buf.get_mut(at..end)) {
        b.copy_from_slice(&a.octets());
    }
}

/// Adds `~old + new` for an address's two 16-bit words to a running sum: the RFC 1624
/// update, as [`checksum::csum_replace4`] does it but without the byte-slice loop
/// (this runs twice or four times per packet).
#[inline]
fn addr_delta(acc: u32, old: Ipv4Addr, new: Ipv4Addr) -> u32 {
    let (o, n) = (u32::from(old), u32::from(new));
    let acc = checksum::add_u16(acc, !((o >> 16) as u16));
    let acc = checksum::add_u16(acc, !(o as u16));
    let acc = checksum::add_u16(acc, (n >> 16) as u16);
    checksum::add_u16(acc, n as u16)
}

/// A complete checksum after an address changed (RFC 1624 equation 3).
#[inline]
pub(crate) fn replace_addr(check: u16, old: Ipv4Addr, new: Ipv4Addr) -> u16 {
    !checksum::fold(addr_delta(u32::from(!check), old, new))
}

/// A partial (pseudo-header) sum after an address changed.
#[inline]
fn partial_addr(sum: u16, old: Ipv4Addr, new: Ipv4Addr) -> u16 {
    checksum::fold(addr_delta(u32::from(sum), old, new))
}

/// The IPv4 header's length, protocol, addresses and fragmentation.
pub(crate) struct IpHeader {
    pub ihl: usize,
    pub protocol: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// The identification field.
    pub id: u16,
    /// More-fragments set.
    pub more_fragments: bool,
    /// A non-zero fragment offset: no transport header in this packet.
    pub later_fragment: bool,
}

pub(crate) fn ip_header(pkt: &[u8]) -> Option<IpHeader> {
    let first = *pkt.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < IP_MIN || pkt.len() < ihl {
        return None;
    }
    let frag = be16(pkt, 6)?;
    Some(IpHeader {
        ihl,
        protocol: *pkt.get(9)?,
        src: addr(pkt, 12)?,
        dst: addr(pkt, 16)?,
        id: be16(pkt, 4)?,
        more_fragments: frag & 0x2000 != 0,
        later_fragment: frag & 0x1fff != 0,
    })
}

/// The tuple of a TCP/UDP/ICMP-echo header at `l4`, with the TCP flags. For a quoted
/// packet only the first 8 bytes of the transport header are needed (`min = 8`).
pub(crate) fn transport(
    pkt: &[u8],
    l4: usize,
    proto: Proto,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    min: usize,
) -> Result<(Tuple, Kind), NatDrop> {
    let need = match proto {
        Proto::Tcp => min.min(TCP_MIN),
        Proto::Udp => UDP_LEN,
        Proto::Icmp => ICMP_MIN,
    };
    if pkt.len() < l4.saturating_add(need) {
        return Err(NatDrop::Malformed);
    }
    let p0 = be16(pkt, l4).ok_or(NatDrop::Malformed)?;
    let p1 = be16(pkt, l4 + 2).ok_or(NatDrop::Malformed)?;
    let flow = |sport, dport, flags| {
        let t = Tuple {
            src,
            sport,
            dst,
            dport,
        };
        Ok((t, Kind::Flow { flags }))
    };
    match proto {
        Proto::Tcp => flow(p0, p1, pkt.get(l4 + 13).copied().unwrap_or(0)),
        Proto::Udp => flow(p0, p1, 0),
        Proto::Icmp => {
            let id = be16(pkt, l4 + 4).ok_or(NatDrop::Malformed)?;
            match (p0 >> 8) as u8 {
                ICMP_ECHO_REQUEST => flow(id, 0, ICMP_ECHO_REQUEST),
                ICMP_ECHO_REPLY => flow(0, id, ICMP_ECHO_REPLY),
                ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED | ICMP_PARAM_PROBLEM => {
                    let t = Tuple {
                        src,
                        sport: 0,
                        dst,
                        dport: 0,
                    };
                    Ok((t, Kind::IcmpError))
                }
                _ => Err(NatDrop::UnsupportedIcmp),
            }
        }
    }
}

/// Parses the packet NAT is asked to translate.
pub(crate) fn parse(pkt: &[u8]) -> Result<Parsed, NatDrop> {
    let ip = ip_header(pkt).ok_or(NatDrop::Malformed)?;
    let total = usize::from(be16(pkt, 2).ok_or(NatDrop::Malformed)?);
    // 0 is what "big TCP" super-frames carry; anything else must cover the header.
    if total != 0 && total < ip.ihl {
        return Err(NatDrop::Malformed);
    }
    if ip.later_fragment {
        // No transport header: only the fragment table knows its translation.
        return Err(NatDrop::Fragment);
    }
    let proto = Proto::from_number(ip.protocol).ok_or(NatDrop::UnsupportedProtocol)?;
    let (tuple, kind) = transport(pkt, ip.ihl, proto, ip.src, ip.dst, TCP_MIN)?;
    Ok(Parsed {
        ihl: ip.ihl,
        proto,
        tuple,
        kind,
        first_fragment: ip.more_fragments.then_some(ip.id),
    })
}

/// Rewrites the IPv4 source and destination to `src`/`dst`, updating the header
/// checksum, and returns the old addresses.
pub(crate) fn rewrite_ip(pkt: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) -> (Ipv4Addr, Ipv4Addr) {
    let old_src = addr(pkt, 12).unwrap_or(src);
    let old_dst = addr(pkt, 16).unwrap_or(dst);
    let mut check = be16(pkt, 10).unwrap_or(0);
    if old_src != src {
        check = replace_addr(check, old_src, src);
        put_addr(pkt, 12, src);
    }
    if old_dst != dst {
        check = replace_addr(check, old_dst, dst);
        put_addr(pkt, 16, dst);
    }
    put16(pkt, 10, check);
    (old_src, old_dst)
}

/// Where a transport header keeps its checksum, and whether it covers a pseudo-header.
fn checksum_at(proto: Proto) -> (usize, bool) {
    match proto {
        Proto::Tcp => (16, true),
        Proto::Udp => (6, true),
        Proto::Icmp => (2, false),
    }
}

/// Rewrites a packet of tuple `old` into tuple `new`: addresses in the IPv4 header at
/// 0, ports (or the ICMP echo identifier) in the transport header at `l4`, and every
/// checksum per `csum`. `avail` is how many transport bytes are present (a quoted
/// packet may be cut short); the checksum is updated only if its field is inside.
pub(crate) fn rewrite(
    pkt: &mut [u8],
    l4: usize,
    proto: Proto,
    old: Tuple,
    new: Tuple,
    csum: ChecksumState,
) {
    rewrite_ip(pkt, new.src, new.dst);
    let (at, pseudo) = checksum_at(proto);
    let complete = csum == ChecksumState::Complete;
    let old_check = be16(pkt, l4 + at);
    // No field in the (quoted) packet, or UDP's "no checksum": nothing to update.
    let update = match old_check {
        None => false,
        Some(0) => !(proto == Proto::Udp && complete),
        Some(_) => true,
    };
    let mut check = old_check.unwrap_or(0);
    if update && pseudo {
        for (o, n) in [(old.src, new.src), (old.dst, new.dst)] {
            if o != n {
                check = if complete {
                    replace_addr(check, o, n)
                } else {
                    partial_addr(check, o, n)
                };
            }
        }
    }
    // (offset, old, new) of each port; ICMP echo has one identifier at offset 4, and
    // one of sport/dport is it, the other 0.
    let ports = match proto {
        Proto::Icmp => [(l4 + 4, old.sport | old.dport, new.sport | new.dport); 2],
        _ => [(l4, old.sport, new.sport), (l4 + 2, old.dport, new.dport)],
    };
    let count = if proto == Proto::Icmp { 1 } else { 2 };
    for &(off, o, n) in &ports[..count] {
        if o != n {
            if update && complete {
                check = checksum::csum_replace2(check, o, n);
            }
            put16(pkt, off, n);
        }
    }
    if update && Some(check) != old_check {
        if proto == Proto::Udp && complete && check == 0 {
            check = 0xffff;
        }
        put16(pkt, l4 + at, check);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_odd_packets_are_refused() {
        assert_eq!(parse(&[]), Err(NatDrop::Malformed));
        assert_eq!(parse(&[0x45; 19]), Err(NatDrop::Malformed));
        let mut p = [0u8; 28];
        p[0] = 0x46; // IHL 24, only 28 bytes: no room for UDP
        p[9] = 17;
        assert_eq!(parse(&p), Err(NatDrop::Malformed));
        p[0] = 0x45;
        p[2..4].copy_from_slice(&10u16.to_be_bytes()); // total length below the header
        assert_eq!(parse(&p), Err(NatDrop::Malformed));
        p[2..4].copy_from_slice(&28u16.to_be_bytes());
        assert!(parse(&p).is_ok());
        p[9] = 47;
        assert_eq!(parse(&p), Err(NatDrop::UnsupportedProtocol));
        p[9] = 17;
        p[6] = 0x20; // more fragments, offset 0: the first fragment
        assert_eq!(parse(&p).unwrap().first_fragment, Some(0));
        p[7] = 0x01; // offset 8
        assert_eq!(parse(&p), Err(NatDrop::Fragment));
        p[7] = 0;
        p[6] = 0;
        p[0] = 0x65;
        assert_eq!(parse(&p), Err(NatDrop::Malformed));
    }

    proptest::proptest! {
        #[test]
        fn address_updates_match_vtep(check: u16, old: [u8; 4], new: [u8; 4]) {
            let (o, n) = (Ipv4Addr::from(old), Ipv4Addr::from(new));
            proptest::prop_assert_eq!(
                replace_addr(check, o, n),
                checksum::csum_replace4(check, old, new)
            );
            proptest::prop_assert_eq!(
                partial_addr(check, o, n),
                checksum::partial_replace(check, &old, &new)
            );
        }
    }

    #[test]
    fn icmp_kinds() {
        let mut p = [0u8; 28];
        p[0] = 0x45;
        p[9] = 1;
        p[20] = 13; // timestamp request
        assert_eq!(parse(&p), Err(NatDrop::UnsupportedIcmp));
        p[20] = 8;
        p[24..26].copy_from_slice(&77u16.to_be_bytes());
        let got = parse(&p).unwrap();
        assert_eq!((got.tuple.sport, got.tuple.dport), (77, 0));
        p[20] = 0;
        let got = parse(&p).unwrap();
        assert_eq!((got.tuple.sport, got.tuple.dport), (0, 77));
        p[20] = 11;
        assert_eq!(parse(&p).unwrap().kind, Kind::IcmpError);
    }
}
