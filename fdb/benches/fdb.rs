//! Learn and lookup cost at 1 thousand and 1 million entries (`cargo bench -p fdb`).
//!
//! IDs read `<operation>/<path>/<table size>`, e.g. `lookup/hit/1M`. Keys are visited in
//! a scrambled order so that the 1M table is measured out of cache, as the switch sees
//! it with many stations. `learn/new` times inserts into a table of the stated size
//! (chunks of at most 1000 new MACs, removed untimed between chunks).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fdb::{Fdb, FdbConfig, Learn, Location, MacAddr, NetworkId, PortId};

const NET: NetworkId = NetworkId(1);
const PORTS: u64 = 64;
const SIZES: [(usize, &str); 2] = [(1_000, "1k"), (1_000_000, "1M")];
const BATCH: usize = 64;

/// The `i`-th MAC: locally administered, unicast, distinct for every `i` < 2^40.
fn mac(i: u64) -> MacAddr {
    let [_, _, _, a, b, c, d, e] = i.to_be_bytes();
    MacAddr([0x02, a, b, c, d, e])
}

fn port(i: u64) -> Location {
    Location::Port(PortId((i % PORTS) as u32))
}

/// 0..n in a fixed scrambled order (an odd multiplier is a bijection modulo 2^k; skip
/// what falls past n).
fn scrambled(n: u64) -> Vec<u64> {
    let k = n.next_power_of_two();
    (0..k)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) & (k - 1))
        .filter(|&i| i < n)
        .collect()
}

/// A table holding MACs 0..n, spread over the ports, configured for 2n learned entries
/// (the table is sized for its limit, as a deployment would configure it).
fn filled(n: usize) -> Fdb {
    let fdb = Fdb::new(FdbConfig {
        max_entries: 2 * n,
        max_per_location: usize::MAX,
        ..FdbConfig::default()
    });
    for i in 0..n as u64 {
        let _ = fdb.learn(Duration::ZERO, NET, mac(i), port(i));
    }
    fdb
}

fn benches(c: &mut Criterion) {
    for (size, label) in SIZES {
        let fdb = filled(size);
        let order = scrambled(size as u64);
        let now = Duration::from_secs(1);
        let at = |n: usize| order[n % order.len()];

        let mut g = c.benchmark_group("lookup");
        let mut n = 0;
        g.bench_function(BenchmarkId::new("hit", label), |b| {
            b.iter(|| {
                n += 1;
                black_box(fdb.lookup(NET, mac(black_box(at(n)))))
            })
        });
        g.bench_function(BenchmarkId::new("miss", label), |b| {
            b.iter(|| {
                n += 1;
                black_box(fdb.lookup(NET, mac(black_box(at(n) + (1 << 32)))))
            })
        });
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function(BenchmarkId::new("hit_pinned_batch64", label), |b| {
            b.iter(|| {
                let pin = fdb.pin();
                for _ in 0..BATCH {
                    n += 1;
                    black_box(pin.lookup(NET, mac(black_box(at(n)))));
                }
            })
        });
        g.finish();

        let mut g = c.benchmark_group("learn");
        // A later `now` every time: each refresh stores (the costlier case; a second frame
        // from the same MAC in the same batch only loads).
        g.bench_function(BenchmarkId::new("refresh", label), |b| {
            b.iter(|| {
                n += 1;
                let i = at(n);
                let now = now + Duration::from_nanos(n as u64);
                black_box(fdb.learn(now, NET, mac(black_box(i)), port(i)))
            })
        });
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function(BenchmarkId::new("refresh_pinned_batch64", label), |b| {
            b.iter(|| {
                let pin = fdb.pin();
                let now = now + Duration::from_nanos(n as u64);
                for _ in 0..BATCH {
                    n += 1;
                    let i = at(n);
                    black_box(pin.learn(now, NET, mac(black_box(i)), port(i)));
                }
            })
        });
        g.throughput(Throughput::Elements(1));
        let mut fresh = 1u64 << 33;
        g.bench_function(BenchmarkId::new("new", label), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let chunk = left.min(1000);
                    let first = fresh;
                    let start = Instant::now();
                    for i in first..first + chunk {
                        let learnt = fdb.learn(now, NET, mac(i), port(i));
                        debug_assert_eq!(learnt, Learn::Learned);
                        black_box(learnt);
                    }
                    spent += start.elapsed();
                    for i in first..first + chunk {
                        fdb.remove(NET, mac(i));
                    }
                    fresh += chunk;
                    left -= chunk;
                }
                spent
            })
        });
        // Pass p over the keys moves each MAC from port i + p to port i + p + 1.
        let mut m = 0;
        g.bench_function(BenchmarkId::new("move", label), |b| {
            b.iter(|| {
                let i = at(m);
                let pass = (m / order.len()) as u64;
                m += 1;
                black_box(fdb.learn(now, NET, mac(i), port(i + pass + 1)))
            })
        });
        g.finish();

        let mut g = c.benchmark_group("expire");
        g.sample_size(10);
        g.bench_function(BenchmarkId::new("sweep_nothing_due", label), |b| {
            b.iter(|| black_box(fdb.expire(now)))
        });
        g.finish();
    }
}

criterion_group!(fdb_benches, benches);
criterion_main!(fdb_benches);
