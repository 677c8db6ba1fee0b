//! ARP for IPv4 over Ethernet (RFC 826): turning a received frame into an [`Arp`] (or
//! a countable [`ArpError`]), and building the three frames the switch sends — a reply
//! for an address it owns, a request ("who has X? tell Y", broadcast, or unicast to
//! re-check a cached MAC) and a gratuitous ARP announcing an address.
//!
//! Only hardware type Ethernet (1) with 6-byte addresses and protocol IPv4 (0x0800)
//! with 4-byte addresses, operations request (1) and reply (2): everything else ARP
//! can describe (RARP, IPv6-sized or other hardware addresses, InARP) is refused with
//! its reason. Parsing checks structure only; whether to answer (is the target ours?)
//! and whether to learn (see [`super::neigh`]) are the caller's decisions. Frames are
//! written into a caller buffer and zero-padded to 60 bytes, as Linux sends them; no
//! allocation, no panic on any input.

use std::net::Ipv4Addr;

use fdb::MacAddr;

use super::wire::{self, ETH_HLEN, ETHERTYPE_ARP, MIN_FRAME_LEN};

/// Length of every ARP frame built here (28 bytes of ARP after the Ethernet header,
/// padded to the Ethernet minimum).
pub const ARP_FRAME_LEN: usize = MIN_FRAME_LEN;

/// Length of an IPv4-over-Ethernet ARP message.
const ARP_LEN: usize = 28;
/// The fixed part every ARP message starts with (types, lengths, operation).
const ARP_FIXED_LEN: usize = 8;

const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;
const OP_REQUEST: u16 = 1;
const OP_REPLY: u16 = 2;

/// Byte ranges relative to the start of the ARP message.
mod field {
    use std::ops::Range;

    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
}

/// Why a frame is not an ARP message we handle, or an ARP frame could not be built.
/// Small and `Copy`, for drop counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum ArpError {
    #[error("ARP frame shorter than its headers")]
    Truncated,
    #[error("not an ARP frame (Ethertype is not 0x0806)")]
    WrongEthertype,
    #[error("ARP hardware type is not Ethernet")]
    UnsupportedHardware,
    #[error("ARP protocol type is not IPv4")]
    UnsupportedProtocol,
    #[error("ARP address lengths are not 6 (MAC) and 4 (IPv4)")]
    BadAddressLength,
    #[error("ARP operation is neither request nor reply")]
    UnsupportedOperation,
    #[error("ARP sender MAC is multicast or zero")]
    InvalidSenderMac,
    #[error("only an ARP request can be answered")]
    NotARequest,
    #[error("output buffer shorter than an ARP frame ({ARP_FRAME_LEN} bytes)")]
    BufferTooSmall,
}

impl ArpError {
    /// Every reason, in a fixed order.
    pub const ALL: [ArpError; 9] = [
        ArpError::Truncated,
        ArpError::WrongEthertype,
        ArpError::UnsupportedHardware,
        ArpError::UnsupportedProtocol,
        ArpError::BadAddressLength,
        ArpError::UnsupportedOperation,
        ArpError::InvalidSenderMac,
        ArpError::NotARequest,
        ArpError::BufferTooSmall,
    ];

    /// The snake_case name a drop counter shows.
    pub const fn name(self) -> &'static str {
        match self {
            ArpError::Truncated => "arp_truncated",
            ArpError::WrongEthertype => "arp_wrong_ethertype",
            ArpError::UnsupportedHardware => "arp_unsupported_hardware",
            ArpError::UnsupportedProtocol => "arp_unsupported_protocol",
            ArpError::BadAddressLength => "arp_bad_address_length",
            ArpError::UnsupportedOperation => "arp_unsupported_operation",
            ArpError::InvalidSenderMac => "arp_invalid_sender_mac",
            ArpError::NotARequest => "arp_not_a_request",
            ArpError::BufferTooSmall => "arp_buffer_too_small",
        }
    }
}

/// The ARP operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArpOp {
    Request,
    Reply,
}

/// An IPv4-over-Ethernet ARP message and the Ethernet addresses it came with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Arp {
    pub eth_dst: MacAddr,
    pub eth_src: MacAddr,
    pub op: ArpOp,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

