//! Unit tests of each behaviour the crate doc promises, one promise per test.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::*;

const NET: NetworkId = NetworkId(1);
const P1: Location = Location::Port(PortId(1));
const P2: Location = Location::Port(PortId(2));
const P3: Location = Location::Port(PortId(3));
const VTEP: Location = Location::Vtep(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));

fn mac(n: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, n])
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn limited(max_entries: usize, max_per_location: usize) -> Fdb {
    Fdb::new(FdbConfig {
        max_entries,
        max_per_location,
        ..FdbConfig::default()
    })
}

#[test]
fn learns_then_refreshes_then_looks_up() {
    let fdb = Fdb::default();
    assert_eq!(fdb.lookup(NET, mac(1)), None);
    assert_eq!(fdb.learn(secs(1), NET, mac(1), P1), Learn::Learned);
    assert_eq!(fdb.learn(secs(5), NET, mac(1), P1), Learn::Refreshed);
    assert_eq!(fdb.lookup(NET, mac(1)), Some(P1));
    assert_eq!(
        fdb.entries(secs(7))[0].age,
        secs(2),
        "refresh updated last-seen"
    );
    assert_eq!(fdb.len(), 1);
    assert_eq!(fdb.counters().learned, 1);
}

#[test]
fn networks_are_separate() {
    let fdb = Fdb::default();
    let _ = fdb.learn(secs(0), NetworkId(1), mac(1), P1);
    let _ = fdb.learn(secs(0), NetworkId(2), mac(1), VTEP);
    assert_eq!(fdb.lookup(NetworkId(1), mac(1)), Some(P1));
    assert_eq!(fdb.lookup(NetworkId(2), mac(1)), Some(VTEP));
    assert_eq!(fdb.lookup(NetworkId(3), mac(1)), None);
    assert_eq!(fdb.len(), 2);
}

#[test]
fn a_mac_seen_elsewhere_moves_at_once_and_is_counted() {
    let fdb = Fdb::default();
    let _ = fdb.learn(secs(0), NET, mac(1), P1);
    assert_eq!(
        fdb.learn(secs(1), NET, mac(1), VTEP),
        Learn::Moved { from: P1 }
    );
    assert_eq!(fdb.lookup(NET, mac(1)), Some(VTEP));
    let c = fdb.counters();
    assert_eq!((c.learned, c.moved, c.entries), (1, 1, 1));
    assert_eq!(
        fdb.entries(secs(1))[0].age,
        Duration::ZERO,
        "a move sets last-seen"
    );
}

#[test]
fn static_entries_win_over_learning() {
    let fdb = Fdb::default();
    fdb.add_static(NET, mac(1), P1);
    assert_eq!(fdb.learn(secs(0), NET, mac(1), P2), Learn::Static);
    assert_eq!(fdb.learn(secs(0), NET, mac(1), P1), Learn::Static);
    assert_eq!(fdb.lookup(NET, mac(1)), Some(P1));
    let c = fdb.counters();
    assert_eq!(
        (c.entries, c.static_entries, c.learned, c.moved),
        (1, 1, 0, 0)
    );
}

#[test]
fn add_static_replaces_a_learned_entry_and_frees_its_place() {
    let fdb = limited(1, 1);
    let _ = fdb.learn(secs(0), NET, mac(1), P1);
    fdb.add_static(NET, mac(1), P2);
    assert_eq!(fdb.lookup(NET, mac(1)), Some(P2));
    assert_eq!(fdb.counters().static_entries, 1);
    // The learned place it held is free again, in the table and at P1.
    assert_eq!(fdb.learn(secs(0), NET, mac(2), P1), Learn::Learned);
    // Re-adding a static entry moves it and keeps one static entry.
    fdb.add_static(NET, mac(1), P3);
    assert_eq!(fdb.lookup(NET, mac(1)), Some(P3));
    assert_eq!(fdb.counters().static_entries, 1);
    assert_eq!(fdb.len(), 2);
}

