//! The pool of external ports (or ICMP identifiers) of one protocol: a bitmap over
//! the configured range, one bit per port in use.
//!
//! Each masqueraded flow holds its own port until the flow expires, so "N ports"
//! means "N concurrent flows" per protocol, whatever their destinations; that keeps
//! the reply key unique without looking at destinations and makes exhaustion easy to
//! reason about. A flow keeps its original source port when it is in the range and
//! free (as Linux does); otherwise the next free port after a rotating cursor is
//! taken, so a just-released port is not handed out again at once. Allocation scans
//! a word (64 ports) at a time: at most ~450 words for the default range.
//!
//! Not thread-safe by itself: the table calls it under its creation lock.
//!
//! With several workers, each gives its new flows ports of its own [`Lane`] where it
//! can, so that the uplink hands their replies back to it ([`crate::port::steer`]).

use std::ops::RangeInclusive;

/// The external ports one worker prefers for the flows it creates: those equal to its
/// index modulo the number of workers (the uplink's queues), which is the queue the
/// uplink's steering program gives their replies to. Only a preference: when its lane
/// has no free port, a worker takes any, and every worker can translate every packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lane {
    index: u16,
    count: u16,
}

impl Lane {
    /// Every port: one worker, or no steering.
    pub const ANY: Lane = Lane { index: 0, count: 1 };

    /// Worker `index` of `count` (`count` at least 1).
    pub fn new(index: usize, count: usize) -> Lane {
        let count = u16::try_from(count.max(1)).unwrap_or(u16::MAX);
        let index = u16::try_from(index % usize::from(count)).unwrap_or(0);
        Lane { index, count }
    }

    /// Whether `port` is in this lane.
    pub fn accepts(self, port: u16) -> bool {
        port % self.count == self.index
    }

    /// The first port of this lane at or after `port` within `range` (wrapping to its
    /// start), or `port` itself when it is outside the range or the range has no port
    /// of this lane. A flow's original source port then maps to the same external port
    /// every time it is free, as with one worker (a connection picked up again after a
    /// restart with `tcp_loose` keeps its external port).
    pub fn nearest(self, port: u16, range: &RangeInclusive<u16>) -> u16 {
        let (index, count) = (u32::from(self.index), u32::from(self.count));
        let up = |p: u16| {
            let step = (index + count - u32::from(p) % count) % count;
            u16::try_from(u32::from(p) + step)
                .ok()
                .filter(|q| q <= range.end())
        };
        if !range.contains(&port) {
            return port;
        }
        up(port).or_else(|| up(*range.start())).unwrap_or(port)
    }
}

#[derive(Debug)]
pub(crate) struct PortPool {
    lo: u16,
    size: usize,
    bits: Vec<u64>,
    used: usize,
    cursor: usize,
}

