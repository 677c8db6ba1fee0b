//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! A running sum is a plain `u32` that every function keeps folded to at most
//! `0xffff`, so sums can be chained without overflow: start at `0`, add byte runs with
//! [`add_bytes`] and words with [`add_u16`], then [`finish`] to get the value that goes
//! into a checksum field. Adding 32-bit words and folding gives the same result as
//! adding 16-bit words, because 2^16 is 1 modulo 0xffff; [`add_bytes`] uses that to go
//! four bytes at a time.
//!
//! Two kinds of field are updated in place:
//! - a **complete** checksum (the one's complement of the sum), with
//!   [`csum_replace2`], [`csum_replace4`], [`csum_replace16`] and [`csum_replace`]
//!   (RFC 1624 equation 3, which never produces a wrong `-0`);
//! - a **partial** checksum, as virtio_net_hdr `NEEDS_CSUM` leaves it: the field holds
//!   the folded pseudo-header sum, not complemented, and the device completes it later.
//!   Only a pseudo-header change (an address, the length) touches it, with
//!   [`partial_replace`]; a change to the segment itself must leave it alone.
//!
//! For UDP over IPv4 a computed value of `0` must be sent as `0xffff` (0 means "no
//! checksum"); callers that write UDP checksums do that mapping, these functions don't.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Folds a running sum to 16 bits (end-around carry), not complemented.
#[inline]
pub const fn fold(mut acc: u32) -> u16 {
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// The value for a checksum field: the one's complement of the folded sum.
#[inline]
pub const fn finish(acc: u32) -> u16 {
    !fold(acc)
}

/// Adds one 16-bit word to a running sum.
#[inline]
pub const fn add_u16(acc: u32, word: u16) -> u32 {
    fold(fold(acc) as u32 + word as u32) as u32
}

/// Adds `data`, read as big-endian 16-bit words, to a running sum. An odd last byte
/// is padded with a zero byte, so only the last run of a checksummed region may have
/// an odd length.
pub fn add_bytes(acc: u32, data: &[u8]) -> u32 {
    // A u64 accumulator of 32-bit words cannot overflow below 2^32 words (16 GiB).
    let mut sum = u64::from(acc);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        sum += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
        sum += u64::from(u32::from_be_bytes([c[4], c[5], c[6], c[7]]));
    }
    let mut rest = chunks.remainder();
    while rest.len() >= 2 {
        sum += u64::from(u16::from_be_bytes([rest[0], rest[1]]));
        rest = &rest[2..];
    }
    if let [last] = rest {
        sum += u64::from(*last) << 8;
    }
    // Fold the four 16-bit quarters of the u64 (at most 4 * 0xffff), then to 16 bits.
    let quarters = (sum & 0xffff) + ((sum >> 16) & 0xffff) + ((sum >> 32) & 0xffff) + (sum >> 48);
    u32::from(fold(quarters as u32))
}

/// The complete checksum of `data` (for example an IPv4 header whose checksum field is
/// zero). Over data that includes a correct checksum field the result is `0`.
pub fn checksum(data: &[u8]) -> u16 {
    finish(add_bytes(0, data))
}

/// The running sum of the IPv4 pseudo-header (RFC 768 / RFC 793): addresses, protocol
/// and the transport length.
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u32 {
    let acc = add_bytes(0, &src.octets());
    let acc = add_bytes(acc, &dst.octets());
    let acc = add_u16(acc, u16::from(protocol));
    add_u16(acc, len)
}

/// The running sum of the IPv6 pseudo-header (RFC 8200 section 8.1): addresses, the
/// upper-layer length and the next header.
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u32 {
    let acc = add_bytes(0, &src.octets());
    let acc = add_bytes(acc, &dst.octets());
    let acc = add_bytes(acc, &len.to_be_bytes());
    add_u16(acc, u16::from(next_header))
}

/// Updates a complete checksum field after the bytes `old` were replaced by `new` at
/// the same even offset (RFC 1624 equation 3: `HC' = ~(~HC + ~m + m')`). `old` and
/// `new` must have the same length; an odd length is treated as padded with zero.
pub fn csum_replace(check: u16, old: &[u8], new: &[u8]) -> u16 {
    !partial_replace(!check, old, new)
}

/// Updates a partial (not complemented) sum field after `old` bytes of the
/// pseudo-header were replaced by `new`: `S' = S + ~m + m'`.
pub fn partial_replace(sum: u16, old: &[u8], new: &[u8]) -> u16 {
    // ~m summed word by word equals ~(sum of m) in one's complement arithmetic.
    let acc = add_u16(u32::from(sum), !fold(add_bytes(0, old)));
    fold(add_bytes(acc, new))
}

/// [`csum_replace`] for one 16-bit word (a port, a length, an MSS value).
#[inline]
pub fn csum_replace2(check: u16, old: u16, new: u16) -> u16 {
    !fold(add_u16(add_u16(u32::from(!check), !old), new))
}

