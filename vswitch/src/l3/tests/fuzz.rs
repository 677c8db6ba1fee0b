//! Whatever the bytes and whatever the output buffer's size, no parser or builder
//! panics, the in-place functions never change a frame's length, and a refused
//! decrement leaves the frame as it was. Random bytes, and valid frames with random
//! corruption (which get past the first checks and reach the deeper ones).

use proptest::prelude::*;

use super::*;
use crate::l3::*;

fn seeds() -> Vec<Vec<u8>> {
    vec![
        arp_frame(
            MacAddr::BROADCAST,
            etherparse::ArpOperation::REQUEST,
            A_MAC,
            A,
            MacAddr::default(),
            GW,
        ),
        arp_frame(A_MAC, etherparse::ArpOperation::REPLY, B_MAC, B, A_MAC, A),
        ping(A_MAC, ROUTER_MAC, A, GW, 64, b"0123456789abcdef"),
        ping(A_MAC, ROUTER_MAC, A, R, 1, b""),
        udp(A_MAC, ROUTER_MAC, A, R, 1),
        icmp_frame(A, R, 1, &[11, 0, 0, 0, 0, 0, 0, 0]),
    ]
}

fn exercise(frame: &[u8], out_len: usize) {
    let mut out = vec![0u8; out_len];
    if let Ok(arp) = Arp::parse(frame) {
        let _ = build_reply(&arp, ROUTER_MAC, &mut out);
        let _ = arp.emit(&mut out);
    }
    let _ = build_echo_reply(frame, &mut out);
    let _ = is_echo_request(frame);
    let _ = build_time_exceeded(frame, ROUTER_MAC, GW, &mut out);

    let mut copy = frame.to_vec();
    match decrement_ttl(&mut copy) {
        Ok(()) => assert_eq!(copy.len(), frame.len()),
        Err(_) => assert_eq!(copy, frame),
    }
    let _ = rewrite_l2(&mut copy, ROUTER_MAC, B_MAC);
    assert_eq!(copy.len(), frame.len());
}

/// What a successful build wrote must parse back with etherparse (checksums included).
fn built_frames_are_valid(frame: &[u8]) {
    let mut out = vec![0u8; 2048];
    if let Ok(n) = build_echo_reply(frame, &mut out) {
        parse_icmp(&out[..n]);
    }
    if let Ok(n) = build_time_exceeded(frame, ROUTER_MAC, GW, &mut out) {
        parse_icmp(&out[..n]);
    }
    if let Ok(arp) = Arp::parse(frame)
        && let Ok(n) = build_reply(&arp, ROUTER_MAC, &mut out)
    {
        parse_arp(&out[..n]);
    }
    let mut copy = frame.to_vec();
    if decrement_ttl(&mut copy).is_ok() && header_checksum_ok(frame) {
        let (ip, _) = Ipv4Header::from_slice(&copy[14..]).unwrap();
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
    }
}

/// Whether the original header checksum was right (the decrement keeps a wrong one
/// wrong, by design).
fn header_checksum_ok(frame: &[u8]) -> bool {
    Ipv4Header::from_slice(&frame[14..])
        .is_ok_and(|(ip, _)| ip.header_checksum == ip.calc_header_checksum())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes(
        frame in proptest::collection::vec(any::<u8>(), 0..200),
        out_len in 0usize..200,
    ) {
        exercise(&frame, out_len);
    }

    #[test]
    fn corrupted_frames(
        seed in 0usize..6,
        flips in proptest::collection::vec((0usize..100, any::<u8>()), 0..6),
        cut in 0usize..120,
        out_len in 0usize..200,
    ) {
        let mut frame = seeds()[seed].clone();
        for (at, byte) in flips {
            if let Some(b) = frame.get_mut(at) {
                *b = byte;
            }
        }
        frame.truncate(cut.max(14));
        exercise(&frame, out_len);
        built_frames_are_valid(&frame);
    }
}
