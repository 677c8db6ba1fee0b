//! The VXLAN header (RFC 7348 section 5): a view over its 8 bytes, the [`Vni`] newtype
//! and the receive policy.
//!
//! ```text
//!  0               1               2               3
//! +---------------+-----------------------------------------------+
//! |R|R|R|R|I|R|R|R|            Reserved (24 bits)                 |
//! +---------------+-------------------------------+---------------+
//! |            VXLAN Network Identifier (VNI)     |   Reserved    |
//! +-----------------------------------------------+---------------+
//! ```
//!
//! Receive policy, stated once here and applied by [`VxlanRepr::parse`]:
//! - the I flag (0x08) must be set, or the header is malformed;
//! - every other flag bit must be clear. RFC 7348 says to ignore them, but the
//!   extensions that define them (Group Policy, VXLAN-GPE, ...) change what the
//!   payload means, so a receiver that ignored them could hand a non-Ethernet payload
//!   to the switch. We follow Linux, which drops such packets unless the extension is
//!   configured (`vxlan_rcv`: "unknown flags"), and we configure none;
//! - the 24-bit and 8-bit reserved fields are ignored on receipt, as the RFC says,
//!   and written as zero.
//!
//! The view follows smoltcp's wire pattern: `new_unchecked`, `new_checked`, `check_len`;
//! after `check_len` succeeds no accessor panics.

use std::fmt;
use std::str::FromStr;

/// Length of the VXLAN header.
pub const HEADER_LEN: usize = 8;

/// The I flag: "the VNI is valid". The only flag we accept.
pub const FLAG_I: u8 = 0x08;

mod field {
    use std::ops::Range;

    pub const FLAGS: usize = 0;
    pub const RESERVED1: Range<usize> = 1..4;
    pub const VNI: Range<usize> = 4..7;
    pub const RESERVED2: usize = 7;
    pub const PAYLOAD: usize = 8;
}

/// A VXLAN Network Identifier: 24 bits, so below 2^24.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vni(u32);

impl Vni {
    /// The largest VNI, 2^24 - 1.
    pub const MAX: u32 = 0x00ff_ffff;

    /// A VNI, or `None` when `value` does not fit in 24 bits.
    pub const fn new(value: u32) -> Option<Vni> {
        if value <= Self::MAX {
            Some(Vni(value))
        } else {
            None
        }
    }

    /// The VNI made of the low 24 bits of `value`; for values read from a header.
    const fn from_low_bits(value: u32) -> Vni {
        Vni(value & Self::MAX)
    }

    /// The numeric value.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A number that is not a valid VNI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VniError {
    #[error("VNI {0} is out of range: a VNI is 24 bits, 0 to 16777215")]
    OutOfRange(u64),
    #[error("VNI is not a number: expected an integer from 0 to 16777215")]
    NotANumber,
}

impl TryFrom<u32> for Vni {
    type Error = VniError;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Vni::new(value).ok_or(VniError::OutOfRange(u64::from(value)))
    }
}

impl From<Vni> for u32 {
    fn from(vni: Vni) -> u32 {
        vni.0
    }
}

impl FromStr for Vni {
    type Err = VniError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n: u64 = s.trim().parse().map_err(|_| VniError::NotANumber)?;
        u32::try_from(n)
            .ok()
            .and_then(Vni::new)
            .ok_or(VniError::OutOfRange(n))
    }
}

/// Why a VXLAN header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("VXLAN header truncated: {len} bytes, need {HEADER_LEN}")]
    Truncated { len: usize },
    #[error("VXLAN flags 0x{flags:02x} lack the I flag (0x08): the VNI is not valid")]
    MissingIFlag { flags: u8 },
    #[error(
        "VXLAN flags 0x{flags:02x} set bits other than I (0x08): an extension (GBP, GPE) we do not speak"
    )]
    UnknownFlags { flags: u8 },
}

/// A view over a buffer that starts with a VXLAN header.
#[derive(Debug, Clone)]
pub struct VxlanPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VxlanPacket<T> {
    /// Wraps a buffer without checking its length; call [`check_len`](Self::check_len)
    /// before any accessor.
    pub const fn new_unchecked(buffer: T) -> VxlanPacket<T> {
        VxlanPacket { buffer }
    }

