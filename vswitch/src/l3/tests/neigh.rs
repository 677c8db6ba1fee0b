//! The neighbour cache: resolution with its queue and retries, failure, aging from
//! REACHABLE to STALE to gone, the re-check of a STALE entry in use, what each kind of
//! ARP may teach, the limits, and a random-operations test of its bookkeeping.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::l3::neigh::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn cache() -> NeighCache {
    NeighCache::new(NeighConfig::default())
}

fn frame(tag: u8) -> Vec<u8> {
    vec![tag; 100]
}

fn wait(f: &[u8]) -> Option<Waiting<'_>> {
    Some(Waiting {
        vnet: [f[0]; 10],
        frame: f,
    })
}

fn state(c: &NeighCache, now: Duration, ip: Ipv4Addr) -> Option<NeighState> {
    c.entries(now).iter().find(|e| e.ip == ip).map(|e| e.state)
}

#[test]
fn miss_queues_three_frames_then_a_reply_releases_them_in_order() {
    let mut c = NeighCache::new(NeighConfig {
        queue_per_address: 3,
        ..NeighConfig::default()
    });
    let t0 = secs(10);
    let (f1, f2, f3, f4) = (frame(1), frame(2), frame(3), frame(4));
    assert_eq!(
        c.lookup(t0, A, wait(&f1)),
        Lookup::Miss {
            send_request: true,
            queued: true
        }
    );
    assert_eq!(
        c.lookup(t0 + ms(1), A, wait(&f2)),
        Lookup::Miss {
            send_request: false,
            queued: true
        }
    );
    assert_eq!(
        c.lookup(t0 + ms(2), A, wait(&f3)),
        Lookup::Miss {
            send_request: false,
            queued: true
        }
    );
    assert_eq!(
        c.lookup(t0 + ms(3), A, wait(&f4)),
        Lookup::Miss {
            send_request: false,
            queued: false
        }
    );
    assert_eq!(
        c.lookup(t0 + ms(4), A, None),
        Lookup::Miss {
            send_request: false,
            queued: false
        }
    );
    let n = c.counters();
    assert_eq!(
        (n.misses, n.queued, n.queue_drops, n.requests_sent),
        (5, 3, 1, 1)
    );
    assert_eq!(c.queued(), (3, 3 * 110));
    assert_eq!(state(&c, t0, A), Some(NeighState::Incomplete));

    let released = c.learn(t0 + ms(50), A, A_MAC, LearnKind::Reply);
    let got: Vec<_> = released
        .iter()
        .map(|q| (q.frame[0], q.vnet[0], q.queued_at))
        .collect();
    assert_eq!(
        got,
        vec![(1, 1, t0), (2, 2, t0 + ms(1)), (3, 3, t0 + ms(2))]
    );
    assert_eq!(c.queued(), (0, 0));
    assert_eq!(c.counters().released, 3);
    assert_eq!(c.lookup(t0 + ms(60), A, wait(&f4)), Lookup::Hit(A_MAC));
    assert_eq!(c.counters().hits, 1);
    assert_eq!(state(&c, t0 + ms(60), A), Some(NeighState::Reachable));
    // Nothing more to do: the first request went with the miss.
    assert_eq!(c.tick(t0 + ms(100)), Tick::default());
}

#[test]
fn retries_every_second_then_fails_then_expires() {
    let mut c = cache();
    let f = frame(7);
    assert!(matches!(
        c.lookup(secs(0), A, wait(&f)),
        Lookup::Miss {
            send_request: true,
            ..
        }
    ));
    assert_eq!(c.tick(ms(999)), Tick::default());
    let broadcast = ArpRequest {
        target: A,
        dst: MacAddr::BROADCAST,
    };
    assert_eq!(c.tick(secs(1)).requests, vec![broadcast]);
    assert_eq!(c.tick(ms(1500)), Tick::default());
    assert_eq!(c.tick(secs(2)).requests, vec![broadcast]);
    assert_eq!(c.counters().requests_sent, 3);

    // No answer to the third request: FAILED, and the waiting frame comes back.
    let t = c.tick(secs(3));
    assert!(t.requests.is_empty());
    assert_eq!(t.unresolved.len(), 1);
    assert_eq!(
        (t.unresolved[0].0, t.unresolved[0].1.frame.clone()),
        (A, f.clone())
    );
    assert_eq!(state(&c, secs(3), A), Some(NeighState::Failed));
    assert_eq!(c.queued(), (0, 0));
    let n = c.counters();
    assert_eq!((n.failed, n.unresolved), (1, 1));

    // While FAILED, lookups fail at once and nothing is queued or asked.
    assert_eq!(c.lookup(secs(4), A, wait(&f)), Lookup::Failed);
    assert_eq!(c.counters().failed_lookups, 1);
    assert_eq!(c.queued(), (0, 0));

    // failed_time (5 s) later the entry is gone and a new resolution may start.
    assert_eq!(c.tick(secs(7)), Tick::default());
    assert_eq!(c.len(), 1);
    assert_eq!(c.tick(secs(8)), Tick::default());
    assert!(c.is_empty());
    assert_eq!(
        c.lookup(secs(9), A, None),
        Lookup::Miss {
            send_request: true,
            queued: false
        }
    );
}

