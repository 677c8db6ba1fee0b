//! One neighbour entry: its private state (with what each state carries: the wait
//! queue, probe counts, deadlines), its timestamps, and the one transition that needs
//! no caller action (REACHABLE ageing into STALE).

use std::time::Duration;

use fdb::MacAddr;

use super::{NeighConfig, NeighState, QueuedFrame};

#[derive(Debug)]
pub(super) enum State {
    Incomplete {
        probes: u8,
        next: Duration,
        queue: Vec<QueuedFrame>,
    },
    Reachable {
        mac: MacAddr,
    },
    Stale {
        mac: MacAddr,
    },
    Delay {
        mac: MacAddr,
        until: Duration,
    },
    Probe {
        mac: MacAddr,
        probes: u8,
        next: Duration,
    },
    Failed {
        until: Duration,
    },
    /// Set by the control plane; never aged, evicted or changed by ARP.
    Permanent {
        mac: MacAddr,
    },
}

#[derive(Debug)]
pub(super) struct Entry {
    pub(super) state: State,
    /// Last time a lookup wanted it (or when it was created).
    pub(super) used: Duration,
    /// Last time its binding was learned (any kind).
    pub(super) updated: Duration,
    /// Last confirmation (a reply to us); drives REACHABLE.
    pub(super) confirmed: Duration,
}

impl Entry {
    pub(super) fn mac(&self) -> Option<MacAddr> {
        match self.state {
            State::Reachable { mac }
            | State::Stale { mac }
            | State::Delay { mac, .. }
            | State::Probe { mac, .. }
            | State::Permanent { mac } => Some(mac),
            State::Incomplete { .. } | State::Failed { .. } => None,
        }
    }

    pub(super) fn public_state(&self) -> NeighState {
        match self.state {
            State::Incomplete { .. } => NeighState::Incomplete,
            State::Reachable { .. } => NeighState::Reachable,
            State::Stale { .. } => NeighState::Stale,
            State::Delay { .. } => NeighState::Delay,
            State::Probe { .. } => NeighState::Probe,
            State::Failed { .. } => NeighState::Failed,
            State::Permanent { .. } => NeighState::Permanent,
        }
    }

    /// REACHABLE past its time becomes STALE. The one transition that needs no
    /// caller action, so lookups apply it too and need not wait for a tick.
    pub(super) fn age(&mut self, now: Duration, cfg: &NeighConfig) {
        if let State::Reachable { mac } = self.state
            && now >= self.confirmed.saturating_add(cfg.reachable_time)
        {
            self.state = State::Stale { mac };
        }
    }
}
