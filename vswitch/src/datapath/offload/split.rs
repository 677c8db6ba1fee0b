//! GSO split for egresses that cannot take super-frames: the VXLAN underlay first, ports
//! without vnet_hdr second.
//!
//! [`split`] cuts a TCP (TCPV4/TCPV6) or UDP (UDP_L4) super-frame into complete Ethernet
//! frames of at most `gso_size` payload bytes each — every one with its own IP header
//! (IPv4 total length, ID + i, header checksum; IPv6 payload length), L4 header (TCP: seq
//! advanced, FIN/PSH only on the last segment and CWR only on the first, as the kernel's
//! `tcp_gso_segment` does; UDP: its own length) and a complete L4 checksum. A non-GSO
//! frame goes through the same call as one segment, its checksum completed if it was
//! partial, so the caller has one path for everything bound to the underlay.
//!
//! Output layout, for one `sendmsg` with `UDP_SEGMENT`: segments are written back to back
//! into one caller buffer, each behind a gap of `prefix` bytes (left untouched, for the
//! VXLAN header), every datagram but the last exactly [`SplitLayout::stride`] bytes long.
//! The kernel caps a `UDP_SEGMENT` send at 64 KiB of payload and `UDP_MAX_SEGMENTS`
//! datagrams, so a 64 KiB super-frame usually needs two sends: [`SplitLayout::batches`]
//! cuts the layout into such runs (any run of whole datagrams starting at one is valid).

use std::ops::Range;

use super::OffloadError;
use super::csum::{self, add, sum};
use super::layout::{self, Bad, IPPROTO_TCP, IPPROTO_UDP, Ip, UDP_HLEN};
use super::vnet::{GsoType, VnetHdr};

const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;
/// Offset of the checksum field in a TCP header (what the kernel requires `csum_offset`
/// to be for TCP GSO).
pub(crate) const TCP_CSUM_OFF: usize = 16;
const UDP_CSUM_OFF: usize = 6;

/// What the egress needs from the split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentSpec {
    /// Bytes left free in front of each segment (8 for the VXLAN header; 0 to send the
    /// segments as plain frames).
    pub prefix: usize,
    /// The longest inner Ethernet frame the egress takes (overlay MTU + 14, + 4 if the
    /// frames carry a VLAN tag). A segment longer than this is [`OffloadError::SegmentTooBig`].
    pub max_frame: usize,
}

/// Where [`split`] put the segments in the output buffer. `count >= 1`. Datagram `i`
/// (prefix + frame) starts at `i * stride`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitLayout {
    pub count: usize,
    /// Length of every datagram but the last: prefix + full segment frame. This is the
    /// `UDP_SEGMENT` size.
    pub stride: usize,
    /// Length of the last datagram (prefix included), `<= stride`.
    pub last_len: usize,
    /// The gap in front of each frame.
    pub prefix: usize,
}

impl SplitLayout {
    /// Bytes of the output buffer used.
    pub fn total_len(&self) -> usize {
        self.stride * (self.count - 1) + self.last_len
    }

    /// Datagram `i` (`i < count`): prefix and frame.
    pub fn datagram(&self, i: usize) -> Range<usize> {
        let start = i * self.stride;
        let len = if i + 1 == self.count {
            self.last_len
        } else {
            self.stride
        };
        start..start + len
    }

    /// Frame `i`, without the prefix.
    pub fn frame(&self, i: usize) -> Range<usize> {
        let d = self.datagram(i);
        d.start + self.prefix..d.end
    }

    /// Runs of whole datagrams, each at most `max_bytes` long and at most `max_segments`
    /// datagrams (both at least one datagram), in order: one `UDP_SEGMENT` send each.
    pub fn batches(&self, max_bytes: usize, max_segments: usize) -> Batches {
        let per = (max_bytes / self.stride.max(1)).min(max_segments).max(1);
        Batches {
            layout: *self,
            next: 0,
            per,
        }
    }
}

/// Iterator from [`SplitLayout::batches`]: byte ranges of the output buffer.
#[derive(Debug, Clone)]
pub struct Batches {
    layout: SplitLayout,
    next: usize,
    per: usize,
}

impl Iterator for Batches {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        if self.next >= self.layout.count {
            return None;
        }
        let first = self.next;
        let last = (first + self.per).min(self.layout.count) - 1;
        self.next = last + 1;
        Some(self.layout.datagram(first).start..self.layout.datagram(last).end)
    }
}

