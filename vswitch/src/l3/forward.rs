//! What routing does to a packet it forwards, and the error it sends when it may not:
//! the TTL decrement (with the RFC 1624 incremental update of the IPv4 header
//! checksum), the new Ethernet addresses, and the ICMP "time exceeded in transit"
//! (type 11 code 0, RFC 792 / RFC 1812 section 5.3.1) for a packet whose TTL ran out.
//!
//! Frames are untagged Ethernet II with IPv4. The in-place functions touch only the
//! bytes they name, so they work on TSO super-frames too (the IPv4 header checksum
//! of a super-frame is redone per segment when it is cut; keeping it right costs
//! nothing). A wrong header checksum is not checked on this hot path: the decrement
//! keeps it exactly as wrong, and the receiver drops the packet.
//!
//! Whether an ICMP error may be sent at all follows RFC 1812 section 4.3.2.7, as
//! Linux's `icmp_send`: never about an ICMP error (or an unknown ICMP type), a
//! fragment other than the first, a packet to a broadcast or multicast address
//! (Ethernet or IPv4), or from an address that is not one host. Subnet-directed
//! broadcasts are never routed (see [`super::route`]), so they never expire here.

use std::net::Ipv4Addr;

use fdb::MacAddr;
use vtep::checksum;

use super::wire::{self, ETH_HLEN, ETHERTYPE_IPV4, IPV4_HLEN, Ipv4Error, Ipv4Out, Ipv4View};

const ICMP_HLEN: usize = 8;
const ICMP_TIME_EXCEEDED: u8 = 11;
/// "Time to live exceeded in transit".
const CODE_TTL_EXCEEDED: u8 = 0;
/// The highest ICMP type Linux knows (`NR_ICMP_TYPES`); higher ones are treated as
/// errors, so never answered.
const MAX_KNOWN_ICMP_TYPE: u8 = 18;
/// Bytes of the original payload quoted after its IP header (RFC 792: 64 bits, which
/// hold the ports, enough for the sender and any NAT on the way to match it).
const QUOTED_PAYLOAD: usize = 8;
/// Precedence "internetwork control" (DSCP CS6), the TOS of Linux's ICMP errors.
const TOS_INTERNETWORK_CONTROL: u8 = 0xc0;

/// Why a frame could not be forwarded. Small and `Copy`, for drop counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ForwardError {
    #[error("TTL expired in transit")]
    TtlExpired,
    #[error("not an IPv4 frame")]
    NotIpv4,
    #[error("malformed Ethernet or IPv4 header: lengths, header checksum or options")]
    Malformed,
}

impl ForwardError {
    /// Every reason, in a fixed order.
    pub const ALL: [ForwardError; 3] = [
        ForwardError::TtlExpired,
        ForwardError::NotIpv4,
        ForwardError::Malformed,
    ];

    /// The snake_case name a drop counter shows.
    pub const fn name(self) -> &'static str {
        match self {
            ForwardError::TtlExpired => "ttl_expired",
            ForwardError::NotIpv4 => "forward_not_ipv4",
            ForwardError::Malformed => "forward_malformed",
        }
    }
}

/// Why no "time exceeded" was built. Small and `Copy`, for counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TimeExceededError {
    #[error("not an IPv4 frame")]
    NotIpv4,
    #[error("malformed IPv4 header or truncated packet")]
    Malformed,
    #[error("never answer an ICMP error with an ICMP error")]
    AboutIcmpError,
    #[error("never answer a fragment other than the first")]
    LaterFragment,
    #[error("never answer a packet to a broadcast or multicast address")]
    NotUnicast,
    #[error("never answer a packet from an address that is not one host")]
    BadSource,
    #[error("output buffer too small for the ICMP error")]
    BufferTooSmall,
}

impl TimeExceededError {
    /// Every reason, in a fixed order.
    pub const ALL: [TimeExceededError; 7] = [
        TimeExceededError::NotIpv4,
        TimeExceededError::Malformed,
        TimeExceededError::AboutIcmpError,
        TimeExceededError::LaterFragment,
        TimeExceededError::NotUnicast,
        TimeExceededError::BadSource,
        TimeExceededError::BufferTooSmall,
    ];

    /// The snake_case name a counter shows.
    pub const fn name(self) -> &'static str {
        match self {
            TimeExceededError::NotIpv4 => "time_exceeded_not_ipv4",
            TimeExceededError::Malformed => "time_exceeded_malformed",
            TimeExceededError::AboutIcmpError => "time_exceeded_about_icmp_error",
            TimeExceededError::LaterFragment => "time_exceeded_later_fragment",
            TimeExceededError::NotUnicast => "time_exceeded_not_unicast",
            TimeExceededError::BadSource => "time_exceeded_bad_source",
            TimeExceededError::BufferTooSmall => "time_exceeded_buffer_too_small",
        }
    }
}

/// The largest frame [`build_time_exceeded`] writes: Ethernet, IPv4, ICMP, and a quoted
/// header of up to 60 bytes plus 8.
pub const MAX_TIME_EXCEEDED_LEN: usize = ETH_HLEN + IPV4_HLEN + ICMP_HLEN + 60 + QUOTED_PAYLOAD;