/// [`csum_replace`] for a 4-byte field (an IPv4 address).
#[inline]
pub fn csum_replace4(check: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    csum_replace(check, &old, &new)
}

/// [`csum_replace`] for a 16-byte field (an IPv6 address).
#[inline]
pub fn csum_replace16(check: u16, old: &[u8; 16], new: &[u8; 16]) -> u16 {
    csum_replace(check, old, new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A straightforward RFC 1071 reference: 16-bit words, fold at the end.
    fn reference(data: &[u8]) -> u16 {
        let mut sum: u64 = 0;
        for pair in data.chunks(2) {
            let hi = u64::from(pair[0]) << 8;
            let lo = pair.get(1).copied().map_or(0, u64::from);
            sum += hi | lo;
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(add_bytes(0, &data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn ipv4_header_checksum_matches_etherparse() {
        let mut h = etherparse::Ipv4Header::new(
            100,
            64,
            etherparse::IpNumber::UDP,
            [10, 0, 0, 1],
            [192, 168, 1, 2],
        )
        .unwrap();
        h.identification = 0x1234;
        let bytes = h.to_bytes();
        assert_eq!(checksum(&bytes), h.calc_header_checksum());
    }

    #[test]
    fn verifying_a_correct_header_gives_zero() {
        let mut h = etherparse::Ipv4Header::new(
            8,
            1,
            etherparse::IpNumber::TCP,
            [1, 2, 3, 4],
            [5, 6, 7, 8],
        )
        .unwrap();
        h.header_checksum = h.calc_header_checksum();
        assert_eq!(checksum(&h.to_bytes()), 0);
    }

    #[test]
    fn pseudo_headers_match_etherparse_udp() {
        let payload = b"hello, vxlan";
        let udp = etherparse::UdpHeader {
            source_port: 1000,
            destination_port: 4789,
            length: (8 + payload.len()) as u16,
            checksum: 0,
        };
        let (s4, d4) = (Ipv4Addr::new(10, 1, 2, 3), Ipv4Addr::new(10, 3, 2, 1));
        let acc = pseudo_header_v4(s4, d4, 17, udp.length);
        let acc = add_bytes(add_bytes(acc, &udp.to_bytes()), payload);
        let want = udp
            .calc_checksum_ipv4_raw(s4.octets(), d4.octets(), payload)
            .unwrap();
        assert_eq!(finish(acc), want);

        let (s6, d6): (Ipv6Addr, Ipv6Addr) =
            ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        let acc = pseudo_header_v6(s6, d6, 17, u32::from(udp.length));
        let acc = add_bytes(add_bytes(acc, &udp.to_bytes()), payload);
        let want = udp
            .calc_checksum_ipv6_raw(s6.octets(), d6.octets(), payload)
            .unwrap();
        assert_eq!(finish(acc), want);
    }

    proptest! {
        #[test]
        fn matches_reference(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(checksum(&data), reference(&data));
        }

        #[test]
        fn chained_runs_match_one_run(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            cut in 0usize..150,
        ) {
            let cut = (cut * 2).min(data.len() & !1);
            let acc = add_bytes(add_bytes(0, &data[..cut]), &data[cut..]);
            prop_assert_eq!(finish(acc), checksum(&data));
        }

        #[test]
        fn incremental_updates_match_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 52..200),
            at in 0usize..18,
            new2 in any::<u16>(),
            new4 in any::<[u8; 4]>(),
            new16 in any::<[u8; 16]>(),
        ) {
            // Keep the data non-zero so the only representation of zero is unambiguous.
            data[39] |= 1;
            let at = at * 2;
            let check = checksum(&data);

            let mut d2 = data.clone();
            let old2 = u16::from_be_bytes([d2[at], d2[at + 1]]);
            d2[at..at + 2].copy_from_slice(&new2.to_be_bytes());
            prop_assert_eq!(csum_replace2(check, old2, new2), checksum(&d2));

            let mut d4 = data.clone();
            let old4: [u8; 4] = d4[at..at + 4].try_into().unwrap();
            d4[at..at + 4].copy_from_slice(&new4);
            prop_assert_eq!(csum_replace4(check, old4, new4), checksum(&d4));

            let mut d16 = data.clone();
            let old16: [u8; 16] = d16[at..at + 16].try_into().unwrap();
            d16[at..at + 16].copy_from_slice(&new16);
            prop_assert_eq!(csum_replace16(check, &old16, &new16), checksum(&d16));
        }

        #[test]
        fn partial_replace_tracks_the_sum(
            data in proptest::collection::vec(any::<u8>(), 16..64),
            new in any::<[u8; 4]>(),
        ) {
            let sum = fold(add_bytes(0, &data));
            let mut changed = data.clone();
            changed[4..8].copy_from_slice(&new);
            let want = fold(add_bytes(0, &changed));
            let got = partial_replace(sum, &data[4..8], &new);
            // 0 and 0xffff are the same number in one's complement.
            prop_assert!(got == want || (got | want == 0xffff && got & want == 0));
        }
    }
}
