//! ICMP errors about tracked flows, both ways: the outer header and the quoted packet
//! are translated and every checksum (outer IPv4, ICMP, quoted IPv4 and transport)
//! verifies; the frag-needed MTU is untouched.

use super::*;

/// Bytes 4-7 of the ICMP header (the MTU of a frag-needed).
fn icmp_rest(pkt: &[u8]) -> [u8; 4] {
    pkt[24..28].try_into().unwrap()
}

#[test]
fn frag_needed_for_a_masqueraded_tcp_flow_reaches_the_sender() {
    let n = nat();
    let syn = tcp_with(A, 40000, R, 443, ACK, &[0x5a; 1400]);
    let (sent, _) = out(&n, secs(0), &syn);
    // A router on the way cannot forward it: it quotes the packet as it saw it.
    let err = icmp_error(ROUTER, EXT, frag_needed(1400), &sent);
    let (back, t) = inb(&n, secs(1), &err);
    assert_eq!((t.egress, t.dst, t.created), (Egress::Internal, A, false));
    let (s, _, d, _) = tuple(&back);
    assert_eq!((s, d), (ROUTER, A), "the router keeps its own address");
    assert_eq!(quote_of(&back), &syn[..], "the quote is what A sent");
    assert_eq!(icmp_rest(&back), [0, 0, 0x05, 0x78], "MTU 1400 untouched");
    // The error did not refresh the flow.
    assert_eq!(n.entries(secs(1))[0].idle, secs(1));
}

#[test]
fn port_unreachable_for_masqueraded_udp_and_a_short_quote() {
    let n = nat();
    let dgram = udp(A, 5000, R, 9);
    let (sent, _) = out(&n, secs(0), &dgram);
    let err = icmp_error(R, EXT, port_unreachable(), &sent);
    let (back, _) = inb(&n, secs(0), &err);
    assert_eq!(tuple(&back).2, A);
    assert_eq!(quote_of(&back), &dgram[..]);

    // RFC 792 quotes only the IPv4 header and 8 bytes; TCP's checksum is then left
    // out of the quote, and everything that is quoted still verifies.
    let seg = tcp(A, 40001, R, 80, SYN);
    let (sent, _) = out(&n, secs(0), &seg);
    let err = icmp_error(R, EXT, port_unreachable(), &sent[..28]);
    let (back, _) = inb(&n, secs(0), &err);
    assert_eq!(quote_of(&back), &seg[..28]);
    assert_eq!(vtep::checksum::checksum(&quote_of(&back)[..20]), 0);
}

#[test]
fn time_exceeded_for_a_ping() {
    let n = Nat::new(config(100..=200)).unwrap();
    let req = ping(A, R, 4242, false);
    let (sent, _) = out(&n, secs(0), &req);
    let err = icmp_error(ROUTER, EXT, ttl_exceeded(), &sent);
    let (back, t) = inb(&n, secs(0), &err);
    assert_eq!(t.dst, A);
    assert_eq!(quote_of(&back), &req[..]);
}

#[test]
fn a_container_error_about_a_published_port_flow_leaves_from_the_host_address() {
    let n = nat();
    n.set_published(
        PublishedPorts::from_ports(["5353:53/udp".parse::<PortSpec>().unwrap().to(B)]).unwrap(),
    );
    let query = udp(R, 999, EXT, 5353);
    let (delivered, _) = inb(&n, secs(0), &query);
    // Nothing listens on B:53: B answers port unreachable to R.
    let err = icmp_error(B, R, port_unreachable(), &delivered);
    let (sent, t) = out(&n, secs(0), &err);
    assert_eq!((t.egress, t.dst), (Egress::Uplink, R));
    let (s, _, d, _) = tuple(&sent);
    assert_eq!((s, d), (EXT, R), "B is hidden behind the external address");
    assert_eq!(quote_of(&sent), &query[..]);
}

#[test]
fn a_container_error_about_a_masqueraded_reply() {
    let n = nat();
    let (sent, _) = out(&n, secs(0), &udp(A, 5000, R, 9));
    let reply = udp(R, 9, EXT, tuple(&sent).1);
    let (delivered, _) = inb(&n, secs(0), &reply);
    let err = icmp_error(A, R, port_unreachable(), &delivered);
    let (back_out, t) = out(&n, secs(0), &err);
    assert_eq!(t.egress, Egress::Uplink);
    assert_eq!(&tuple(&back_out).0, &EXT);
    assert_eq!(quote_of(&back_out), &reply[..]);

    // A router inside (say a gateway) erring about the same reply also hides.
    let err = icmp_error(ROUTER, A, ttl_exceeded(), &delivered);
    let mut e = err.clone();
    e[12..16].copy_from_slice(&Ipv4Addr::new(10, 0, 0, 1).octets());
    e[10..12].copy_from_slice(&[0, 0]);
    let c = vtep::checksum::checksum(&e[..20]);
    e[10..12].copy_from_slice(&c.to_be_bytes());
    let (o, _) = out(&n, secs(0), &e);
    assert_eq!(tuple(&o).0, EXT);
}

#[test]
fn hairpin_errors_go_back_to_the_client() {
    let n = nat();
    n.set_published(
        PublishedPorts::from_ports(["5353:53/udp".parse::<PortSpec>().unwrap().to(B)]).unwrap(),
    );
    let q = udp(A, 6000, EXT, 5353);
    let (delivered, _) = out(&n, secs(0), &q);
    assert_eq!(tuple(&delivered).2, B);
    let err = icmp_error(B, EXT, port_unreachable(), &delivered);
    let (back, t) = out(&n, secs(0), &err);
    assert_eq!((t.egress, t.dst), (Egress::Internal, A));
    let (s, _, d, _) = tuple(&back);
    assert_eq!((s, d), (EXT, A));
    assert_eq!(quote_of(&back), &q[..]);
}

#[test]
fn errors_about_untracked_flows_are_dropped() {
    let n = nat();
    let stray = udp(EXT, 40000, R, 9);
    let err = icmp_error(R, EXT, port_unreachable(), &stray);
    assert_eq!(inb_err(&n, secs(0), &err), NatDrop::NotTracked);
    // An error about an error.
    let nested = icmp_error(R, EXT, port_unreachable(), &err);
    assert_eq!(inb_err(&n, secs(0), &nested), NatDrop::NotTracked);
    // A quote too short for the ports.
    let (sent, _) = out(&n, secs(0), &udp(A, 1, R, 9));
    let short = icmp_error(R, EXT, port_unreachable(), &sent[..24]);
    assert_eq!(inb_err(&n, secs(0), &short), NatDrop::Malformed);
    // A quote that is a later fragment carries no ports.
    let mut frag = sent.clone();
    frag[6] = 0x00;
    frag[7] = 0x10;
    let e = icmp_error(R, EXT, port_unreachable(), &frag);
    assert_eq!(inb_err(&n, secs(0), &e), NatDrop::NotTracked);
    // Errors never create entries.
    assert_eq!(n.counters().entries, 1);
}
