//! Translation of single flows: masquerade of TCP, UDP and ICMP echo, partial
//! checksums, published ports with and without a host address, hairpin, and the
//! creation rules.

use super::*;

#[test]
fn tcp_syn_is_masqueraded_and_the_reply_untranslated_exactly() {
    let n = nat();
    let syn = tcp(A, 40000, R, 443, SYN);
    let (o, t) = out(&n, secs(1), &syn);
    assert_eq!(
        tuple(&o),
        (EXT, 40000, R, 443),
        "keeps the source port when free"
    );
    assert_eq!(
        t,
        Translated {
            kind: NatKind::Snat,
            egress: Egress::Uplink,
            dst: R,
            created: true
        }
    );
    let reply = tcp(R, 443, EXT, 40000, SYNACK);
    let (back, t) = inb(&n, secs(1), &reply);
    assert_eq!(back, tcp(R, 443, A, 40000, SYNACK), "byte for byte");
    assert_eq!((t.egress, t.dst, t.created), (Egress::Internal, A, false));
    // The next packets use the same entry.
    let (o2, t2) = out(&n, secs(2), &tcp(A, 40000, R, 443, ACK));
    assert_eq!(tuple(&o2), (EXT, 40000, R, 443));
    assert!(!t2.created);
    let e = n.entries(secs(2));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].state, ConnState::Established);
    assert_eq!(e[0].translated.src.to_string(), "203.0.113.1:40000");
    assert_eq!(e[0].age, secs(1));
}

#[test]
fn ports_outside_the_range_or_taken_are_replaced() {
    let n = nat();
    let (o, _) = out(&n, secs(0), &tcp(A, 1234, R, 80, SYN));
    let p1 = tuple(&o).1;
    assert!((32768..=60999).contains(&p1));
    // Another host with the same source port gets another external port.
    let (o, _) = out(&n, secs(0), &tcp(B, 1234, R, 80, SYN));
    let p2 = tuple(&o).1;
    assert!((32768..=60999).contains(&p2) && p2 != p1);
    let (back, _) = inb(&n, secs(0), &tcp(R, 80, EXT, p2, SYNACK));
    assert_eq!(tuple(&back), (R, 80, B, 1234));
}

#[test]
fn udp_both_ways_and_zero_checksum_stays_zero() {
    let n = nat();
    let (o, t) = out(&n, secs(0), &udp(A, 5353, R, 53));
    assert_eq!(tuple(&o), (EXT, t_port(&o), R, 53));
    assert_eq!(t.egress, Egress::Uplink);
    let p = t_port(&o);
    let (back, _) = inb(&n, secs(0), &udp(R, 53, EXT, p));
    assert_eq!(back, udp(R, 53, A, 5353));
    assert_eq!(n.entries(secs(0))[0].state, ConnState::Stream);

    let mut zero = udp(A, 7000, R, 53);
    zero[26..28].copy_from_slice(&[0, 0]);
    let (o, _) = out(&n, secs(0), &zero);
    assert_eq!(&o[26..28], &[0, 0]);
}

fn t_port(pkt: &[u8]) -> u16 {
    tuple(pkt).1
}

#[test]
fn icmp_echo_identifier_is_rewritten() {
    let n = Nat::new(config(100..=200)).unwrap();
    let (o, _) = out(&n, secs(0), &ping(A, R, 7, false));
    let (s, id, d, _) = tuple(&o);
    assert_eq!((s, d), (EXT, R));
    assert!((100..=200).contains(&id), "id {id} from the range");
    let (back, t) = inb(&n, secs(0), &ping(R, EXT, id, true));
    assert_eq!(back, ping(R, A, 7, true));
    assert_eq!(t.dst, A);
    // An echo reply from inside or a request from outside starts nothing.
    assert_eq!(out_err(&n, secs(0), &ping(A, R, 8, true)), NatDrop::NoFlow);
    assert_eq!(
        inb_err(&n, secs(0), &ping(R, EXT, 8, false)),
        NatDrop::NoFlow
    );
    assert_eq!(n.counters().ports[2].used, 1);
}

