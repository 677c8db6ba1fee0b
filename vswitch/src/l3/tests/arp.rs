//! ARP: parsing what hosts send, the reply / request / gratuitous frames we build,
//! and the malformed frames refused with their reason.

use etherparse::{ArpHardwareId, ArpOperation, EtherType};

use super::*;
use crate::l3::arp::*;

#[test]
fn parses_a_request() {
    let frame = arp_frame(
        MacAddr::BROADCAST,
        ArpOperation::REQUEST,
        A_MAC,
        A,
        MacAddr::default(),
        GW,
    );
    let arp = Arp::parse(&frame).unwrap();
    assert_eq!(
        arp,
        Arp {
            eth_dst: MacAddr::BROADCAST,
            eth_src: A_MAC,
            op: ArpOp::Request,
            sender_mac: A_MAC,
            sender_ip: A,
            target_mac: MacAddr::default(),
            target_ip: GW,
        }
    );
    assert!(!arp.is_gratuitous());
    assert!(!arp.is_probe());
    // Without the Ethernet padding too.
    assert_eq!(Arp::parse(&frame[..42]).unwrap(), arp);
}

#[test]
fn answers_a_request_for_our_address() {
    let frame = arp_frame(
        MacAddr::BROADCAST,
        ArpOperation::REQUEST,
        A_MAC,
        A,
        MacAddr::default(),
        GW,
    );
    let request = Arp::parse(&frame).unwrap();
    let mut out = [0xaa; 128];
    let n = build_reply(&request, ROUTER_MAC, &mut out).unwrap();
    assert_eq!(n, 60);
    assert!(out[42..60].iter().all(|&b| b == 0), "zero padding");
    assert_eq!(
        parse_arp(&out[..n]),
        ArpSeen {
            eth_src: ROUTER_MAC,
            eth_dst: A_MAC,
            op: ArpOperation::REPLY,
            sha: ROUTER_MAC,
            spa: GW,
            tha: A_MAC,
            tpa: A,
        }
    );
    // Our own parser agrees.
    let reply = Arp::parse(&out[..n]).unwrap();
    assert_eq!(reply.op, ArpOp::Reply);
    assert_eq!((reply.sender_mac, reply.sender_ip), (ROUTER_MAC, GW));
}

#[test]
fn reply_goes_to_the_sender_mac_not_the_ethernet_source() {
    let mut frame = arp_frame(
        MacAddr::BROADCAST,
        ArpOperation::REQUEST,
        A_MAC,
        A,
        MacAddr::default(),
        GW,
    );
    frame[6..12].copy_from_slice(&B_MAC.0);
    let request = Arp::parse(&frame).unwrap();
    assert_eq!(request.eth_src, B_MAC);
    let mut out = [0; 60];
    build_reply(&request, ROUTER_MAC, &mut out).unwrap();
    assert_eq!(parse_arp(&out).eth_dst, A_MAC);
}

#[test]
fn answers_a_conflict_probe_to_the_prober() {
    let frame = arp_frame(
        MacAddr::BROADCAST,
        ArpOperation::REQUEST,
        A_MAC,
        Ipv4Addr::UNSPECIFIED,
        MacAddr::default(),
        GW,
    );
    let probe = Arp::parse(&frame).unwrap();
    assert!(probe.is_probe());
    assert!(!probe.is_gratuitous());
    let mut out = [0; 60];
    build_reply(&probe, ROUTER_MAC, &mut out).unwrap();
    let seen = parse_arp(&out);
    assert_eq!(
        (seen.eth_dst, seen.tha, seen.tpa),
        (A_MAC, A_MAC, Ipv4Addr::UNSPECIFIED)
    );
}

#[test]
fn never_answers_a_reply() {
    let frame = arp_frame(A_MAC, ArpOperation::REPLY, B_MAC, B, A_MAC, A);
    let reply = Arp::parse(&frame).unwrap();
    assert_eq!(reply.op, ArpOp::Reply);
    assert_eq!(
        build_reply(&reply, ROUTER_MAC, &mut [0; 60]),
        Err(ArpError::NotARequest)
    );
}

#[test]
fn builds_a_broadcast_request() {
    let mut out = [0xaa; 60];
    let n = build_request(ROUTER_MAC, GW, A, MacAddr::BROADCAST, &mut out).unwrap();
    assert_eq!(n, 60);
    assert_eq!(
        parse_arp(&out),
        ArpSeen {
            eth_src: ROUTER_MAC,
            eth_dst: MacAddr::BROADCAST,
            op: ArpOperation::REQUEST,
            sha: ROUTER_MAC,
            spa: GW,
            tha: MacAddr::default(),
            tpa: A,
        }
    );
    assert!(out[42..].iter().all(|&b| b == 0));
}

