//! IPv4 fragmentation of an inner frame too big for the overlay (RFC 791 section 3.2,
//! RFC 815 for the receiving side's view).
//!
//! Only packets with DF clear are cut; DF set gets an ICMP error instead
//! ([`crate::icmp`]). Each fragment is a complete Ethernet frame: the original
//! Ethernet header and VLAN tags, then an IPv4 header copied from the original with:
//! - options: all of them in the first fragment; in the others only those whose
//!   copy bit (0x80) is set, padded to a 4-byte boundary with end-of-list, as RFC 791
//!   says (a malformed option list is refused, not guessed at);
//! - the fragment offset in 8-byte units, counted from the original's own offset,
//!   so a fragment can be fragmented again; MF on every fragment but the last, and on
//!   the last too if the original had MF;
//! - a fresh header checksum. TTL is left alone: the switch is not a router hop.
//!
//! Bytes after the IPv4 total length (Ethernet padding) are not carried. Nothing is
//! allocated: [`Fragmenter`] writes one fragment at a time into the caller's buffer
//! (typically a pooled packet buffer), and [`fragment_ipv4`] is a callback wrapper
//! around it.

use etherparse::Ipv4HeaderSlice;

use crate::checksum;
use crate::l2::{self, ETHERTYPE_IPV4};

const IPV4_MIN_HLEN: usize = 20;
const MAX_OPTIONS: usize = 40;

/// Why a frame could not be fragmented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    #[error("frame is not IPv4")]
    NotIpv4,
    #[error("IPv4 header or length malformed")]
    Malformed,
    #[error("IPv4 options malformed: cannot tell which to copy into fragments")]
    BadOptions,
    #[error("packet has DF set: send ICMP fragmentation-needed instead")]
    DontFragment,
    #[error("MTU {mtu} too small to fragment a packet with a {header_len}-byte header")]
    MtuTooSmall { mtu: u32, header_len: usize },
    #[error("output buffer too small for the fragment: {needed} bytes needed")]
    BufferTooSmall { needed: usize },
}

/// Cuts one IPv4 frame into fragments that fit an MTU, one at a time.
#[derive(Debug, Clone)]
pub struct Fragmenter<'a> {
    frame: &'a [u8],
    /// Offset of the IPv4 header in `frame`.
    l3: usize,
    /// Original header length, options included.
    hlen: usize,
    /// Original payload: `frame[l3 + hlen..l3 + hlen + payload_len]`.
    payload_len: usize,
    mtu: usize,
    /// The original's fragment offset, in bytes.
    base_offset: usize,
    original_mf: bool,
    /// Options of every fragment but the first (copy bit set), padded.
    later_options: [u8; MAX_OPTIONS],
    later_options_len: usize,
    /// Payload bytes already written.
    done: usize,
    finished: bool,
}

/// The options with the copy bit set, padded to 4 bytes; `None` if malformed.
fn copied_options(options: &[u8]) -> Option<([u8; MAX_OPTIONS], usize)> {
    let mut out = [0u8; MAX_OPTIONS];
    let mut len = 0;
    let mut i = 0;
    while let Some(&kind) = options.get(i) {
        match kind {
            0 => break,  // end of option list
            1 => i += 1, // no-operation: not copied
            _ => {
                let opt_len = usize::from(*options.get(i + 1)?);
                let opt = options.get(i..i.checked_add(opt_len)?)?;
                if opt_len < 2 {
                    return None;
                }
                if kind & 0x80 != 0 {
                    out.get_mut(len..len + opt_len)?.copy_from_slice(opt);
                    len += opt_len;
                }
                i += opt_len;
            }
        }
    }
    Some((out, len.next_multiple_of(4)))
}