#[test]
fn a_failed_entry_past_its_time_restarts_on_lookup_without_a_tick() {
    let mut c = cache();
    c.lookup(secs(0), A, None);
    for s in 1..=3 {
        c.tick(secs(s));
    }
    assert_eq!(c.lookup(secs(7), A, None), Lookup::Failed);
    assert_eq!(
        c.lookup(secs(8), A, None),
        Lookup::Miss {
            send_request: true,
            queued: false
        }
    );
    assert_eq!(c.tick(secs(9)).requests.len(), 1);
}

#[test]
fn reachable_turns_stale_still_usable_then_goes_when_unused() {
    let mut c = cache();
    c.lookup(secs(0), A, None);
    c.learn(secs(0), A, A_MAC, LearnKind::Reply);
    assert_eq!(state(&c, secs(29), A), Some(NeighState::Reachable));
    assert!(c.tick(secs(29)).requests.is_empty());
    assert_eq!(state(&c, secs(30), A), Some(NeighState::Stale));
    c.tick(secs(30));
    let e = c.entries(secs(31))[0];
    assert_eq!(
        (e.state, e.mac, e.learned_ago),
        (NeighState::Stale, Some(A_MAC), Some(secs(31)))
    );
    // Unused for gc_stale_time (60 s since the last use at 0 s): removed.
    c.tick(secs(59));
    assert_eq!(c.len(), 1);
    c.tick(secs(60));
    assert!(c.is_empty());
}

#[test]
fn a_stale_entry_in_use_is_still_a_hit_and_gets_rechecked() {
    let mut c = cache();
    c.lookup(secs(0), A, None);
    c.learn(secs(0), A, A_MAC, LearnKind::Reply);
    // Past the reachable time, without a tick: still a hit, and now under re-check.
    assert_eq!(c.lookup(secs(40), A, None), Lookup::Hit(A_MAC));
    assert_eq!(state(&c, secs(40), A), Some(NeighState::Delay));
    assert!(c.tick(secs(44)).requests.is_empty());
    // delay_first_probe (5 s) later: unicast probes to the cached MAC.
    let probe = ArpRequest {
        target: A,
        dst: A_MAC,
    };
    assert_eq!(c.tick(secs(45)).requests, vec![probe]);
    assert_eq!(state(&c, secs(45), A), Some(NeighState::Probe));
    assert_eq!(c.lookup(secs(45), A, None), Lookup::Hit(A_MAC));
    assert_eq!(c.tick(secs(46)).requests, vec![probe]);
    // An answer confirms it.
    c.learn(secs(46) + ms(10), A, A_MAC, LearnKind::Reply);
    assert_eq!(state(&c, secs(47), A), Some(NeighState::Reachable));
    assert!(c.tick(secs(47)).requests.is_empty());
}

#[test]
fn an_unanswered_recheck_fails() {
    let mut c = cache();
    c.lookup(secs(0), A, None);
    c.learn(secs(0), A, A_MAC, LearnKind::Reply);
    c.lookup(secs(30), A, None);
    let mut probes = 0;
    for s in 31..=40 {
        probes += c.tick(secs(s)).requests.len();
    }
    assert_eq!(probes, 3);
    assert_eq!(c.counters().failed, 1);
    assert_eq!(c.lookup(secs(40), A, None), Lookup::Failed);
}

