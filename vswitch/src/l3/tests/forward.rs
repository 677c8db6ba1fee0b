//! Forwarding: the TTL decrement and its checksum, the Ethernet rewrite, and the ICMP
//! time exceeded (what it quotes, and what it never answers).

use etherparse::{Icmpv4Type, icmpv4::TimeExceededCode};

use super::*;
use crate::l3::forward::*;

#[test]
fn decrement_keeps_the_header_checksum_right() {
    for ttl in [2u8, 3, 64, 128, 255] {
        let mut frame = udp(A_MAC, ROUTER_MAC, A, R, ttl);
        decrement_ttl(&mut frame).unwrap();
        let (ip, _) = Ipv4Header::from_slice(&frame[14..]).unwrap();
        assert_eq!(ip.time_to_live, ttl - 1);
        assert_eq!(ip.header_checksum, ip.calc_header_checksum(), "ttl {ttl}");
    }
}

#[test]
fn ttl_one_or_zero_expires_and_leaves_the_frame_alone() {
    for ttl in [0u8, 1] {
        let mut frame = udp(A_MAC, ROUTER_MAC, A, R, ttl);
        let before = frame.clone();
        assert_eq!(decrement_ttl(&mut frame), Err(ForwardError::TtlExpired));
        assert_eq!(frame, before);
    }
}

#[test]
fn decrement_refuses_what_is_not_ipv4() {
    let mut arp = arp_frame(
        MacAddr::BROADCAST,
        etherparse::ArpOperation::REQUEST,
        A_MAC,
        A,
        MacAddr::default(),
        GW,
    );
    assert_eq!(decrement_ttl(&mut arp), Err(ForwardError::NotIpv4));
    let mut frame = udp(A_MAC, ROUTER_MAC, A, R, 64);
    assert_eq!(
        decrement_ttl(&mut frame[..33]),
        Err(ForwardError::Malformed)
    );
    frame[14] = 0x44; // IHL 4
    assert_eq!(decrement_ttl(&mut frame), Err(ForwardError::Malformed));
}

/// `frame` (Ethernet + IPv4 without options) with `options` inserted after the IPv4
/// header, lengths and header checksum fixed up.
fn with_options(frame: &[u8], options: &[u8]) -> Vec<u8> {
    let mut f = frame[..34].to_vec();
    f.extend_from_slice(options);
    f.extend_from_slice(&frame[34..]);
    f[14] = 0x40 | ((20 + options.len()) / 4) as u8;
    let total = (f.len() - 14) as u16;
    f[16..18].copy_from_slice(&total.to_be_bytes());
    f[24..26].copy_from_slice(&[0, 0]);
    let sum = vtep::checksum::checksum(&f[14..34 + options.len()]);
    f[24..26].copy_from_slice(&sum.to_be_bytes());
    f
}

#[test]
fn decrement_refuses_a_wrong_header_checksum() {
    let mut frame = udp(A_MAC, ROUTER_MAC, A, R, 64);
    frame[24] ^= 0x01;
    let before = frame.clone();
    assert_eq!(decrement_ttl(&mut frame), Err(ForwardError::Malformed));
    assert_eq!(frame, before);
    // Also when the TTL has run out: no time exceeded for a corrupt header.
    let mut expired = udp(A_MAC, ROUTER_MAC, A, R, 1);
    expired[24] ^= 0x01;
    assert_eq!(decrement_ttl(&mut expired), Err(ForwardError::Malformed));
}

#[test]
fn decrement_checks_that_options_parse_as_a_list() {
    let frame = udp(A_MAC, ROUTER_MAC, A, R, 64);
    // Well-formed: NOPs, a router alert (type 148, length 4), end of list and padding.
    for good in [
        &[1u8, 1, 1, 1][..],
        &[148, 4, 0, 0],
        &[1, 148, 4, 0, 0, 0, 0, 0],
        &[0, 0x55, 0x55, 0x55],
    ] {
        let mut f = with_options(&frame, good);
        assert_eq!(decrement_ttl(&mut f), Ok(()), "{good:?}");
    }
    // A length of 0 or 1 (the list would never end), or past the header.
    for bad in [
        &[7u8, 0, 0, 0][..],
        &[7, 1, 0, 0],
        &[68, 40, 5, 0],
        &[1, 1, 1, 148],
    ] {
        let mut f = with_options(&frame, bad);
        assert_eq!(
            decrement_ttl(&mut f),
            Err(ForwardError::Malformed),
            "{bad:?}"
        );
    }
}