#[test]
fn static_entries_do_not_count_against_the_limits() {
    let fdb = limited(1, 1);
    for n in 0..10 {
        fdb.add_static(NET, mac(n), P1);
    }
    assert_eq!(fdb.learn(secs(0), NET, mac(100), P1), Learn::Learned);
    assert_eq!(fdb.len(), 11);
}

#[test]
fn a_full_table_refuses_new_macs_but_keeps_refreshing_known_ones() {
    let fdb = limited(2, 10);
    let _ = fdb.learn(secs(0), NET, mac(1), P1);
    let _ = fdb.learn(secs(0), NET, mac(2), P2);
    assert_eq!(
        fdb.learn(secs(1), NET, mac(3), P3),
        Learn::Refused(RefuseReason::TableFull)
    );
    assert_eq!(fdb.lookup(NET, mac(3)), None);
    assert_eq!(fdb.learn(secs(1), NET, mac(1), P1), Learn::Refreshed);
    // A move does not change the total, so it is allowed in a full table.
    assert_eq!(
        fdb.learn(secs(1), NET, mac(1), P3),
        Learn::Moved { from: P1 }
    );
    assert_eq!(fdb.counters().refused, 1);
    // Room again after a removal.
    assert!(fdb.remove(NET, mac(2)));
    assert_eq!(fdb.learn(secs(2), NET, mac(3), P3), Learn::Learned);
}

#[test]
fn a_full_location_refuses_new_macs_there_while_others_still_learn() {
    let fdb = limited(100, 2);
    let _ = fdb.learn(secs(0), NET, mac(1), P1);
    let _ = fdb.learn(secs(0), NetworkId(2), mac(2), P1);
    assert_eq!(
        fdb.learn(secs(0), NET, mac(3), P1),
        Learn::Refused(RefuseReason::LocationFull)
    );
    assert_eq!(fdb.learn(secs(0), NET, mac(3), P2), Learn::Learned);
    assert_eq!(fdb.learn(secs(0), NET, mac(1), P1), Learn::Refreshed);
    assert_eq!(fdb.counters().refused, 1);
}

#[test]
fn table_full_is_reported_before_location_full() {
    let fdb = limited(1, 1);
    let _ = fdb.learn(secs(0), NET, mac(1), P1);
    assert_eq!(
        fdb.learn(secs(0), NET, mac(2), P1),
        Learn::Refused(RefuseReason::TableFull)
    );
}

#[test]
fn a_move_into_a_full_location_is_refused_and_the_entry_stays() {
    let fdb = limited(100, 1);
    let _ = fdb.learn(secs(0), NET, mac(1), P1);
    let _ = fdb.learn(secs(0), NET, mac(2), P2);
    assert_eq!(
        fdb.learn(secs(1), NET, mac(1), P2),
        Learn::Refused(RefuseReason::LocationFull)
    );
    assert_eq!(fdb.lookup(NET, mac(1)), Some(P1));
    assert_eq!(
        fdb.entries(secs(1))[0].age,
        secs(1),
        "a refused move is no refresh"
    );
    // Moving out of a location frees its place.
    assert_eq!(
        fdb.learn(secs(2), NET, mac(2), P3),
        Learn::Moved { from: P2 }
    );
    assert_eq!(
        fdb.learn(secs(2), NET, mac(1), P2),
        Learn::Moved { from: P1 }
    );
    let c = fdb.counters();
    assert_eq!((c.moved, c.refused), (2, 1));
}

#[test]
fn zero_limits_learn_nothing() {
    let fdb = limited(0, 0);
    assert_eq!(
        fdb.learn(secs(0), NET, mac(1), P1),
        Learn::Refused(RefuseReason::TableFull)
    );
    assert!(fdb.is_empty());
}

