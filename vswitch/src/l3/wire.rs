//! The Ethernet and IPv4 bytes the `l3` builders share: field offsets, a checked
//! read-only view of an IPv4 packet in an Ethernet frame, the IPv4 header writer and
//! the minimum-size padding. Private to `l3`; it owns no policy (whether to answer is
//! each builder's call).
//!
//! Frames are untagged Ethernet II: the access ports drop tagged frames before `l3`
//! sees them, and the frames `l3` writes go back out of the port the original came in
//! on. Fields are read through offsets, never by casting bytes to structs; after
//! [`Ipv4View::parse`] succeeds no accessor can index out of bounds.

use std::net::Ipv4Addr;

use fdb::MacAddr;
use vtep::checksum;

/// Length of an untagged Ethernet II header.
pub const ETH_HLEN: usize = 14;
/// Length of an IPv4 header without options.
pub const IPV4_HLEN: usize = 20;
/// The shortest Ethernet frame without its FCS. Shorter frames we build are padded
/// with zeros to this length, as Linux pads what it sends (`eth_skb_pad`).
pub const MIN_FRAME_LEN: usize = 60;

pub(super) const ETHERTYPE_IPV4: u16 = 0x0800;
pub(super) const ETHERTYPE_ARP: u16 = 0x0806;
pub(super) const PROTO_ICMP: u8 = 1;
/// IPv4 option types with no length byte.
const OPTION_END: u8 = 0;
const OPTION_NOP: u8 = 1;
/// TTL of every IPv4 packet the switch originates (Linux's `ip_default_ttl`).
pub(super) const DEFAULT_TTL: u8 = 64;

/// Byte ranges of the Ethernet header and of the IPv4 header, the latter relative to
/// the start of the IPv4 header.
pub(super) mod field {
    use std::ops::Range;

    pub const ETH_DST: Range<usize> = 0..6;
    pub const ETH_SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;

    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const TOTAL_LEN: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// The Ethertype of `frame`, `None` when it is shorter than an Ethernet header.
pub(super) fn ethertype(frame: &[u8]) -> Option<u16> {
    let b = frame.get(field::ETHERTYPE)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Reads the big-endian `u16` at `at`; callers have checked the length.
#[inline]
pub(super) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
pub(super) fn ipv4_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

#[inline]
pub(super) fn mac_at(b: &[u8], at: usize) -> MacAddr {
    MacAddr([b[at], b[at + 1], b[at + 2], b[at + 3], b[at + 4], b[at + 5]])
}

/// Whether `ip` names one host: not unspecified, limited broadcast, multicast,
/// reserved class E or loopback. Only such an address may be a source we answer or an
/// ICMP error's destination (RFC 1812 section 4.3.2.7). Subnet-directed broadcasts
/// need the subnet; the route table knows them.
pub fn is_unicast(ip: Ipv4Addr) -> bool {
    let first = ip.octets()[0];
    !(ip.is_unspecified() || ip.is_broadcast() || ip.is_loopback() || first >= 224)
}

/// Why a frame is not a usable IPv4 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ipv4Error {
    /// Not an IPv4 Ethertype.
    NotIpv4,
    /// Shorter than its headers say, or a header field out of range.
    Malformed,
}

/// A checked view of the IPv4 packet in an Ethernet frame: the header and total
/// lengths are consistent with each other and with the frame (trailing Ethernet
/// padding beyond the total length is ignored).
#[derive(Clone, Copy, Debug)]
pub(super) struct Ipv4View<'a> {
    frame: &'a [u8],
    hlen: usize,
    total: usize,
}

impl<'a> Ipv4View<'a> {
    pub fn parse(frame: &'a [u8]) -> Result<Self, Ipv4Error> {
        match ethertype(frame) {
            Some(ETHERTYPE_IPV4) => {}
            Some(_) => return Err(Ipv4Error::NotIpv4),
            None => return Err(Ipv4Error::Malformed),
        }
        let ip = &frame[ETH_HLEN..];
        if ip.len() < IPV4_HLEN || ip[field::VER_IHL] >> 4 != 4 {
            return Err(Ipv4Error::Malformed);
        }
        let hlen = usize::from(ip[field::VER_IHL] & 0x0f) * 4;
        let total = usize::from(be16(ip, field::TOTAL_LEN.start));
        if hlen < IPV4_HLEN || total < hlen || total > ip.len() {
            return Err(Ipv4Error::Malformed);
        }
        Ok(Ipv4View { frame, hlen, total })
    }

