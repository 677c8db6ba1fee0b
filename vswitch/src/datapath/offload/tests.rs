//! Split and checksum completion on real frames, and the split-coalesce round trip,
//! checked with etherparse.

use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

use super::fixtures::{self, Tcp, check_tcp, coalesce, payload};
use super::*;

const VXLAN: usize = 8;

fn spec() -> SegmentSpec {
    SegmentSpec {
        prefix: VXLAN,
        max_frame: 1518,
    }
}

/// Splits and checks every segment; returns them.
fn split_checked(tcp: &Tcp, data: &[u8], mss: u16) -> Vec<Vec<u8>> {
    let (frame, hdr) = tcp.super_frame(data, mss);
    let mut out = vec![0xeeu8; 70_000];
    let lay = split(&frame, &hdr, spec(), &mut out).unwrap();
    let mss = usize::from(mss);
    assert_eq!(lay.count, data.len().div_ceil(mss));
    let hdrs = usize::from(hdr.hdr_len);
    let full = if lay.count == 1 { data.len() } else { mss };
    assert_eq!(lay.stride, VXLAN + hdrs + full);
    assert_eq!(
        lay.last_len,
        VXLAN + hdrs + (data.len() - (lay.count - 1) * mss)
    );
    assert!(
        out[lay.total_len()..].iter().all(|&b| b == 0xee),
        "nothing written past the end"
    );

    let mut joined = Vec::new();
    let mut segs = Vec::new();
    for i in 0..lay.count {
        assert!(
            out[lay.datagram(i)][..VXLAN].iter().all(|&b| b == 0xee),
            "prefix untouched"
        );
        let seg = &out[lay.frame(i)];
        let c = check_tcp(seg);
        let last = i + 1 == lay.count;
        assert_eq!(
            c.seq,
            tcp.seq.wrapping_add((i * mss) as u32),
            "segment {i} seq"
        );
        assert_eq!(c.ack, tcp.ack);
        assert_eq!(c.psh, tcp.psh && last, "PSH only on the last segment");
        assert_eq!(c.fin, tcp.fin && last, "FIN only on the last segment");
        assert_eq!(c.cwr, tcp.cwr && i == 0, "CWR only on the first segment");
        assert_eq!(c.vlan, tcp.vlan);
        if !tcp.v6 {
            assert_eq!(c.ip_id, Some(tcp.ip_id.wrapping_add(i as u16)));
        }
        assert!(seg.len() <= spec().max_frame);
        joined.extend_from_slice(&c.payload);
        segs.push(seg.to_vec());
    }
    assert_eq!(joined, data, "payloads concatenate to the original");
    segs
}

/// Checks a coalesced super-frame as the kernel would take it from a TAP.
fn check_super(frame: &[u8], hdr: &VnetHdr, tcp: &Tcp, data: &[u8], mss: u16) {
    let l3 = if tcp.vlan { 18 } else { 14 };
    let l4 = l3 + if tcp.v6 { 40 } else { 20 };
    let hdrs = l4 + 32;
    assert_eq!(
        *hdr,
        VnetHdr {
            flags: VnetHdr::F_NEEDS_CSUM,
            gso_type: if tcp.v6 {
                GsoType::TcpV6
            } else {
                GsoType::TcpV4
            },
            gso_ecn: false,
            hdr_len: hdrs as u16,
            gso_size: mss,
            csum_start: l4 as u16,
            csum_offset: 16,
        }
    );
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(TransportSlice::Tcp(t)) = &p.transport else {
        panic!("not TCP")
    };
    assert_eq!(t.payload(), data);
    assert_eq!(t.sequence_number(), tcp.seq);
    assert_eq!(t.psh(), tcp.psh);
    let addrs = if tcp.v6 {
        &frame[l3 + 8..l3 + 40]
    } else {
        &frame[l3 + 12..l3 + 20]
    };
    assert_eq!(
        t.checksum(),
        fixtures::pseudo_sum(addrs, 6, frame.len() - l4),
        "pseudo-header sum"
    );
    if let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net {
        let h = ip.header().to_header();
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        assert_eq!(h.identification, tcp.ip_id);
    }
}

fn round_trip(tcp: Tcp, len: usize, mss: u16) {
    let data = payload(len, 7);
    let segs = split_checked(&tcp, &data, mss);
    let mut c = Coalescer::new(8, 8);
    let sent = coalesce(&mut c, &segs);
    assert_eq!(sent.len(), 1, "one super-frame");
    let (frame, hdr) = &sent[0];
    check_super(frame, &hdr.unwrap(), &tcp, &data, mss);
    // And the super-frame splits into the very same segments.
    let again = split_checked(&tcp, &data, mss);
    let mut out = vec![0u8; 70_000];
    let lay = split(frame, &hdr.unwrap(), spec(), &mut out).unwrap();
    for (i, s) in again.iter().enumerate() {
        assert_eq!(
            &out[lay.frame(i)],
            &s[..],
            "segment {i} after split-coalesce-split"
        );
    }
}