/// Puts the pseudo-header sum in the TCP/UDP checksum field, as a sender with
/// checksum offload does (virtio_net_hdr NEEDS_CSUM).
fn make_partial(pkt: &mut [u8], at: usize) {
    let (src, dst) = (
        Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]),
        Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]),
    );
    let len = (pkt.len() - 20) as u16;
    let sum = vtep::checksum::pseudo_header_v4(src, dst, pkt[9], len);
    pkt[at..at + 2].copy_from_slice(&vtep::checksum::fold(sum).to_be_bytes());
}

/// What the device does with a partial checksum: sum the segment over it.
fn complete(pkt: &mut [u8]) {
    let seg = &pkt[20..];
    let c = vtep::checksum::checksum(seg);
    let at = if pkt[9] == 6 { 36 } else { 26 };
    pkt[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn partial_checksums_get_only_the_pseudo_header_part() {
    let n = nat();
    for (mut pkt, at) in [(tcp(A, 40001, R, 80, SYN), 36), (udp(A, 40002, R, 53), 26)] {
        make_partial(&mut pkt, at);
        n.outbound(secs(0), &mut pkt, ChecksumState::Partial)
            .unwrap();
        // The field now holds the pseudo-header sum of the new addresses.
        let mut want = pkt.clone();
        make_partial(&mut want, at);
        assert_eq!(pkt[at..at + 2], want[at..at + 2]);
        complete(&mut pkt);
        verify(&pkt);
        assert_eq!(tuple(&pkt).0, EXT);
    }
    // A super-frame: the IPv4 total length says 64000 bytes though fewer are here.
    let mut big = tcp_with(A, 40003, R, 80, SYN, &[7; 1000]);
    make_partial(&mut big, 36);
    big[2..4].copy_from_slice(&64000u16.to_be_bytes());
    big[10..12].copy_from_slice(&[0, 0]);
    let c = vtep::checksum::checksum(&big[..20]);
    big[10..12].copy_from_slice(&c.to_be_bytes());
    n.outbound(secs(0), &mut big, ChecksumState::Partial)
        .unwrap();
    assert_eq!(tuple_raw(&big), (EXT, 40003));
    assert_eq!(
        vtep::checksum::checksum(&big[..20]),
        0,
        "IPv4 header checksum"
    );
}

fn tuple_raw(pkt: &[u8]) -> (Ipv4Addr, u16) {
    (
        Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]),
        u16::from_be_bytes([pkt[20], pkt[21]]),
    )
}

fn publish(n: &Nat, specs: &[(&str, Ipv4Addr)]) {
    let set = PublishedPorts::from_ports(
        specs
            .iter()
            .map(|(s, ip)| s.parse::<PortSpec>().unwrap().to(*ip)),
    )
    .unwrap();
    n.set_published(set);
}

#[test]
fn published_port_in_and_reply_out() {
    let n = nat();
    publish(&n, &[("8080:80", B), ("5353:53/udp", B)]);
    let (i, t) = inb(&n, secs(0), &tcp(R, 50000, EXT, 8080, SYN));
    assert_eq!(tuple(&i), (R, 50000, B, 80));
    assert_eq!(
        (t.kind, t.egress, t.dst, t.created),
        (NatKind::Dnat, Egress::Internal, B, true)
    );
    let (o, t) = out(&n, secs(0), &tcp(B, 80, R, 50000, SYNACK));
    assert_eq!(o, tcp(EXT, 8080, R, 50000, SYNACK));
    assert_eq!((t.egress, t.dst), (Egress::Uplink, R));
    let (i, _) = inb(&n, secs(0), &tcp(R, 50000, EXT, 8080, ACK));
    assert_eq!(tuple(&i), (R, 50000, B, 80));
    assert_eq!(n.entries(secs(0))[0].state, ConnState::Established);

    let (i, _) = inb(&n, secs(0), &udp(R, 999, EXT, 5353));
    assert_eq!(tuple(&i), (R, 999, B, 53));
    // Inbound TCP needs a SYN, whatever tcp_loose says; unpublished ports are closed.
    assert_eq!(
        inb_err(&n, secs(0), &tcp(R, 50001, EXT, 8080, ACK)),
        NatDrop::NoFlow
    );
    assert_eq!(
        inb_err(&n, secs(0), &tcp(R, 50001, EXT, 8081, SYN)),
        NatDrop::NoFlow
    );
    assert_eq!(
        inb_err(&n, secs(0), &udp(R, 999, EXT, 8080)),
        NatDrop::NoFlow
    );
    let elsewhere = Ipv4Addr::new(203, 0, 113, 99);
    assert_eq!(
        inb_err(&n, secs(0), &tcp(R, 1, elsewhere, 9, SYN)),
        NatDrop::NotForUs
    );
}