/// Segments `frame` (described by `hdr`) into `out` as [`SplitLayout`] says; see the
/// module doc. `hdr.hdr_len` is only checked not to exceed the frame; the headers are
/// found by parsing. With `F_NEEDS_CSUM` on a GSO frame, `csum_start`/`csum_offset` must
/// point at the L4 checksum field ([`OffloadError::BadHeader`] otherwise); the checksums
/// are computed from scratch either way. Bytes in `out` outside the segments' frames
/// (the prefixes, the tail) are left as they were; on error `out` holds garbage.
pub fn split(
    frame: &[u8],
    hdr: &VnetHdr,
    spec: SegmentSpec,
    out: &mut [u8],
) -> Result<SplitLayout, OffloadError> {
    if usize::from(hdr.hdr_len) > frame.len() {
        return Err(OffloadError::BadHeader);
    }
    match hdr.gso_type {
        GsoType::None => whole(frame, hdr, spec, out),
        GsoType::TcpV4 | GsoType::TcpV6 => segment(frame, hdr, spec, out, L4::Tcp),
        GsoType::UdpL4 => segment(frame, hdr, spec, out, L4::Udp),
        t @ (GsoType::Udp | GsoType::Unknown(_)) => Err(OffloadError::Unsupported(t)),
    }
}

/// [`gso_mislabelled`] for a received buffer, as ports read them: any gso_type byte
/// marks a super-frame, and a frame without one costs a byte compare.
pub fn super_frame_mislabelled(buf: &crate::packet::PacketBuf) -> bool {
    buf.vnet[1] != 0 && gso_mislabelled(buf.frame(), &VnetHdr::parse(&buf.vnet))
}

/// Whether a GSO frame's virtio_net_hdr visibly contradicts the frame: the IP protocol
/// is another transport than the GSO type names (a UDP-tunnel or GRE super-frame that
/// Linux labels plain TCP GSO, because the legacy header has no tunnel bit), the IP
/// version differs from a TCP GSO type's, or the checksum it asks for is not that
/// transport's (a tunnel's inner checksum). No egress can segment such a frame.
///
/// Only what is visible is judged: a frame this module cannot parse (two VLAN tags, an
/// IPv4 fragment, a truncated header) or whose IPv6 next header is an extension header,
/// and a non-GSO frame, are `false` and left to the egress as before.
pub fn gso_mislabelled(frame: &[u8], hdr: &VnetHdr) -> bool {
    let (proto, csum_off) = match hdr.gso_type {
        GsoType::TcpV4 | GsoType::TcpV6 => (IPPROTO_TCP, TCP_CSUM_OFF),
        GsoType::UdpL4 => (IPPROTO_UDP, UDP_CSUM_OFF),
        GsoType::None | GsoType::Udp | GsoType::Unknown(_) => return false,
    };
    let Ok(ip) = layout::locate(frame) else {
        return false;
    };
    if ip.proto != proto {
        return !(ip.v6 && is_ipv6_extension(ip.proto));
    }
    let version_differs = match hdr.gso_type {
        GsoType::TcpV4 => ip.v6,
        GsoType::TcpV6 => !ip.v6,
        _ => false,
    };
    version_differs
        || (hdr.needs_csum()
            && (usize::from(hdr.csum_start) != ip.l4 || usize::from(hdr.csum_offset) != csum_off))
}

/// IPv6 extension headers (RFC 8200 and the IANA list): what may stand between the IPv6
/// header and the transport.
fn is_ipv6_extension(next_header: u8) -> bool {
    matches!(
        next_header,
        0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 | 253 | 254
    )
}