impl Arp {
    /// Parses an untagged Ethernet frame carrying ARP. Bytes after the 28-byte message
    /// (Ethernet padding) are ignored. A sender MAC that is multicast or zero is
    /// refused: no host has it, and learning it would misdirect traffic.
    pub fn parse(frame: &[u8]) -> Result<Arp, ArpError> {
        match wire::ethertype(frame) {
            Some(ETHERTYPE_ARP) => {}
            Some(_) => return Err(ArpError::WrongEthertype),
            None => return Err(ArpError::Truncated),
        }
        let arp = &frame[ETH_HLEN..];
        if arp.len() < ARP_FIXED_LEN {
            return Err(ArpError::Truncated);
        }
        if wire::be16(arp, field::HTYPE) != HTYPE_ETHERNET {
            return Err(ArpError::UnsupportedHardware);
        }
        if wire::be16(arp, field::PTYPE) != PTYPE_IPV4 {
            return Err(ArpError::UnsupportedProtocol);
        }
        if arp[field::HLEN] != 6 || arp[field::PLEN] != 4 {
            return Err(ArpError::BadAddressLength);
        }
        let op = match wire::be16(arp, field::OPER) {
            OP_REQUEST => ArpOp::Request,
            OP_REPLY => ArpOp::Reply,
            _ => return Err(ArpError::UnsupportedOperation),
        };
        if arp.len() < ARP_LEN {
            return Err(ArpError::Truncated);
        }
        let sender_mac = wire::mac_at(arp, field::SHA.start);
        if sender_mac.is_multicast() || sender_mac.is_zero() {
            return Err(ArpError::InvalidSenderMac);
        }
        Ok(Arp {
            eth_dst: wire::mac_at(frame, wire::field::ETH_DST.start),
            eth_src: wire::mac_at(frame, wire::field::ETH_SRC.start),
            op,
            sender_mac,
            sender_ip: wire::ipv4_at(arp, field::SPA.start),
            target_mac: wire::mac_at(arp, field::THA.start),
            target_ip: wire::ipv4_at(arp, field::TPA.start),
        })
    }

    /// A gratuitous ARP (RFC 5227 "announcement", or an unsolicited reply): the
    /// sender announces its own address, so sender and target address are the same.
    pub fn is_gratuitous(&self) -> bool {
        self.sender_ip == self.target_ip && !self.sender_ip.is_unspecified()
    }

    /// An address-conflict probe (RFC 5227): a request from `0.0.0.0`. It may be
    /// answered (the reply tells the prober the address is taken) but teaches nothing.
    pub fn is_probe(&self) -> bool {
        self.op == ArpOp::Request && self.sender_ip.is_unspecified()
    }

    /// Writes this message as a frame into `out`, padded to [`ARP_FRAME_LEN`]; returns
    /// the length.
    pub fn emit(&self, out: &mut [u8]) -> Result<usize, ArpError> {
        if out.len() < ARP_FRAME_LEN {
            return Err(ArpError::BufferTooSmall);
        }
        wire::write_eth(out, self.eth_dst, self.eth_src, ETHERTYPE_ARP);
        let arp = &mut out[ETH_HLEN..ETH_HLEN + ARP_LEN];
        arp[field::HTYPE..field::HTYPE + 2].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        arp[field::PTYPE..field::PTYPE + 2].copy_from_slice(&PTYPE_IPV4.to_be_bytes());
        arp[field::HLEN] = 6;
        arp[field::PLEN] = 4;
        let op = match self.op {
            ArpOp::Request => OP_REQUEST,
            ArpOp::Reply => OP_REPLY,
        };
        arp[field::OPER..field::OPER + 2].copy_from_slice(&op.to_be_bytes());
        arp[field::SHA].copy_from_slice(&self.sender_mac.0);
        arp[field::SPA].copy_from_slice(&self.sender_ip.octets());
        arp[field::THA].copy_from_slice(&self.target_mac.0);
        arp[field::TPA].copy_from_slice(&self.target_ip.octets());
        Ok(wire::pad(out, ETH_HLEN + ARP_LEN))
    }
}

/// Builds the reply to `request`, which asked for an address the caller owns, with
/// `our_mac` as the answer. Like Linux, the reply goes to the requester's *sender*
/// MAC (not the Ethernet source), and a probe from `0.0.0.0` is answered to the
/// prober's MAC with target address `0.0.0.0`.
pub fn build_reply(request: &Arp, our_mac: MacAddr, out: &mut [u8]) -> Result<usize, ArpError> {
    if request.op != ArpOp::Request {
        return Err(ArpError::NotARequest);
    }
    Arp {
        eth_dst: request.sender_mac,
        eth_src: our_mac,
        op: ArpOp::Reply,
        sender_mac: our_mac,
        sender_ip: request.target_ip,
        target_mac: request.sender_mac,
        target_ip: request.sender_ip,
    }
    .emit(out)
}

/// Builds a request for `target_ip` from (`sender_mac`, `sender_ip`) to `dst`:
/// [`MacAddr::BROADCAST`] to resolve, or the cached MAC to re-check it (a unicast
/// probe). The target MAC is zero, as Linux sends it.
pub fn build_request(
    sender_mac: MacAddr,
    sender_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
    dst: MacAddr,
    out: &mut [u8],
) -> Result<usize, ArpError> {
    Arp {
        eth_dst: dst,
        eth_src: sender_mac,
        op: ArpOp::Request,
        sender_mac,
        sender_ip,
        target_mac: MacAddr::default(),
        target_ip,
    }
    .emit(out)
}

/// Builds a gratuitous ARP announcing that `ip` is at `mac`: a broadcast request with
/// sender and target address both `ip` (RFC 5227 announcement form, what Linux sends
/// when an address comes up), which makes neighbours update a cached entry.
pub fn build_gratuitous(mac: MacAddr, ip: Ipv4Addr, out: &mut [u8]) -> Result<usize, ArpError> {
    build_request(mac, ip, ip, MacAddr::BROADCAST, out)
}
