//! When the control plane looks at a container's offloads again: after its port counted
//! new `bad_vnet_hdr` drops, but not at every tick while looks change nothing (see
//! `Manager::recheck_offloads`). Clock and counts come in; no I/O here.

use std::time::{Duration, Instant};

/// How long a port is left alone after two looks in a row that changed nothing.
const BACKOFF: Duration = Duration::from_secs(60);

/// One port's watch.
#[derive(Debug, Clone, Copy, Default)]
pub struct OffloadWatch {
    /// The port's `bad_vnet_hdr` drops at the last look.
    seen: u64,
    /// Looks in a row that changed nothing.
    fruitless: u8,
    /// No look before this.
    quiet_until: Option<Instant>,
}

impl OffloadWatch {
    /// The drops since the last look, when a look is due: there are new ones and no
    /// back-off runs (during one they add up for the next look).
    pub fn due(&mut self, dropped: u64, now: Instant) -> Option<u64> {
        if dropped == self.seen || self.quiet_until.is_some_and(|t| now < t) {
            return None;
        }
        let new = dropped.wrapping_sub(self.seen);
        self.seen = dropped;
        Some(new)
    }

    /// Records whether a look turned anything off. One fruitless look is normal right
    /// after a fix (it sees frames sent before it); two in a row mean the drops have
    /// another cause, or the kernel keeps the feature on, and start the back-off.
    pub fn looked(&mut self, changed: bool, now: Instant) {
        if changed {
            self.fruitless = 0;
            return;
        }
        self.fruitless += 1;
        if self.fruitless >= 2 {
            self.fruitless = 0;
            self.quiet_until = Some(now + BACKOFF);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_follow_new_drops_and_back_off_after_two_fruitless_ones() {
        let t0 = Instant::now();
        let mut w = OffloadWatch::default();
        assert_eq!(w.due(0, t0), None, "no drops, no look");
        assert_eq!(w.due(5, t0), Some(5));
        w.looked(true, t0);
        assert_eq!(w.due(5, t0), None, "nothing new");
        // The late drops right after a fix: one fruitless look, no back-off.
        assert_eq!(w.due(7, t0), Some(2));
        w.looked(false, t0);
        assert_eq!(w.due(9, t0), Some(2));
        w.looked(false, t0);
        // Backing off: drops add up for the look after it.
        assert_eq!(w.due(20, t0 + Duration::from_secs(30)), None);
        assert_eq!(w.due(20, t0 + BACKOFF), Some(11));
    }
}