#[test]
fn learns_from_a_request_for_our_address() {
    let mut c = cache();
    assert!(c.learn(secs(1), A, A_MAC, LearnKind::Request).is_empty());
    assert_eq!(state(&c, secs(1), A), Some(NeighState::Stale));
    assert_eq!(c.lookup(secs(2), A, None), Lookup::Hit(A_MAC));
    // A request answers a pending resolution too.
    let f = frame(9);
    c.lookup(secs(2), B, wait(&f));
    let released = c.learn(secs(2), B, B_MAC, LearnKind::Request);
    assert_eq!(released.len(), 1);
    assert_eq!(state(&c, secs(2), B), Some(NeighState::Stale));
    // A request with the same MAC does not undo a confirmation...
    c.learn(secs(3), B, B_MAC, LearnKind::Reply);
    c.learn(secs(4), B, B_MAC, LearnKind::Request);
    assert_eq!(state(&c, secs(4), B), Some(NeighState::Reachable));
    // ...a new MAC does (the host changed).
    let moved = MacAddr([2, 0, 0, 0, 0, 9]);
    c.learn(secs(5), B, moved, LearnKind::Request);
    assert_eq!(state(&c, secs(5), B), Some(NeighState::Stale));
    assert_eq!(c.lookup(secs(5), B, None), Lookup::Hit(moved));
}

#[test]
fn unsolicited_replies_and_gratuitous_arp_only_update() {
    let mut c = cache();
    assert!(c.learn(secs(1), A, A_MAC, LearnKind::Reply).is_empty());
    assert!(c.learn(secs(1), B, B_MAC, LearnKind::Gratuitous).is_empty());
    assert!(c.is_empty());

    c.learn(secs(1), A, A_MAC, LearnKind::Request);
    let moved = MacAddr([2, 0, 0, 0, 0, 9]);
    c.learn(secs(2), A, moved, LearnKind::Gratuitous);
    assert_eq!(c.lookup(secs(2), A, None), Lookup::Hit(moved));
}

#[test]
fn the_first_answer_wins_for_a_second() {
    let mut c = cache();
    c.lookup(secs(0), A, None);
    c.learn(secs(0), A, A_MAC, LearnKind::Reply);
    let other = MacAddr([2, 0, 0, 0, 0, 9]);
    c.learn(ms(500), A, other, LearnKind::Reply);
    assert_eq!(c.lookup(ms(600), A, None), Lookup::Hit(A_MAC));
    c.learn(ms(1000), A, other, LearnKind::Reply);
    assert_eq!(c.lookup(ms(1100), A, None), Lookup::Hit(other));
    // A gratuitous ARP is not held back.
    c.learn(ms(1200), A, A_MAC, LearnKind::Gratuitous);
    assert_eq!(c.lookup(ms(1300), A, None), Lookup::Hit(A_MAC));
}

#[test]
fn bad_bindings_are_ignored() {
    let mut c = cache();
    c.learn(secs(0), A, MacAddr::BROADCAST, LearnKind::Request);
    c.learn(secs(0), A, MacAddr::default(), LearnKind::Request);
    c.learn(secs(0), Ipv4Addr::BROADCAST, A_MAC, LearnKind::Request);
    c.learn(secs(0), Ipv4Addr::UNSPECIFIED, A_MAC, LearnKind::Request);
    assert!(c.is_empty());
}

#[test]
fn global_queue_limits_hold() {
    let mut c = NeighCache::new(NeighConfig {
        queue_total_frames: 4,
        queue_total_bytes: 1000,
        ..NeighConfig::default()
    });
    let f = frame(1);
    for i in 0..3u8 {
        let ip = Ipv4Addr::new(10, 0, 0, 10 + i);
        assert!(matches!(
            c.lookup(secs(0), ip, wait(&f)),
            Lookup::Miss { queued: true, .. }
        ));
    }
    let big = vec![2u8; 700];
    assert!(
        matches!(
            c.lookup(secs(0), A, wait(&big)),
            Lookup::Miss { queued: false, .. }
        ),
        "bytes"
    );
    assert!(matches!(
        c.lookup(secs(0), A, wait(&f)),
        Lookup::Miss { queued: true, .. }
    ));
    assert!(
        matches!(
            c.lookup(secs(0), B, wait(&f)),
            Lookup::Miss { queued: false, .. }
        ),
        "frames"
    );
    assert_eq!(c.queued(), (4, 440));
    assert_eq!(c.counters().queue_drops, 2);
    c.remove(A);
    assert_eq!(c.queued(), (3, 330));
    c.clear();
    assert_eq!((c.queued(), c.len()), ((0, 0), 0));
}

