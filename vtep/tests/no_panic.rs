//! Every function that takes packet bytes, fed random bytes: none may panic. Half of
//! the inputs start with a plausible Ethernet + IPv4/IPv6 prefix so the parsers get
//! past the first checks and into the deeper paths.

// Test helpers outside #[test] functions may unwrap: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use vtep::{
    ChecksumState, FragmentError, Fragmenter, PeerTable, PeerVnis, Verdict, Vni, VxlanPacket,
    VxlanRepr, build_frag_needed, build_packet_too_big, clamp_mss, decapsulate, decapsulate_ip,
    flow_hash, fragment_ipv4, needs_icmp,
};

/// Random bytes, or random bytes behind an Ethernet header with an IP EtherType and a
/// version nibble that matches, sometimes with a VLAN tag.
fn frames() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(any::<u8>(), 0..1700),
        0u8..5,
        any::<bool>(),
    )
        .prop_map(|(mut bytes, kind, fix_len)| {
            let v4 = match kind {
                0 | 1 => true,
                2 | 3 => false,
                _ => return bytes,
            };
            let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
            if kind % 2 == 1 {
                f.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
            }
            f.extend_from_slice(if v4 { &[0x08, 0x00] } else { &[0x86, 0xdd] });
            let n = bytes.len();
            if let Some(b) = bytes.first_mut() {
                *b = if v4 {
                    0x40 | (*b & 0x0f)
                } else {
                    0x60 | (*b & 0x0f)
                };
            }
            // Make the IP length field agree with the bytes, so deeper paths run.
            if fix_len && v4 && n >= 20 {
                bytes[0] = 0x45 + (bytes[1] % 3); // IHL 5 to 7: some options
                bytes[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            } else if fix_len && !v4 && n >= 40 {
                bytes[4..6].copy_from_slice(&((n - 40) as u16).to_be_bytes());
            }
            f.extend_from_slice(&bytes);
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsers_never_panic(frame in frames(), mtu in 0u32..2000, mss in any::<u16>()) {
        let _ = flow_hash(&frame);
        let verdict = needs_icmp(&frame, mtu);
        let mut out = [0u8; vtep::icmp::MAX_REPLY_FRAME];
        let r4 = build_frag_needed(&frame, mtu, [2; 6], Ipv4Addr::new(10, 0, 0, 1), &mut out);
        let r6 = build_packet_too_big(&frame, mtu, [2; 6], Ipv6Addr::LOCALHOST, &mut out);
        if verdict == Verdict::Ipv4Df {
            prop_assert!(r4.is_ok());
        }
        if verdict == Verdict::Ipv6 {
            prop_assert!(r6.is_ok());
        }
        let mut small = [0u8; 40];
        let _ = build_frag_needed(&frame, mtu, [2; 6], Ipv4Addr::new(10, 0, 0, 1), &mut small);
        let _ = build_packet_too_big(&frame, mtu, [2; 6], Ipv6Addr::LOCALHOST, &mut small);

        let mut scratch = vec![0u8; 14 + 8 + mtu as usize];
        let mut n = 0;
        let frags = fragment_ipv4(&frame, mtu, &mut scratch, |f| {
            assert!(f.len() <= 22 + mtu as usize);
            n += 1;
        });
        if verdict == Verdict::Ipv4NoDf && mtu >= 68 {
            // Options or an offset that needs_icmp does not look at may still refuse.
            prop_assert!(
                frags == Ok(n)
                    || matches!(frags, Err(FragmentError::BadOptions | FragmentError::Malformed)),
                "{frags:?}"
            );
        }
        if let Ok(mut f) = Fragmenter::new(&frame, mtu) {
            let mut tiny = [0u8; 30];
            let _ = f.next_into(&mut tiny);
        }

        let mut edited = frame.clone();
        for state in [ChecksumState::Complete, ChecksumState::Partial] {
            let _ = clamp_mss(&mut edited, mss, state);
        }
        prop_assert_eq!(edited.len(), frame.len());
    }

    #[test]
    fn decap_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), v6 in any::<bool>()) {
        let mut peers = PeerTable::new();
        peers.add("192.0.2.1".parse().unwrap(), PeerVnis::All).unwrap();
        let known = |_: Vni| true;
        let src: IpAddr = if v6 { "2001:db8::1".parse().unwrap() } else { "192.0.2.1".parse().unwrap() };
        let _ = decapsulate(&bytes, src, &known, &peers);
        let _ = decapsulate_ip(&bytes, 4789, &known, &peers);
        let mut ip = bytes.clone();
        if let Some(b) = ip.first_mut() {
            *b = if v6 { 0x60 } else { 0x45 };
        }
        let _ = decapsulate_ip(&ip, 4789, &known, &peers);
        let p = VxlanPacket::new_unchecked(&bytes[..]);
        if p.check_len().is_ok() {
            let _ = (p.flags(), p.vni(), p.reserved1(), p.reserved2(), p.payload());
        }
        let _ = VxlanRepr::parse(&p);
    }

    /// A SYN whose option bytes are random: clamping never panics, and whenever it
    /// changes the frame the checksum still verifies.
    #[test]
    fn clamp_with_random_options_keeps_the_checksum(
        prefix in proptest::collection::vec(prop_oneof![3 => Just(1u8), 1 => any::<u8>()], 0..6),
        mss in proptest::option::of(any::<u16>()),
        suffix in proptest::collection::vec(any::<u8>(), 0..6),
        max in any::<u16>(),
        v6 in any::<bool>(),
    ) {
        let mut opts = prefix;
        if let Some(m) = mss {
            opts.extend_from_slice(&[2, 4]);
            opts.extend_from_slice(&m.to_be_bytes());
        }
        opts.extend_from_slice(&suffix);
        let words = opts.len().div_ceil(4);
        let mut options = opts.clone();
        options.resize(words * 4, 0);
        let mut tcp = etherparse::TcpHeader::new(1, 2, 3, 1000);
        tcp.syn = true;
        tcp.options = etherparse::TcpOptions::try_from_slice(&options).unwrap();
        let b = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6]);
        let mut f = Vec::new();
        if v6 {
            b.ipv6([1; 16], [2; 16], 9).tcp_header(tcp).write(&mut f, b"x").unwrap();
        } else {
            b.ipv4([1; 4], [2; 4], 9).tcp_header(tcp).write(&mut f, b"x").unwrap();
        }
        let before = f.clone();
        if clamp_mss(&mut f, max, ChecksumState::Complete) {
            let p = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
            let Some(etherparse::TransportSlice::Tcp(t)) = p.transport else { panic!() };
            let h = t.to_header();
            let want = match p.net {
                Some(etherparse::NetSlice::Ipv4(ip)) => h.calc_checksum_ipv4_raw(
                    ip.header().source(), ip.header().destination(), t.payload()).unwrap(),
                Some(etherparse::NetSlice::Ipv6(ip)) => h.calc_checksum_ipv6_raw(
                    ip.header().source(), ip.header().destination(), t.payload()).unwrap(),
                _ => panic!(),
            };
            prop_assert_eq!(want, h.checksum);
            // Only the MSS value and the checksum changed.
            let changed = before.iter().zip(&f).filter(|(a, b)| a != b).count();
            prop_assert!(changed <= 4);
        } else {
            prop_assert_eq!(before, f);
        }
    }
}
