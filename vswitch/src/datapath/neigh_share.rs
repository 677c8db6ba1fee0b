//! What one worker's router hears by ARP, told to the others. Each worker keeps its own
//! neighbour caches (no locks on the packet path), but the kernel hands an ARP reply to
//! whichever worker its flow hashes to, not to the one that asked: without this, a
//! frame queued on worker A for an address would wait for an answer that worker B heard.
//! Bounded channels, never blocking: a lost message costs at most one more ARP request.

use std::net::Ipv4Addr;

use crossbeam_channel::{Receiver, Sender};
use fdb::{MacAddr, NetworkId};

use crate::l3::LearnKind;

/// Messages a worker may have waiting from the others before new ones are dropped.
const INBOX: usize = 1024;

/// Which of the router's interfaces heard it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeardAt {
    Network(NetworkId),
    Uplink,
}

/// One ARP binding as a router heard it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heard {
    pub at: HeardAt,
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
    pub kind: LearnKind,
}

/// One worker's end: senders to every other worker, and its own inbox.
#[derive(Debug)]
pub struct NeighShare {
    others: Vec<Sender<Heard>>,
    inbox: Receiver<Heard>,
}

impl NeighShare {
    /// The ends for `workers` workers, each joined to all the others.
    pub fn mesh(workers: usize) -> Vec<NeighShare> {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..workers)
            .map(|_| crossbeam_channel::bounded(INBOX))
            .unzip();
        rxs.into_iter()
            .enumerate()
            .map(|(me, inbox)| NeighShare {
                others: txs
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| *k != me)
                    .map(|(_, t)| t.clone())
                    .collect(),
                inbox,
            })
            .collect()
    }

    /// A worker alone: nobody to tell, nothing to hear.
    pub fn alone() -> NeighShare {
        NeighShare {
            others: Vec::new(),
            inbox: crossbeam_channel::never(),
        }
    }

    /// Tells every other worker; a full inbox loses the message.
    pub fn tell(&self, heard: Heard) {
        for o in &self.others {
            // Full or gone: the other worker asks again itself.
            let _ = o.try_send(heard);
        }
    }

    /// Whether another worker told us something (one atomic load).
    pub fn has_news(&self) -> bool {
        !self.inbox.is_empty()
    }

    /// The next thing another worker heard, if any.
    pub fn next(&self) -> Option<Heard> {
        self.inbox.try_recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heard(n: u8) -> Heard {
        Heard {
            at: HeardAt::Uplink,
            ip: Ipv4Addr::new(192, 0, 2, n),
            mac: MacAddr([2, 0, 0, 0, 0, n]),
            kind: LearnKind::Reply,
        }
    }

    #[test]
    fn each_worker_hears_the_others_not_itself() {
        let ends = NeighShare::mesh(3);
        ends[1].tell(heard(7));
        assert!(!ends[1].has_news());
        for k in [0, 2] {
            assert!(ends[k].has_news());
            assert_eq!(ends[k].next(), Some(heard(7)));
            assert_eq!(ends[k].next(), None);
        }
    }

    #[test]
    fn a_full_inbox_drops_rather_than_blocks() {
        let ends = NeighShare::mesh(2);
        for _ in 0..INBOX + 10 {
            ends[0].tell(heard(1));
        }
        let mut n = 0;
        while ends[1].next().is_some() {
            n += 1;
        }
        assert_eq!(n, INBOX);
        assert!(!NeighShare::alone().has_news());
    }
}
