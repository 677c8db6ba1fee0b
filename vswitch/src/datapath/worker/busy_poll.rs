//! Adaptive busy polling: after a turn that carried frames, the worker keeps looking at
//! its ports with a zero `epoll_wait` timeout for a short window before it goes back to
//! sleeping in the kernel.
//!
//! Why: every hop through the switch otherwise costs a thread wakeup (the kernel marks
//! the worker runnable, the scheduler switches to it), which on a virtual machine is
//! tens of microseconds. A request/response exchange crosses the worker twice in quick
//! succession (the request out, the answer back); when the answer arrives inside the
//! window it is picked up without a wakeup. Under a bulk load the ports are ready
//! whenever the worker looks, so the window rarely runs and costs nothing; when idle the
//! worker sleeps as before. While spinning the worker yields its CPU between polls, so a
//! thread sharing it (on a small machine often the traffic's own sender) still runs.
//!
//! The price is CPU: a flow that sends one frame just under every window keeps the
//! worker spinning. The window is therefore short and configurable
//! (`[datapath] busy_poll_us`, 0 turns it off).

use std::time::{Duration, Instant};

/// The window when the configuration does not say: off. Measured on the 2-vCPU lab
/// machine under other load (overlay ping through two switches, 300 pings, twice each):
/// windows of 50, 200 and 1000 us left the median RTT where it was (290-376 us either
/// way) while the daemon's CPU time during the pings rose (1000 us: 3-6x). The wakeup it
/// saves is not what dominates there; try it where the cores are not shared.
pub const DEFAULT_BUSY_POLL: Duration = Duration::ZERO;

/// When the worker may spin instead of sleeping.
#[derive(Debug)]
pub struct BusyPoll {
    window: Duration,
    /// Spin (zero timeout) until then; `None`: sleep.
    until: Option<Instant>,
}

impl BusyPoll {
    pub fn new(window: Duration) -> BusyPoll {
        BusyPoll {
            window,
            until: None,
        }
    }

    /// The `epoll_wait` timeout for the next wait: zero inside the window, else `idle`.
    pub fn timeout(&mut self, idle: Duration) -> Duration {
        self.timeout_at(Instant::now(), idle)
    }

    fn timeout_at(&mut self, now: Instant, idle: Duration) -> Duration {
        match self.until {
            Some(t) if now < t => Duration::ZERO,
            _ => {
                self.until = None;
                idle
            }
        }
    }

    /// Whether the last `timeout` was inside the window.
    pub fn spinning(&self) -> bool {
        self.until.is_some()
    }

    /// After a turn: one that carried frames (re)opens the window; an empty one (a
    /// command, a timer) leaves it as it was.
    pub fn after_turn(&mut self, carried: bool) {
        self.after_turn_at(Instant::now(), carried);
    }

    fn after_turn_at(&mut self, now: Instant, carried: bool) {
        if carried && !self.window.is_zero() {
            self.until = Some(now + self.window);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_millis(100);

    #[test]
    fn spins_only_inside_the_window_after_traffic() {
        let t0 = Instant::now();
        let us = Duration::from_micros;
        let mut p = BusyPoll::new(us(50));
        assert_eq!(p.timeout_at(t0, IDLE), IDLE);
        assert!(!p.spinning());
        p.after_turn_at(t0, false);
        assert_eq!(
            p.timeout_at(t0, IDLE),
            IDLE,
            "a turn without frames opens nothing"
        );
        p.after_turn_at(t0, true);
        assert_eq!(p.timeout_at(t0 + us(10), IDLE), Duration::ZERO);
        assert!(p.spinning());
        assert_eq!(p.timeout_at(t0 + us(49), IDLE), Duration::ZERO);
        // More frames push the end of the window out.
        p.after_turn_at(t0 + us(40), true);
        assert_eq!(p.timeout_at(t0 + us(80), IDLE), Duration::ZERO);
        assert_eq!(p.timeout_at(t0 + us(90), IDLE), IDLE);
        assert!(!p.spinning());
        assert_eq!(p.timeout_at(t0 + us(91), IDLE), IDLE);
    }

    #[test]
    fn a_zero_window_never_spins() {
        let t0 = Instant::now();
        let mut p = BusyPoll::new(Duration::ZERO);
        p.after_turn_at(t0, true);
        assert_eq!(p.timeout_at(t0, IDLE), IDLE);
        assert!(!p.spinning());
    }
}
