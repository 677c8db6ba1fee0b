//! Offload micro-benches: GSO split of a 64 KiB TCP super-frame into VXLAN-ready
//! segments, GRO coalesce of those segments back, and checksum completion of a 64 KiB
//! frame (the raw checksum speed). Throughput is in segments, so criterion prints both
//! the time per super-frame and segments per second.

mod fixtures;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fixtures::{SEGS, super_frame};
use vswitch::datapath::offload::{
    Coalescer, GsoType, SegmentSpec, VnetHdr, complete_checksum, split,
};

fn bench(c: &mut Criterion) {
    let (frame, hdr) = super_frame();
    let vxlan = SegmentSpec {
        prefix: 8,
        max_frame: 1514,
    };
    let mut out = vec![0u8; 80_000];

    let mut g = c.benchmark_group("offload");
    g.throughput(Throughput::Elements(SEGS as u64));
    g.bench_function("split_v4_64k_into_44", |b| {
        b.iter(|| split(black_box(&frame), black_box(&hdr), vxlan, &mut out).expect("split"))
    });

    let plain = SegmentSpec {
        prefix: 0,
        max_frame: 1514,
    };
    let lay = split(&frame, &hdr, plain, &mut out).expect("split");
    assert_eq!(lay.count, SEGS);
    let segs: Vec<Vec<u8>> = (0..lay.count).map(|i| out[lay.frame(i)].to_vec()).collect();
    let mut co = Coalescer::new(8, 8);
    g.bench_function("coalesce_44_into_1", |b| {
        b.iter(|| {
            for s in &segs {
                let _ = black_box(co.push(black_box(s)));
            }
            let mut n = 0;
            while let Some(i) = co.flush() {
                n += i + 1;
            }
            assert_eq!(n, 1, "one super-frame in slot 0");
        })
    });

    let mut whole = frame.clone();
    let flat = VnetHdr {
        gso_type: GsoType::None,
        gso_size: 0,
        ..hdr
    };
    g.throughput(Throughput::Bytes(frame.len() as u64));
    g.bench_function("complete_checksum_64k", |b| {
        b.iter(|| complete_checksum(black_box(&mut whole), black_box(&flat)).expect("bounds"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
