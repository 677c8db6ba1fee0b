//! Two receive queues on one underlay address: each VXLAN datagram goes to the queue of
//! its inner flow, whatever outer source port it came from (the kernel runs
//! `steer::underlay_lanes`; the hash is checked against the one computed here).

use super::*;
use crate::port::steer::mirror::flow_hash;

/// A VXLAN payload (header, then an Ethernet + IPv4 + UDP frame) of one inner flow.
fn vxlan_udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut p = vec![0x08, 0, 0, 0, 0, 0, 42, 0]; // VXLAN, VNI 42
    p.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
    let mut ip = vec![0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 17, 0, 0];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    p.extend_from_slice(&ip);
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&[0, 12, 0, 0, b'l', b'a', b'n', b'e']);
    p
}

#[test]
fn underlay_queues_share_datagrams_by_their_inner_flow() {
    let lab = Pair::new();
    let mut a = open(&lab.a, &UnderlayConfig::new(ip(V4.0)));
    let cfg = UnderlayConfig::new(ip(V4.1));
    let mut queues = lab
        .b
        .run(move || Underlay::open_queues(&cfg, 2).unwrap_or_else(|e| panic!("open: {e}")));
    // Inner flows, each sent from several outer source ports (the flow hash of a
    // Transmit picks the outer source port): the inner flow alone must decide.
    let flows: Vec<([u8; 4], [u8; 4], u16, u16)> = (0..8)
        .map(|k| ([10, 0, 0, 2], [10, 0, 0, 3 + (k % 3) as u8], 5000 + k, 80))
        .collect();
    let pool: Vec<PacketBuf> = flows
        .iter()
        .map(|&(s, d, sp, dp)| PacketBuf::from_frame(&vxlan_udp4(s, d, sp, dp)))
        .collect();
    let txs: Vec<Transmit> = (0..flows.len() * 3)
        .map(|i| Transmit {
            buf: (i % flows.len()) as u32,
            dst: ip(V4.1),
            flow_hash: (i as u32).wrapping_mul(0x9e37_79b9),
            range: None,
            segment_size: None,
        })
        .collect();
    send_all(&mut a, &pool, &txs);
    let lane = |&(s, d, sp, dp): &([u8; 4], [u8; 4], u16, u16)| {
        (flow_hash(s.into(), d.into(), Some((sp, dp))) % 2) as usize
    };
    assert!(
        flows.iter().any(|f| lane(f) == 0) && flows.iter().any(|f| lane(f) == 1),
        "the flows chosen should use both queues"
    );
    let mut seen = vec![Vec::new(); flows.len()];
    for (q, u) in queues.iter_mut().enumerate() {
        let got = receive_for(u, usize::MAX, Duration::from_millis(500));
        for (_, d) in got.datagrams {
            let k = pool
                .iter()
                .position(|p| p.frame() == &d[..])
                .expect("a datagram we sent");
            seen[k].push(q);
        }
    }
    for (k, f) in flows.iter().enumerate() {
        assert_eq!(seen[k], vec![lane(f); 3], "inner flow {k}: {f:?}");
    }
}