#[test]
fn a_host_address_binds_the_port_to_exactly_that_address() {
    let n = nat();
    let second = Ipv4Addr::new(203, 0, 113, 2);
    publish(&n, &[("203.0.113.2:8080:80", B)]);
    assert_eq!(
        inb_err(&n, secs(0), &tcp(R, 50000, EXT, 8080, SYN)),
        NatDrop::NoFlow
    );
    let (i, _) = inb(&n, secs(0), &tcp(R, 50000, second, 8080, SYN));
    assert_eq!(tuple(&i), (R, 50000, B, 80));
    let (o, _) = out(&n, secs(0), &tcp(B, 80, R, 50000, SYNACK));
    assert_eq!(
        tuple(&o),
        (second, 8080, R, 50000),
        "answers from the bound address"
    );
}

#[test]
fn hairpin_to_a_published_port() {
    let n = nat();
    publish(&n, &[("8080:80", B)]);
    let (o, t) = out(&n, secs(0), &tcp(A, 41000, EXT, 8080, SYN));
    let (s, p, d, dp) = tuple(&o);
    assert_eq!((s, d, dp), (EXT, B, 80));
    assert_eq!(
        (t.kind, t.egress, t.dst),
        (NatKind::Hairpin, Egress::Internal, B)
    );
    // B answers the external address; it goes back to A, from the published port.
    let (back, t) = out(&n, secs(0), &tcp(B, 80, EXT, p, SYNACK));
    assert_eq!(back, tcp(EXT, 8080, A, 41000, SYNACK));
    assert_eq!((t.egress, t.dst), (Egress::Internal, A));
    let (o, _) = out(&n, secs(0), &tcp(A, 41000, EXT, 8080, ACK));
    assert_eq!(tuple(&o), (EXT, p, B, 80));
    // A container to the external address on a port nobody published.
    assert_eq!(
        out_err(&n, secs(0), &tcp(A, 41001, EXT, 22, SYN)),
        NatDrop::NotPublished
    );
    assert_eq!(
        out_err(&n, secs(0), &ping(A, EXT, 1, false)),
        NatDrop::NotPublished
    );
    // The same reply arriving from outside matches nothing.
    assert_eq!(
        inb_err(&n, secs(0), &tcp(B, 80, EXT, p, SYNACK)),
        NatDrop::NoFlow
    );
}

#[test]
fn tcp_creation_rules() {
    let n = nat();
    assert_eq!(
        out_err(&n, secs(0), &tcp(A, 1, R, 80, SYNACK)),
        NatDrop::NoFlow
    );
    assert_eq!(
        out_err(&n, secs(0), &tcp(A, 1, R, 80, RST)),
        NatDrop::NoFlow
    );
    assert_eq!(
        out_err(&n, secs(0), &tcp(A, 1, R, 80, FIN)),
        NatDrop::NoFlow
    );
    // Loose pickup of a connection already open.
    let (_, t) = out(&n, secs(0), &tcp(A, 1, R, 80, ACK));
    assert!(t.created);
    assert_eq!(n.entries(secs(0))[0].state, ConnState::Established);

    let strict = Nat::new(NatConfig {
        tcp_loose: false,
        ..config(32768..=60999)
    })
    .unwrap();
    assert_eq!(
        out_err(&strict, secs(0), &tcp(A, 1, R, 80, ACK)),
        NatDrop::NoFlow
    );
    // No entry for an unsolicited reply either.
    assert_eq!(
        inb_err(&n, secs(0), &tcp(R, 80, EXT, 33333, SYNACK)),
        NatDrop::NoFlow
    );
}

#[test]
fn masquerade_skips_published_ports() {
    let n = Nat::new(config(8080..=8081)).unwrap();
    publish(&n, &[("8080:80/udp", B)]);
    let (o, _) = out(&n, secs(0), &udp(A, 8080, R, 53));
    assert_eq!(tuple(&o).1, 8081);
    assert_eq!(
        out_err(&n, secs(0), &udp(A, 8082, R, 53)),
        NatDrop::PortsExhausted
    );
}