#[test]
fn a_full_table_evicts_failed_then_stale_then_refuses() {
    let mut c = NeighCache::new(NeighConfig {
        max_entries: 2,
        ..NeighConfig::default()
    });
    c.learn(secs(0), A, A_MAC, LearnKind::Request); // STALE
    c.lookup(secs(0), B, None); // INCOMPLETE
    // Full: the STALE one goes.
    assert!(matches!(
        c.lookup(secs(1), R, None),
        Lookup::Miss {
            send_request: true,
            ..
        }
    ));
    assert_eq!(state(&c, secs(1), A), None);
    // Full of resolutions in progress: refused.
    let f = frame(1);
    assert_eq!(
        c.lookup(secs(1), A, wait(&f)),
        Lookup::Miss {
            send_request: false,
            queued: false
        }
    );
    assert_eq!(c.counters().table_full, 1);
    assert_eq!(c.counters().queue_drops, 1);
    // B fails; a FAILED entry is evicted first.
    for s in 1..=3 {
        c.tick(secs(s));
    }
    assert_eq!(state(&c, secs(3), B), Some(NeighState::Failed));
    c.learn(secs(3), A, A_MAC, LearnKind::Request);
    assert_eq!(state(&c, secs(3), B), None);
    assert_eq!(state(&c, secs(3), A), Some(NeighState::Stale));
}

#[test]
fn entries_are_sorted_and_complete() {
    let mut c = cache();
    let f = frame(1);
    c.lookup(secs(0), B, wait(&f));
    c.learn(secs(1), A, A_MAC, LearnKind::Request);
    let e = c.entries(secs(3));
    assert_eq!(e.len(), 2);
    assert_eq!(
        e[0],
        NeighEntry {
            ip: A,
            mac: Some(A_MAC),
            state: NeighState::Stale,
            queued: 0,
            idle: secs(2),
            learned_ago: Some(secs(2)),
        }
    );
    assert_eq!(
        (e[1].ip, e[1].mac, e[1].state, e[1].queued),
        (B, None, NeighState::Incomplete, 1)
    );
    assert_eq!(e[1].state.name(), "incomplete");
}

#[test]
fn counters_merge() {
    let mut a = NeighCounters {
        hits: 1,
        table_full: 2,
        ..NeighCounters::default()
    };
    a.merge(&NeighCounters {
        hits: 3,
        failed: 1,
        ..NeighCounters::default()
    });
    assert_eq!((a.hits, a.failed, a.table_full), (4, 1, 2));
}

#[derive(Clone, Debug)]
enum Op {
    Lookup(u8, Option<u16>),
    Learn(u8, u8, u8),
    Tick,
    Remove(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..6, proptest::option::of(0u16..400)).prop_map(|(i, l)| Op::Lookup(i, l)),
        2 => (0u8..6, 0u8..3, 0u8..3).prop_map(|(i, m, k)| Op::Learn(i, m, k)),
        3 => Just(Op::Tick),
        1 => (0u8..6).prop_map(Op::Remove),
    ]
}

