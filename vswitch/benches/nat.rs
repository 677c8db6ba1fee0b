//! NAT cost per packet on an existing flow: masquerade out (`outbound`) and the reply
//! in (`inbound`), for a full-size TCP segment with a complete checksum and with a
//! partial one. Only the headers are restored between iterations, so the numbers are
//! the engine's (parse, lock-free lookup, refresh, incremental checksum update).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use etherparse::PacketBuilder;
use vswitch::nat::{ChecksumState, Nat, NatConfig};

const EXT: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const R: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const HEADERS: usize = 40;

fn segment(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
        .tcp(sport, dport, 1, 65535)
        .ack(1)
        .write(&mut v, &[0xab; 1400])
        .expect("build");
    v
}

fn bench(c: &mut Criterion) {
    let nat = Nat::new(NatConfig {
        external: EXT,
        ..NatConfig::default()
    })
    .expect("config");
    // A few thousand other flows, so the lookup is not in a one-entry table.
    let t0 = Duration::ZERO;
    for i in 0..4096u32 {
        let host = Ipv4Addr::from(u32::from(A) + 1 + i);
        let mut p = segment(host, 40000, R, 443);
        nat.outbound(t0, &mut p, ChecksumState::Complete)
            .expect("flow");
    }
    let template = segment(A, 40000, R, 443);
    let mut p = template.clone();
    nat.outbound(t0, &mut p, ChecksumState::Complete)
        .expect("flow");
    let port = u16::from_be_bytes([p[20], p[21]]);
    let reply_template = segment(R, 443, EXT, port);

    let mut g = c.benchmark_group("nat");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for (name, csum) in [
        ("complete", ChecksumState::Complete),
        ("partial", ChecksumState::Partial),
    ] {
        let mut pkt = template.clone();
        let mut now = Duration::from_secs(1);
        g.bench_function(format!("outbound_existing_{name}"), |b| {
            b.iter(|| {
                pkt[..HEADERS].copy_from_slice(&template[..HEADERS]);
                now += Duration::from_micros(1);
                black_box(nat.outbound(now, black_box(&mut pkt), csum)).ok();
            })
        });
        let mut pkt = reply_template.clone();
        g.bench_function(format!("inbound_existing_{name}"), |b| {
            b.iter(|| {
                pkt[..HEADERS].copy_from_slice(&reply_template[..HEADERS]);
                now += Duration::from_micros(1);
                black_box(nat.inbound(now, black_box(&mut pkt), csum)).ok();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