#[test]
fn expiry_keeps_an_entry_at_exactly_the_aging_time_and_removes_it_after() {
    let fdb = Fdb::default();
    let t = secs(10);
    let aging = FdbConfig::DEFAULT_AGING;
    let _ = fdb.learn(t, NET, mac(1), P1);
    fdb.add_static(NET, mac(2), P1);
    assert_eq!(fdb.expire(t + aging), 0);
    assert_eq!(fdb.lookup(NET, mac(1)), Some(P1));
    assert_eq!(fdb.expire(t + aging + Duration::from_nanos(1)), 1);
    assert_eq!(fdb.lookup(NET, mac(1)), None);
    assert_eq!(
        fdb.lookup(NET, mac(2)),
        Some(P1),
        "static entries never age"
    );
    assert_eq!(fdb.expire(secs(1_000_000)), 0);
    assert_eq!(fdb.counters().expired, 1);
}

#[test]
fn a_refresh_postpones_expiry() {
    let fdb = Fdb::default();
    let _ = fdb.learn(secs(0), NET, mac(1), P1);
    let _ = fdb.learn(secs(200), NET, mac(1), P1);
    assert_eq!(fdb.expire(secs(301)), 0);
    assert_eq!(fdb.expire(secs(501)), 1);
}

#[test]
fn an_idle_entry_is_still_answered_until_expire_runs() {
    let fdb = Fdb::default();
    let _ = fdb.learn(secs(0), NET, mac(1), P1);
    assert_eq!(fdb.lookup(NET, mac(1)), Some(P1));
    let _ = fdb.expire(secs(1000));
    assert_eq!(fdb.lookup(NET, mac(1)), None);
}

#[test]
fn expiry_frees_places_under_the_limits() {
    let fdb = limited(1, 1);
    let _ = fdb.learn(secs(0), NET, mac(1), P1);
    let _ = fdb.expire(secs(301));
    assert_eq!(fdb.learn(secs(301), NET, mac(2), P1), Learn::Learned);
}

#[test]
fn aging_can_be_changed_at_run_time() {
    let fdb = Fdb::default();
    let _ = fdb.learn(secs(0), NET, mac(1), P1);
    fdb.set_aging(secs(10));
    assert_eq!(fdb.config().aging, secs(10));
    assert_eq!(fdb.expire(secs(10)), 0);
    assert_eq!(fdb.expire(secs(11)), 1);
}

#[test]
fn a_now_behind_last_seen_is_age_zero_not_a_panic() {
    let fdb = Fdb::default();
    let _ = fdb.learn(secs(100), NET, mac(1), P1);
    assert_eq!(fdb.entries(secs(50))[0].age, Duration::ZERO);
    assert_eq!(fdb.expire(secs(50)), 0);
    // A refresh with an older `now` (another worker's clock read) is taken as given.
    assert_eq!(fdb.learn(secs(90), NET, mac(1), P1), Learn::Refreshed);
    assert_eq!(fdb.entries(secs(100))[0].age, secs(10));
}

#[test]
fn flush_location_removes_learned_entries_there_and_statics_on_request() {
    let fdb = limited(100, 2);
    let _ = fdb.learn(secs(0), NET, mac(1), P1);
    let _ = fdb.learn(secs(0), NetworkId(2), mac(2), P1);
    let _ = fdb.learn(secs(0), NET, mac(3), P2);
    fdb.add_static(NET, mac(4), P1);
    assert_eq!(fdb.flush_location(P1, false), 2);
    assert_eq!(fdb.lookup(NET, mac(4)), Some(P1));
    assert_eq!(fdb.lookup(NET, mac(3)), Some(P2));
    assert_eq!(fdb.flush_location(P1, true), 1);
    assert_eq!(fdb.len(), 1);
    assert_eq!(fdb.counters().static_entries, 0);
    // The location's count started again from zero.
    assert_eq!(fdb.learn(secs(1), NET, mac(5), P1), Learn::Learned);
    assert_eq!(fdb.learn(secs(1), NET, mac(6), P1), Learn::Learned);
}