proptest! {
    /// Under random operations at random times, the global queue accounting always
    /// equals what the entries hold, the limits hold, and every frame queued is
    /// either still queued, released, handed back as unresolved or dropped by a flush.
    #[test]
    fn bookkeeping_holds(ops in proptest::collection::vec((op(), 0u64..1500), 1..200)) {
        let cfg = NeighConfig {
            max_entries: 4,
            queue_total_frames: 5,
            queue_total_bytes: 1200,
            ..NeighConfig::default()
        };
        let mut c = NeighCache::new(cfg);
        let mut now = Duration::ZERO;
        let (mut out, mut flushed) = (0u64, 0u64);
        for (op, step) in ops {
            now += ms(step);
            match op {
                Op::Lookup(i, len) => {
                    let f = vec![i; usize::from(len.unwrap_or(0))];
                    let w = len.map(|_| Waiting { vnet: [0; 10], frame: &f });
                    c.lookup(now, Ipv4Addr::new(10, 0, 0, 10 + i), w);
                }
                Op::Learn(i, m, k) => {
                    let kinds = [LearnKind::Reply, LearnKind::Request, LearnKind::Gratuitous];
                    let ip = Ipv4Addr::new(10, 0, 0, 10 + i);
                    let mac = MacAddr([2, 0, 0, 0, 0, m]);
                    out += c.learn(now, ip, mac, kinds[usize::from(k)]).len() as u64;
                }
                Op::Tick => out += c.tick(now).unresolved.len() as u64,
                Op::Remove(i) => {
                    let ip = Ipv4Addr::new(10, 0, 0, 10 + i);
                    let entry = c.entries(now).into_iter().find(|e| e.ip == ip);
                    flushed += entry.map_or(0, |e| e.queued as u64);
                    c.remove(ip);
                }
            }
            let entries = c.entries(now);
            let held: usize = entries.iter().map(|e| e.queued).sum();
            prop_assert_eq!(c.queued().0, held);
            prop_assert!(c.queued().0 <= cfg.queue_total_frames);
            prop_assert!(c.queued().1 <= cfg.queue_total_bytes);
            prop_assert!(c.len() <= cfg.max_entries);
            prop_assert!(entries.iter().all(|e| e.queued <= cfg.queue_per_address));
            let only_incomplete_hold_frames =
                entries.iter().all(|e| e.queued == 0 || e.state == NeighState::Incomplete);
            prop_assert!(only_incomplete_hold_frames);
            let n = c.counters();
            prop_assert_eq!(n.queued, held as u64 + out + flushed);
        }
    }
}

#[test]
fn permanent_entries_are_neither_aged_nor_changed_nor_evicted() {
    let mut c = NeighCache::new(NeighConfig {
        max_entries: 2,
        ..NeighConfig::default()
    });
    let f = frame(5);
    c.lookup(secs(0), A, wait(&f));
    let released = c.insert_permanent(secs(1), A, A_MAC);
    assert_eq!(released.len(), 1, "frames waiting for it go now");
    assert_eq!(c.queued(), (0, 0));
    c.learn(secs(2), A, B_MAC, LearnKind::Gratuitous);
    c.learn(secs(2), A, B_MAC, LearnKind::Reply);
    for s in [100, 1000, 10_000] {
        assert!(c.tick(secs(s)).requests.is_empty());
        assert_eq!(c.lookup(secs(s), A, None), Lookup::Hit(A_MAC));
    }
    assert_eq!(state(&c, secs(10_000), A), Some(NeighState::Permanent));
    // Never the eviction victim; always accepted.
    c.learn(secs(10_000), B, B_MAC, LearnKind::Request);
    c.learn(secs(10_001), R, B_MAC, LearnKind::Request);
    assert_eq!(state(&c, secs(10_001), A), Some(NeighState::Permanent));
    c.insert_permanent(secs(10_002), GW, ROUTER_MAC);
    assert_eq!(c.len(), 2);
    c.insert_permanent(secs(10_003), B, B_MAC);
    assert_eq!(c.len(), 3, "over max_entries when nothing can be evicted");
    c.remove(A);
    assert_eq!(
        c.lookup(secs(10_004), A, None),
        Lookup::Miss {
            send_request: false,
            queued: false
        },
        "full of permanent entries"
    );
    c.remove(B);
    assert_eq!(
        c.lookup(secs(10_004), A, None),
        Lookup::Miss {
            send_request: true,
            queued: false
        }
    );
}

#[test]
fn peek_says_what_lookup_would_and_changes_nothing() {
    let mut c = cache();
    assert_eq!(
        c.peek(secs(1), A),
        Lookup::Miss {
            send_request: true,
            queued: false
        }
    );
    assert!(c.is_empty(), "peek started a resolution");
    assert_eq!(c.counters().misses, 0, "peek was counted");
    // Resolving: another lookup would not ask again.
    let f = frame(1);
    assert!(matches!(
        c.lookup(secs(1), A, wait(&f)),
        Lookup::Miss {
            send_request: true,
            ..
        }
    ));
    assert_eq!(
        c.peek(secs(1), A),
        Lookup::Miss {
            send_request: false,
            queued: false
        }
    );
    assert_eq!(c.queued(), (1, f.len() + crate::packet::VNET_HDR_LEN));
    c.learn(secs(2), A, A_MAC, LearnKind::Reply);
    assert_eq!(c.peek(secs(2), A), Lookup::Hit(A_MAC));
}