    /// Wraps a buffer that is at least [`HEADER_LEN`] long.
    pub fn new_checked(buffer: T) -> Result<VxlanPacket<T>, HeaderError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Ensures no accessor panics.
    pub fn check_len(&self) -> Result<(), HeaderError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            Err(HeaderError::Truncated { len })
        } else {
            Ok(())
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The flags byte.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// The VNI field.
    #[inline]
    pub fn vni(&self) -> Vni {
        let b = &self.buffer.as_ref()[field::VNI];
        Vni::from_low_bits(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }

    /// The first reserved field (24 bits after the flags).
    #[inline]
    pub fn reserved1(&self) -> u32 {
        let b = &self.buffer.as_ref()[field::RESERVED1];
        u32::from_be_bytes([0, b[0], b[1], b[2]])
    }

    /// The last reserved byte (after the VNI).
    #[inline]
    pub fn reserved2(&self) -> u8 {
        self.buffer.as_ref()[field::RESERVED2]
    }

    /// The encapsulated Ethernet frame.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VxlanPacket<T> {
    /// Sets the flags byte.
    #[inline]
    pub fn set_flags(&mut self, flags: u8) {
        self.buffer.as_mut()[field::FLAGS] = flags;
    }

    /// Sets the VNI field.
    #[inline]
    pub fn set_vni(&mut self, vni: Vni) {
        let b = vni.get().to_be_bytes();
        self.buffer.as_mut()[field::VNI].copy_from_slice(&b[1..]);
    }

    /// Sets the first reserved field (low 24 bits of `value`).
    #[inline]
    pub fn set_reserved1(&mut self, value: u32) {
        let b = value.to_be_bytes();
        self.buffer.as_mut()[field::RESERVED1].copy_from_slice(&b[1..]);
    }

    /// Sets the last reserved byte.
    #[inline]
    pub fn set_reserved2(&mut self, value: u8) {
        self.buffer.as_mut()[field::RESERVED2] = value;
    }

    /// The encapsulated frame, writable.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

/// The meaning of a VXLAN header: all we keep is the VNI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VxlanRepr {
    pub vni: Vni,
}

impl VxlanRepr {
    /// Parses a header under the receive policy in the module doc.
    pub fn parse<T: AsRef<[u8]>>(packet: &VxlanPacket<T>) -> Result<VxlanRepr, HeaderError> {
        packet.check_len()?;
        let flags = packet.flags();
        if flags & FLAG_I == 0 {
            return Err(HeaderError::MissingIFlag { flags });
        }
        if flags != FLAG_I {
            return Err(HeaderError::UnknownFlags { flags });
        }
        Ok(VxlanRepr { vni: packet.vni() })
    }

    /// The bytes [`emit`](Self::emit) writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header: I flag, the VNI, reserved fields zero. The buffer must be at
    /// least [`HEADER_LEN`] long (checked by the caller, as in smoltcp).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut VxlanPacket<T>) {
        packet.set_flags(FLAG_I);
        packet.set_reserved1(0);
        packet.set_vni(self.vni);
        packet.set_reserved2(0);
    }

    /// Writes the header into the first 8 bytes of `buf`; `None` if it is shorter.
    pub fn write(&self, buf: &mut [u8]) -> Option<()> {
        let mut packet = VxlanPacket::new_checked(buf.get_mut(..HEADER_LEN)?).ok()?;
        self.emit(&mut packet);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: [u8; 10] = [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0, 0xaa, 0xbb];

    #[test]
    fn reads_fields() {
        let p = VxlanPacket::new_checked(&FIXTURE[..]).unwrap();
        assert_eq!(p.flags(), FLAG_I);
        assert_eq!(p.vni().get(), 0x12_3456);
        assert_eq!(p.reserved1(), 0);
        assert_eq!(p.reserved2(), 0);
        assert_eq!(p.payload(), &[0xaa, 0xbb]);
        assert_eq!(VxlanRepr::parse(&p).unwrap().vni.get(), 0x12_3456);
    }

    #[test]
    fn emit_writes_zero_reserved_fields() {
        let mut buf = [0xffu8; 8];
        let repr = VxlanRepr {
            vni: Vni::new(0xab_cdef).unwrap(),
        };
        repr.write(&mut buf).unwrap();
        assert_eq!(buf, [0x08, 0, 0, 0, 0xab, 0xcd, 0xef, 0]);
        assert!(repr.write(&mut [0u8; 7]).is_none());
    }

    #[test]
    fn setters_round_trip() {
        let mut buf = [0u8; 8];
        let mut p = VxlanPacket::new_unchecked(&mut buf[..]);
        p.set_flags(0x88);
        p.set_reserved1(0x0102_0304);
        p.set_vni(Vni::new(7).unwrap());
        p.set_reserved2(9);
        p.payload_mut();
        assert_eq!(p.flags(), 0x88);
        assert_eq!(p.reserved1(), 0x02_0304);
        assert_eq!(p.vni().get(), 7);
        assert_eq!(p.reserved2(), 9);
    }

    #[test]
    fn reserved_fields_are_ignored_on_receipt() {
        let bytes = [0x08, 0xff, 0xff, 0xff, 0, 0, 42, 0xff];
        let p = VxlanPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(VxlanRepr::parse(&p).unwrap().vni.get(), 42);
    }

    #[test]
    fn flag_policy() {
        let parse = |flags: u8| {
            let bytes = [flags, 0, 0, 0, 0, 0, 1, 0];
            VxlanRepr::parse(&VxlanPacket::new_unchecked(&bytes[..]))
        };
        assert_eq!(parse(0), Err(HeaderError::MissingIFlag { flags: 0 }));
        assert_eq!(parse(0x80), Err(HeaderError::MissingIFlag { flags: 0x80 }));
        // Group Policy (G bit 0x80) and GPE-style next-protocol bits are refused.
        assert_eq!(parse(0x88), Err(HeaderError::UnknownFlags { flags: 0x88 }));
        assert_eq!(parse(0x0c), Err(HeaderError::UnknownFlags { flags: 0x0c }));
        assert!(parse(0x08).is_ok());
    }

    #[test]
    fn short_buffers_are_refused() {
        for len in 0..HEADER_LEN {
            let bytes = vec![0x08; len];
            assert_eq!(
                VxlanPacket::new_checked(&bytes[..]).unwrap_err(),
                HeaderError::Truncated { len }
            );
            let p = VxlanPacket::new_unchecked(&bytes[..]);
            assert!(VxlanRepr::parse(&p).is_err());
        }
    }

    #[test]
    fn vni_range() {
        assert_eq!(Vni::try_from(Vni::MAX).unwrap().get(), 0xff_ffff);
        assert_eq!(Vni::try_from(1 << 24), Err(VniError::OutOfRange(1 << 24)));
        assert_eq!("100".parse::<Vni>().unwrap().get(), 100);
        assert_eq!(
            "16777216".parse::<Vni>(),
            Err(VniError::OutOfRange(16_777_216))
        );
        assert_eq!("ten".parse::<Vni>(), Err(VniError::NotANumber));
        assert!(
            VniError::OutOfRange(1 << 24)
                .to_string()
                .contains("24 bits")
        );
        assert_eq!(Vni::new(5).unwrap().to_string(), "5");
    }
}
