//! Storm control: a ceiling on how many frames per second one local port, or one VXLAN
//! peer, may make the switch flood (broadcast, multicast, unknown unicast), as hardware
//! switches' `storm-control` sets. A source past it has its floods dropped (counted as
//! `flood_limited`) while its unicast to known MACs goes on, so one container sending a
//! broadcast storm, a loop through a VM that bridges two of our ports, or a peer host
//! without such a limit cannot take the switch's CPU and every port's queue with it.
//!
//! A token bucket per port, kept as time credit: every flood costs `1 s / rate`, credit
//! grows with the clock up to one second's worth (the burst a port may send after
//! being quiet), so integer arithmetic and no timer. Each worker keeps its own buckets
//! for the sources it reads (no sharing, no locks); a port or underlay socket read by
//! several workers gets the daemon's rate split between them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use fdb::PortId;

use super::pipeline::Ingress;

/// Where floods come from, each with its own bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FloodSource {
    Port(PortId),
    /// A VXLAN peer: every network it carries.
    Peer(IpAddr),
}

const SECOND_NS: u64 = 1_000_000_000;

impl From<Ingress> for FloodSource {
    fn from(i: Ingress) -> FloodSource {
        match i {
            Ingress::Port(p) => FloodSource::Port(p),
            Ingress::Vtep { ip, .. } => FloodSource::Peer(ip),
        }
    }
}

/// One worker's buckets.
#[derive(Debug)]
pub struct FloodLimiter {
    /// Nanoseconds of credit one flood costs; `None`: no limit.
    cost_ns: Option<u64>,
    buckets: HashMap<FloodSource, Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    credit_ns: u64,
    last: Duration,
}

impl FloodLimiter {
    /// A limiter allowing `per_second` floods per port (0: no limit).
    pub fn new(per_second: u64) -> FloodLimiter {
        FloodLimiter {
            cost_ns: (per_second > 0).then(|| (SECOND_NS / per_second).max(1)),
            buckets: HashMap::new(),
        }
    }

    /// This worker's share of a daemon-wide rate `per_second` when `workers` workers
    /// may read the same port: rounded up, so a small limit never becomes none.
    pub fn share(per_second: u64, workers: usize) -> u64 {
        per_second.div_ceil(workers.max(1) as u64)
    }

    /// Whether `from` may flood one more frame at `now` (and takes the credit if so).
    #[inline]
    pub fn allow(&mut self, from: FloodSource, now: Duration) -> bool {
        let Some(cost) = self.cost_ns else {
            return true;
        };
        let b = self.buckets.entry(from).or_insert(Bucket {
            credit_ns: SECOND_NS,
            last: now,
        });
        let earned = now.saturating_sub(b.last).as_nanos();
        b.last = now;
        b.credit_ns = (u128::from(b.credit_ns) + earned).min(u128::from(SECOND_NS)) as u64;
        if b.credit_ns < cost {
            return false;
        }
        b.credit_ns -= cost;
        true
    }

    /// Whether `from` may flood one more frame at `now`, taking nothing (for the trace).
    pub fn would_allow(&self, from: FloodSource, now: Duration) -> bool {
        let (Some(cost), Some(b)) = (self.cost_ns, self.buckets.get(&from)) else {
            return true;
        };
        let earned = now.saturating_sub(b.last).as_nanos();
        u128::from(b.credit_ns) + earned >= u128::from(cost)
    }

    /// Forgets the sources `keep` says are gone.
    pub fn retain(&mut self, keep: impl Fn(FloodSource) -> bool) {
        self.buckets.retain(|p, _| keep(*p));
    }

    /// How many sources have a bucket.
    pub fn sources(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: FloodSource = FloodSource::Port(PortId(1));
    const Q: FloodSource = FloodSource::Port(PortId(2));

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn allowed(l: &mut FloodLimiter, from: FloodSource, at: Duration, tries: usize) -> usize {
        (0..tries).filter(|_| l.allow(from, at)).count()
    }

    #[test]
    fn without_a_limit_everything_floods() {
        let mut l = FloodLimiter::new(0);
        assert_eq!(allowed(&mut l, P, ms(0), 100_000), 100_000);
        assert_eq!(l.sources(), 0, "no bucket is kept");
    }

    #[test]
    fn a_burst_of_one_seconds_worth_then_the_rate() {
        let mut l = FloodLimiter::new(100);
        assert_eq!(allowed(&mut l, P, ms(1000), 1000), 100, "the burst");
        assert_eq!(allowed(&mut l, P, ms(1000), 10), 0);
        assert!(!l.would_allow(P, ms(1000)));
        assert!(l.would_allow(P, ms(1010)), "10 ms earn one");
        assert!(
            l.would_allow(FloodSource::Port(PortId(9)), ms(0)),
            "a port never seen"
        );
        // 50 ms earn 5 floods.
        assert_eq!(allowed(&mut l, P, ms(1050), 10), 5);
        // Over 10 s of steady pressure: the rate, give or take one.
        let mut n = 0;
        for t in (1051..11_051).step_by(10) {
            n += allowed(&mut l, P, ms(t), 5);
        }
        assert!((999..=1001).contains(&n), "{n}");
        // Quiet for a minute: the credit stops at one second's worth.
        assert_eq!(allowed(&mut l, P, ms(71_051), 1000), 100);
    }

    #[test]
    fn each_port_and_peer_has_its_own_bucket() {
        let mut l = FloodLimiter::new(10);
        let peer = FloodSource::Peer("192.0.2.2".parse().unwrap());
        assert_eq!(allowed(&mut l, P, ms(0), 50), 10);
        assert_eq!(allowed(&mut l, Q, ms(0), 50), 10);
        assert_eq!(allowed(&mut l, peer, ms(0), 50), 10);
        l.retain(|p| p != P);
        assert_eq!(l.sources(), 2);
        // A port that comes back starts with a full bucket.
        assert_eq!(allowed(&mut l, P, ms(0), 50), 10);
    }

    #[test]
    fn the_rate_is_split_between_workers_rounding_up() {
        assert_eq!(FloodLimiter::share(1000, 1), 1000);
        assert_eq!(FloodLimiter::share(1000, 3), 334);
        assert_eq!(FloodLimiter::share(1, 4), 1);
        assert_eq!(FloodLimiter::share(0, 4), 0);
        // A rate above one per nanosecond still costs something.
        let mut l = FloodLimiter::new(u64::MAX);
        assert!(l.allow(P, ms(0)));
    }
}
