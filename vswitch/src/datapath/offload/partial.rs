//! Inner checksums a sender left unfinished. A host that offloads its TCP/UDP checksum
//! stores only the pseudo-header sum in the field and lets the device finish it; when
//! the frame is then tunnelled in VXLAN over a link that never finishes it either (a
//! veth: the kernel carries "checksum partial" as metadata of the skb across it), the
//! datagram arrives with the inner checksum still partial. The kernel's own VXLAN peer
//! trusts the metadata; we receive only bytes, through a UDP socket.
//!
//! Such a frame is recognised in O(1): its checksum field equals the (folded, not
//! inverted) pseudo-header sum over its own addresses and length. It is handed on with
//! the virtio_net_hdr the kernel would have carried — NEEDS_CSUM at the L4 header —, so
//! nothing is computed here and the receiving stack finishes or trusts it as it would
//! have. A complete checksum that happens to equal the pseudo-header sum (1 in 65536)
//! gets the same header: the local stack trusts it, which is harmless for delivery.

use super::layout::{self, IPPROTO_TCP, IPPROTO_UDP, TCP_HLEN, UDP_HLEN};
use super::vnet::VnetHdr;
use vtep::checksum::{fold, pseudo_header_v4, pseudo_header_v6};

/// The virtio_net_hdr for a frame taken out of a VXLAN datagram: none, unless its sender
/// left the inner checksum for a device to finish and no device did.
pub fn decapsulated_vnet(frame: &[u8]) -> [u8; crate::packet::VNET_HDR_LEN] {
    partial_checksum(frame).unwrap_or(VnetHdr::NONE).to_bytes()
}

/// The virtio_net_hdr that finishes `frame`'s L4 checksum, when it looks unfinished.
pub fn partial_checksum(frame: &[u8]) -> Option<VnetHdr> {
    let ip = layout::locate(frame).ok()?;
    let (csum_offset, l4_hlen): (u16, usize) = match ip.proto {
        IPPROTO_TCP => (16, TCP_HLEN),
        IPPROTO_UDP => (6, UDP_HLEN),
        _ => return None,
    };
    let l4_len = ip.end.checked_sub(ip.l4)?;
    // The L4 header, checksum field included, must lie inside the IP packet: bytes of
    // link padding past its end are no checksum to finish.
    if l4_len < l4_hlen {
        return None;
    }
    let at = ip.l4 + usize::from(csum_offset);
    let field = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
    if ip.proto == IPPROTO_UDP && !ip.v6 && field == 0 {
        return None;
    }
    let addrs = ip.addrs(frame);
    let pseudo = if ip.v6 {
        let src: [u8; 16] = addrs[..16].try_into().ok()?;
        let dst: [u8; 16] = addrs[16..32].try_into().ok()?;
        pseudo_header_v6(src.into(), dst.into(), ip.proto, l4_len as u32)
    } else {
        let src: [u8; 4] = addrs[..4].try_into().ok()?;
        let dst: [u8; 4] = addrs[4..8].try_into().ok()?;
        pseudo_header_v4(
            src.into(),
            dst.into(),
            ip.proto,
            u16::try_from(l4_len).ok()?,
        )
    };
    // 0x0000 and 0xffff are the same sum in one's complement.
    let sum = fold(pseudo);
    let same = field == sum || (field == 0 && sum == 0xffff) || (field == 0xffff && sum == 0);
    same.then_some(VnetHdr {
        flags: VnetHdr::F_NEEDS_CSUM,
        csum_start: ip.l4 as u16,
        csum_offset,
        ..VnetHdr::NONE
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_frame(v6: bool) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let b = if v6 {
            b.ipv6([0xfd; 16], [0xfe; 16], 64)
        } else {
            b.ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        };
        let b = b.tcp(1000, 80, 7, 64000);
        let mut out = Vec::new();
        b.write(&mut out, &[0x5a; 300]).unwrap();
        out
    }

    #[test]
    fn a_complete_checksum_is_left_alone_and_a_partial_one_is_recognised() {
        for v6 in [false, true] {
            let mut f = tcp_frame(v6);
            assert_eq!(
                partial_checksum(&f),
                None,
                "complete checksum taken for partial (v6 {v6})"
            );
            let ip = layout::locate(&f).unwrap();
            let at = ip.l4 + 16;
            // What Linux leaves in the field with CHECKSUM_PARTIAL: the folded pseudo sum.
            let l4 = (ip.end - ip.l4) as u32;
            let a = ip.addrs(&f);
            let pseudo = if v6 {
                pseudo_header_v6(
                    <[u8; 16]>::try_from(&a[..16]).unwrap().into(),
                    <[u8; 16]>::try_from(&a[16..]).unwrap().into(),
                    6,
                    l4,
                )
            } else {
                pseudo_header_v4(
                    <[u8; 4]>::try_from(&a[..4]).unwrap().into(),
                    <[u8; 4]>::try_from(&a[4..8]).unwrap().into(),
                    6,
                    l4 as u16,
                )
            };
            f[at..at + 2].copy_from_slice(&fold(pseudo).to_be_bytes());
            let h = partial_checksum(&f).expect("partial not recognised");
            assert_eq!(
                (h.csum_start as usize, h.csum_offset, h.needs_csum()),
                (ip.l4, 16, true)
            );
            // Finishing it as the kernel would gives the right checksum.
            super::super::complete_checksum(&mut f, &h).unwrap();
            assert_eq!(partial_checksum(&f), None);
            let p = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
            let tcp = match p.transport {
                Some(etherparse::TransportSlice::Tcp(t)) => t,
                _ => panic!("no TCP"),
            };
            let ok = match p.net {
                Some(etherparse::NetSlice::Ipv4(i)) => tcp
                    .calc_checksum_ipv4(i.header().source(), i.header().destination())
                    .unwrap(),
                Some(etherparse::NetSlice::Ipv6(i)) => tcp
                    .calc_checksum_ipv6(i.header().source(), i.header().destination())
                    .unwrap(),
                _ => panic!("no IP"),
            };
            assert_eq!(ok, tcp.checksum());
        }
    }

    #[test]
    fn a_field_in_the_padding_past_the_ip_packet_is_not_partial() {
        // Found by the vxlan_decap fuzz target: an IP length of 4 TCP bytes, and the
        // pseudo-header sum for that length in the padding where the field would be.
        let mut f = tcp_frame(false);
        f[16..18].copy_from_slice(&24u16.to_be_bytes());
        let sum = fold(pseudo_header_v4(
            [10, 0, 0, 1].into(),
            [10, 0, 0, 2].into(),
            6,
            4,
        ));
        f[34 + 16..34 + 18].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(partial_checksum(&f), None);
    }

    #[test]
    fn junk_is_not_partial() {
        assert_eq!(partial_checksum(&[]), None);
        assert_eq!(partial_checksum(&[0u8; 60]), None);
    }
}
