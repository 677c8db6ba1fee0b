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

use std::ops::RangeInclusive;

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
    pub fn take(&mut self, preferred: u16, reserved: impl Fn(u16) -> bool) -> Option<u16> {
        let (i, port) = self.choose(preferred, reserved)?;
        self.mark(i, true);
        self.used += 1;
        // The scan (never the preferred port: it would have been chosen first) moves
        // the cursor on.
        if port != preferred {
            self.cursor = i + 1;
        }
        Some(port)
    }

    /// The port `take` would hand out now, without taking it.
    pub fn peek(&self, preferred: u16, reserved: impl Fn(u16) -> bool) -> Option<u16> {
        self.choose(preferred, reserved).map(|(_, port)| port)
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
    fn reserved_everywhere_means_exhausted() {
        let mut p = PortPool::new(&(10..=12));
        assert_eq!(p.take(10, |_| true), None);
        assert_eq!(p.used(), 0);
    }
}
