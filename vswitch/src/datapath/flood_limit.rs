//! Storm control: a ceiling on how many frames per second one local port, or one VXLAN
//! peer, may make the switch flood (broadcast, multicast, unknown unicast), as hardware
//! switches' `storm-control` sets. A source past it has its floods dropped (counted as
//! `flood_limited`) while its unicast to known MACs goes on, so one container sending a
//! broadcast storm, a loop through a VM that bridges two of our ports, or a peer host
//! without such a limit cannot take the switch's CPU and every port's queue with it.
//!
//! One limiter for the whole daemon, shared by the workers: a port's frames may reach
//! any of them (fanout), and a storm of one flow lands on one, so per-worker buckets
//! would hold each to a share of the rate or let the sum exceed it. Each source keeps a
//! single atomic number, the "theoretical arrival time" of the generic cell rate
//! algorithm (a token bucket without a refill timer): every flood pushes it on by
//! `1 s / rate`; a flood is allowed while it runs no more than one second ahead of the
//! clock, which is a burst of one second's worth after a quiet spell. Workers update it
//! with a compare-and-swap, and only on a flood: unicast never looks.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use fdb::PortId;

use super::pipeline::Ingress;

const SECOND_NS: u64 = 1_000_000_000;

/// Where floods come from, each with its own allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FloodSource {
    Port(PortId),
    /// A VXLAN peer: every network it carries.
    Peer(IpAddr),
}

impl From<Ingress> for FloodSource {
    fn from(i: Ingress) -> FloodSource {
        match i {
            Ingress::Port(p) => FloodSource::Port(p),
            Ingress::Vtep { ip, .. } => FloodSource::Peer(ip),
        }
    }
}

/// The daemon's storm control.
#[derive(Debug)]
pub struct FloodLimiter {
    /// Nanoseconds one flood pushes a source's arrival time on; `None`: no limit.
    cost_ns: Option<u64>,
    /// Per source: the theoretical arrival time, in nanoseconds since the daemon's epoch.
    sources: papaya::HashMap<FloodSource, AtomicU64>,
}

impl FloodLimiter {
    /// A limiter allowing `per_second` floods per source (0: no limit).
    pub fn new(per_second: u64) -> FloodLimiter {
        FloodLimiter {
            cost_ns: (per_second > 0).then(|| (SECOND_NS / per_second).max(1)),
            sources: papaya::HashMap::new(),
        }
    }

    /// Whether `from` may flood one more frame at `now` (time since the daemon's
    /// epoch); if so, it is counted against the allowance.
    #[inline]
    pub fn allow(&self, from: FloodSource, now: Duration) -> bool {
        let Some(cost) = self.cost_ns else {
            return true;
        };
        let now = nanos(now);
        let map = self.sources.pin();
        let tat = map.get_or_insert_with(from, || AtomicU64::new(0));
        let mut seen = tat.load(Relaxed);
        loop {
            let start = seen.max(now);
            if start - now > SECOND_NS - cost.min(SECOND_NS) {
                return false;
            }
            match tat.compare_exchange_weak(seen, start.saturating_add(cost), Relaxed, Relaxed) {
                Ok(_) => return true,
                Err(v) => seen = v,
            }
        }
    }

    /// Whether `from` may flood one more frame at `now`, counting nothing (the trace).
    pub fn would_allow(&self, from: FloodSource, now: Duration) -> bool {
        let Some(cost) = self.cost_ns else {
            return true;
        };
        let now = nanos(now);
        let map = self.sources.pin();
        let seen = map.get(&from).map_or(0, |t| t.load(Relaxed));
        seen.max(now) - now <= SECOND_NS - cost.min(SECOND_NS)
    }

    /// Forgets a source that went away (a detached port, a removed peer).
    pub fn forget(&self, from: FloodSource) {
        self.sources.pin().remove(&from);
    }

    /// How many sources are tracked (for the tests: nothing else needs to know).
    #[cfg(test)]
    pub(crate) fn sources(&self) -> usize {
        self.sources.len()
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: FloodSource = FloodSource::Port(PortId(1));
    const Q: FloodSource = FloodSource::Port(PortId(2));

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn allowed(l: &FloodLimiter, from: FloodSource, at: Duration, tries: usize) -> usize {
        (0..tries).filter(|_| l.allow(from, at)).count()
    }

    #[test]
    fn without_a_limit_everything_floods() {
        let l = FloodLimiter::new(0);
        assert_eq!(allowed(&l, P, ms(0), 100_000), 100_000);
        assert_eq!(l.sources(), 0, "nothing is tracked");
    }

    #[test]
    fn a_burst_of_one_seconds_worth_then_the_rate() {
        let l = FloodLimiter::new(100);
        assert_eq!(allowed(&l, P, ms(1000), 1000), 100, "the burst");
        assert_eq!(allowed(&l, P, ms(1000), 10), 0);
        assert!(!l.would_allow(P, ms(1000)));
        assert!(l.would_allow(P, ms(1010)), "10 ms earn one");
        assert!(
            l.would_allow(FloodSource::Port(PortId(9)), ms(0)),
            "never seen"
        );
        // 50 ms earn 5 floods.
        assert_eq!(allowed(&l, P, ms(1050), 10), 5);
        // Over 10 s of steady pressure: the rate, give or take one.
        let mut n = 0;
        for t in (1051..11_051).step_by(10) {
            n += allowed(&l, P, ms(t), 5);
        }
        assert!((999..=1001).contains(&n), "{n}");
        // Quiet for a minute: the allowance stops at one second's worth.
        assert_eq!(allowed(&l, P, ms(71_051), 1000), 100);
    }

    #[test]
    fn each_port_and_peer_has_its_own_allowance() {
        let l = FloodLimiter::new(10);
        let peer = FloodSource::Peer("192.0.2.2".parse().unwrap());
        assert_eq!(allowed(&l, P, ms(0), 50), 10);
        assert_eq!(allowed(&l, Q, ms(0), 50), 10);
        assert_eq!(allowed(&l, peer, ms(0), 50), 10);
        l.forget(P);
        assert_eq!(l.sources(), 2);
        // A port that comes back starts with a full allowance.
        assert_eq!(allowed(&l, P, ms(0), 50), 10);
    }

    #[test]
    fn workers_share_one_allowance() {
        let l = std::sync::Arc::new(FloodLimiter::new(1000));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || allowed(&l, P, ms(5000), 10_000))
            })
            .collect();
        let total: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(
            total, 1000,
            "four threads at once get one second's worth in all"
        );
    }

    #[test]
    fn extreme_rates_hold() {
        // Above one per nanosecond: still a cost of 1 ns, never a division by zero.
        let l = FloodLimiter::new(u64::MAX);
        assert!(l.allow(P, ms(0)));
        // One a second: the burst is that one.
        let l = FloodLimiter::new(1);
        assert_eq!(allowed(&l, P, ms(0), 5), 1);
        assert_eq!(allowed(&l, P, ms(999), 5), 0);
        assert_eq!(allowed(&l, P, ms(1000), 5), 1);
        // A clock far out does not overflow.
        assert!(l.allow(Q, Duration::from_secs(u64::MAX)));
    }
}