#[test]
fn offload_split_and_coalesce_v4_64000_by_1448() {
    round_trip(
        Tcp {
            psh: true,
            ..Tcp::v4()
        },
        64_000,
        1448,
    );
}

#[test]
fn offload_split_and_coalesce_v6_64000_by_1428() {
    round_trip(
        Tcp {
            psh: true,
            ..Tcp::v6()
        },
        64_000,
        1428,
    );
}

#[test]
fn offload_split_and_coalesce_behind_a_vlan_tag() {
    round_trip(
        Tcp {
            vlan: true,
            ..Tcp::v4()
        },
        10_000,
        1444,
    );
    round_trip(
        Tcp {
            vlan: true,
            ..Tcp::v6()
        },
        10_000,
        1424,
    );
}

#[test]
fn split_moves_fin_to_the_last_and_keeps_cwr_on_the_first() {
    let tcp = Tcp {
        fin: true,
        psh: true,
        cwr: true,
        ..Tcp::v4()
    };
    let segs = split_checked(&tcp, &payload(5000, 1), 1448);
    assert_eq!(segs.len(), 4);
}

#[test]
fn split_of_a_frame_no_longer_than_the_mss_is_one_segment() {
    split_checked(&Tcp::v6(), &payload(1000, 2), 1428);
    split_checked(&Tcp::v4(), &payload(1448, 2), 1448);
}

#[test]
fn split_refuses_segments_over_the_egress_mtu() {
    let (frame, hdr) = Tcp::v4().super_frame(&payload(9000, 3), 8948);
    let mut out = vec![0u8; 20_000];
    assert_eq!(
        split(&frame, &hdr, spec(), &mut out),
        Err(OffloadError::SegmentTooBig)
    );
    let (frame, hdr) = Tcp::v4().super_frame(&payload(9000, 3), 1448);
    assert_eq!(
        split(&frame, &hdr, spec(), &mut out[..5000]),
        Err(OffloadError::OutputTooSmall)
    );
}

#[test]
fn split_refuses_a_header_that_points_elsewhere() {
    let (frame, hdr) = Tcp::v4().super_frame(&payload(3000, 3), 1448);
    let mut out = vec![0u8; 20_000];
    for bad in [
        VnetHdr {
            csum_start: hdr.csum_start + 1,
            ..hdr
        },
        VnetHdr {
            csum_offset: 6,
            ..hdr
        },
        VnetHdr {
            hdr_len: frame.len() as u16 + 1,
            ..hdr
        },
    ] {
        assert_eq!(
            split(&frame, &bad, spec(), &mut out),
            Err(OffloadError::BadHeader)
        );
    }
    let v6 = VnetHdr {
        gso_type: GsoType::TcpV6,
        ..hdr
    };
    assert_eq!(
        split(&frame, &v6, spec(), &mut out),
        Err(OffloadError::NotTcp)
    );
    // Without NEEDS_CSUM the offsets are not consulted: checksums are computed anyway.
    let plain = VnetHdr {
        flags: 0,
        csum_start: 0,
        csum_offset: 0,
        ..hdr
    };
    let lay = split(&frame, &plain, spec(), &mut out).unwrap();
    assert_eq!(lay.count, 3);
    check_tcp(&out[lay.frame(2)]);
}

#[test]
fn complete_checksum_of_a_partial_tcp_frame() {
    let tcp = Tcp::v4();
    let data = payload(999, 4);
    let (mut frame, mut hdr) = tcp.super_frame(&data, 1448);
    hdr.gso_type = GsoType::None;
    hdr.gso_size = 0;
    complete_checksum(&mut frame, &hdr).unwrap();
    assert_eq!(check_tcp(&frame).payload, data);
    // The same through split, the caller's one path.
    let (frame, mut hdr) = Tcp::v6().super_frame(&data, 0);
    hdr.gso_type = GsoType::None;
    let mut out = vec![0u8; 2000];
    let lay = split(&frame, &hdr, spec(), &mut out).unwrap();
    assert_eq!(lay.count, 1);
    assert_eq!(check_tcp(&out[lay.frame(0)]).payload, data);
}

fn udp_frame(data: &[u8]) -> (Vec<u8>, VnetHdr) {
    let mut f = Vec::new();
    PacketBuilder::ethernet2(fixtures::MAC_A, fixtures::MAC_B)
        .ipv4(fixtures::IP4_A, fixtures::IP4_B, 64)
        .udp(5000, 6000)
        .write(&mut f, data)
        .unwrap();
    let ps = fixtures::pseudo_sum(&f[26..34], 17, 8 + data.len());
    f[40..42].copy_from_slice(&ps.to_be_bytes());
    let hdr = VnetHdr {
        flags: VnetHdr::F_NEEDS_CSUM,
        csum_start: 34,
        csum_offset: 6,
        ..VnetHdr::NONE
    };
    (f, hdr)
}

