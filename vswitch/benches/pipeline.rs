//! The switching decision and the VXLAN edges, per frame: `Pipeline::process` over a
//! batch of 32 or 64 frames (FDB hit: learn-refresh of the source and a known
//! destination; FDB miss: an unknown destination, so a flood verdict), encapsulation of a
//! 1500-byte frame through `egress::to_peers` (in place to one peer, one shared copy to
//! four peers, and a 64 KB TSO super-frame split into VXLAN segments), and
//! decapsulation (the VXLAN checks alone, and with the switching decision for the inner
//! frame). Throughput is in frames, so criterion prints time per batch and frames/s;
//! ns per frame = time / batch size.
//!
//! The GSO split and GRO coalesce on their own are in the `offload` bench.

mod fixtures;

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fdb::MacAddr;
use fixtures::*;
use vswitch::datapath::egress::{self, Outcome, Target};
use vswitch::datapath::pipeline::{FrameMeta, Ingress, Pipeline, Verdict};
use vswitch::datapath::pool::Pool;
use vswitch::packet::PacketBuf;

const PLAIN: FrameMeta = FrameMeta { gso: false };

/// `n` frames of 1514 bytes between the bridge hosts, each from its host's port; with
/// `known` the destination is a learned host, else one the FDB has never seen.
fn batch(n: usize, known: bool) -> Vec<(Ingress, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let k = i % HOSTS;
            let dst = if known {
                host_mac(BRIDGE, (k + 1) % HOSTS)
            } else {
                MacAddr([2, 0x99, 0, 0, (i >> 8) as u8, i as u8])
            };
            let frame = udp_frame(dst, host_mac(BRIDGE, k), 1514);
            (Ingress::Port(bridge_port(k)), frame)
        })
        .collect()
}

fn pipeline(c: &mut Criterion) {
    let topo = topology(BRIDGE_PORTS, 1);
    let p = Pipeline::new(learned_fdb(4000));
    let mut g = c.benchmark_group("pipeline");
    for (name, known) in [("fdb_hit", true), ("fdb_miss_flood", false)] {
        for n in [32usize, 64] {
            let frames = batch(n, known);
            // What is measured must be the path it is named after.
            let b = p.begin(NOW, &topo);
            for (ingress, f) in &frames {
                let v = p.process(&b, *ingress, f, PLAIN);
                assert!(
                    matches!(
                        (known, v),
                        (true, Verdict::Forward(_)) | (false, Verdict::Flood { .. })
                    ),
                    "{name}: unexpected verdict {v:?}"
                );
            }
            drop(b);
            g.throughput(Throughput::Elements(n as u64));
            g.bench_with_input(BenchmarkId::new(name, n), &frames, |bench, frames| {
                bench.iter(|| {
                    let b = p.begin(NOW, &topo);
                    for (ingress, f) in frames {
                        black_box(p.process(&b, *ingress, black_box(f), PLAIN));
                    }
                })
            });
        }
    }
    g.finish();
}

fn encap(c: &mut Criterion) {
    let topo = topology(BRIDGE_PORTS, 4);
    let ov = topo.overlay.expect("overlay configured");
    let one = [peer(0)];
    let four: Vec<IpAddr> = (0..4).map(peer).collect();
    let target = |peers, exclusive| Target {
        vni: vni(),
        peers,
        exclusive,
        mtu: 1450,
        gateway: "10.2.0.1".parse().expect("address"),
    };
    let frame = udp_frame(host_mac(OVERLAY, 1), host_mac(OVERLAY, 0), 1464);
    let mut pool = Pool::new(1, 8);
    let mut txs = Vec::with_capacity(64);
    pool.get_mut(0).set_frame(&frame);

    let mut g = c.benchmark_group("vxlan");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encap_1464_to_1_peer_in_place", |b| {
        let t = target(&one[..], true);
        b.iter(|| {
            let out = egress::to_peers(&mut pool, 0, &t, &ov, ROUTER_MAC, &mut txs);
            assert_eq!(out, Outcome::Queued);
            // undo the push, so every iteration encapsulates the same inner frame
            pool.get_mut(0).pull_front(vtep::VXLAN_HLEN);
            black_box(txs.drain(..).count());
        })
    });
    g.bench_function("encap_1464_flood_to_4_peers", |b| {
        let t = target(&four[..], false);
        b.iter(|| {
            let out = egress::to_peers(&mut pool, 0, &t, &ov, ROUTER_MAC, &mut txs);
            assert_eq!(out, Outcome::Queued);
            pool.release_scratch();
            black_box(txs.drain(..).count());
        })
    });

    let (sf, hdr) = super_frame();
    let mut gso_pool = Pool::new(1, 2);
    let buf: &mut PacketBuf = gso_pool.get_mut(0);
    buf.set_frame(&sf);
    buf.vnet = hdr.to_bytes();
    g.throughput(Throughput::Elements(SEGS as u64));
    g.bench_function("encap_tso_64k_to_1_peer_segments", |b| {
        let t = target(&one[..], true);
        b.iter(|| {
            let out = egress::to_peers(&mut gso_pool, 0, &t, &ov, ROUTER_MAC, &mut txs);
            assert_eq!(out, Outcome::Queued);
            gso_pool.release_scratch();
            black_box(txs.drain(..).count());
        })
    });

    // A datagram as the underlay socket hands it over: VXLAN header + inner frame.
    let mut datagram = vec![0u8; vtep::VXLAN_HLEN];
    vtep::VxlanRepr { vni: vni() }
        .write(&mut datagram)
        .expect("header fits");
    datagram.extend_from_slice(&udp_frame(host_mac(OVERLAY, 0), host_mac(OVERLAY, 1), 1464));
    let src = peer(0);
    let knows = |v: vtep::Vni| topo.vnis.contains_key(&v);
    let p = Pipeline::new(learned_fdb(0));
    // host 0 of the overlay is local: learn it behind the first overlay port
    p.fdb().learn(
        NOW,
        OVERLAY,
        host_mac(OVERLAY, 0),
        fdb::Location::Port(fdb::PortId(OVERLAY_PORT0)),
    );
    g.throughput(Throughput::Elements(1));
    g.bench_function("decap_1464_checks", |b| {
        b.iter(|| {
            let d = vtep::decapsulate(black_box(&datagram), src, &knows, &topo.peers)
                .expect("a valid datagram");
            black_box(d.inner)
        })
    });
    g.bench_function("decap_1464_and_switch", |b| {
        b.iter(|| {
            let d = vtep::decapsulate(black_box(&datagram), src, &knows, &topo.peers)
                .expect("a valid datagram");
            let network = topo.vnis[&d.vni];
            let batch = p.begin(NOW, &topo);
            let v = p.process(
                &batch,
                Ingress::Vtep { ip: src, network },
                &datagram[d.inner],
                PLAIN,
            );
            assert!(matches!(v, Verdict::Forward(_)), "unexpected verdict {v:?}");
            black_box(v)
        })
    });
    g.finish();
}

criterion_group!(benches, pipeline, encap);
criterion_main!(benches);
