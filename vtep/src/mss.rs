//! TCP MSS clamping: lowering the MSS option of a SYN (or SYN-ACK) so that the
//! connection's segments fit the overlay MTU without fragmentation or ICMP, the way
//! Linux's `TCPMSS --clamp-mss-to-pmtu` and OVS do for tunnels.
//!
//! [`clamp_mss`] edits the frame in place and keeps the TCP checksum right with an
//! RFC 1624 incremental update, unless the checksum is *partial* (virtio_net_hdr
//! `NEEDS_CSUM`): the field then holds only the pseudo-header sum and the device or
//! the GSO code computes the real checksum later over the segment as it is, so the
//! field must not be touched.
//!
//! It only lowers an MSS option that is present: a SYN without one implies 536 (IPv4)
//! or 1220 (IPv6), which already fits any overlay MTU we accept for those families.
//! Fragments, non-TCP packets and anything malformed (truncated headers, an option
//! list that overruns the header) are left untouched: the function never panics and
//! never writes outside the MSS value and the checksum field.

use etherparse::{IpNumber, Ipv4HeaderSlice, Ipv6ExtensionsSlice, Ipv6HeaderSlice};

use crate::checksum;
use crate::l2::{self, ETHERTYPE_IPV4, ETHERTYPE_IPV6};

/// The state of the TCP checksum field of the frame being edited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChecksumState {
    /// A complete checksum: updated incrementally.
    Complete,
    /// A partial checksum (virtio_net_hdr `NEEDS_CSUM`): left alone.
    Partial,
}

const TCP_MIN_HLEN: usize = 20;
const TCP_FLAG_SYN: u8 = 0x02;
const OPT_END: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_MSS: u8 = 2;

/// The TCP segment's range in the frame, if the frame is an unfragmented IPv4 or IPv6
/// TCP packet whose lengths agree with the frame.
fn tcp_range(frame: &[u8]) -> Option<(usize, usize)> {
    let (l3, ethertype) = l2::network_offset(frame)?;
    let ip_bytes = frame.get(l3..)?;
    match ethertype {
        ETHERTYPE_IPV4 => {
            let ip = Ipv4HeaderSlice::from_slice(ip_bytes).ok()?;
            let total = usize::from(ip.total_len());
            let hlen = ip.slice().len();
            if ip.protocol() != IpNumber::TCP || ip.is_fragmenting_payload() || total < hlen {
                return None;
            }
            (total <= ip_bytes.len()).then_some((l3 + hlen, l3 + total))
        }
        ETHERTYPE_IPV6 => {
            let ip = Ipv6HeaderSlice::from_slice(ip_bytes).ok()?;
            let end = 40 + usize::from(ip.payload_length());
            let body = ip_bytes.get(40..end)?;
            let (exts, next, _) = Ipv6ExtensionsSlice::from_slice(ip.next_header(), body).ok()?;
            if next != IpNumber::TCP || exts.is_fragmenting_payload() {
                return None;
            }
            Some((l3 + 40 + exts.slice().len(), l3 + end))
        }
        _ => None,
    }
}

/// Where the MSS value lies in the frame, if `tcp` is a SYN with a well-formed option
/// list up to its MSS option.
fn mss_offset(tcp: &[u8]) -> Option<usize> {
    let flags = *tcp.get(13)?;
    if flags & TCP_FLAG_SYN == 0 {
        return None;
    }
    let doff = usize::from(*tcp.get(12)? >> 4) * 4;
    if doff < TCP_MIN_HLEN {
        return None;
    }
    let options = tcp.get(TCP_MIN_HLEN..doff)?;
    let mut i = 0;
    while let Some(&kind) = options.get(i) {
        match kind {
            OPT_END => return None,
            OPT_NOP => i += 1,
            _ => {
                let len = usize::from(*options.get(i + 1)?);
                if len < 2 || i + len > options.len() {
                    return None;
                }
                if kind == OPT_MSS {
                    return (len == 4).then_some(TCP_MIN_HLEN + i + 2);
                }
                i += len;
            }
        }
    }
    None
}