    fn ip(&self) -> &'a [u8] {
        &self.frame[ETH_HLEN..]
    }

    pub fn eth_dst(&self) -> MacAddr {
        mac_at(self.frame, field::ETH_DST.start)
    }

    pub fn eth_src(&self) -> MacAddr {
        mac_at(self.frame, field::ETH_SRC.start)
    }

    /// The IPv4 header, options included.
    pub fn header(&self) -> &'a [u8] {
        &self.ip()[..self.hlen]
    }

    /// The whole IPv4 packet (header and payload, without Ethernet padding).
    pub fn packet(&self) -> &'a [u8] {
        &self.ip()[..self.total]
    }

    pub fn payload(&self) -> &'a [u8] {
        &self.ip()[self.hlen..self.total]
    }

    pub fn tos(&self) -> u8 {
        self.ip()[field::TOS]
    }

    pub fn ident(&self) -> u16 {
        be16(self.ip(), field::IDENT.start)
    }

    pub fn protocol(&self) -> u8 {
        self.ip()[field::PROTOCOL]
    }

    pub fn src(&self) -> Ipv4Addr {
        ipv4_at(self.ip(), field::SRC.start)
    }

    pub fn dst(&self) -> Ipv4Addr {
        ipv4_at(self.ip(), field::DST.start)
    }

    fn flags_frag(&self) -> u16 {
        be16(self.ip(), field::FLAGS_FRAG.start)
    }

    /// A fragment of a larger datagram, the first one included.
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    /// A fragment other than the first (it carries no transport header).
    pub fn is_later_fragment(&self) -> bool {
        self.flags_frag() & FRAG_OFFSET_MASK != 0
    }

    /// The header checksum verifies (options included).
    pub fn checksum_ok(&self) -> bool {
        checksum::checksum(self.header()) == 0
    }

    /// The options are well-formed as a list: each is End of List, No Operation, or a
    /// type, a length of at least 2 and that many bytes inside the header. (Their
    /// contents are not checked: a router forwards options it does not act on.)
    pub fn options_ok(&self) -> bool {
        let options = &self.header()[IPV4_HLEN..];
        let mut at = 0;
        while let Some(&kind) = options.get(at) {
            match kind {
                OPTION_END => return true,
                OPTION_NOP => at += 1,
                _ => match options.get(at + 1).map(|&l| usize::from(l)) {
                    Some(len) if len >= 2 && at + len <= options.len() => at += len,
                    _ => return false,
                },
            }
        }
        true
    }
}

/// The fields of an IPv4 header without options that the switch originates.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ipv4Out {
    pub tos: u8,
    pub ident: u16,
    pub dont_fragment: bool,
    pub protocol: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// Length of what follows the header.
    pub payload_len: u16,
}

/// Writes a 20-byte IPv4 header with TTL [`DEFAULT_TTL`] and its checksum into
/// `out[..20]`. The caller has checked that `out` is long enough and that
/// `payload_len + 20` fits in a `u16`.
pub(super) fn write_ipv4(out: &mut [u8], h: &Ipv4Out) {
    let out = &mut out[..IPV4_HLEN];
    out[field::VER_IHL] = 0x45;
    out[field::TOS] = h.tos;
    out[field::TOTAL_LEN].copy_from_slice(&(h.payload_len + IPV4_HLEN as u16).to_be_bytes());
    out[field::IDENT].copy_from_slice(&h.ident.to_be_bytes());
    let flags = if h.dont_fragment { FLAG_DF } else { 0 };
    out[field::FLAGS_FRAG].copy_from_slice(&flags.to_be_bytes());
    out[field::TTL] = DEFAULT_TTL;
    out[field::PROTOCOL] = h.protocol;
    out[field::CHECKSUM].copy_from_slice(&[0, 0]);
    out[field::SRC].copy_from_slice(&h.src.octets());
    out[field::DST].copy_from_slice(&h.dst.octets());
    let sum = checksum::checksum(out);
    out[field::CHECKSUM].copy_from_slice(&sum.to_be_bytes());
}

/// Writes an Ethernet header into `out[..14]` (the caller checked the length).
pub(super) fn write_eth(out: &mut [u8], dst: MacAddr, src: MacAddr, ethertype: u16) {
    out[field::ETH_DST].copy_from_slice(&dst.0);
    out[field::ETH_SRC].copy_from_slice(&src.0);
    out[field::ETHERTYPE].copy_from_slice(&ethertype.to_be_bytes());
}

/// The length a frame of `len` bytes has once padded to [`MIN_FRAME_LEN`].
pub(super) const fn padded_len(len: usize) -> usize {
    if len < MIN_FRAME_LEN {
        MIN_FRAME_LEN
    } else {
        len
    }
}

/// Zero-fills `out[len..padded_len(len)]` and returns the padded length. The caller
/// checked that `out` holds `padded_len(len)` bytes.
pub(super) fn pad(out: &mut [u8], len: usize) -> usize {
    let end = padded_len(len);
    out[len..end].fill(0);
    end
}