#[test]
fn builds_a_unicast_probe() {
    let mut out = [0; 60];
    build_request(ROUTER_MAC, GW, A, A_MAC, &mut out).unwrap();
    let seen = parse_arp(&out);
    assert_eq!(
        (seen.eth_dst, seen.tha, seen.tpa),
        (A_MAC, MacAddr::default(), A)
    );
}

#[test]
fn builds_a_gratuitous_arp() {
    let ext = Ipv4Addr::new(203, 0, 113, 1);
    let mut out = [0; 64];
    let n = build_gratuitous(ROUTER_MAC, ext, &mut out).unwrap();
    assert_eq!(n, 60);
    assert_eq!(
        parse_arp(&out[..n]),
        ArpSeen {
            eth_src: ROUTER_MAC,
            eth_dst: MacAddr::BROADCAST,
            op: ArpOperation::REQUEST,
            sha: ROUTER_MAC,
            spa: ext,
            tha: MacAddr::default(),
            tpa: ext,
        }
    );
    assert!(Arp::parse(&out[..n]).unwrap().is_gratuitous());
}

#[test]
fn small_buffers_are_refused() {
    let mut out = [0; 59];
    assert_eq!(
        build_gratuitous(ROUTER_MAC, GW, &mut out),
        Err(ArpError::BufferTooSmall)
    );
    assert_eq!(
        build_request(ROUTER_MAC, GW, A, MacAddr::BROADCAST, &mut out),
        Err(ArpError::BufferTooSmall)
    );
}

#[test]
fn malformed_frames_are_refused_with_their_reason() {
    let good = arp_frame(
        MacAddr::BROADCAST,
        ArpOperation::REQUEST,
        A_MAC,
        A,
        MacAddr::default(),
        GW,
    );
    for len in [0, 13, 14, 21, 22, 41] {
        assert_eq!(
            Arp::parse(&good[..len]),
            Err(ArpError::Truncated),
            "length {len}"
        );
    }

    let ipv4 = udp(A_MAC, ROUTER_MAC, A, B, 64);
    assert_eq!(Arp::parse(&ipv4), Err(ArpError::WrongEthertype));

    let ieee802 = arp_odd(
        ArpHardwareId::IEEE802,
        EtherType::IPV4,
        ArpOperation::REQUEST,
        &A_MAC.0,
        &A.octets(),
    );
    assert_eq!(Arp::parse(&ieee802), Err(ArpError::UnsupportedHardware));

    let v6: std::net::Ipv6Addr = "fd00::2".parse().unwrap();
    let ipv6_sized = arp_odd(
        ArpHardwareId::ETHERNET,
        EtherType::IPV6,
        ArpOperation::REQUEST,
        &A_MAC.0,
        &v6.octets(),
    );
    assert_eq!(Arp::parse(&ipv6_sized), Err(ArpError::UnsupportedProtocol));
    // IPv6-sized addresses even when the protocol type claims IPv4.
    let mut long_addrs = arp_odd(
        ArpHardwareId::ETHERNET,
        EtherType::IPV4,
        ArpOperation::REQUEST,
        &A_MAC.0,
        &v6.octets(),
    );
    assert_eq!(Arp::parse(&long_addrs), Err(ArpError::BadAddressLength));
    long_addrs[14 + 4] = 8; // an 8-byte hardware address
    assert_eq!(Arp::parse(&long_addrs), Err(ArpError::BadAddressLength));

    let rarp = arp_odd(
        ArpHardwareId::ETHERNET,
        EtherType::IPV4,
        ArpOperation::from(3),
        &A_MAC.0,
        &A.octets(),
    );
    assert_eq!(Arp::parse(&rarp), Err(ArpError::UnsupportedOperation));

    let multicast_sender = arp_frame(
        MacAddr::BROADCAST,
        ArpOperation::REQUEST,
        MacAddr([0x01, 0, 0x5e, 0, 0, 1]),
        A,
        MacAddr::default(),
        GW,
    );
    assert_eq!(
        Arp::parse(&multicast_sender),
        Err(ArpError::InvalidSenderMac)
    );
    let zero_sender = arp_frame(
        MacAddr::BROADCAST,
        ArpOperation::REQUEST,
        MacAddr::default(),
        A,
        MacAddr::default(),
        GW,
    );
    assert_eq!(Arp::parse(&zero_sender), Err(ArpError::InvalidSenderMac));
}

#[test]
fn error_names_are_unique() {
    let mut names: Vec<_> = ArpError::ALL.iter().map(|e| e.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), ArpError::ALL.len());
}