impl PortPool {
    pub fn new(range: &RangeInclusive<u16>) -> PortPool {
        let lo = *range.start();
        let size = usize::from(range.end().saturating_sub(lo)) + 1;
        PortPool {
            lo,
            size,
            bits: vec![0; size.div_ceil(64)],
            used: 0,
            cursor: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.size
    }

    /// The ports this pool hands out.
    pub fn range(&self) -> RangeInclusive<u16> {
        let last = self.size.saturating_sub(1).min(usize::from(u16::MAX)) as u16;
        self.lo..=self.lo.saturating_add(last)
    }

    pub fn used(&self) -> usize {
        self.used
    }

    fn index(&self, port: u16) -> Option<usize> {
        let i = usize::from(port.checked_sub(self.lo)?);
        (i < self.size).then_some(i)
    }

    fn is_free(&self, i: usize) -> bool {
        self.bits
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) == 0)
    }

    fn mark(&mut self, i: usize, used: bool) {
        if let Some(w) = self.bits.get_mut(i / 64) {
            if used {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }

    /// Takes `preferred` if it is in the range, free and not `reserved`; else the
    /// next free, unreserved port after the cursor. `None` when none is left.
    /// (The datapath takes ports by [`take_for`](Self::take_for); with `Lane::ANY` it
    /// is this.)
    #[cfg(test)]
    pub fn take(&mut self, preferred: u16, reserved: impl Fn(u16) -> bool) -> Option<u16> {
        self.take_for(preferred, Lane::ANY, reserved)
    }

    /// Marks port `port` (index `i`), chosen against `preferred`, as used.
    fn commit(&mut self, i: usize, port: u16, preferred: u16) -> u16 {
        self.mark(i, true);
        self.used += 1;
        // The scan (never the preferred port: it would have been chosen first) moves
        // the cursor on.
        if port != preferred {
            self.cursor = i + 1;
        }
        port
    }

    /// Takes the external port of a new flow from source port `sport`, created by the
    /// worker of `lane`: the lane's port nearest `sport` if free, else the next free one
    /// of the lane, else (the lane full) any free port. Never a `reserved` one.
    pub fn take_for(
        &mut self,
        sport: u16,
        lane: Lane,
        reserved: impl Fn(u16) -> bool,
    ) -> Option<u16> {
        let (i, port, preferred) = self.choose_for(sport, lane, reserved)?;
        Some(self.commit(i, port, preferred))
    }

    /// The port [`take_for`](Self::take_for) would hand out now, without taking it.
    pub fn peek_for(&self, sport: u16, lane: Lane, reserved: impl Fn(u16) -> bool) -> Option<u16> {
        self.choose_for(sport, lane, reserved)
            .map(|(_, port, _)| port)
    }

    /// The choice `take_for` makes: the index, the port, and the port it preferred.
    fn choose_for(
        &self,
        sport: u16,
        lane: Lane,
        reserved: impl Fn(u16) -> bool,
    ) -> Option<(usize, u16, u16)> {
        let against = |preferred: u16, chosen: Option<(usize, u16)>| {
            chosen.map(|(i, port)| (i, port, preferred))
        };
        if lane == Lane::ANY {
            return against(sport, self.choose(sport, reserved));
        }
        let preferred = lane.nearest(sport, &self.range());
        against(
            preferred,
            self.choose(preferred, |p| reserved(p) || !lane.accepts(p)),
        )
        .or_else(|| against(sport, self.choose(sport, &reserved)))
    }

    /// The choice `take` makes: the index and port.
    fn choose(&self, preferred: u16, reserved: impl Fn(u16) -> bool) -> Option<(usize, u16)> {
        if self.used >= self.size {
            return None;
        }
        if let Some(i) = self.index(preferred)
            && self.is_free(i)
            && !reserved(preferred)
        {
            return Some((i, preferred));
        }
        let mut i = self.cursor % self.size;
        let mut seen = 0;
        while seen < self.size {
            let word = self.bits.get(i / 64).copied().unwrap_or(!0);
            if i.is_multiple_of(64) && word == !0 {
                // A full word: skip 64 ports at once.
                let step = 64.min(self.size - i);
                seen += step;
                i = (i + step) % self.size;
                continue;
            }
            let port = self.lo.wrapping_add(i as u16);
            if self.is_free(i) && !reserved(port) {
                return Some((i, port));
            }
            seen += 1;
            i = (i + 1) % self.size;
        }
        None
    }

    /// Returns a port taken before; ports outside the range are ignored.
    pub fn release(&mut self, port: u16) {
        if let Some(i) = self.index(port)
            && !self.is_free(i)
        {
            self.mark(i, false);
            self.used -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_preferred_then_rotates() {
        let mut p = PortPool::new(&(1000..=1009));
        assert_eq!(p.capacity(), 10);
        assert_eq!(p.take(1005, |_| false), Some(1005));
        assert_eq!(p.take(1005, |_| false), Some(1000));
        assert_eq!(p.take(80, |_| false), Some(1001));
        assert_eq!(p.take(80, |x| x == 1002), Some(1003));
        let mut got: Vec<u16> = (0..6).filter_map(|_| p.take(1, |_| false)).collect();
        got.sort_unstable();
        assert_eq!(got, [1002, 1004, 1006, 1007, 1008, 1009]);
        assert_eq!(p.take(1, |_| false), None);
        assert_eq!(p.used(), 10);
        p.release(1004);
        p.release(1004);
        p.release(9);
        assert_eq!(p.used(), 9);
        assert_eq!(p.take(1, |_| false), Some(1004));
    }

    #[test]
    fn full_words_are_skipped_and_the_last_partial_word_works() {
        let mut p = PortPool::new(&(1..=130));
        let mut taken: Vec<u16> = (0..130).filter_map(|_| p.take(0, |_| false)).collect();
        taken.sort_unstable();
        assert_eq!(taken, (1..=130).collect::<Vec<_>>());
        p.release(129);
        assert_eq!(p.take(0, |_| false), Some(129));
        assert_eq!(p.take(0, |_| false), None);
        let mut all = PortPool::new(&(1..=65535));
        assert_eq!(all.take(65535, |_| false), Some(65535));
        assert_eq!(all.take(65535, |_| false), Some(1));
    }

    #[test]
    fn a_lane_is_the_ports_of_one_residue_and_its_nearest_port_wraps() {
        let odd = Lane::new(1, 2);
        assert!(odd.accepts(40001) && !odd.accepts(40000));
        assert_eq!(Lane::new(5, 2), odd, "the index is taken modulo the count");
        let range = 40000..=40099;
        assert_eq!(odd.nearest(40001, &range), 40001);
        assert_eq!(odd.nearest(40000, &range), 40001);
        assert_eq!(odd.nearest(40099, &range), 40099);
        let even = Lane::new(0, 2);
        assert_eq!(
            even.nearest(40099, &range),
            40000,
            "wraps to the range's start"
        );
        assert_eq!(
            even.nearest(5000, &range),
            5000,
            "outside the range: as it is"
        );
        // A range with no port of the lane.
        assert_eq!(Lane::new(0, 3).nearest(11, &(10..=11)), 11);
        assert_eq!(Lane::new(2, 3).nearest(65535, &(65534..=65535)), 65534);
        assert_eq!(Lane::new(1, 3).nearest(65535, &(65534..=65535)), 65535);
        assert!(Lane::ANY.accepts(12345));
        assert_eq!(Lane::new(7, 0), Lane::ANY);
    }

    #[test]
    fn take_for_prefers_the_lane_then_any_port() {
        let mut p = PortPool::new(&(1000..=1009));
        let lane = Lane::new(1, 2);
        assert_eq!(p.take_for(1004, lane, |_| false), Some(1005));
        let mut taken = vec![1005];
        for _ in 0..4 {
            let port = p.take_for(1004, lane, |_| false).unwrap();
            assert!(lane.accepts(port), "{port}");
            taken.push(port);
        }
        // The lane is full: the rest of the pool, then nothing.
        for _ in 0..5 {
            let port = p.take_for(1004, lane, |_| false).unwrap();
            assert!(!lane.accepts(port), "{port}");
            taken.push(port);
        }
        taken.sort_unstable();
        assert_eq!(taken, (1000..=1009).collect::<Vec<_>>());
        assert_eq!(p.take_for(1004, lane, |_| false), None);
        assert_eq!(p.range(), 1000..=1009);
        // Reserved ports stay out of both.
        let mut q = PortPool::new(&(1000..=1003));
        assert_eq!(
            q.take_for(1001, lane, |x| x == 1001 || x == 1003),
            Some(1000)
        );
    }

    #[test]
    fn reserved_everywhere_means_exhausted() {
        let mut p = PortPool::new(&(10..=12));
        assert_eq!(p.take(10, |_| true), None);
        assert_eq!(p.used(), 0);
    }
}
