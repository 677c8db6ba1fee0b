//! Per-packet cost of the L3 pieces on the forwarding path: the route decision among
//! a few networks, the TTL decrement with its checksum update, the Ethernet rewrite,
//! and a neighbour-cache hit in a cache of a few hundred entries; plus the gateway's
//! answers (ARP reply, echo reply), which are off the bulk path but should stay cheap.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use etherparse::PacketBuilder;
use fdb::{MacAddr, NetworkId};
use vswitch::l3::{
    Arp, LearnKind, NeighCache, NeighConfig, RouteNetwork, RouteTable, build_echo_reply,
    build_reply, decrement_ttl, rewrite_l2,
};

const ROUTER: MacAddr = MacAddr([2, 0x56, 0x53, 0, 0, 1]);
const HOST: MacAddr = MacAddr([2, 0x42, 10, 0, 0, 2]);

fn bench(c: &mut Criterion) {
    let networks = (0..6u8).map(|i| RouteNetwork {
        id: NetworkId(u16::from(i)),
        subnet: format!("10.{i}.0.0/24").parse().expect("subnet"),
        gateway: Ipv4Addr::new(10, i, 0, 1),
        internal: false,
    });
    let table = RouteTable::new(networks, [(NetworkId(0), NetworkId(5))], true).expect("table");

    let mut frame = Vec::new();
    PacketBuilder::ethernet2(HOST.0, ROUTER.0)
        .ipv4([10, 0, 0, 2], [10, 5, 0, 9], 64)
        .udp(40000, 443)
        .write(&mut frame, &[0xab; 1400])
        .expect("frame");

    let mut neigh = NeighCache::new(NeighConfig::default());
    let t0 = Duration::from_secs(1);
    for i in 0..512u32 {
        let ip = Ipv4Addr::from(0x0a05_0000 + 2 + i);
        neigh.lookup(t0, ip, None);
        let b = i.to_be_bytes();
        let mac = MacAddr::local_from([0, 0x42, b[0], b[1], b[2], b[3]]);
        neigh.learn(t0, ip, mac, LearnKind::Reply);
    }

    let mut g = c.benchmark_group("l3");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    g.bench_function("route_local_of_6", |b| {
        b.iter(|| {
            black_box(table.route(
                black_box(NetworkId(0)),
                black_box(Ipv4Addr::new(10, 5, 0, 9)),
            ))
        })
    });
    g.bench_function("route_external_of_6", |b| {
        b.iter(|| {
            black_box(table.route(
                black_box(NetworkId(3)),
                black_box(Ipv4Addr::new(198, 51, 100, 7)),
            ))
        })
    });
    let mut pkt = frame.clone();
    g.bench_function("decrement_ttl_and_rewrite", |b| {
        b.iter(|| {
            // Restore TTL, protocol and header checksum.
            pkt[22..26].copy_from_slice(&frame[22..26]);
            decrement_ttl(black_box(&mut pkt)).ok();
            rewrite_l2(black_box(&mut pkt), ROUTER, HOST).ok();
        })
    });
    let target = Ipv4Addr::new(10, 5, 0, 100);
    let mut now = Duration::from_secs(2);
    g.bench_function("neigh_hit_of_512", |b| {
        b.iter(|| {
            now += Duration::from_nanos(1);
            black_box(neigh.lookup(now, black_box(target), None))
        })
    });

    let mut out = [0u8; 2048];
    let mut request = Vec::new();
    PacketBuilder::ethernet2(HOST.0, ROUTER.0)
        .ipv4([10, 0, 0, 2], [10, 0, 0, 1], 64)
        .icmpv4_echo_request(1, 1)
        .write(&mut request, &[0x5a; 56])
        .expect("ping");
    g.bench_function("echo_reply_56", |b| {
        b.iter(|| black_box(build_echo_reply(black_box(&request), &mut out)).ok())
    });
    let mut arp = [0u8; 60];
    let who_has = Arp {
        eth_dst: MacAddr::BROADCAST,
        eth_src: HOST,
        op: vswitch::l3::ArpOp::Request,
        sender_mac: HOST,
        sender_ip: Ipv4Addr::new(10, 0, 0, 2),
        target_mac: MacAddr::default(),
        target_ip: Ipv4Addr::new(10, 0, 0, 1),
    };
    who_has.emit(&mut arp).expect("arp");
    g.bench_function("arp_parse_and_reply", |b| {
        b.iter(|| {
            let req = Arp::parse(black_box(&arp)).expect("parse");
            black_box(build_reply(&req, ROUTER, &mut out)).ok()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