#[test]
fn flush_network_removes_all_its_entries_static_included() {
    let fdb = Fdb::default();
    let _ = fdb.learn(secs(0), NetworkId(1), mac(1), P1);
    let _ = fdb.learn(secs(0), NetworkId(2), mac(1), P1);
    fdb.add_static(NetworkId(1), mac(2), VTEP);
    assert_eq!(fdb.flush_network(NetworkId(1)), 2);
    assert_eq!(fdb.lookup(NetworkId(2), mac(1)), Some(P1));
    assert_eq!(fdb.len(), 1);
    assert_eq!(fdb.flush_network(NetworkId(1)), 0);
}

#[test]
fn remove_says_whether_there_was_an_entry() {
    let fdb = Fdb::default();
    fdb.add_static(NET, mac(1), P1);
    let _ = fdb.learn(secs(0), NET, mac(2), P1);
    assert!(fdb.remove(NET, mac(1)));
    assert!(fdb.remove(NET, mac(2)));
    assert!(!fdb.remove(NET, mac(2)));
    assert!(fdb.is_empty());
    assert_eq!(fdb.counters().static_entries, 0);
}

#[test]
fn entries_are_sorted_by_network_then_mac_with_ages() {
    let fdb = Fdb::default();
    let _ = fdb.learn(secs(5), NetworkId(2), mac(1), P1);
    let _ = fdb.learn(secs(3), NetworkId(1), mac(9), P2);
    fdb.add_static(NetworkId(1), mac(3), VTEP);
    let rows = fdb.entries(secs(10));
    let keys: Vec<_> = rows.iter().map(|r| (r.network.0, r.mac)).collect();
    assert_eq!(keys, vec![(1, mac(3)), (1, mac(9)), (2, mac(1))]);
    assert_eq!(
        rows[0],
        EntryInfo {
            network: NetworkId(1),
            mac: mac(3),
            location: VTEP,
            is_static: true,
            age: Duration::ZERO
        }
    );
    assert_eq!((rows[1].age, rows[2].age), (secs(7), secs(5)));
}

#[test]
fn pinned_batches_see_the_same_table() {
    let fdb = Fdb::default();
    let pin = fdb.pin();
    assert_eq!(pin.learn(secs(0), NET, mac(1), P1), Learn::Learned);
    assert_eq!(pin.lookup(NET, mac(1)), Some(P1));
    assert_eq!(fdb.lookup(NET, mac(1)), Some(P1));
    drop(pin);
    assert_eq!(fdb.len(), 1);
}

#[test]
fn the_table_is_shared_between_threads() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Fdb>();
    let dbg = format!("{:?}", Fdb::default());
    assert!(dbg.contains("max_entries: 65536"), "{dbg}");
}

#[test]
fn config_defaults_and_reads_seconds() {
    let c = FdbConfig::default();
    assert_eq!(
        (c.aging, c.max_entries, c.max_per_location),
        (secs(300), 65536, 4096)
    );
    assert_eq!(Fdb::new(c).config(), c);
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(
        json,
        r#"{"aging":300,"max_entries":65536,"max_per_location":4096}"#
    );
    let c: FdbConfig = serde_json::from_str(r#"{"aging":0.5,"max_entries":10}"#).unwrap();
    assert_eq!(
        (c.aging, c.max_entries, c.max_per_location),
        (Duration::from_millis(500), 10, 4096)
    );
    assert!(serde_json::from_str::<FdbConfig>(r#"{"aging":-1}"#).is_err());
    assert!(serde_json::from_str::<FdbConfig>(r#"{"agin":1}"#).is_err());
}

#[test]
fn entry_rows_serialize_readably() {
    let row = EntryInfo {
        network: NET,
        mac: mac(1),
        location: VTEP,
        is_static: false,
        age: Duration::from_millis(1500),
    };
    assert_eq!(
        serde_json::to_string(&row).unwrap(),
        r#"{"network":1,"mac":"02:00:00:00:00:01","location":{"vtep":"10.0.0.2"},"is_static":false,"age":1.5}"#
    );
    assert_eq!(serde_json::to_string(&P3).unwrap(), r#"{"port":3}"#);
    let back: Location = serde_json::from_str(r#"{"port":3}"#).unwrap();
    assert_eq!(back, P3);
}
