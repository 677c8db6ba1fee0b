//! The trace's view of the NAT: a preview changes nothing, and says what `outbound` then
//! does (the same rule and translation), and an existing flow's translation after it.

use super::*;

fn src_of(pkt: &[u8]) -> (Ipv4Addr, u16) {
    let ip = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    (ip, u16::from_be_bytes([pkt[20], pkt[21]]))
}

#[test]
fn a_preview_creates_nothing_and_matches_what_outbound_does() {
    let n = nat();
    let pkt = udp(A, 5353, R, 53);
    let p = n.preview_outbound(Lane::ANY, &pkt).unwrap();
    assert_eq!(
        (p.kind, p.egress, p.existing),
        (NatKind::Snat, Egress::Uplink, false)
    );
    assert_eq!(p.original.src, (A, 5353));
    assert_eq!(p.translated.dst, (R, 53));
    assert!(n.entries(secs(1)).is_empty(), "a preview made a connection");
    assert_eq!(n.counters().created, 0);

    let mut out = pkt.clone();
    n.outbound(secs(1), &mut out, ChecksumState::Complete)
        .unwrap();
    assert_eq!(src_of(&out), p.translated.src);

    let again = n.preview_outbound(Lane::ANY, &pkt).unwrap();
    assert!(again.existing);
    assert_eq!(again.translated, p.translated);
    assert_eq!(n.entries(secs(1)).len(), 1);
}

#[test]
fn a_preview_takes_the_port_outbound_would_and_refuses_what_it_would() {
    // Source port outside the range: the pool's next port, the same one outbound takes.
    let n = nat();
    let pkt = tcp(A, 1234, R, 80, SYN);
    let p = n.preview_outbound(Lane::ANY, &pkt).unwrap();
    assert_eq!(p.translated.src.0, EXT);
    assert!((32768..=60999).contains(&p.translated.src.1));
    let mut out = pkt.clone();
    n.outbound(secs(1), &mut out, ChecksumState::Complete)
        .unwrap();
    assert_eq!(src_of(&out), p.translated.src);
    // A bare FIN starts nothing, whether previewed or sent.
    let fin = tcp(B, 4000, R, 80, FIN);
    assert_eq!(n.preview_outbound(Lane::ANY, &fin), Err(NatDrop::NoFlow));
    let mut out = fin.clone();
    assert_eq!(
        n.outbound(secs(1), &mut out, ChecksumState::Complete),
        Err(NatDrop::NoFlow)
    );
}

#[test]
fn an_inbound_preview_shows_the_published_port_and_the_reply_and_creates_nothing() {
    let n = nat();
    n.set_published(
        PublishedPorts::from_ports(["8080:80/tcp".parse::<PortSpec>().unwrap().to(B)]).unwrap(),
    );
    // A SYN to a published port: the DNAT a new connection would get.
    let syn = tcp(R, 40000, EXT, 8080, SYN);
    let p = n.preview_inbound(&syn).unwrap();
    assert_eq!(
        (p.kind, p.egress, p.existing),
        (NatKind::Dnat, Egress::Internal, false)
    );
    assert_eq!((p.translated.src, p.translated.dst), ((R, 40000), (B, 80)));
    assert!(n.entries(secs(1)).is_empty(), "a preview made a connection");
    let (_, t) = inb(&n, secs(1), &syn);
    assert_eq!(t.dst, B);

    // Nothing published there, nothing tracked: refused as inbound would refuse it.
    let stray = tcp(R, 40001, EXT, 9999, SYN);
    assert_eq!(n.preview_inbound(&stray), Err(inb_err(&n, secs(1), &stray)));

    // The reply to a masqueraded connection: that connection's translation.
    let (sent, _) = out(&n, secs(1), &udp(A, 5000, R, 53));
    let (_, ext_port, _, _) = tuple(&sent);
    let reply = udp(R, 53, EXT, ext_port);
    let p = n.preview_inbound(&reply).unwrap();
    assert!(p.existing);
    assert_eq!(p.translated.dst, (A, 5000));
    assert_eq!(n.entries(secs(1)).len(), 2);
}

#[test]
fn an_inbound_preview_refuses_what_inbound_refuses() {
    let n = Nat::new(NatConfig {
        max_entries: 1,
        ..config(1024..=65535)
    })
    .unwrap();
    n.set_published(
        PublishedPorts::from_ports(["8080:80/tcp".parse::<PortSpec>().unwrap().to(B)]).unwrap(),
    );
    // Only a SYN may open a published port.
    let ack = tcp(R, 40000, EXT, 8080, ACK);
    assert_eq!(n.preview_inbound(&ack), Err(NatDrop::NoFlow));
    assert_eq!(inb_err(&n, secs(0), &ack), NatDrop::NoFlow);
    // A full table takes no new connection, previewed or not.
    out(&n, secs(0), &udp(A, 5000, R, 53));
    let syn = tcp(R, 40000, EXT, 8080, SYN);
    assert_eq!(n.preview_inbound(&syn), Err(NatDrop::TableFull));
    assert_eq!(inb_err(&n, secs(0), &syn), NatDrop::TableFull);
}

/// From a worker's lane, the preview shows the lane's port (here the one after the
/// even source port), the one `outbound_on` from that lane then takes.
#[test]
fn a_preview_from_a_lane_shows_the_port_of_that_lane() {
    let n = nat();
    let pkt = udp(A, 40000, R, 53);
    let lane = Lane::new(1, 2);
    let p = n.preview_outbound(lane, &pkt).unwrap();
    assert_eq!(p.translated.src, (EXT, 40001));
    let mut out = pkt.clone();
    n.outbound_on(lane, secs(1), &mut out, ChecksumState::Complete)
        .unwrap();
    assert_eq!(src_of(&out), p.translated.src);
}