#[test]
fn rewrite_sets_both_macs() {
    let mut frame = udp(A_MAC, ROUTER_MAC, A, B, 64);
    let rest = frame[12..].to_vec();
    rewrite_l2(&mut frame, ROUTER_MAC, B_MAC).unwrap();
    assert_eq!(&frame[0..6], &B_MAC.0);
    assert_eq!(&frame[6..12], &ROUTER_MAC.0);
    assert_eq!(&frame[12..], &rest[..]);
    assert_eq!(
        rewrite_l2(&mut [0; 11], ROUTER_MAC, B_MAC),
        Err(ForwardError::Malformed)
    );
}

fn time_exceeded(frame: &[u8]) -> Result<Vec<u8>, TimeExceededError> {
    let mut out = vec![0xaa; MAX_TIME_EXCEEDED_LEN];
    let n = build_time_exceeded(frame, ROUTER_MAC, GW, &mut out)?;
    out.truncate(n);
    Ok(out)
}

#[test]
fn time_exceeded_quotes_the_header_and_8_bytes() {
    let frame = udp(A_MAC, ROUTER_MAC, A, R, 1);
    let reply = time_exceeded(&frame).unwrap();
    let (eth, ip, icmp, quote) = parse_icmp(&reply);
    assert_eq!((eth.source, eth.destination), (ROUTER_MAC.0, A_MAC.0));
    assert_eq!((ip.source, ip.destination), (GW.octets(), A.octets()));
    assert_eq!(ip.time_to_live, 64);
    assert!(ip.dont_fragment);
    assert_eq!(ip.dscp.value(), 48, "CS6");
    assert_eq!(
        icmp.icmp_type,
        Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit)
    );
    assert_eq!(quote, &frame[14..14 + 28]);
    assert_eq!(reply.len(), 14 + 20 + 8 + 28);
    // The quote parses as the original header and its UDP ports.
    let (qip, rest) = Ipv4Header::from_slice(&quote).unwrap();
    assert_eq!(
        (qip.source, qip.destination, qip.time_to_live),
        (A.octets(), R.octets(), 1)
    );
    assert_eq!(&rest[..4], &[0x9c, 0x40, 0, 53]);
}

#[test]
fn time_exceeded_quotes_options_and_short_payloads() {
    let mut ip = Ipv4Header::new(3, 1, etherparse::IpNumber::UDP, A.octets(), R.octets()).unwrap();
    ip.options = [1, 1, 1, 1, 1, 1, 1, 0].into();
    ip.total_len = 28 + 3;
    ip.header_checksum = ip.calc_header_checksum();
    let mut frame = Vec::new();
    Ethernet2Header {
        source: A_MAC.0,
        destination: ROUTER_MAC.0,
        ether_type: EtherType::IPV4,
    }
    .write(&mut frame)
    .unwrap();
    ip.write(&mut frame).unwrap();
    frame.extend_from_slice(&[1, 2, 3]);
    let reply = time_exceeded(&frame).unwrap();
    let (_, _, _, quote) = parse_icmp(&reply);
    assert_eq!(quote, &frame[14..]);
    assert_eq!(quote.len(), 28 + 3);
}

