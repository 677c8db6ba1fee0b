//! The engine against a naive reference model under random sequences of packets and
//! expiry, on address and port spaces small enough to collide: masquerade, a
//! published port and hairpin, UDP, 5 ports, 6 table entries.
//!
//! Checked after every step: the translation of each packet is what the model
//! predicts (replies map back to exactly the original tuple), refusals have the
//! predicted reason, the live connections equal the model's, and no two live
//! connections share a key or an external port (translation is a bijection).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::nat::tuple::Tuple;

const RANGE: std::ops::RangeInclusive<u16> = 1000..=1004;
const MAX: usize = 6;
const HOSTS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(10, 0, 0, 1),
    Ipv4Addr::new(10, 0, 0, 2),
    Ipv4Addr::new(10, 0, 0, 3),
];
const SPORTS: [u16; 3] = [80, 1000, 1001];
const REMOTES: [Ipv4Addr; 2] = [
    Ipv4Addr::new(198, 51, 100, 1),
    Ipv4Addr::new(198, 51, 100, 2),
];
const RPORTS: [u16; 2] = [53, 1002];
/// `8080/udp` is published to HOSTS[0]:80.
const PUBLISHED: u16 = 8080;
const EXT_PORTS: [u16; 4] = [1000, 1002, 1004, PUBLISHED];

#[derive(Clone, Debug)]
enum Op {
    /// A local host to a remote.
    Out(usize, usize, usize, usize),
    /// A local host to the external address (hairpin or not published).
    OutToExt(usize, usize, usize),
    /// The right reply to the n-th live flow (mod the count).
    Reply(usize),
    /// A remote to the external address, on one of a few ports.
    In(usize, usize, usize),
    Advance(u64),
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..3usize, 0..2usize, 0..2usize).prop_map(|(a, b, c, d)| Op::Out(a, b, c, d)),
        1 => (0..3usize, 0..3usize, 0..3usize).prop_map(|(a, b, c)| Op::OutToExt(a, b, c)),
        4 => (0..64usize).prop_map(Op::Reply),
        2 => (0..2usize, 0..2usize, 0..4usize).prop_map(|(a, b, c)| Op::In(a, b, c)),
        2 => (0..200u64).prop_map(Op::Advance),
        1 => Just(Op::Expire),
    ]
}

#[derive(Clone, Debug)]
struct MFlow {
    kind: NatKind,
    orig: Tuple,
    xlat: Tuple,
    last: u64,
    replied: bool,
}

impl MFlow {
    /// `(side is inside, tuple)` per direction.
    fn keys(&self) -> [(bool, Tuple); 2] {
        let (o, r) = match self.kind {
            NatKind::Snat => (true, false),
            NatKind::Dnat => (false, true),
            NatKind::Hairpin => (true, true),
        };
        [(o, self.orig), (r, self.xlat.reversed())]
    }
}

#[derive(Default)]
struct Model {
    now: u64,
    flows: Vec<MFlow>,
}

impl Model {
    fn used_ports(&self) -> BTreeSet<u16> {
        self.flows
            .iter()
            .filter(|f| f.kind != NatKind::Dnat)
            .map(|f| f.xlat.sport)
            .collect()
    }

    /// The translation of a packet of an existing flow (which is refreshed), or
    /// `None` if no flow has this key.
    fn existing(&mut self, inside: bool, t: Tuple) -> Option<Tuple> {
        let now = self.now;
        for f in &mut self.flows {
            let [o, r] = f.keys();
            if o == (inside, t) {
                f.last = now;
                return Some(f.xlat);
            }
            if r == (inside, t) {
                f.last = now;
                f.replied = true;
                return Some(f.orig.reversed());
            }
        }
        None
    }

    fn expire(&mut self) -> usize {
        let now = self.now;
        let before = self.flows.len();
        self.flows
            .retain(|f| now - f.last <= if f.replied { 180 } else { 30 });
        before - self.flows.len()
    }
}

fn pkt(t: Tuple) -> Vec<u8> {
    udp(t.src, t.sport, t.dst, t.dport)
}