#[test]
fn bad_packets_are_refused_unchanged() {
    let n = nat();
    let mut frag = udp(A, 1, R, 2);
    frag[6] = 0x20;
    frag[7] = 0x01; // offset 8: a later fragment, and no first one was seen
    frag[10..12].copy_from_slice(&[0, 0]);
    assert_eq!(out_err(&n, secs(0), &frag), NatDrop::Fragment);
    assert_eq!(
        out_err(&n, secs(0), &tcp(A, 1, R, 2, SYN)[..30]),
        NatDrop::Malformed
    );
    let mut gre = udp(A, 1, R, 2);
    gre[9] = 47;
    assert_eq!(out_err(&n, secs(0), &gre), NatDrop::UnsupportedProtocol);
    assert_eq!(n.counters().entries, 0);
}

#[test]
fn endpoint_removal_frees_its_flows() {
    let n = nat();
    publish(&n, &[("8080:80", B)]);
    out(&n, secs(0), &udp(A, 1000, R, 53));
    out(&n, secs(0), &udp(B, 1000, R, 53));
    inb(&n, secs(0), &tcp(R, 5, EXT, 8080, SYN));
    assert_eq!(n.remove_endpoint(B), 2);
    assert_eq!(n.counters().entries, 1);
    assert_eq!(n.counters().removed, 2);
}

#[test]
fn nat_ls_json_shape() {
    let n = nat();
    publish(&n, &[("8080:80", B)]);
    inb(&n, secs(3), &tcp(R, 5, EXT, 8080, SYN));
    let json = serde_json::to_value(n.entries(secs(5))).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{
            "proto": "tcp",
            "kind": "dnat",
            "original": { "src": "198.51.100.7:5", "dst": "203.0.113.1:8080" },
            "translated": { "src": "198.51.100.7:5", "dst": "10.0.1.3:80" },
            "state": "SYN_SENT",
            "age": 2,
            "idle": 2,
            "expires_in": 118
        }])
    );
}

/// Two workers: each gives the flows it masquerades ports of its own lane (the uplink
/// hands their replies back to it), keeping a source port of its lane and otherwise
/// taking the next one, the same for the same source port every time it is free.
#[test]
fn each_worker_masquerades_into_ports_of_its_lane() {
    let n = nat();
    let lanes = [Lane::new(0, 2), Lane::new(1, 2)];
    let on = |lane: Lane, pkt: &[u8]| {
        through(
            |p| n.outbound_on(lane, secs(1), p, ChecksumState::Complete),
            pkt,
        )
        .0
    };
    // Even source port through the even lane: kept; through the odd one: the next.
    assert_eq!(tuple(&on(lanes[0], &udp(A, 40000, R, 53))).1, 40000);
    assert_eq!(tuple(&on(lanes[1], &udp(A, 40010, R, 53))).1, 40011);
    assert_eq!(tuple(&on(lanes[1], &tcp(A, 40011, R, 80, SYN))).1, 40011);
    // ICMP echo identifiers too.
    assert_eq!(tuple(&on(lanes[1], &ping(A, R, 7000, false))).1 % 2, 1);
    // Outside the range: any port of the lane.
    for (k, lane) in lanes.iter().enumerate() {
        let p = tuple(&on(*lane, &udp(B, 1000 + k as u16, R, 53))).1;
        assert!(
            (32768..=60999).contains(&p) && usize::from(p % 2) == k,
            "{p}"
        );
    }
    // A flow's later packets, through either worker, keep its port.
    assert_eq!(tuple(&on(lanes[0], &udp(A, 40010, R, 53))).1, 40011);
}

/// A lane with no free port left takes any free port: steering is a preference, never
/// a reason to refuse a flow.
#[test]
fn a_full_lane_borrows_a_port_of_another() {
    let n = Nat::new(config(40000..=40003)).unwrap();
    let lane = Lane::new(1, 2);
    let mut got: Vec<u16> = (0..4)
        .map(|k| {
            let pkt = udp(A, 5000 + k, R, 53);
            let (o, _) = through(
                |p| n.outbound_on(lane, secs(1), p, ChecksumState::Complete),
                &pkt,
            );
            tuple(&o).1
        })
        .collect();
    assert_eq!(&got[..2], &[40001, 40003], "the lane's own first");
    got.sort_unstable();
    assert_eq!(got, vec![40000, 40001, 40002, 40003]);
}
