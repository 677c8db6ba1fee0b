//! The legacy 10-byte virtio_net_hdr (`struct virtio_net_hdr` in
//! `include/uapi/linux/virtio_net.h`), as TAP and AF_PACKET ports exchange it: parsed
//! into a `Copy` struct and emitted back, byte for byte. Only parsing lives here; what
//! the fields must say for the kernel to accept a frame is written down where frames are
//! built (`gro`) and checked where they are consumed (`split`, `csum`).
//!
//! Byte order: little-endian. TAP uses the host order unless `TUNSETVNETBE` is set and
//! AF_PACKET uses `vio_le()` (little-endian on every host that matters); the switch runs
//! on x86_64 and never sets big-endian headers.

use crate::packet::VNET_HDR_LEN;

/// `hdr.gso_type`, without the ECN bit (kept in [`VnetHdr::gso_ecn`]). Unknown values are
/// kept, not rejected, so a header always round-trips through parse and emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GsoType {
    /// `VIRTIO_NET_HDR_GSO_NONE` (0): not a super-frame.
    #[default]
    None,
    /// `VIRTIO_NET_HDR_GSO_TCPV4` (1): TCP over IPv4, cut at gso_size payload bytes.
    TcpV4,
    /// `VIRTIO_NET_HDR_GSO_UDP` (3): UFO, one UDP datagram split into IP fragments.
    Udp,
    /// `VIRTIO_NET_HDR_GSO_TCPV6` (4).
    TcpV6,
    /// `VIRTIO_NET_HDR_GSO_UDP_L4` (5): UDP GSO, one UDP datagram per gso_size bytes.
    UdpL4,
    /// Anything else (the 7 low bits of the field).
    Unknown(u8),
}

impl GsoType {
    fn from_bits(bits: u8) -> Self {
        match bits {
            VnetHdr::GSO_NONE => GsoType::None,
            VnetHdr::GSO_TCPV4 => GsoType::TcpV4,
            VnetHdr::GSO_UDP => GsoType::Udp,
            VnetHdr::GSO_TCPV6 => GsoType::TcpV6,
            VnetHdr::GSO_UDP_L4 => GsoType::UdpL4,
            other => GsoType::Unknown(other),
        }
    }

    fn bits(self) -> u8 {
        match self {
            GsoType::None => VnetHdr::GSO_NONE,
            GsoType::TcpV4 => VnetHdr::GSO_TCPV4,
            GsoType::Udp => VnetHdr::GSO_UDP,
            GsoType::TcpV6 => VnetHdr::GSO_TCPV6,
            GsoType::UdpL4 => VnetHdr::GSO_UDP_L4,
            GsoType::Unknown(b) => b & !VnetHdr::GSO_ECN,
        }
    }
}

