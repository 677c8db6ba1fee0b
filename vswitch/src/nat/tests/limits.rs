//! Limits: an exhausted port range and a full table refuse new flows, count them, and
//! leave existing flows working; expiry gives the ports back. Plus a threaded smoke
//! test of the lock-free path.

use std::sync::Arc;

use super::*;

fn host(i: u16) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, 10 + i as u8)
}

#[test]
fn with_ten_ports_the_eleventh_flow_is_refused_and_the_ten_keep_working() {
    let n = Nat::new(config(20000..=20009)).unwrap();
    let mut ports = Vec::new();
    for i in 0..10 {
        let (o, _) = out(&n, secs(0), &tcp(host(i), 40000, R, 80, SYN));
        ports.push(tuple(&o).1);
    }
    let mut sorted = ports.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (20000..=20009).collect::<Vec<_>>());

    assert_eq!(
        out_err(&n, secs(1), &tcp(host(10), 40000, R, 80, SYN)),
        NatDrop::PortsExhausted
    );
    let c = n.counters();
    assert_eq!(c.refused_ports_exhausted, 1);
    assert_eq!(c.entries, 10);
    assert_eq!(c.ports[0].used, 10);
    assert_eq!(c.ports[0].capacity, 10);
    // UDP has its own ten.
    out(&n, secs(1), &udp(host(10), 40000, R, 53));

    for (i, &p) in ports.iter().enumerate() {
        let (o, _) = out(&n, secs(2), &tcp(host(i as u16), 40000, R, 80, ACK));
        assert_eq!(tuple(&o), (EXT, p, R, 80));
        let (b, _) = inb(&n, secs(2), &tcp(R, 80, EXT, p, ACK));
        assert_eq!(tuple(&b), (R, 80, host(i as u16), 40000));
    }
}

#[test]
fn a_full_table_refuses_new_flows_only() {
    let n = Nat::new(NatConfig {
        max_entries: 3,
        ..config(1024..=65535)
    })
    .unwrap();
    n.set_published(
        PublishedPorts::from_ports(["8080:80".parse::<PortSpec>().unwrap().to(B)]).unwrap(),
    );
    let ports: Vec<u16> = (0..3)
        .map(|i| tuple(&out(&n, secs(0), &udp(host(i), 1000, R, 53)).0).1)
        .collect();
    assert_eq!(
        out_err(&n, secs(0), &udp(host(3), 1000, R, 53)),
        NatDrop::TableFull
    );
    assert_eq!(
        inb_err(&n, secs(0), &tcp(R, 1, EXT, 8080, SYN)),
        NatDrop::TableFull
    );
    let c = n.counters();
    assert_eq!((c.entries, c.limit, c.refused_table_full), (3, 3, 2));
    for i in 0..3 {
        let (o, _) = out(&n, secs(0), &udp(host(i), 1000, R, 53));
        let p = ports[usize::from(i)];
        assert_eq!(tuple(&o).1, p);
        let (b, _) = inb(&n, secs(0), &udp(R, 53, EXT, p));
        assert_eq!(tuple(&b).2, host(i));
    }
}

#[test]
fn expired_flows_give_their_port_back() {
    let n = Nat::new(config(20000..=20000)).unwrap();
    let (o, _) = out(&n, secs(0), &udp(A, 1, R, 53));
    assert_eq!(tuple(&o).1, 20000);
    assert_eq!(
        out_err(&n, secs(10), &udp(B, 1, R, 53)),
        NatDrop::PortsExhausted
    );
    assert_eq!(n.expire(secs(31)), 1);
    assert_eq!(n.counters().ports[1].used, 0);
    let (o, _) = out(&n, secs(31), &udp(B, 1, R, 53));
    assert_eq!(tuple(&o).1, 20000);
    let (b, _) = inb(&n, secs(31), &udp(R, 53, EXT, 20000));
    assert_eq!(tuple(&b).2, B, "the port now belongs to B's flow");
}

#[test]
fn workers_share_the_table() {
    let n = Arc::new(nat());
    let threads: Vec<_> = (0..4u16)
        .map(|w| {
            let n = Arc::clone(&n);
            std::thread::spawn(move || {
                for round in 0..50u64 {
                    for i in 0..20u16 {
                        // Every worker sends the same 20 flows: they must share entries.
                        let mut p = udp(host(i), 2000, R, 53);
                        let t = n
                            .outbound(secs(round), &mut p, ChecksumState::Complete)
                            .unwrap();
                        assert_eq!(t.egress, Egress::Uplink);
                        let port = u16::from_be_bytes([p[20], p[21]]);
                        let mut r = udp(R, 53, EXT, port);
                        let t = n
                            .inbound(secs(round), &mut r, ChecksumState::Complete)
                            .unwrap();
                        assert_eq!(t.dst, host(i), "worker {w}");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let c = n.counters();
    assert_eq!((c.entries, c.created), (20, 20));
    assert_eq!(n.expire(secs(49 + 181)), 20);
    assert_eq!(n.counters().ports[1].used, 0);
}

#[test]
fn the_engine_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Nat>();
}

#[test]
fn tunables_change_at_run_time_and_bad_ones_change_nothing() {
    let n = Nat::new(NatConfig {
        max_entries: 1,
        ..config(1024..=65535)
    })
    .unwrap();
    out(&n, secs(0), &udp(host(0), 1000, R, 53));
    assert_eq!(
        out_err(&n, secs(0), &udp(host(1), 1000, R, 53)),
        NatDrop::TableFull
    );
    // A higher limit lets the second flow in; a shorter UDP timeout expires it sooner.
    let mut next = n.config();
    next.max_entries = 2;
    next.timeouts.udp = Duration::from_secs(5);
    n.set_tunables(&next).unwrap();
    out(&n, secs(1), &udp(host(1), 1000, R, 53));
    assert_eq!(n.counters().limit, 2);
    assert_eq!(
        n.expire(secs(6)),
        1,
        "only the flow idle for more than 5 s goes"
    );
    assert_eq!(n.expire(secs(7)), 1);
    // A zero timeout is refused and nothing changes; the port range is the engine's.
    let mut bad = n.config();
    bad.timeouts.icmp = Duration::ZERO;
    bad.max_entries = 9;
    assert!(n.set_tunables(&bad).is_err());
    assert_eq!(n.config().max_entries, 2);
    let mut other_range = n.config();
    other_range.port_range = 2000..=2001;
    n.set_tunables(&other_range).unwrap();
    assert_eq!(n.config().port_range, 1024..=65535);
}
