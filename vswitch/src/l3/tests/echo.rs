//! ICMP echo replies: every field of the reply, and the requests never answered.

use etherparse::{IcmpEchoHeader, Icmpv4Type};

use super::*;
use crate::l3::icmp_echo::*;

fn reply_to(request: &[u8]) -> Result<Vec<u8>, EchoError> {
    let mut out = vec![0xaa; 2048];
    let n = build_echo_reply(request, &mut out)?;
    out.truncate(n);
    Ok(out)
}

#[test]
fn replies_with_swapped_addresses_and_the_same_id_seq_payload() {
    let payload: Vec<u8> = (0..56u8).collect();
    let mut request = ping(A_MAC, ROUTER_MAC, A, GW, 17, &payload);
    request[15] = 0x10; // some TOS
    // etherparse wrote the checksum before our TOS edit: redo it.
    request[24..26].copy_from_slice(&[0, 0]);
    let sum = vtep::checksum::checksum(&request[14..34]);
    request[24..26].copy_from_slice(&sum.to_be_bytes());
    assert!(is_echo_request(&request));

    let reply = reply_to(&request).unwrap();
    assert_eq!(reply.len(), request.len());
    let (eth, ip, icmp, data) = parse_icmp(&reply);
    assert_eq!((eth.source, eth.destination), (ROUTER_MAC.0, A_MAC.0));
    assert_eq!((ip.source, ip.destination), (GW.octets(), A.octets()));
    assert_eq!(ip.time_to_live, 64);
    assert_eq!(ip.dscp.value() << 2 | ip.ecn.value(), 0x10);
    assert!(!ip.more_fragments && ip.fragment_offset.value() == 0);
    assert_eq!(usize::from(ip.total_len), 20 + 8 + payload.len());
    assert_eq!(
        icmp.icmp_type,
        Icmpv4Type::EchoReply(IcmpEchoHeader { id: 0x1234, seq: 7 })
    );
    assert_eq!(data, payload);
    assert!(!is_echo_request(&reply));
}

#[test]
fn a_short_reply_is_padded_to_60_bytes() {
    let request = ping(A_MAC, ROUTER_MAC, A, GW, 64, b"");
    assert_eq!(request.len(), 42);
    let reply = reply_to(&request).unwrap();
    assert_eq!(reply.len(), 60);
    assert!(reply[42..].iter().all(|&b| b == 0));
    let (_, ip, icmp, data) = parse_icmp(&reply);
    assert_eq!(ip.total_len, 28);
    assert!(data.is_empty());
    assert!(matches!(icmp.icmp_type, Icmpv4Type::EchoReply(_)));
}

#[test]
fn options_are_not_echoed_and_ethernet_padding_is_ignored() {
    let mut ip = Ipv4Header::new(
        8 + 4,
        64,
        etherparse::IpNumber::ICMP,
        A.octets(),
        GW.octets(),
    )
    .unwrap();
    ip.options = [1, 1, 1, 0].into(); // NOPs and end of list
    let icmp = Icmpv4Header::with_checksum(
        Icmpv4Type::EchoRequest(IcmpEchoHeader { id: 9, seq: 10 }),
        b"abcd",
    );
    let mut v = Vec::new();
    PacketBuilder::ethernet2(A_MAC.0, ROUTER_MAC.0)
        .ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
        .icmpv4(icmp.icmp_type.clone())
        .write(&mut v, b"abcd")
        .unwrap();
    assert_eq!(v[14], 0x46);
    v.extend_from_slice(&[0; 10]); // trailing Ethernet padding
    let reply = reply_to(&v).unwrap();
    let (_, rip, ricmp, data) = parse_icmp(&reply);
    assert_eq!(rip.header_len(), 20);
    assert_eq!(
        ricmp.icmp_type,
        Icmpv4Type::EchoReply(IcmpEchoHeader { id: 9, seq: 10 })
    );
    assert_eq!(data, b"abcd");
}

#[test]
fn refuses_what_must_not_be_answered() {
    let good = ping(A_MAC, ROUTER_MAC, A, GW, 64, b"payload!");
    assert!(reply_to(&good).is_ok());

    let mut fragment = good.clone();
    fragment[20] |= 0x20; // MF
    assert_eq!(reply_to(&fragment), Err(EchoError::Fragment));
    let mut later = good.clone();
    later[21] = 1; // offset 8
    assert_eq!(reply_to(&later), Err(EchoError::Fragment));

    let broadcast = ping(A_MAC, MacAddr::BROADCAST, A, GW, 64, b"x");
    assert_eq!(reply_to(&broadcast), Err(EchoError::NotUnicast));
    let ip_broadcast = ping(A_MAC, ROUTER_MAC, A, Ipv4Addr::BROADCAST, 64, b"x");
    assert_eq!(reply_to(&ip_broadcast), Err(EchoError::NotUnicast));
    let multicast = ping(A_MAC, ROUTER_MAC, A, Ipv4Addr::new(224, 0, 0, 1), 64, b"x");
    assert_eq!(reply_to(&multicast), Err(EchoError::NotUnicast));
    let from_nobody = ping(A_MAC, ROUTER_MAC, Ipv4Addr::UNSPECIFIED, GW, 64, b"x");
    assert_eq!(reply_to(&from_nobody), Err(EchoError::BadSource));

    let mut bad_ip_sum = good.clone();
    bad_ip_sum[24] ^= 0xff;
    assert_eq!(reply_to(&bad_ip_sum), Err(EchoError::BadIpChecksum));
    let mut bad_icmp_sum = good.clone();
    bad_icmp_sum[36] ^= 0xff;
    assert_eq!(reply_to(&bad_icmp_sum), Err(EchoError::BadIcmpChecksum));

    let reply = reply_to(&good).unwrap();
    assert_eq!(reply_to(&reply), Err(EchoError::NotEchoRequest));
    assert_eq!(
        reply_to(&udp(A_MAC, ROUTER_MAC, A, GW, 64)),
        Err(EchoError::NotEchoRequest)
    );
    let arp = arp_frame(
        MacAddr::BROADCAST,
        etherparse::ArpOperation::REQUEST,
        A_MAC,
        A,
        MacAddr::default(),
        GW,
    );
    assert_eq!(reply_to(&arp), Err(EchoError::NotIpv4));

    assert_eq!(reply_to(&good[..good.len() - 1]), Err(EchoError::Malformed));
    assert_eq!(reply_to(&good[..30]), Err(EchoError::Malformed));
    let mut short_icmp = good.clone();
    short_icmp[16..18].copy_from_slice(&24u16.to_be_bytes()); // 4 bytes of ICMP
    short_icmp[24..26].copy_from_slice(&[0, 0]);
    let sum = vtep::checksum::checksum(&short_icmp[14..34]);
    short_icmp[24..26].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(reply_to(&short_icmp), Err(EchoError::Malformed));

    let mut small = [0u8; 49];
    assert_eq!(
        build_echo_reply(&good, &mut small),
        Err(EchoError::BufferTooSmall)
    );
}

#[test]
fn error_names_are_unique() {
    let mut names: Vec<_> = EchoError::ALL.iter().map(|e| e.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), EchoError::ALL.len());
}
