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
    let p = n.preview_outbound(&pkt).unwrap();
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

    let again = n.preview_outbound(&pkt).unwrap();
    assert!(again.existing);
    assert_eq!(again.translated, p.translated);
    assert_eq!(n.entries(secs(1)).len(), 1);
}

#[test]
fn a_preview_takes_the_port_outbound_would_and_refuses_what_it_would() {
    // Source port outside the range: the pool's next port, the same one outbound takes.
    let n = nat();
    let pkt = tcp(A, 1234, R, 80, SYN);
    let p = n.preview_outbound(&pkt).unwrap();
    assert_eq!(p.translated.src.0, EXT);
    assert!((32768..=60999).contains(&p.translated.src.1));
    let mut out = pkt.clone();
    n.outbound(secs(1), &mut out, ChecksumState::Complete)
        .unwrap();
    assert_eq!(src_of(&out), p.translated.src);
    // A bare FIN starts nothing, whether previewed or sent.
    let fin = tcp(B, 4000, R, 80, FIN);
    assert_eq!(n.preview_outbound(&fin), Err(NatDrop::NoFlow));
    let mut out = fin.clone();
    assert_eq!(
        n.outbound(secs(1), &mut out, ChecksumState::Complete),
        Err(NatDrop::NoFlow)
    );
}