/// A parsed virtio_net_hdr.
///
/// - `flags`: [`VnetHdr::F_NEEDS_CSUM`] — the L4 checksum field at `csum_start +
///   csum_offset` holds only the pseudo-header sum; the sum over the bytes from
///   `csum_start` to the end of the frame remains to be folded in.
///   [`VnetHdr::F_DATA_VALID`] — the checksums were verified (receive side only). Other
///   bits are kept as they came.
/// - `gso_type` / `gso_size`: a super-frame to be cut at `gso_size` L4 payload bytes.
/// - `hdr_len`: a hint only. The kernel fills it with `skb_headlen()` (which may include
///   payload) and, on input, raises it to `csum_start + csum_offset + 2`; it must never
///   exceed the frame. Nothing here relies on it for layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: GsoType,
    /// `VIRTIO_NET_HDR_GSO_ECN` (0x80): the sender set CWR; segments after the first get
    /// it cleared (which the split does for every super-frame anyway, as Linux does).
    pub gso_ecn: bool,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    pub const F_NEEDS_CSUM: u8 = 1;
    pub const F_DATA_VALID: u8 = 2;
    pub const GSO_NONE: u8 = 0;
    pub const GSO_TCPV4: u8 = 1;
    pub const GSO_UDP: u8 = 3;
    pub const GSO_TCPV6: u8 = 4;
    pub const GSO_UDP_L4: u8 = 5;
    pub const GSO_ECN: u8 = 0x80;

    /// No offload: a complete frame with complete checksums (all ten bytes zero).
    pub const NONE: VnetHdr = VnetHdr {
        flags: 0,
        gso_type: GsoType::None,
        gso_ecn: false,
        hdr_len: 0,
        gso_size: 0,
        csum_start: 0,
        csum_offset: 0,
    };

    /// Reads the ten header bytes. Never fails: every byte pattern is a header, whether it
    /// fits its frame is checked where the frame is used.
    pub fn parse(raw: &[u8; VNET_HDR_LEN]) -> VnetHdr {
        let le = |i: usize| u16::from_le_bytes([raw[i], raw[i + 1]]);
        VnetHdr {
            flags: raw[0],
            gso_type: GsoType::from_bits(raw[1] & !Self::GSO_ECN),
            gso_ecn: raw[1] & Self::GSO_ECN != 0,
            hdr_len: le(2),
            gso_size: le(4),
            csum_start: le(6),
            csum_offset: le(8),
        }
    }

    /// Writes the ten header bytes; `parse(emit(h)) == h` for every parsed `h`.
    pub fn emit(&self, raw: &mut [u8; VNET_HDR_LEN]) {
        raw[0] = self.flags;
        raw[1] = self.gso_type.bits() | if self.gso_ecn { Self::GSO_ECN } else { 0 };
        raw[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        raw[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        raw[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        raw[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
    }

    /// The header as bytes (for `PacketBuf::vnet`).
    pub fn to_bytes(&self) -> [u8; VNET_HDR_LEN] {
        let mut raw = [0; VNET_HDR_LEN];
        self.emit(&mut raw);
        raw
    }

    pub fn needs_csum(&self) -> bool {
        self.flags & Self::F_NEEDS_CSUM != 0
    }

    /// What a rewrite of the frame must do with its transport checksum: update the
    /// pseudo-header sum a device will finish (`Partial`), or the whole checksum.
    pub fn checksum_state(&self) -> vtep::ChecksumState {
        if self.needs_csum() {
            vtep::ChecksumState::Partial
        } else {
            vtep::ChecksumState::Complete
        }
    }

    pub fn data_valid(&self) -> bool {
        self.flags & Self::F_DATA_VALID != 0
    }

    /// Whether the frame is a super-frame (any gso_type but NONE, known or not).
    pub fn is_gso(&self) -> bool {
        self.gso_type != GsoType::None
    }

    /// Whether the frame can leave as it is on a port without vnet_hdr: no GSO and no
    /// checksum left to complete.
    pub fn is_complete(&self) -> bool {
        !self.is_gso() && !self.needs_csum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reads_little_endian_fields() {
        let raw = [1, 0x81, 0x42, 0, 0xa8, 0x05, 0x22, 0, 0x10, 0];
        let h = VnetHdr::parse(&raw);
        assert_eq!(
            h,
            VnetHdr {
                flags: VnetHdr::F_NEEDS_CSUM,
                gso_type: GsoType::TcpV4,
                gso_ecn: true,
                hdr_len: 66,
                gso_size: 1448,
                csum_start: 34,
                csum_offset: 16,
            }
        );
        assert!(h.needs_csum() && !h.data_valid() && h.is_gso() && !h.is_complete());
        assert_eq!(h.to_bytes(), raw);
    }

    #[test]
    fn none_is_all_zero() {
        assert_eq!(VnetHdr::NONE.to_bytes(), [0; VNET_HDR_LEN]);
        assert_eq!(VnetHdr::parse(&[0; VNET_HDR_LEN]), VnetHdr::NONE);
        assert!(VnetHdr::NONE.is_complete());
    }

    #[test]
    fn every_gso_byte_round_trips() {
        for b in 0..=u8::MAX {
            let raw = [0xff, b, 1, 2, 3, 4, 5, 6, 7, 8];
            assert_eq!(VnetHdr::parse(&raw).to_bytes(), raw, "gso_type byte {b:#x}");
        }
        assert_eq!(
            VnetHdr::parse(&[0, 2, 0, 0, 0, 0, 0, 0, 0, 0]).gso_type,
            GsoType::Unknown(2)
        );
        assert_eq!(
            VnetHdr::parse(&[0, 5, 0, 0, 0, 0, 0, 0, 0, 0]).gso_type,
            GsoType::UdpL4
        );
        assert_eq!(
            VnetHdr::parse(&[0, 4, 0, 0, 0, 0, 0, 0, 0, 0]).gso_type,
            GsoType::TcpV6
        );
        assert_eq!(
            VnetHdr::parse(&[0, 3, 0, 0, 0, 0, 0, 0, 0, 0]).gso_type,
            GsoType::Udp
        );
    }
}
