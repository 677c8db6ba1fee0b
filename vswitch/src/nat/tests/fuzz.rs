//! Whatever the bytes, the engine never panics, never changes a packet's length, and
//! leaves a refused packet untouched. Random bytes, and valid packets with random
//! corruption (which reach much deeper, e.g. into ICMP error quotes).

use proptest::prelude::*;

use super::*;

fn engine() -> Nat {
    let n = Nat::new(config(1000..=1003)).unwrap();
    n.set_published(
        PublishedPorts::from_ports(["8080:80".parse::<PortSpec>().unwrap().to(B)]).unwrap(),
    );
    n
}

/// Valid packets of every kind the engine handles, some of them about one flow.
fn seeds(n: &Nat) -> Vec<Vec<u8>> {
    let (sent, _) = out(n, secs(0), &udp(A, 1000, R, 53));
    let (sent_tcp, _) = out(n, secs(0), &tcp(A, 1001, R, 80, SYN));
    // A datagram's first fragment (recorded) and a later one (offset 8).
    let mut first_fragment = udp_with(A, 1002, R, 53, &[3; 64]);
    first_fragment[6] = 0x20;
    n.outbound(
        secs(0),
        &mut first_fragment.clone(),
        ChecksumState::Complete,
    )
    .unwrap();
    let mut later_fragment = first_fragment.clone();
    later_fragment[6..8].copy_from_slice(&[0, 1]);
    vec![
        tcp(A, 1, R, 80, SYN),
        tcp(R, 1, EXT, 8080, SYN),
        udp(R, 53, EXT, 1000),
        ping(A, R, 9, false),
        icmp_error(R, EXT, port_unreachable(), &sent),
        icmp_error(ROUTER, EXT, frag_needed(1280), &sent_tcp),
        icmp_error(A, R, ttl_exceeded(), &udp(R, 53, A, 1000)),
        first_fragment.clone(),
        later_fragment,
    ]
}

fn run(n: &Nat, pkt: &[u8], inbound: bool, partial: bool) {
    let csum = if partial {
        ChecksumState::Partial
    } else {
        ChecksumState::Complete
    };
    let mut p = pkt.to_vec();
    let r = if inbound {
        n.inbound(secs(1), &mut p, csum)
    } else {
        n.outbound(secs(1), &mut p, csum)
    };
    assert_eq!(p.len(), pkt.len());
    if r.is_err() {
        assert_eq!(p, pkt, "refused packets are untouched");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(
        mut bytes in proptest::collection::vec(any::<u8>(), 0..120),
        ipv4 in any::<bool>(),
        inbound in any::<bool>(),
        partial in any::<bool>(),
    ) {
        if ipv4 && !bytes.is_empty() {
            bytes[0] = 0x45;
        }
        run(&engine(), &bytes, inbound, partial);
    }

    #[test]
    fn corrupted_packets_never_panic(
        seed in 0usize..9,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in proptest::option::of(any::<usize>()),
        inbound in any::<bool>(),
        partial in any::<bool>(),
    ) {
        let n = engine();
        let mut p = seeds(&n)[seed].clone();
        for (at, v) in flips {
            let at = at % p.len();
            p[at] = v;
        }
        if let Some(c) = cut {
            p.truncate(c % (p.len() + 1));
        }
        run(&n, &p, inbound, partial);
        run(&n, &p, !inbound, partial);
    }
}