impl<'a> Fragmenter<'a> {
    /// Prepares to cut `frame` for `mtu` (the largest IP packet per fragment).
    pub fn new(frame: &'a [u8], mtu: u32) -> Result<Fragmenter<'a>, FragmentError> {
        let (l3, ethertype) = l2::network_offset(frame).ok_or(FragmentError::Malformed)?;
        if ethertype != ETHERTYPE_IPV4 {
            return Err(FragmentError::NotIpv4);
        }
        let ip = frame
            .get(l3..)
            .and_then(|b| Ipv4HeaderSlice::from_slice(b).ok())
            .ok_or(FragmentError::Malformed)?;
        let hlen = ip.slice().len();
        let total = usize::from(ip.total_len());
        if total < hlen || l3 + total > frame.len() {
            return Err(FragmentError::Malformed);
        }
        if ip.dont_fragment() {
            return Err(FragmentError::DontFragment);
        }
        let base_offset = usize::from(ip.fragments_offset().value()) * 8;
        let payload_len = total - hlen;
        if base_offset + payload_len > usize::from(u16::MAX) {
            return Err(FragmentError::Malformed);
        }
        let (later_options, later_options_len) =
            copied_options(ip.options()).ok_or(FragmentError::BadOptions)?;
        let mtu_bytes = mtu as usize;
        // Every fragment must carry at least 8 bytes of payload (unless it is the
        // whole packet).
        if mtu_bytes < total && mtu_bytes < hlen + 8 {
            return Err(FragmentError::MtuTooSmall {
                mtu,
                header_len: hlen,
            });
        }
        Ok(Fragmenter {
            frame,
            l3,
            hlen,
            payload_len,
            mtu: mtu_bytes,
            base_offset,
            original_mf: ip.more_fragments(),
            later_options,
            later_options_len,
            done: 0,
            finished: false,
        })
    }

    /// (header length, payload length, is last) of the next fragment.
    fn next_shape(&self) -> Option<(usize, usize, bool)> {
        if self.finished {
            return None;
        }
        let hlen = if self.done == 0 {
            self.hlen
        } else {
            IPV4_MIN_HLEN + self.later_options_len
        };
        let remaining = self.payload_len - self.done;
        let room = self.mtu.saturating_sub(hlen);
        if remaining <= room {
            Some((hlen, remaining, true))
        } else {
            Some((hlen, room & !7, false))
        }
    }

    /// The frame length of the next fragment, `None` when all were written.
    pub fn next_len(&self) -> Option<usize> {
        self.next_shape().map(|(h, p, _)| self.l3 + h + p)
    }

    /// Writes the next fragment into the front of `out` and returns its frame length;
    /// `Ok(None)` when all fragments were written.
    pub fn next_into(&mut self, out: &mut [u8]) -> Result<Option<usize>, FragmentError> {
        let Some((hlen, len, last)) = self.next_shape() else {
            return Ok(None);
        };
        let needed = self.l3 + hlen + len;
        let out = out
            .get_mut(..needed)
            .ok_or(FragmentError::BufferTooSmall { needed })?;
        let l3 = self.l3;
        // Ethernet header and tags, then the fixed IPv4 header.
        out[..l3 + IPV4_MIN_HLEN].copy_from_slice(&self.frame[..l3 + IPV4_MIN_HLEN]);
        let opts = if self.done == 0 {
            &self.frame[l3 + IPV4_MIN_HLEN..l3 + self.hlen]
        } else {
            &self.later_options[..self.later_options_len]
        };
        out[l3 + IPV4_MIN_HLEN..l3 + hlen].copy_from_slice(opts);
        let src = l3 + self.hlen + self.done;
        out[l3 + hlen..].copy_from_slice(&self.frame[src..src + len]);

        let ip = &mut out[l3..l3 + hlen];
        ip[0] = 0x40 | (hlen / 4) as u8;
        ip[2..4].copy_from_slice(&((hlen + len) as u16).to_be_bytes());
        let mf = !last || self.original_mf;
        let offset = ((self.base_offset + self.done) / 8) as u16;
        let flags = if mf { 0x2000 } else { 0 } | offset;
        ip[6..8].copy_from_slice(&flags.to_be_bytes());
        ip[10..12].copy_from_slice(&[0, 0]);
        let csum = checksum::checksum(ip);
        ip[10..12].copy_from_slice(&csum.to_be_bytes());

        self.done += len;
        self.finished = last;
        Ok(Some(needed))
    }
}

/// Fragments `frame` for `mtu`, assembling each fragment in `scratch` (at least
/// `14 + 8 + mtu` bytes for any frame) and handing it to `emit`. Returns the number of
/// fragments. Prefer [`Fragmenter`] to write straight into packet buffers.
pub fn fragment_ipv4(
    frame: &[u8],
    mtu: u32,
    scratch: &mut [u8],
    mut emit: impl FnMut(&[u8]),
) -> Result<usize, FragmentError> {
    let mut f = Fragmenter::new(frame, mtu)?;
    let mut count = 0;
    while let Some(n) = f.next_into(scratch)? {
        emit(&scratch[..n]);
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{Ipv4Header, Ipv4HeaderSlice};
    use proptest::prelude::*;

    /// An Ethernet + IPv4 frame with `payload_len` bytes of payload, DF clear.
    fn frame(payload_len: usize, options: &[u8], offset_units: u16, mf: bool) -> Vec<u8> {
        let mut h = Ipv4Header::new(
            payload_len as u16,
            64,
            etherparse::IpNumber::UDP,
            [10, 0, 0, 1],
            [10, 0, 0, 2],
        )
        .unwrap();
        h.dont_fragment = false;
        h.more_fragments = mf;
        h.identification = 0xbeef;
        h.fragment_offset = offset_units.try_into().unwrap();
        h.options = options.try_into().unwrap();
        h.total_len = (h.header_len() + payload_len) as u16;
        h.header_checksum = h.calc_header_checksum();
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        f.extend_from_slice(&h.to_bytes());
        f.extend((0..payload_len).map(|i| (i * 7) as u8));
        f
    }

    fn collect(frame: &[u8], mtu: u32) -> Result<Vec<Vec<u8>>, FragmentError> {
        let mut out = Vec::new();
        let mut scratch = vec![0u8; 14 + 8 + mtu as usize];
        fragment_ipv4(frame, mtu, &mut scratch, |f| out.push(f.to_vec()))?;
        Ok(out)
    }

    /// Checks every fragment and reassembles the payload (offset-ordered).
    fn reassemble(orig: &[u8], frags: &[Vec<u8>], mtu: u32) -> Vec<u8> {
        let o = Ipv4HeaderSlice::from_slice(&orig[14..]).unwrap();
        let base = usize::from(o.fragments_offset().value()) * 8;
        let mut payload = Vec::new();
        for (i, f) in frags.iter().enumerate() {
            assert_eq!(&f[..14], &orig[..14]);
            let ip = Ipv4HeaderSlice::from_slice(&f[14..]).unwrap();
            let h = ip.to_header();
            assert_eq!(h.calc_header_checksum(), h.header_checksum);
            assert!(usize::from(h.total_len) <= mtu as usize);
            assert_eq!(usize::from(h.total_len), f.len() - 14);
            assert_eq!(
                (h.identification, h.time_to_live, h.protocol),
                (0xbeef, 64, o.protocol())
            );
            assert!(!h.dont_fragment);
            let last = i == frags.len() - 1;
            assert_eq!(h.more_fragments, !last || o.more_fragments());
            let off = usize::from(h.fragment_offset.value()) * 8;
            assert_eq!(off, base + payload.len());
            let body = &f[14 + ip.slice().len()..];
            if !last {
                assert_eq!(body.len() % 8, 0);
            }
            if i == 0 {
                assert_eq!(ip.options(), o.options());
            }
            payload.extend_from_slice(body);
        }
        payload
    }

    #[test]
    fn cuts_a_1500_byte_packet_for_1450() {
        let f = frame(1480, &[], 0, false);
        let frags = collect(&f, 1450).unwrap();
        assert_eq!(frags.len(), 2);
        assert_eq!(frags[0].len(), 14 + 20 + 1424);
        assert_eq!(reassemble(&f, &frags, 1450), f[34..].to_vec());
    }

    #[test]
    fn only_copied_options_go_to_later_fragments() {
        // NOP, record-route (7, not copied, 7 bytes), security-style option 0x82 (copied, 4 bytes), EOL.
        let opts = [1, 7, 7, 4, 0, 0, 0, 0, 0x82, 4, 0xaa, 0xbb, 0, 0, 0, 0];
        let f = frame(200, &opts, 0, false);
        let frags = collect(&f, 100).unwrap();
        for later in &frags[1..] {
            let ip = Ipv4HeaderSlice::from_slice(&later[14..]).unwrap();
            assert_eq!(ip.options(), &[0x82, 4, 0xaa, 0xbb]);
        }
        assert_eq!(reassemble(&f, &frags, 100), f[14 + 36..].to_vec());
        let bad = frame(200, &[0x82, 9, 0, 0], 0, false);
        assert_eq!(collect(&bad, 100).unwrap_err(), FragmentError::BadOptions);
    }

    #[test]
    fn refusals() {
        let mut df = frame(1480, &[], 0, false);
        df[14 + 6] |= 0x40;
        assert_eq!(collect(&df, 1450).unwrap_err(), FragmentError::DontFragment);
        let f = frame(1480, &[], 0, false);
        assert_eq!(
            collect(&f, 27).unwrap_err(),
            FragmentError::MtuTooSmall {
                mtu: 27,
                header_len: 20
            }
        );
        assert_eq!(
            collect(&f[..100], 1450).unwrap_err(),
            FragmentError::Malformed
        );
        let mut v6 = f.clone();
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(collect(&v6, 1450).unwrap_err(), FragmentError::NotIpv4);
        let mut fr = Fragmenter::new(&f, 1450).unwrap();
        assert_eq!(fr.next_len(), Some(14 + 1444));
        assert_eq!(
            fr.next_into(&mut [0u8; 100]),
            Err(FragmentError::BufferTooSmall { needed: 1458 })
        );
    }

    #[test]
    fn a_packet_that_fits_comes_out_whole_without_padding() {
        let mut f = frame(100, &[], 0, false);
        f.extend_from_slice(&[0; 6]); // Ethernet padding
        let frags = collect(&f, 1450).unwrap();
        assert_eq!(frags, vec![f[..f.len() - 6].to_vec()]);
        let empty = frame(0, &[], 0, false);
        assert_eq!(collect(&empty, 1450).unwrap(), vec![empty.clone()]);
    }

    proptest! {
        #[test]
        fn fragments_reassemble(
            payload_len in 1usize..4000,
            mtu in 68u32..1600,
            with_options in any::<bool>(),
            offset_units in 0u16..100,
            mf in any::<bool>(),
        ) {
            let opts: &[u8] = if with_options { &[0x83, 7, 4, 1, 2, 3, 4, 1, 7, 3, 4, 0] } else { &[] };
            let f = frame(payload_len, opts, offset_units, mf);
            let frags = collect(&f, mtu).unwrap();
            let total = f.len() - 14;
            prop_assert_eq!(frags.len() == 1, total <= mtu as usize);
            prop_assert_eq!(reassemble(&f, &frags, mtu), f[14 + 20 + opts.len()..].to_vec());
        }
    }
}