#[test]
fn time_exceeded_answers_a_ping_but_never_an_icmp_error() {
    let request = ping(A_MAC, ROUTER_MAC, A, R, 1, b"traceroute");
    assert!(time_exceeded(&request).is_ok());

    let first = time_exceeded(&udp(A_MAC, ROUTER_MAC, A, R, 1)).unwrap();
    let mut error = first[14..].to_vec(); // an ICMP error as an IPv4 packet
    error[8] = 1; // TTL 1
    error[10..12].copy_from_slice(&[0, 0]);
    let sum = vtep::checksum::checksum(&error[..20]);
    error[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut frame = first[..14].to_vec();
    frame[0..6].copy_from_slice(&ROUTER_MAC.0);
    frame[6..12].copy_from_slice(&A_MAC.0);
    frame.extend_from_slice(&error);
    assert_eq!(
        time_exceeded(&frame),
        Err(TimeExceededError::AboutIcmpError)
    );

    for t in [3u8, 4, 5, 11, 12, 19, 255] {
        let msg = [t, 0, 0, 0, 0, 0, 0, 0];
        let f = icmp_frame(A, R, 1, &msg);
        assert_eq!(
            time_exceeded(&f),
            Err(TimeExceededError::AboutIcmpError),
            "type {t}"
        );
    }
    for t in [0u8, 8, 13, 14] {
        let msg = [t, 0, 0, 0, 0, 0, 0, 0];
        assert!(
            time_exceeded(&icmp_frame(A, R, 1, &msg)).is_ok(),
            "type {t}"
        );
    }
    assert_eq!(
        time_exceeded(&icmp_frame(A, R, 1, &[])),
        Err(TimeExceededError::Malformed)
    );
}

#[test]
fn time_exceeded_refuses_fragments_broadcasts_and_bad_sources() {
    let frame = udp(A_MAC, ROUTER_MAC, A, R, 1);
    let mut first = frame.clone();
    first[20] |= 0x20; // MF, offset 0: the first fragment may be answered
    assert!(time_exceeded(&first).is_ok());
    let mut later = frame.clone();
    later[21] = 3;
    assert_eq!(time_exceeded(&later), Err(TimeExceededError::LaterFragment));

    let to_bcast_mac = udp(A_MAC, MacAddr::BROADCAST, A, R, 1);
    assert_eq!(
        time_exceeded(&to_bcast_mac),
        Err(TimeExceededError::NotUnicast)
    );
    let to_bcast = udp(A_MAC, ROUTER_MAC, A, Ipv4Addr::BROADCAST, 1);
    assert_eq!(time_exceeded(&to_bcast), Err(TimeExceededError::NotUnicast));
    let to_mcast = udp(A_MAC, ROUTER_MAC, A, Ipv4Addr::new(239, 1, 1, 1), 1);
    assert_eq!(time_exceeded(&to_mcast), Err(TimeExceededError::NotUnicast));
    let from_zero = udp(A_MAC, ROUTER_MAC, Ipv4Addr::UNSPECIFIED, R, 1);
    assert_eq!(time_exceeded(&from_zero), Err(TimeExceededError::BadSource));
    let from_mcast_mac = udp(MacAddr([1, 0, 0x5e, 0, 0, 1]), ROUTER_MAC, A, R, 1);
    assert_eq!(
        time_exceeded(&from_mcast_mac),
        Err(TimeExceededError::BadSource)
    );

    let arp = arp_frame(
        MacAddr::BROADCAST,
        etherparse::ArpOperation::REQUEST,
        A_MAC,
        A,
        MacAddr::default(),
        GW,
    );
    assert_eq!(time_exceeded(&arp), Err(TimeExceededError::NotIpv4));
    assert_eq!(
        time_exceeded(&frame[..40]),
        Err(TimeExceededError::Malformed)
    );
    let mut out = [0; 69];
    assert_eq!(
        build_time_exceeded(&frame, ROUTER_MAC, GW, &mut out),
        Err(TimeExceededError::BufferTooSmall)
    );
}

#[test]
fn error_names_are_unique() {
    let mut names: Vec<_> = ForwardError::ALL.iter().map(|e| e.name()).collect();
    names.extend(TimeExceededError::ALL.iter().map(|e| e.name()));
    names.extend(crate::l3::ArpError::ALL.iter().map(|e| e.name()));
    names.extend(crate::l3::EchoError::ALL.iter().map(|e| e.name()));
    let n = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n, "names are unique across l3");
}
