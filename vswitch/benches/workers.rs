//! The switching decision from 1, 2 and 4 threads at once over shared tables: one FDB
//! (`Arc<Fdb>`) and one topology snapshot published through `arc-swap`, as the daemon's
//! workers share them. Each thread, like a worker, loads the snapshot once per batch,
//! begins a batch and decides 64 frames (FDB hits, between hosts of its own ports, so
//! the threads contend only where the design makes them: the shared maps and the
//! snapshot's reference count).
//!
//! Throughput is per thread: one iteration is one batch on every thread at the same
//! time, timed from a common start until the last thread is done, and reported as
//! 64 elements. Total frames/s = per-thread frames/s x threads. With more threads than
//! cores (4 on a 2-core machine) the per-thread figure falls by the oversubscription.

mod fixtures;

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use arc_swap::ArcSwap;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fixtures::*;
use vswitch::datapath::pipeline::{FrameMeta, Ingress, Pipeline, Verdict};

const BATCH: usize = 64;
const MAX_THREADS: usize = 4;
/// Ports per thread: hosts of thread t sit behind ports 2t+1 and 2t+2.
const PORTS_PER_THREAD: u32 = 2;

/// Thread `t`'s batch: its hosts talking to each other across its two ports.
fn frames_of(t: usize) -> Vec<(Ingress, Vec<u8>)> {
    let first = t * HOSTS / MAX_THREADS;
    let hosts = HOSTS / MAX_THREADS;
    (0..BATCH)
        .map(|i| {
            let k = first + i % hosts;
            let peer = first + (i + 1) % hosts;
            let frame = udp_frame(host_mac(BRIDGE, peer), host_mac(BRIDGE, k), 1514);
            (Ingress::Port(port_of(k)), frame)
        })
        .collect()
}

fn port_of(k: usize) -> fdb::PortId {
    let hosts = HOSTS / MAX_THREADS;
    let t = k / hosts;
    fdb::PortId(1 + t as u32 * PORTS_PER_THREAD + (k % 2) as u32)
}

fn workers(c: &mut Criterion) {
    let topo = Arc::new(ArcSwap::from_pointee(topology(
        PORTS_PER_THREAD * MAX_THREADS as u32,
        0,
    )));
    let fdb = learned_fdb(4000);
    for k in 0..HOSTS {
        // move each host to its thread's port (the fixture's layout is per port, not thread)
        fdb.learn(
            NOW,
            BRIDGE,
            host_mac(BRIDGE, k),
            fdb::Location::Port(port_of(k)),
        );
    }
    let pipeline = Pipeline::new(fdb);
    let frames: Vec<_> = (0..MAX_THREADS).map(frames_of).collect();
    for f in &frames {
        let snap = topo.load_full();
        let b = pipeline.begin(NOW, &snap);
        for (ingress, frame) in f {
            let v = pipeline.process(&b, *ingress, frame, FrameMeta { gso: false });
            assert!(matches!(v, Verdict::Forward(_)), "unexpected verdict {v:?}");
        }
    }

    let mut g = c.benchmark_group("workers");
    g.throughput(Throughput::Elements(BATCH as u64));
    for threads in [1usize, 2, 4] {
        g.bench_function(BenchmarkId::new("threads", threads), |b| {
            b.iter_custom(|iters| {
                // The clock runs from the moment every thread is ready (this thread is the
                // barrier's last party) until the last one is joined: a thread that waits
                // for a core is counted as waiting, not as fast.
                let start = Barrier::new(threads + 1);
                std::thread::scope(|s| {
                    let handles: Vec<_> = frames[..threads]
                        .iter()
                        .map(|mine| {
                            let (start, topo, pipeline) = (&start, &topo, &pipeline);
                            s.spawn(move || {
                                start.wait();
                                for _ in 0..iters {
                                    let snap = topo.load_full();
                                    let batch = pipeline.begin(NOW, &snap);
                                    for (ingress, f) in mine {
                                        black_box(pipeline.process(
                                            &batch,
                                            *ingress,
                                            black_box(f),
                                            FrameMeta { gso: false },
                                        ));
                                    }
                                }
                            })
                        })
                        .collect();
                    start.wait();
                    let t0 = Instant::now();
                    for h in handles {
                        h.join().expect("bench thread");
                    }
                    t0.elapsed()
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, workers);
criterion_main!(benches);
