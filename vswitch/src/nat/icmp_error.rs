//! ICMP errors about translated flows: finding the flow from the packet quoted inside
//! the error, and rewriting the quote and the outer header to match the other side of
//! the NAT, so that "port unreachable", "time exceeded" and "fragmentation needed"
//! (path-MTU discovery) work through it.
//!
//! Handled types: 3 (destination unreachable, all codes, including 4 "fragmentation
//! needed", whose next-hop MTU in bytes 6-7 is not touched), 11 (time exceeded) and
//! 12 (parameter problem). The quote must hold the original IPv4 header and at least 8
//! bytes of its transport header (RFC 792), which carry the ports or the echo
//! identifier; a quote that is a later fragment, another ICMP error, or of an untracked
//! flow is not translated (`not_tracked`).
//!
//! Inside the quote we rewrite the addresses (updating the quoted IPv4 header
//! checksum) and the ports or identifier, and also the quoted transport checksum when
//! its field is inside the quote, by the same incremental update: this is what Linux's
//! `nf_nat_icmp_reply_translation` does, and it keeps the quote consistent for a
//! receiver that checks it, even when the quote is cut short. The ICMP checksum covers
//! the quote, so every changed quoted word is folded into it (unless the caller says
//! the ICMP checksum is partial, in which case it is left for the device).

use std::net::Ipv4Addr;

use vtep::ChecksumState;
use vtep::checksum;

use super::NatDrop;
use super::packet::{self, IP_MIN, Kind, be16, put16};
use super::tuple::{Proto, Tuple};

const ICMP_HDR: usize = 8;
/// The most of the quoted transport header we may change: a TCP header's first 20
/// bytes (ports and checksum).
const L4_SPAN: usize = 20;

/// The packet quoted by an ICMP error.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Quoted {
    /// Offset of the quoted IPv4 header in the packet.
    pub at: usize,
    /// Its header length.
    pub ihl: usize,
    pub proto: Proto,
    /// Its tuple as it was sent.
    pub tuple: Tuple,
}

/// Locates and reads the quote of the ICMP error whose ICMP header is at `l4`.
pub(crate) fn quoted(pkt: &[u8], l4: usize) -> Result<Quoted, NatDrop> {
    let at = l4 + ICMP_HDR;
    let inner = pkt.get(at..).ok_or(NatDrop::Malformed)?;
    let ip = packet::ip_header(inner).ok_or(NatDrop::Malformed)?;
    if ip.later_fragment {
        return Err(NatDrop::NotTracked);
    }
    let proto = Proto::from_number(ip.protocol).ok_or(NatDrop::NotTracked)?;
    let (tuple, kind) =
        packet::transport(inner, ip.ihl, proto, ip.src, ip.dst, 8).map_err(|e| match e {
            NatDrop::UnsupportedIcmp => NatDrop::NotTracked,
            e => e,
        })?;
    if kind == Kind::IcmpError {
        // Never translate an error about an error (RFC 1122 3.2.2: none is sent).
        return Err(NatDrop::NotTracked);
    }
    Ok(Quoted {
        at,
        ihl: ip.ihl,
        proto,
        tuple,
    })
}

/// Rewrites the quote to `inner` and the outer addresses to `outer_src -> outer_dst`,
/// keeping the quoted IPv4 and transport checksums and the ICMP checksum right.
pub(crate) fn translate(
    pkt: &mut [u8],
    l4: usize,
    q: &Quoted,
    inner: Tuple,
    outer_src: Ipv4Addr,
    outer_dst: Ipv4Addr,
    csum: ChecksumState,
) {
    let ip_span = q.at..q.at + IP_MIN;
    let l4_at = q.at + q.ihl;
    let l4_span = l4_at..(l4_at + L4_SPAN).min(pkt.len());
    // Copies of what the rewrite may change, for the ICMP checksum update.
    let mut old_ip = [0u8; IP_MIN];
    let mut old_l4 = [0u8; L4_SPAN];
    let l4_len = l4_span.len();
    let (Some(ip_now), Some(l4_now)) = (pkt.get(ip_span.clone()), pkt.get(l4_span.clone())) else {
        return;
    };
    old_ip.copy_from_slice(ip_now);
    old_l4[..l4_len].copy_from_slice(l4_now);

    if let Some(quote) = pkt.get_mut(q.at..) {
        // Quoted checksums are whatever the wire carried: always complete.
        packet::rewrite(
            quote,
            q.ihl,
            q.proto,
            q.tuple,
            inner,
            ChecksumState::Complete,
        );
    }

    if csum == ChecksumState::Complete
        && let Some(mut check) = be16(pkt, l4 + 2)
    {
        // Both spans start at an even offset from the ICMP header (8 + a multiple
        // of 4), so they are whole checksum words (an odd tail pads the same way in
        // the old and new copies).
        if let Some(new_ip) = pkt.get(ip_span) {
            check = checksum::csum_replace(check, &old_ip, new_ip);
        }
        if let Some(new_l4) = pkt.get(l4_span) {
            check = checksum::csum_replace(check, &old_l4[..l4_len], new_l4);
        }
        put16(pkt, l4 + 2, check);
    }
    packet::rewrite_ip(pkt, outer_src, outer_dst);
}
