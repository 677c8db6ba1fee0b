//! Encapsulation then decapsulation, over random inner frames, VNIs and outer
//! families: the inner frame comes back byte for byte, and the outer headers parse.

// Test helpers outside #[test] functions may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;

use proptest::prelude::*;
use vtep::{
    Decapsulated, Headroom, OuterParams, PeerTable, PeerVnis, PortRange, SliceBuf, Vni,
    decapsulate, decapsulate_ip, flow_hash, push_outer, push_outer_ethernet, push_vxlan,
    source_port,
};

const HEADROOM: usize = 128;

fn addrs(v6: bool) -> (IpAddr, IpAddr) {
    if v6 {
        (
            "2001:db8::a".parse().unwrap(),
            "2001:db8::b".parse().unwrap(),
        )
    } else {
        ("192.0.2.10".parse().unwrap(), "192.0.2.11".parse().unwrap())
    }
}

fn inner_frames() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Arbitrary bytes that are at least an Ethernet header.
        proptest::collection::vec(any::<u8>(), 14..1600),
        // Well-formed UDP/IPv4 frames.
        (
            proptest::collection::vec(any::<u8>(), 0..1400),
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(|(payload, sport, dport)| {
                let mut f = Vec::new();
                etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                    .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                    .udp(sport, dport)
                    .write(&mut f, &payload)
                    .unwrap();
                f
            }),
    ]
}

proptest! {
    #[test]
    fn encap_then_decap_gives_the_frame_back(
        inner in inner_frames(),
        vni in 0u32..=Vni::MAX,
        v6 in any::<bool>(),
        csum in any::<bool>(),
        eth in any::<bool>(),
        first in 1u16..60000,
        width in 0u16..64,
    ) {
        let vni = Vni::new(vni).unwrap();
        let (local, remote) = addrs(v6);
        let mut peers = PeerTable::new();
        peers.add(local, PeerVnis::only([vni])).unwrap();
        let known = [vni];

        let range = PortRange::new(first, first + width).unwrap();
        let port = source_port(flow_hash(&inner), range);
        prop_assert!(range.contains(port));

        // Full outer stack, as a raw send would put it on the wire.
        let mut buf = vec![0u8; HEADROOM];
        buf.extend_from_slice(&inner);
        let mut b = SliceBuf::new(&mut buf, HEADROOM).unwrap();
        let mut outer = OuterParams::new(local, remote, port);
        outer.udp_checksum = csum;
        let pushed = if eth {
            push_outer_ethernet(&mut b, vni, &outer, [2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xb]).unwrap()
        } else {
            push_outer(&mut b, vni, &outer).unwrap()
        };
        let wire = b.frame();
        let ip = if eth { &wire[14..] } else { wire };
        prop_assert_eq!(wire.len(), inner.len() + pushed);
        let got = decapsulate_ip(ip, 4789, &known[..], &peers).unwrap();
        prop_assert_eq!(got.vni, vni);
        prop_assert_eq!((got.src, got.dst, got.src_port), (local, remote, port));
        prop_assert_eq!(&ip[got.inner.clone()], &inner[..]);
        // etherparse agrees on the outer headers.
        let parsed = if eth {
            etherparse::SlicedPacket::from_ethernet(wire)
        } else {
            etherparse::SlicedPacket::from_ip(wire)
        };
        prop_assert!(parsed.is_ok());

        // VXLAN header only, as the daemon sends through a UDP socket.
        let mut buf = vec![0u8; HEADROOM];
        buf.extend_from_slice(&inner);
        let mut b = SliceBuf::new(&mut buf, HEADROOM).unwrap();
        push_vxlan(&mut b, vni).unwrap();
        let payload = b.frame();
        let got = decapsulate(payload, local, &known[..], &peers).unwrap();
        prop_assert_eq!(got.clone(), Decapsulated { vni, inner: 8..payload.len() });
        prop_assert_eq!(&payload[got.inner], &inner[..]);
    }
}