/// Decrements the TTL of the IPv4 packet in `frame` and updates its header checksum
/// incrementally. A TTL of 0 or 1 cannot be forwarded: [`ForwardError::TtlExpired`],
/// and the frame is left as it was (ready to be quoted by [`build_time_exceeded`]).
pub fn decrement_ttl(frame: &mut [u8]) -> Result<(), ForwardError> {
    let view = Ipv4View::parse(frame).map_err(|e| match e {
        Ipv4Error::NotIpv4 => ForwardError::NotIpv4,
        Ipv4Error::Malformed => ForwardError::Malformed,
    })?;
    // A router discards a header that fails its checksum or whose options do not parse
    // (RFC 1812 5.2.2, as Linux's `ip_rcv_core` and `ip_options_compile` do), before
    // anything else: such a packet must not start NAT state or earn an ICMP answer.
    if !view.checksum_ok() || !view.options_ok() {
        return Err(ForwardError::Malformed);
    }
    let ip = &mut frame[ETH_HLEN..];
    let ttl = ip[wire::field::TTL];
    if ttl <= 1 {
        return Err(ForwardError::TtlExpired);
    }
    // TTL is the high byte of the 16-bit word it shares with the protocol.
    let proto = u16::from(ip[wire::field::PROTOCOL]);
    let old = u16::from(ttl) << 8 | proto;
    let new = u16::from(ttl - 1) << 8 | proto;
    let sum = checksum::csum_replace2(wire::be16(ip, wire::field::CHECKSUM.start), old, new);
    ip[wire::field::TTL] = ttl - 1;
    ip[wire::field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

/// Sets the Ethernet source and destination of `frame` (the router MAC of the egress
/// interface, the next hop's MAC).
pub fn rewrite_l2(
    frame: &mut [u8],
    src_mac: MacAddr,
    dst_mac: MacAddr,
) -> Result<(), ForwardError> {
    let Some(macs) = frame.get_mut(wire::field::ETH_DST.start..wire::field::ETH_SRC.end) else {
        return Err(ForwardError::Malformed);
    };
    macs[wire::field::ETH_DST].copy_from_slice(&dst_mac.0);
    macs[wire::field::ETH_SRC].copy_from_slice(&src_mac.0);
    Ok(())
}

/// Builds into `out` an ICMP "time exceeded in transit" about the packet in `frame`
/// (as received, before any decrement), from `source_ip` (the gateway of the network
/// it came from) and `router_mac`, back to the packet's sender, quoting its IP header
/// and the first 8 bytes of its payload. TTL 64, TOS 0xc0, DF set with ID 0 (an atomic
/// datagram, RFC 6864). Returns the length (padded to 60 bytes); `out` of
/// [`MAX_TIME_EXCEEDED_LEN`] bytes always suffices.
pub fn build_time_exceeded(
    frame: &[u8],
    router_mac: MacAddr,
    source_ip: Ipv4Addr,
    out: &mut [u8],
) -> Result<usize, TimeExceededError> {
    let ip = Ipv4View::parse(frame).map_err(|e| match e {
        Ipv4Error::NotIpv4 => TimeExceededError::NotIpv4,
        Ipv4Error::Malformed => TimeExceededError::Malformed,
    })?;
    if ip.is_later_fragment() {
        return Err(TimeExceededError::LaterFragment);
    }
    if ip.eth_dst().is_multicast() || !wire::is_unicast(ip.dst()) {
        return Err(TimeExceededError::NotUnicast);
    }
    if ip.eth_src().is_multicast() || !wire::is_unicast(ip.src()) {
        return Err(TimeExceededError::BadSource);
    }
    let payload = ip.payload();
    if ip.protocol() == wire::PROTO_ICMP {
        match payload.first() {
            None => return Err(TimeExceededError::Malformed),
            Some(&t) if is_icmp_error(t) => return Err(TimeExceededError::AboutIcmpError),
            Some(_) => {}
        }
    }
    let quote_len = ip.header().len() + payload.len().min(QUOTED_PAYLOAD);
    let quote = &ip.packet()[..quote_len];
    let icmp_start = ETH_HLEN + IPV4_HLEN;
    let len = icmp_start + ICMP_HLEN + quote_len;
    if out.len() < wire::padded_len(len) {
        return Err(TimeExceededError::BufferTooSmall);
    }

    wire::write_eth(out, ip.eth_src(), router_mac, ETHERTYPE_IPV4);
    wire::write_ipv4(
        &mut out[ETH_HLEN..],
        &Ipv4Out {
            tos: TOS_INTERNETWORK_CONTROL,
            ident: 0,
            dont_fragment: true,
            protocol: wire::PROTO_ICMP,
            src: source_ip,
            dst: ip.src(),
            // At most 8 + 60 + 8: always fits.
            payload_len: (ICMP_HLEN + quote_len) as u16,
        },
    );
    let icmp = &mut out[icmp_start..len];
    icmp[..ICMP_HLEN].copy_from_slice(&[ICMP_TIME_EXCEEDED, CODE_TTL_EXCEEDED, 0, 0, 0, 0, 0, 0]);
    icmp[ICMP_HLEN..].copy_from_slice(quote);
    let sum = checksum::checksum(icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    Ok(wire::pad(out, len))
}

/// ICMP types that are errors (destination unreachable, source quench, redirect, time
/// exceeded, parameter problem), and types Linux does not know, treated alike.
fn is_icmp_error(icmp_type: u8) -> bool {
    matches!(icmp_type, 3 | 4 | 5 | 11 | 12) || icmp_type > MAX_KNOWN_ICMP_TYPE
}
