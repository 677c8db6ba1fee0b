//! ICMP echo (ping) to an address the switch owns: turning an Ethernet + IPv4 echo
//! request into its echo reply (RFC 792, RFC 1122 section 3.2.2.6).
//!
//! The reply swaps the MACs and the addresses, keeps the identifier, sequence number,
//! code and payload, has TTL 64 and the request's TOS, and fresh checksums. It never
//! carries IP options (RFC 1122 only says SHOULD for record-route and timestamp; Linux
//! echoes them, we drop them and keep the reply simple). Whether the destination is
//! ours is the caller's decision (the route said [`super::Route::ToGateway`], or the
//! uplink address); this module refuses what must never be answered: fragments
//! (no reassembly here), requests to a broadcast or multicast address (Linux's
//! `icmp_echo_ignore_broadcasts` default), requests from an address that is not one
//! host, and anything malformed or with a wrong checksum. No allocation, no panic.

use super::wire::{self, ETH_HLEN, ETHERTYPE_IPV4, IPV4_HLEN, Ipv4Error, Ipv4Out, Ipv4View};
use vtep::checksum;

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
/// Type, code, checksum, identifier, sequence number.
const ICMP_ECHO_HLEN: usize = 8;

/// Why an echo request got no reply. Small and `Copy`, for drop counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum EchoError {
    #[error("not an IPv4 frame")]
    NotIpv4,
    #[error("malformed IPv4 header or truncated packet")]
    Malformed,
    #[error("wrong IPv4 header checksum")]
    BadIpChecksum,
    #[error("not an ICMP echo request")]
    NotEchoRequest,
    #[error("wrong ICMP checksum")]
    BadIcmpChecksum,
    #[error("echo request is a fragment (not reassembled)")]
    Fragment,
    #[error("echo request to a broadcast or multicast address")]
    NotUnicast,
    #[error("echo request from an address that is not one host")]
    BadSource,
    #[error("output buffer too small for the echo reply")]
    BufferTooSmall,
}

impl EchoError {
    /// Every reason, in a fixed order.
    pub const ALL: [EchoError; 9] = [
        EchoError::NotIpv4,
        EchoError::Malformed,
        EchoError::BadIpChecksum,
        EchoError::NotEchoRequest,
        EchoError::BadIcmpChecksum,
        EchoError::Fragment,
        EchoError::NotUnicast,
        EchoError::BadSource,
        EchoError::BufferTooSmall,
    ];

    /// The snake_case name a drop counter shows.
    pub const fn name(self) -> &'static str {
        match self {
            EchoError::NotIpv4 => "echo_not_ipv4",
            EchoError::Malformed => "echo_malformed",
            EchoError::BadIpChecksum => "echo_bad_ip_checksum",
            EchoError::NotEchoRequest => "echo_not_echo_request",
            EchoError::BadIcmpChecksum => "echo_bad_icmp_checksum",
            EchoError::Fragment => "echo_fragment",
            EchoError::NotUnicast => "echo_not_unicast",
            EchoError::BadSource => "echo_bad_source",
            EchoError::BufferTooSmall => "echo_buffer_too_small",
        }
    }
}

/// Whether `frame` looks like an ICMP echo request (IPv4, protocol ICMP, type 8):
/// the cheap test for the datapath's dispatch of traffic to the gateway. Nothing else
/// is checked; [`build_echo_reply`] does that.
pub fn is_echo_request(frame: &[u8]) -> bool {
    match Ipv4View::parse(frame) {
        Ok(ip) => {
            ip.protocol() == wire::PROTO_ICMP
                && !ip.is_later_fragment()
                && ip.payload().first() == Some(&ICMP_ECHO_REQUEST)
        }
        Err(_) => false,
    }
}

/// Builds into `out` the echo reply to the echo request in `request` (an untagged
/// Ethernet frame) and returns its length (padded to 60 bytes). `out` needs
/// `14 + 20 + the request's ICMP length` bytes, at least 60.
pub fn build_echo_reply(request: &[u8], out: &mut [u8]) -> Result<usize, EchoError> {
    let ip = Ipv4View::parse(request).map_err(|e| match e {
        Ipv4Error::NotIpv4 => EchoError::NotIpv4,
        Ipv4Error::Malformed => EchoError::Malformed,
    })?;
    if ip.protocol() != wire::PROTO_ICMP {
        return Err(EchoError::NotEchoRequest);
    }
    if ip.is_fragment() {
        return Err(EchoError::Fragment);
    }
    if !ip.checksum_ok() {
        return Err(EchoError::BadIpChecksum);
    }
    let icmp = ip.payload();
    if icmp.len() < ICMP_ECHO_HLEN {
        return Err(EchoError::Malformed);
    }
    if icmp[0] != ICMP_ECHO_REQUEST {
        return Err(EchoError::NotEchoRequest);
    }
    if ip.eth_dst().is_multicast() || !wire::is_unicast(ip.dst()) {
        return Err(EchoError::NotUnicast);
    }
    if ip.eth_src().is_multicast() || !wire::is_unicast(ip.src()) {
        return Err(EchoError::BadSource);
    }
    if checksum::checksum(icmp) != 0 {
        return Err(EchoError::BadIcmpChecksum);
    }
    // The request fitted in one IPv4 packet with a header of at least 20 bytes, so
    // the reply (20-byte header, same ICMP message) fits in a u16 total length.
    let payload_len = u16::try_from(icmp.len()).map_err(|_| EchoError::Malformed)?;
    let len = ETH_HLEN + IPV4_HLEN + icmp.len();
    if out.len() < wire::padded_len(len) {
        return Err(EchoError::BufferTooSmall);
    }

    wire::write_eth(out, ip.eth_src(), ip.eth_dst(), ETHERTYPE_IPV4);
    wire::write_ipv4(
        &mut out[ETH_HLEN..],
        &Ipv4Out {
            tos: ip.tos(),
            // An echo reply is the request's size, which just crossed the path the
            // other way; DF stays clear (as Linux's ICMP replies) and the request's
            // identifier is reused, so no state is needed to pick one.
            ident: ip.ident(),
            dont_fragment: false,
            protocol: wire::PROTO_ICMP,
            src: ip.dst(),
            dst: ip.src(),
            payload_len,
        },
    );
    let reply = &mut out[ETH_HLEN + IPV4_HLEN..len];
    reply.copy_from_slice(icmp);
    // Only the type changes (8 -> 0) in the type/code word: RFC 1624 update of the
    // checksum we just verified.
    let code = u16::from(icmp[1]);
    let old = u16::from(ICMP_ECHO_REQUEST) << 8 | code;
    let new = u16::from(ICMP_ECHO_REPLY) << 8 | code;
    let sum = checksum::csum_replace2(wire::be16(icmp, 2), old, new);
    reply[0] = ICMP_ECHO_REPLY;
    reply[2..4].copy_from_slice(&sum.to_be_bytes());
    Ok(wire::pad(out, len))
}