fn tup(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Tuple {
    Tuple {
        src,
        sport,
        dst,
        dport,
    }
}

/// Sends `t` from inside or outside through engine and model and compares.
fn step(n: &Nat, m: &mut Model, inside: bool, t: Tuple) -> Result<(), TestCaseError> {
    let mut p = pkt(t);
    let now = secs(m.now);
    let got = if inside {
        n.outbound(now, &mut p, ChecksumState::Complete)
    } else {
        n.inbound(now, &mut p, ChecksumState::Complete)
    };
    if let Some(want) = m.existing(inside, t) {
        prop_assert!(got.is_ok(), "existing flow {t:?} dropped: {got:?}");
        let (s, sp, d, dp) = tuple(&p);
        prop_assert_eq!(tup(s, sp, d, dp), want);
        prop_assert!(!got.map_err(|e| TestCaseError::fail(e.name()))?.created);
        return Ok(());
    }
    // A new flow: what would it be?
    let (kind, dst) = if inside && t.dst == EXT {
        if t.dport != PUBLISHED {
            prop_assert_eq!(got, Err(NatDrop::NotPublished));
            return Ok(());
        }
        (NatKind::Hairpin, (HOSTS[0], 80))
    } else if inside {
        (NatKind::Snat, (t.dst, t.dport))
    } else if t.dport == PUBLISHED {
        (NatKind::Dnat, (HOSTS[0], 80))
    } else {
        prop_assert_eq!(got, Err(NatDrop::NoFlow));
        return Ok(());
    };
    if m.flows.len() >= MAX {
        prop_assert_eq!(got, Err(NatDrop::TableFull));
        return Ok(());
    }
    let used = m.used_ports();
    if kind != NatKind::Dnat && used.len() == RANGE.len() {
        prop_assert_eq!(got, Err(NatDrop::PortsExhausted));
        return Ok(());
    }
    if kind == NatKind::Dnat {
        let reply = (true, tup(dst.0, dst.1, t.src, t.sport));
        if m.flows.iter().any(|f| f.keys().contains(&reply)) {
            prop_assert_eq!(got, Err(NatDrop::TupleInUse));
            return Ok(());
        }
    }
    let got = got.map_err(|e| TestCaseError::fail(format!("{t:?} refused: {e}")))?;
    prop_assert!(got.created);
    prop_assert_eq!(got.kind, kind);
    let (s, sp, d, dp) = tuple(&p);
    let xlat = tup(s, sp, d, dp);
    prop_assert_eq!((d, dp), dst);
    if kind == NatKind::Dnat {
        prop_assert_eq!((s, sp), (t.src, t.sport));
    } else {
        prop_assert_eq!(s, EXT);
        prop_assert!(
            RANGE.contains(&sp) && !used.contains(&sp),
            "port {sp} in use"
        );
        if RANGE.contains(&t.sport) && !used.contains(&t.sport) {
            prop_assert_eq!(sp, t.sport, "the source port is kept when free");
        }
    }
    m.flows.push(MFlow {
        kind,
        orig: t,
        xlat,
        last: m.now,
        replied: false,
    });
    Ok(())
}

fn check_invariants(n: &Nat, m: &Model) -> Result<(), TestCaseError> {
    let keys: Vec<_> = m.flows.iter().flat_map(|f| f.keys()).collect();
    let unique: BTreeSet<_> = keys.iter().collect();
    prop_assert_eq!(unique.len(), keys.len(), "two flows share a key");
    let ports = m.flows.iter().filter(|f| f.kind != NatKind::Dnat).count();
    prop_assert_eq!(
        m.used_ports().len(),
        ports,
        "two flows share an external port"
    );

    let engine: BTreeMap<_, _> = n
        .entries(secs(m.now))
        .into_iter()
        .map(|e| ((e.original.src, e.original.dst), (e.kind, e.translated)))
        .collect();
    let model: BTreeMap<_, _> = m
        .flows
        .iter()
        .map(|f| {
            let (o, x) = (f.orig.flow(), f.xlat.flow());
            ((o.src, o.dst), (f.kind, x))
        })
        .collect();
    prop_assert_eq!(engine, model);
    let c = n.counters();
    prop_assert_eq!(c.entries, m.flows.len());
    prop_assert_eq!(c.ports[1].used, ports);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_the_model(ops in proptest::collection::vec(op(), 1..80)) {
        let n = Nat::new(NatConfig { max_entries: MAX, ..config(RANGE) }).unwrap();
        n.set_published(PublishedPorts::from_ports([
            "8080:80/udp".parse::<PortSpec>().unwrap().to(HOSTS[0]),
        ]).unwrap());
        let mut m = Model::default();
        for op in ops {
            match op {
                Op::Out(h, s, r, d) => {
                    step(&n, &mut m, true, tup(HOSTS[h], SPORTS[s], REMOTES[r], RPORTS[d]))?
                }
                Op::OutToExt(h, s, p) => {
                    let port = [PUBLISHED, 1000, 9][p];
                    step(&n, &mut m, true, tup(HOSTS[h], SPORTS[s], EXT, port))?
                }
                Op::Reply(i) => {
                    if !m.flows.is_empty() {
                        let f = m.flows[i % m.flows.len()].clone();
                        let inside = f.keys()[1].0;
                        step(&n, &mut m, inside, f.xlat.reversed())?
                    }
                }
                Op::In(r, p, e) => {
                    step(&n, &mut m, false, tup(REMOTES[r], RPORTS[p], EXT, EXT_PORTS[e]))?
                }
                Op::Advance(s) => m.now += s,
                Op::Expire => {
                    let want = m.expire();
                    prop_assert_eq!(n.expire(secs(m.now)), want);
                }
            }
            check_invariants(&n, &m)?;
        }
    }
}
