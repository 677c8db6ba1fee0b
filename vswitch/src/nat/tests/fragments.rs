//! Fragmented datagrams: the first fragment is translated with the flow and the
//! later ones follow it; reassembling the translated fragments gives exactly the
//! translated datagram (checksums included).

use super::*;

/// `pkt` with DF clear, as a datagram that gets fragmented is.
fn may_fragment(mut pkt: Vec<u8>) -> Vec<u8> {
    pkt[6] &= !0x40;
    fix_header(&mut pkt);
    pkt
}

/// Cuts an option-less IPv4 packet into fragments of `chunk` payload bytes (a
/// multiple of 8), as a sending host does.
fn fragment(pkt: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let payload = &pkt[20..];
    let pieces: Vec<&[u8]> = payload.chunks(chunk).collect();
    let n = pieces.len();
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, piece)| {
            let mut f = pkt[..20].to_vec();
            f.extend_from_slice(piece);
            let total = f.len() as u16;
            f[2..4].copy_from_slice(&total.to_be_bytes());
            let off = (i * chunk / 8) as u16 | if i + 1 < n { 0x2000 } else { 0 };
            f[6..8].copy_from_slice(&off.to_be_bytes());
            fix_header(&mut f);
            f
        })
        .collect()
}

fn fix_header(f: &mut [u8]) {
    f[10..12].copy_from_slice(&[0, 0]);
    let c = vtep::checksum::checksum(&f[..20]);
    f[10..12].copy_from_slice(&c.to_be_bytes());
}

/// The receiving host's view: the fragments' payloads in offset order, behind the
/// first fragment's header.
fn reassemble(frags: &[Vec<u8>]) -> Vec<u8> {
    let mut sorted: Vec<&Vec<u8>> = frags.iter().collect();
    sorted.sort_by_key(|f| u16::from_be_bytes([f[6], f[7]]) & 0x1fff);
    let mut out = sorted[0][..20].to_vec();
    for f in &sorted {
        assert_eq!(
            f[..20][12..20],
            out[12..20],
            "same addresses in every fragment"
        );
        assert_eq!(
            vtep::checksum::checksum(&f[..20]),
            0,
            "fragment header checksum"
        );
        out.extend_from_slice(&f[20..]);
    }
    let total = out.len() as u16;
    out[2..4].copy_from_slice(&total.to_be_bytes());
    out[6..8].copy_from_slice(&[0, 0]);
    fix_header(&mut out);
    out
}

/// Each fragment through `f`, all of them accepted.
fn each(
    frags: &[Vec<u8>],
    mut f: impl FnMut(&mut [u8]) -> Result<Translated, NatDrop>,
) -> (Vec<Vec<u8>>, Vec<Translated>) {
    let mut outs = Vec::new();
    let mut ts = Vec::new();
    for frag in frags {
        let mut p = frag.clone();
        ts.push(f(&mut p).unwrap_or_else(|e| panic!("fragment dropped: {e}")));
        outs.push(p);
    }
    (outs, ts)
}

#[test]
fn a_fragmented_udp_datagram_goes_out_and_its_fragmented_reply_comes_back() {
    let n = nat();
    let big = may_fragment(udp_with(A, 5000, R, 53, &[0x42; 3000]));
    let frags = fragment(&big, 1480);
    assert_eq!(frags.len(), 3);
    let (outs, ts) = each(&frags, |p| n.outbound(secs(0), p, ChecksumState::Complete));
    assert!(ts.iter().all(|t| t.egress == Egress::Uplink && t.dst == R));
    let sent = reassemble(&outs);
    verify(&sent);
    let (s, port, d, dp) = tuple(&sent);
    assert_eq!((s, d, dp), (EXT, R, 53));
    assert_eq!(n.counters().fragmented_datagrams, 1);

    let reply = may_fragment(udp_with(R, 53, EXT, port, &[0x24; 2500]));
    let (ins, ts) = each(&fragment(&reply, 1480), |p| {
        n.inbound(secs(1), p, ChecksumState::Complete)
    });
    assert!(
        ts.iter()
            .all(|t| t.egress == Egress::Internal && t.dst == A)
    );
    assert!(
        reassemble(&ins) == may_fragment(udp_with(R, 53, A, 5000, &[0x24; 2500])),
        "the reply reassembles to exactly what A would have got unfragmented"
    );
}

#[test]
fn a_big_ping_and_its_reply() {
    let n = Nat::new(config(100..=200)).unwrap();
    let echo = |src: Ipv4Addr, dst: Ipv4Addr, id, reply| {
        let b = etherparse::PacketBuilder::ipv4(src.octets(), dst.octets(), 64);
        let b = if reply {
            b.icmpv4_echo_reply(id, 9)
        } else {
            b.icmpv4_echo_request(id, 9)
        };
        let mut v = Vec::new();
        b.write(&mut v, &[0x77; 2972]).unwrap();
        may_fragment(v)
    };
    let (outs, _) = each(&fragment(&echo(A, R, 7, false), 1480), |p| {
        n.outbound(secs(0), p, ChecksumState::Complete)
    });
    let sent = reassemble(&outs);
    verify(&sent);
    let id = tuple(&sent).1;
    let (ins, _) = each(&fragment(&echo(R, EXT, id, true), 1480), |p| {
        n.inbound(secs(0), p, ChecksumState::Complete)
    });
    assert!(
        reassemble(&ins) == echo(R, A, 7, true),
        "the reply reassembles exactly"
    );
}

#[test]
fn later_fragments_need_their_first_and_are_forgotten_in_time() {
    let n = nat();
    let big = may_fragment(udp_with(A, 5000, R, 53, &[1; 3000]));
    let frags = fragment(&big, 1480);
    assert_eq!(out_err(&n, secs(0), &frags[1]), NatDrop::Fragment);
    let mut first = frags[0].clone();
    n.outbound(secs(0), &mut first, ChecksumState::Complete)
        .unwrap();
    // Later fragments may come in any order once the first has passed.
    let mut last = frags[2].clone();
    n.outbound(secs(1), &mut last, ChecksumState::Complete)
        .unwrap();
    let mut mid = frags[1].clone();
    n.outbound(secs(1), &mut mid, ChecksumState::Complete)
        .unwrap();
    assert_eq!(tuple_addrs(&mid), (EXT, R));
    // The same fragments from the outside side match nothing.
    assert_eq!(inb_err(&n, secs(1), &frags[1]), NatDrop::Fragment);
    n.expire(secs(30));
    assert_eq!(n.counters().fragmented_datagrams, 1);
    n.expire(secs(31));
    assert_eq!(n.counters().fragmented_datagrams, 0);
    assert_eq!(out_err(&n, secs(31), &frags[1]), NatDrop::Fragment);
}

fn tuple_addrs(pkt: &[u8]) -> (Ipv4Addr, Ipv4Addr) {
    (
        Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]),
        Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]),
    )
}
