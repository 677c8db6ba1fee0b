//! Expiry on schedule, with time passed in: for each state, an entry is alive at
//! `t + timeout - 1 s` and gone at `t + timeout + 1 s`, where `t` is its last packet.

use super::*;

const T: u64 = 1000;

/// Drives one flow into a state with its last packet at `T`; returns the state.
fn drive(n: &Nat, steps: &[(bool, u8)]) -> ConnState {
    let (sent, _) = out(n, secs(T - 50), &tcp(A, 40000, R, 80, SYN));
    let port = tuple(&sent).1;
    for (i, &(outgoing, flags)) in steps.iter().enumerate() {
        let now = if i + 1 == steps.len() {
            T
        } else {
            T - 40 + i as u64
        };
        if outgoing {
            out(n, secs(now), &tcp(A, 40000, R, 80, flags));
        } else {
            inb(n, secs(now), &tcp(R, 80, EXT, port, flags));
        }
    }
    n.entries(secs(T))[0].state
}

fn assert_lives_for(n: &Nat, timeout: u64) {
    assert_eq!(
        n.expire(secs(T + timeout - 1)),
        0,
        "alive at t + timeout - 1"
    );
    assert_eq!(n.entries(secs(T + timeout - 1)).len(), 1);
    assert_eq!(n.entries(secs(T + timeout - 1))[0].expires_in, secs(1));
    assert_eq!(
        n.expire(secs(T + timeout + 1)),
        1,
        "gone at t + timeout + 1"
    );
    assert!(n.entries(secs(T + timeout + 1)).is_empty());
    let c = n.counters();
    assert_eq!((c.entries, c.removed), (0, 1));
    assert!(c.ports.iter().all(|p| p.used == 0), "ports freed");
}

/// Packets after the SYN (`true`: outgoing), the state they lead to, its timeout.
type Case<'a> = (&'a [(bool, u8)], ConnState, std::time::Duration);

#[test]
fn tcp_states_expire_on_their_own_timeouts() {
    let d = Timeouts::default();
    let cases: [Case; 6] = [
        (&[(true, SYN)], ConnState::SynSent, d.tcp_syn_sent),
        (&[(false, SYNACK)], ConnState::SynRecv, d.tcp_syn_recv),
        (
            &[(false, SYNACK), (true, ACK)],
            ConnState::Established,
            d.tcp_established,
        ),
        (
            &[(false, SYNACK), (true, ACK), (true, FIN)],
            ConnState::FinWait,
            d.tcp_fin_wait,
        ),
        (
            &[(false, SYNACK), (true, ACK), (true, FIN), (false, FIN)],
            ConnState::TimeWait,
            d.tcp_time_wait,
        ),
        (
            &[(false, SYNACK), (true, ACK), (false, RST)],
            ConnState::Close,
            d.tcp_close,
        ),
    ];
    for (steps, state, timeout) in cases {
        let n = nat();
        assert_eq!(drive(&n, steps), state);
        assert_lives_for(&n, timeout.as_secs());
    }
    // The defaults as documented.
    assert_eq!(
        [
            d.tcp_syn_sent,
            d.tcp_syn_recv,
            d.tcp_established,
            d.tcp_fin_wait,
            d.tcp_time_wait,
            d.tcp_close
        ]
        .map(|t| t.as_secs()),
        [120, 60, 7440, 120, 120, 10]
    );
}

#[test]
fn udp_and_icmp_expire_on_their_timeouts() {
    let n = nat();
    out(&n, secs(T), &udp(A, 5000, R, 53));
    assert_eq!(n.entries(secs(T))[0].state, ConnState::Unreplied);
    assert_lives_for(&n, 30);

    let n = nat();
    let (o, _) = out(&n, secs(T - 5), &udp(A, 5000, R, 53));
    inb(&n, secs(T), &udp(R, 53, EXT, tuple(&o).1));
    assert_eq!(n.entries(secs(T))[0].state, ConnState::Stream);
    assert_lives_for(&n, 180);

    let n = nat();
    out(&n, secs(T), &ping(A, R, 1, false));
    assert_lives_for(&n, 30);
}

#[test]
fn traffic_keeps_a_flow_alive_and_timeouts_are_configurable() {
    let mut cfg = config(32768..=60999);
    cfg.timeouts.udp = secs(5);
    let n = Nat::new(cfg).unwrap();
    out(&n, secs(0), &udp(A, 5000, R, 53));
    for t in 1..=100 {
        out(&n, secs(t * 4), &udp(A, 5000, R, 53));
        assert_eq!(n.expire(secs(t * 4 + 1)), 0);
    }
    assert_eq!(n.expire(secs(400 + 5)), 0);
    assert_eq!(n.expire(secs(400 + 6)), 1);
}

#[test]
fn a_syn_reopens_a_closed_connection_with_the_same_port() {
    let n = nat();
    let (o, _) = out(&n, secs(0), &tcp(A, 1234, R, 80, SYN));
    let port = tuple(&o).1;
    inb(&n, secs(1), &tcp(R, 80, EXT, port, RST));
    assert_eq!(n.entries(secs(1))[0].state, ConnState::Close);
    let (o, t) = out(&n, secs(5), &tcp(A, 1234, R, 80, SYN));
    assert!(!t.created);
    assert_eq!(tuple(&o).1, port);
    assert_eq!(n.entries(secs(5))[0].state, ConnState::SynSent);
    // Now it lives for SYN_SENT's 120 s, not CLOSE's 10 s.
    assert_eq!(n.expire(secs(5 + 119)), 0);
}