fn check_udp(frame: &[u8]) -> Vec<u8> {
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(TransportSlice::Udp(u)) = &p.transport else {
        panic!("not UDP")
    };
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
        panic!("not IPv4")
    };
    let h = ip.header().to_header();
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    let want = u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap();
    assert_eq!(u.checksum(), want, "UDP checksum");
    assert_eq!(usize::from(u.length()), 8 + u.payload().len());
    u.payload().to_vec()
}

#[test]
fn complete_checksum_of_a_partial_udp_frame() {
    let data = payload(301, 5);
    let (mut f, hdr) = udp_frame(&data);
    complete_checksum(&mut f, &hdr).unwrap();
    assert_eq!(check_udp(&f), data);
}

#[test]
fn split_udp_gso_into_datagrams() {
    let data = payload(4000, 6);
    let (f, mut hdr) = udp_frame(&data);
    hdr.gso_type = GsoType::UdpL4;
    hdr.gso_size = 1400;
    let mut out = vec![0u8; 8000];
    let lay = split(&f, &hdr, spec(), &mut out).unwrap();
    assert_eq!(
        (lay.count, lay.stride, lay.last_len),
        (3, 8 + 42 + 1400, 8 + 42 + 1200)
    );
    let mut joined = Vec::new();
    for i in 0..lay.count {
        joined.extend(check_udp(&out[lay.frame(i)]));
    }
    assert_eq!(joined, data);
}

#[test]
fn gso_mislabelled_catches_a_tunnel_super_frame_labelled_tcp() {
    // What Linux 6.18 hands an AF_PACKET socket for a container's own VXLAN: the outer
    // frame is IPv4 + UDP, the header says TCPV4 and points at the inner TCP checksum.
    let (inner, inner_hdr) = Tcp::v4().super_frame(&payload(8000, 1), 1400);
    let mut vxlan = vec![0x08, 0, 0, 0, 0, 0, 9, 0];
    vxlan.extend_from_slice(&inner);
    let (outer, _) = udp_frame(&vxlan);
    let outer_hlen = 14 + 20 + 8 + VXLAN;
    let hdr = VnetHdr {
        csum_start: inner_hdr.csum_start + outer_hlen as u16,
        hdr_len: inner_hdr.hdr_len + outer_hlen as u16,
        ..inner_hdr
    };
    assert!(gso_mislabelled(&outer, &hdr));
    // The same without NEEDS_CSUM: still UDP under a TCP label.
    let no_csum = VnetHdr { flags: 0, ..hdr };
    assert!(gso_mislabelled(&outer, &no_csum));
}

#[test]
fn gso_mislabelled_passes_what_it_cannot_judge_or_what_is_right() {
    for tcp in [
        Tcp::v4(),
        Tcp::v6(),
        Tcp {
            vlan: true,
            ..Tcp::v4()
        },
    ] {
        let (f, hdr) = tcp.super_frame(&payload(5000, 2), 1400);
        assert!(!gso_mislabelled(&f, &hdr), "a plain TSO frame {tcp:?}");
    }
    let (udp, mut hdr) = udp_frame(&payload(4000, 3));
    hdr.gso_type = GsoType::UdpL4;
    hdr.gso_size = 1400;
    assert!(!gso_mislabelled(&udp, &hdr), "a plain UDP GSO frame");
    assert!(!gso_mislabelled(&udp, &VnetHdr::NONE), "not GSO");

    // IPv6 with an extension header first: not parsed here, so not judged.
    let (mut f6, hdr6) = Tcp::v6().super_frame(&payload(5000, 4), 1400);
    f6[14 + 6] = 0; // hop-by-hop options
    assert!(!gso_mislabelled(&f6, &hdr6));
    assert!(!gso_mislabelled(&[0u8; 10], &hdr6), "too short to parse");
}

#[test]
fn gso_mislabelled_catches_the_wrong_transport_version_or_checksum() {
    let (f, hdr) = Tcp::v4().super_frame(&payload(5000, 5), 1400);
    let as_udp = VnetHdr {
        gso_type: GsoType::UdpL4,
        ..hdr
    };
    assert!(gso_mislabelled(&f, &as_udp), "TCP labelled UDP GSO");
    let as_v6 = VnetHdr {
        gso_type: GsoType::TcpV6,
        ..hdr
    };
    assert!(gso_mislabelled(&f, &as_v6), "IPv4 labelled TCPV6");
    let deeper = VnetHdr {
        csum_start: hdr.csum_start + 20,
        ..hdr
    };
    assert!(
        gso_mislabelled(&f, &deeper),
        "checksum not at the TCP header"
    );
}