/// A non-GSO frame: one segment, its checksum completed if partial.
fn whole(
    frame: &[u8],
    hdr: &VnetHdr,
    spec: SegmentSpec,
    out: &mut [u8],
) -> Result<SplitLayout, OffloadError> {
    if frame.len() > spec.max_frame {
        return Err(OffloadError::SegmentTooBig);
    }
    let len = spec
        .prefix
        .checked_add(frame.len())
        .ok_or(OffloadError::OutputTooSmall)?;
    let dst = out
        .get_mut(spec.prefix..len)
        .ok_or(OffloadError::OutputTooSmall)?;
    dst.copy_from_slice(frame);
    csum::complete_checksum(dst, hdr)?;
    Ok(SplitLayout {
        count: 1,
        stride: len,
        last_len: len,
        prefix: spec.prefix,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum L4 {
    Tcp,
    Udp,
}

fn refused(bad: Bad, l4: L4) -> OffloadError {
    match (bad, l4) {
        (Bad::NotIp, L4::Tcp) => OffloadError::NotTcp,
        (Bad::NotIp, L4::Udp) => OffloadError::NotUdp,
        (Bad::Truncated, _) => OffloadError::Truncated,
        (Bad::Malformed, _) => OffloadError::Malformed,
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn segment(
    frame: &[u8],
    hdr: &VnetHdr,
    spec: SegmentSpec,
    out: &mut [u8],
    l4: L4,
) -> Result<SplitLayout, OffloadError> {
    let gso = usize::from(hdr.gso_size);
    if gso == 0 {
        return Err(OffloadError::BadHeader);
    }
    let ip = layout::locate(frame).map_err(|b| refused(b, l4))?;
    let (proto, l4_hlen, csum_off) = match l4 {
        L4::Tcp => {
            if ip.proto != IPPROTO_TCP || ip.v6 != (hdr.gso_type == GsoType::TcpV6) {
                return Err(OffloadError::NotTcp);
            }
            let thl = layout::tcp_hlen(frame, &ip).map_err(|b| refused(b, l4))?;
            (IPPROTO_TCP, thl, TCP_CSUM_OFF)
        }
        L4::Udp => {
            if ip.proto != IPPROTO_UDP {
                return Err(OffloadError::NotUdp);
            }
            if ip.l4 + UDP_HLEN > ip.end {
                return Err(OffloadError::Truncated);
            }
            (IPPROTO_UDP, UDP_HLEN, UDP_CSUM_OFF)
        }
    };
    if hdr.needs_csum()
        && (usize::from(hdr.csum_start) != ip.l4 || usize::from(hdr.csum_offset) != csum_off)
    {
        return Err(OffloadError::BadHeader);
    }

    let hdrs = ip.l4 + l4_hlen;
    let payload = ip.end - hdrs;
    let count = payload.div_ceil(gso).max(1);
    let full = hdrs + payload.min(gso);
    if full > spec.max_frame {
        return Err(OffloadError::SegmentTooBig);
    }
    let last_payload = payload - (count - 1) * gso;
    // Checked: `prefix` is the caller's and may be anything.
    let last_len = spec.prefix.checked_add(hdrs + last_payload);
    let stride = spec.prefix.checked_add(full);
    let total = stride
        .zip(last_len)
        .and_then(|(s, l)| s.checked_mul(count - 1)?.checked_add(l));
    let (Some(stride), Some(last_len), Some(total)) = (stride, last_len, total) else {
        return Err(OffloadError::OutputTooSmall);
    };
    if out.len() < total {
        return Err(OffloadError::OutputTooSmall);
    }
    let lay = SplitLayout {
        count,
        stride,
        last_len,
        prefix: spec.prefix,
    };

    let addr_sum = add(sum(ip.addrs(frame)), u16::from(proto));
    let ip_id = be16(frame, ip.l3 + 4);
    let seq = u32::from_be_bytes([
        frame[ip.l4 + 4],
        frame[ip.l4 + 5],
        frame[ip.l4 + 6],
        frame[ip.l4 + 7],
    ]);
    for i in 0..count {
        let pl = if i + 1 == count { last_payload } else { gso };
        let from = hdrs + i * gso;
        let seg = &mut out[lay.frame(i)];
        seg[..hdrs].copy_from_slice(&frame[..hdrs]);
        seg[hdrs..].copy_from_slice(&frame[from..from + pl]);
        write_ip(seg, &ip, l4_hlen + pl, ip_id.wrapping_add(i as u16));
        let t = ip.l4;
        match l4 {
            L4::Tcp => {
                let s = seq.wrapping_add((i * gso) as u32);
                seg[t + 4..t + 8].copy_from_slice(&s.to_be_bytes());
                if i + 1 != count {
                    seg[t + 13] &= !(TCP_FIN | TCP_PSH);
                }
                if i != 0 {
                    seg[t + 13] &= !TCP_CWR;
                }
            }
            L4::Udp => put16(seg, t + 4, (UDP_HLEN + pl) as u16),
        }
        put16(seg, t + csum_off, 0);
        let c = !add(add(addr_sum, (l4_hlen + pl) as u16), sum(&seg[t..]));
        // UDP: 0 means "no checksum"; send its equal, 0xffff (RFC 768).
        let c = if c == 0 && l4 == L4::Udp { 0xffff } else { c };
        put16(seg, t + csum_off, c);
    }
    Ok(lay)
}

/// Rewrites the IP length (and, for IPv4, the ID and header checksum) of one segment
/// carrying `l4_len` L4 bytes.
fn write_ip(seg: &mut [u8], ip: &Ip, l4_len: usize, id: u16) {
    let l3 = ip.l3;
    if ip.v6 {
        put16(seg, l3 + 4, l4_len as u16);
    } else {
        put16(seg, l3 + 2, (ip.l4 - l3 + l4_len) as u16);
        put16(seg, l3 + 4, id);
        put16(seg, l3 + 10, 0);
        let c = !sum(&seg[l3..ip.l4]);
        put16(seg, l3 + 10, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_both_limits() {
        let lay = SplitLayout {
            count: 45,
            stride: 1510,
            last_len: 318,
            prefix: 8,
        };
        let runs: Vec<_> = lay.batches(65507, 64).collect();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0], 0..43 * 1510);
        assert_eq!(runs[1], 43 * 1510..44 * 1510 + 318);
        assert_eq!(runs[1].end, lay.total_len());
        let runs: Vec<_> = lay.batches(65507, 10).collect();
        assert_eq!(runs.len(), 5);
        let one = SplitLayout {
            count: 1,
            stride: 70,
            last_len: 70,
            prefix: 8,
        };
        assert_eq!(one.batches(10, 0).collect::<Vec<_>>(), vec![0..70]);
        assert_eq!(one.frame(0), 8..70);
    }

    #[test]
    fn unsupported_and_lying_headers() {
        let spec = SegmentSpec {
            prefix: 8,
            max_frame: 1514,
        };
        let mut out = [0u8; 256];
        let f = [0u8; 100];
        let h = VnetHdr {
            gso_type: GsoType::Udp,
            gso_size: 10,
            ..VnetHdr::NONE
        };
        assert_eq!(
            split(&f, &h, spec, &mut out),
            Err(OffloadError::Unsupported(GsoType::Udp))
        );
        let h = VnetHdr {
            gso_type: GsoType::Unknown(9),
            gso_size: 10,
            ..VnetHdr::NONE
        };
        assert_eq!(
            split(&f, &h, spec, &mut out),
            Err(OffloadError::Unsupported(GsoType::Unknown(9)))
        );
        let h = VnetHdr {
            gso_type: GsoType::TcpV4,
            gso_size: 0,
            ..VnetHdr::NONE
        };
        assert_eq!(split(&f, &h, spec, &mut out), Err(OffloadError::BadHeader));
        let h = VnetHdr {
            hdr_len: 101,
            ..VnetHdr::NONE
        };
        assert_eq!(split(&f, &h, spec, &mut out), Err(OffloadError::BadHeader));
        let h = VnetHdr {
            gso_type: GsoType::TcpV4,
            gso_size: 10,
            ..VnetHdr::NONE
        };
        assert_eq!(split(&f, &h, spec, &mut out), Err(OffloadError::NotTcp));
        let h = VnetHdr {
            gso_type: GsoType::UdpL4,
            gso_size: 10,
            ..VnetHdr::NONE
        };
        assert_eq!(split(&f, &h, spec, &mut out), Err(OffloadError::NotUdp));
        assert_eq!(
            split(&f, &VnetHdr::NONE, spec, &mut out[..107]),
            Err(OffloadError::OutputTooSmall)
        );
        let huge = SegmentSpec {
            prefix: usize::MAX,
            max_frame: 1514,
        };
        assert_eq!(
            split(&f, &VnetHdr::NONE, huge, &mut out),
            Err(OffloadError::OutputTooSmall)
        );
        let small = SegmentSpec {
            prefix: 8,
            max_frame: 99,
        };
        assert_eq!(
            split(&f, &VnetHdr::NONE, small, &mut out),
            Err(OffloadError::SegmentTooBig)
        );
        let lay = split(&f, &VnetHdr::NONE, spec, &mut out).unwrap();
        assert_eq!(
            lay,
            SplitLayout {
                count: 1,
                stride: 108,
                last_len: 108,
                prefix: 8
            }
        );
    }
}
