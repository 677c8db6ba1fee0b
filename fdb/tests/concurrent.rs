//! Smoke test of the concurrency story: workers learning, moving and looking up at once
//! while a housekeeping thread expires and flushes. Checks that nothing panics, that the
//! limits hold under racing learners, and that the counts add up once everyone stopped.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use fdb::{Fdb, FdbConfig, Learn, Location, MacAddr, NetworkId, PortId, RefuseReason};

const THREADS: u32 = 4;
const MAX_ENTRIES: usize = 500;
const MAX_PER_LOCATION: usize = 200;

fn mac(n: u32) -> MacAddr {
    let [a, b, c, d] = n.to_be_bytes();
    MacAddr([0x02, 0, a, b, c, d])
}

#[test]
fn racing_learners_keep_the_limits_and_the_counts() {
    let fdb = Fdb::new(FdbConfig {
        aging: Duration::from_millis(50),
        max_entries: MAX_ENTRIES,
        max_per_location: MAX_PER_LOCATION,
    });
    fdb.add_static(NetworkId(0), mac(u32::MAX), Location::Port(PortId(99)));
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let fdb = &fdb;
                s.spawn(move || {
                    let mut x: u32 = 0x9e37_79b9 ^ t;
                    for i in 0..40_000u64 {
                        // xorshift: a cheap spread of MACs, ports and networks.
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        let now = Duration::from_micros(i);
                        let net = NetworkId((x % 2) as u16);
                        let m = mac(x % 2000);
                        let loc = Location::Port(PortId(x >> 29));
                        let pin = fdb.pin();
                        let _ = pin.learn(now, net, m, loc);
                        let _ = pin.lookup(net, mac((x >> 8) % 2000));
                    }
                })
            })
            .collect();
        s.spawn(|| {
            let mut now = Duration::ZERO;
            while !stop.load(Relaxed) {
                now += Duration::from_millis(10);
                let _ = fdb.expire(now);
                let _ = fdb.flush_location(Location::Port(PortId(7)), false);
                let _ = fdb.entries(now);
                std::thread::yield_now();
            }
        });
        for w in workers {
            w.join().expect("worker panicked");
        }
        stop.store(true, Relaxed);
    });

    let c = fdb.counters();
    assert!(c.learned > 0 && c.moved > 0 && c.refused > 0, "{c:?}");
    assert_eq!(c.static_entries, 1);
    let rows = fdb.entries(Duration::ZERO);
    assert_eq!(rows.len(), fdb.len());
    let learned = rows.iter().filter(|r| !r.is_static).count();
    assert!(learned <= MAX_ENTRIES, "{learned} learned entries");
    for port in 0..8 {
        let here = rows
            .iter()
            .filter(|r| !r.is_static && r.location == Location::Port(PortId(port)))
            .count();
        assert!(here <= MAX_PER_LOCATION, "{here} entries at port {port}");
    }
    // Every place taken was given back: once everything learned is flushed, exactly
    // `MAX_ENTRIES` new MACs fit again, at most `MAX_PER_LOCATION` of them per port.
    for port in 0..8 {
        let _ = fdb.flush_location(Location::Port(PortId(port)), false);
    }
    assert_eq!(fdb.len(), 1);
    let mut outcomes = Vec::new();
    for port in 0..3 {
        for i in 0..=MAX_PER_LOCATION as u32 {
            let at = Location::Port(PortId(port));
            outcomes.push(fdb.learn(Duration::ZERO, NetworkId(5), mac(port * 1000 + i), at));
        }
    }
    let count = |want: Learn| outcomes.iter().filter(|l| **l == want).count();
    assert_eq!(count(Learn::Learned), MAX_ENTRIES);
    assert_eq!(count(Learn::Refused(RefuseReason::LocationFull)), 2);
    assert_eq!(
        count(Learn::Refused(RefuseReason::TableFull)),
        3 * (MAX_PER_LOCATION + 1) - MAX_ENTRIES - 2
    );
}