/// Lowers the MSS option of a TCP SYN in `frame` to `max_mss` if it is larger, keeping
/// the checksum valid per `csum`. Returns whether the frame was changed.
pub fn clamp_mss(frame: &mut [u8], max_mss: u16, csum: ChecksumState) -> bool {
    let Some((start, end)) = tcp_range(frame) else {
        return false;
    };
    let Some(tcp) = frame.get_mut(start..end) else {
        return false;
    };
    let Some(at) = mss_offset(tcp) else {
        return false;
    };
    let Some(old) = l2::be16(tcp, at) else {
        return false;
    };
    if old <= max_mss {
        return false;
    }
    // The checksum sums 16-bit words from the TCP header's start; the MSS value may sit
    // at an odd offset, straddling two words. Update over the aligned words it touches.
    let w_start = at & !1;
    let w_end = (at + 2).next_multiple_of(2).min(tcp.len());
    let mut before = [0u8; 4];
    let window = w_end - w_start;
    before[..window].copy_from_slice(&tcp[w_start..w_end]);
    tcp[at..at + 2].copy_from_slice(&max_mss.to_be_bytes());
    if csum == ChecksumState::Complete {
        let Some(check) = l2::be16(tcp, 16) else {
            return true;
        };
        let new = checksum::csum_replace(check, &before[..window], &tcp[w_start..w_end]);
        tcp[16..18].copy_from_slice(&new.to_be_bytes());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TcpOptionElement, TransportSlice};

    fn syn(v6: bool, options: &[TcpOptionElement], syn: bool) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let b = if v6 {
            b.ipv6([1; 16], [2; 16], 64).tcp(40000, 80, 12345, 64240)
        } else {
            b.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .tcp(40000, 80, 12345, 64240)
        };
        let b = if syn { b.syn() } else { b.ack(1) };
        let b = b.options(options).unwrap();
        let mut f = Vec::new();
        b.write(&mut f, &[]).unwrap();
        f
    }

    /// The MSS option and whether the checksum is right, per etherparse.
    fn inspect(frame: &[u8]) -> (Option<u16>, bool) {
        let p = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(TransportSlice::Tcp(tcp)) = p.transport else {
            panic!("no TCP")
        };
        let h = tcp.to_header();
        let mss = h.options_iterator().find_map(|o| match o {
            Ok(TcpOptionElement::MaximumSegmentSize(m)) => Some(m),
            _ => None,
        });
        let want = match p.net {
            Some(NetSlice::Ipv4(ip)) => h
                .calc_checksum_ipv4_raw(
                    ip.header().source(),
                    ip.header().destination(),
                    tcp.payload(),
                )
                .unwrap(),
            Some(NetSlice::Ipv6(ip)) => h
                .calc_checksum_ipv6_raw(
                    ip.header().source(),
                    ip.header().destination(),
                    tcp.payload(),
                )
                .unwrap(),
            _ => panic!("no IP"),
        };
        (mss, want == h.checksum)
    }

    use TcpOptionElement::{
        MaximumSegmentSize as Mss, Noop, SelectiveAcknowledgementPermitted, WindowScale,
    };

    #[test]
    fn clamps_1460_to_1410_over_ipv4() {
        let mut f = syn(
            false,
            &[Mss(1460), SelectiveAcknowledgementPermitted, WindowScale(7)],
            true,
        );
        assert!(clamp_mss(&mut f, 1410, ChecksumState::Complete));
        assert_eq!(inspect(&f), (Some(1410), true));
        // Already small enough: untouched.
        let before = f.clone();
        assert!(!clamp_mss(&mut f, 1410, ChecksumState::Complete));
        assert_eq!(f, before);
    }

    #[test]
    fn clamps_at_an_odd_offset_and_over_ipv6() {
        for v6 in [false, true] {
            let mut f = syn(v6, &[Noop, Mss(9000), Noop, Noop, Noop], true);
            assert!(clamp_mss(&mut f, 1370, ChecksumState::Complete));
            assert_eq!(inspect(&f), (Some(1370), true));
        }
    }

    #[test]
    fn leaves_frames_without_mss_or_syn_alone() {
        for f in [
            syn(false, &[WindowScale(2)], true),
            syn(false, &[Mss(1460)], false),
        ] {
            let mut g = f.clone();
            assert!(!clamp_mss(&mut g, 1000, ChecksumState::Complete));
            assert_eq!(f, g);
        }
    }

    #[test]
    fn partial_checksum_is_not_touched() {
        let mut f = syn(false, &[Mss(1460)], true);
        let at = f.len() - 4 - 20 + 16;
        f[at..at + 2].copy_from_slice(&[0x12, 0x34]); // a pseudo-header sum
        assert!(clamp_mss(&mut f, 1410, ChecksumState::Partial));
        assert_eq!(&f[at..at + 2], &[0x12, 0x34]);
        assert_eq!(inspect(&f).0, Some(1410));
    }

    #[test]
    fn malformed_options_are_left_alone() {
        let mut f = syn(false, &[Mss(1460)], true);
        let opt = f.len() - 4;
        f[opt + 1] = 9; // MSS option longer than the header
        let g = f.clone();
        assert!(!clamp_mss(&mut f, 1000, ChecksumState::Complete));
        assert_eq!(f, g);
        f[opt + 1] = 1; // length below 2
        assert!(!clamp_mss(&mut f, 1000, ChecksumState::Complete));
        f[opt] = 0; // end of list before the MSS
        assert!(!clamp_mss(&mut f, 1000, ChecksumState::Complete));
    }

    #[test]
    fn fragments_are_left_alone() {
        let mut f = syn(false, &[Mss(1460)], true);
        f[14 + 6] = 0x20; // MF
        assert!(!clamp_mss(&mut f, 1000, ChecksumState::Complete));
    }
}
