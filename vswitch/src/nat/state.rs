//! Connection states and the TCP state machine, as pure functions over a packed byte
//! that the table keeps in an `AtomicU8` (so refreshing a state is a store, not a lock).
//!
//! The TCP machine follows flags only (no sequence-window checks), per direction of
//! the connection (`Orig` = the side that sent the first packet):
//!
//! ```text
//!             SYN (orig)            SYN+ACK (reply)          ACK (orig)
//!   (new) ──────────────> SYN_SENT ───────────────> SYN_RECV ──────────> ESTABLISHED
//!   (new) ── ACK, loose ─────────────────────────────────────────────────> ESTABLISHED
//!   ESTABLISHED ── FIN (either) ──> FIN_WAIT ── FIN (the other side) ──> TIME_WAIT
//!   any state ── RST (either) ──> CLOSE
//!   TIME_WAIT | CLOSE ── SYN (orig) ──> SYN_SENT   (the same mapping is reopened)
//! ```
//!
//! Anything else leaves the state as it is (retransmissions, data, a late ACK).
//! A FIN before the handshake completes is ignored like Linux's INVALID transitions.

use std::time::Duration;

use serde::Serialize;

use super::config::Timeouts;

pub(crate) const TCP_FIN: u8 = 0x01;
pub(crate) const TCP_SYN: u8 = 0x02;
pub(crate) const TCP_RST: u8 = 0x04;
pub(crate) const TCP_ACK: u8 = 0x10;

/// The state of a tracked connection, as `nat ls` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[repr(u8)]
pub enum ConnState {
    /// TCP: SYN seen.
    SynSent = 0,
    /// TCP: SYN-ACK seen.
    SynRecv = 1,
    /// TCP: handshake done (or picked up mid-stream).
    Established = 2,
    /// TCP: one side sent FIN.
    FinWait = 3,
    /// TCP: both sides sent FIN.
    TimeWait = 4,
    /// TCP: reset.
    Close = 5,
    /// UDP: seen one way only.
    Unreplied = 6,
    /// UDP: seen both ways.
    Stream = 7,
    /// ICMP echo.
    Echo = 8,
}

impl ConnState {
    const ALL: [ConnState; 9] = [
        ConnState::SynSent,
        ConnState::SynRecv,
        ConnState::Established,
        ConnState::FinWait,
        ConnState::TimeWait,
        ConnState::Close,
        ConnState::Unreplied,
        ConnState::Stream,
        ConnState::Echo,
    ];

    /// The upper-case name (Linux conntrack's spelling where it has one).
    pub const fn name(self) -> &'static str {
        match self {
            ConnState::SynSent => "SYN_SENT",
            ConnState::SynRecv => "SYN_RECV",
            ConnState::Established => "ESTABLISHED",
            ConnState::FinWait => "FIN_WAIT",
            ConnState::TimeWait => "TIME_WAIT",
            ConnState::Close => "CLOSE",
            ConnState::Unreplied => "UNREPLIED",
            ConnState::Stream => "STREAM",
            ConnState::Echo => "ECHO",
        }
    }

    /// The idle timeout of this state.
    pub const fn timeout(self, t: &Timeouts) -> Duration {
        match self {
            ConnState::SynSent => t.tcp_syn_sent,
            ConnState::SynRecv => t.tcp_syn_recv,
            ConnState::Established => t.tcp_established,
            ConnState::FinWait => t.tcp_fin_wait,
            ConnState::TimeWait => t.tcp_time_wait,
            ConnState::Close => t.tcp_close,
            ConnState::Unreplied => t.udp,
            ConnState::Stream => t.udp_stream,
            ConnState::Echo => t.icmp,
        }
    }
}

impl std::fmt::Display for ConnState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The direction of a packet relative to the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Dir {
    /// Same direction as the packet that created the entry.
    Orig,
    /// The other way.
    Reply,
}

/// A state plus the "FIN seen" bit of each direction, packed in a byte:
/// bits 0-3 the state, bit 4 FIN from orig, bit 5 FIN from reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Packed(pub u8);

const FIN_ORIG: u8 = 0x10;
const FIN_REPLY: u8 = 0x20;

impl Packed {
    pub const fn new(state: ConnState) -> Packed {
        Packed(state as u8)
    }

    pub fn state(self) -> ConnState {
        // Only `new` and `next` build a Packed, always from a ConnState; the fallback
        // is unreachable but keeps this total.
        ConnState::ALL
            .get(usize::from(self.0 & 0x0f))
            .copied()
            .unwrap_or(ConnState::Close)
    }

    fn with_state(self, s: ConnState) -> Packed {
        Packed((self.0 & 0xf0) | s as u8)
    }

    /// The state after a packet in direction `dir`; `tcp_flags` is the TCP flags byte
    /// (ignored for UDP and ICMP).
    pub fn next(self, dir: Dir, tcp_flags: u8) -> Packed {
        use ConnState::*;
        let state = self.state();
        match state {
            Unreplied if dir == Dir::Reply => return self.with_state(Stream),
            Unreplied | Stream | Echo => return self,
            _ => {}
        }
        let (syn, ack, fin, rst) = (
            tcp_flags & TCP_SYN != 0,
            tcp_flags & TCP_ACK != 0,
            tcp_flags & TCP_FIN != 0,
            tcp_flags & TCP_RST != 0,
        );
        if rst {
            return self.with_state(Close);
        }
        if syn {
            return match (dir, ack, state) {
                (Dir::Orig, false, TimeWait | Close) => Packed::new(SynSent),
                (Dir::Reply, true, SynSent) => self.with_state(SynRecv),
                _ => self,
            };
        }
        let state = match (dir, ack, state) {
            (Dir::Orig, true, SynRecv) => Established,
            _ => state,
        };
        let mut fins = self.0 & (FIN_ORIG | FIN_REPLY);
        if fin && matches!(state, Established | FinWait) {
            fins |= if dir == Dir::Orig {
                FIN_ORIG
            } else {
                FIN_REPLY
            };
        }
        let state = match state {
            Established | FinWait if fins == FIN_ORIG | FIN_REPLY => TimeWait,
            Established if fins != 0 => FinWait,
            s => s,
        };
        Packed(fins | state as u8)
    }
}

/// The state a new connection starts in, or `None` if this packet may not create one:
/// any UDP datagram, an ICMP echo request, a TCP SYN (without ACK), or, if `loose`, a
/// TCP ACK without SYN, FIN or RST (as ESTABLISHED). `flags` is the TCP flags byte or
/// the ICMP type.
pub(crate) fn initial(proto: super::Proto, flags: u8, loose: bool) -> Option<ConnState> {
    match proto {
        super::Proto::Udp => Some(ConnState::Unreplied),
        super::Proto::Icmp => {
            (flags == super::packet::ICMP_ECHO_REQUEST).then_some(ConnState::Echo)
        }
        super::Proto::Tcp => {
            let f = flags & (TCP_SYN | TCP_ACK | TCP_FIN | TCP_RST);
            if f == TCP_SYN {
                Some(ConnState::SynSent)
            } else if loose && f == TCP_ACK {
                Some(ConnState::Established)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ConnState::*;
    use super::*;

    fn run(start: ConnState, steps: &[(Dir, u8)]) -> ConnState {
        steps
            .iter()
            .fold(Packed::new(start), |p, &(d, f)| p.next(d, f))
            .state()
    }

    const O: Dir = Dir::Orig;
    const R: Dir = Dir::Reply;

    #[test]
    fn handshake_and_close() {
        let hs = [(R, TCP_SYN | TCP_ACK), (O, TCP_ACK)];
        assert_eq!(run(SynSent, &hs[..1]), SynRecv);
        assert_eq!(run(SynSent, &hs), Established);
        let mut all = hs.to_vec();
        all.push((O, TCP_FIN | TCP_ACK));
        assert_eq!(run(SynSent, &all), FinWait);
        all.push((O, TCP_FIN | TCP_ACK)); // retransmitted FIN: still one side
        assert_eq!(run(SynSent, &all), FinWait);
        all.push((R, TCP_FIN | TCP_ACK));
        assert_eq!(run(SynSent, &all), TimeWait);
        all.push((O, TCP_ACK));
        assert_eq!(run(SynSent, &all), TimeWait);
        all.push((O, TCP_SYN));
        assert_eq!(run(SynSent, &all), SynSent);
    }

    #[test]
    fn rst_closes_and_syn_reopens() {
        assert_eq!(run(Established, &[(R, TCP_RST)]), Close);
        assert_eq!(run(SynSent, &[(R, TCP_RST | TCP_ACK)]), Close);
        assert_eq!(run(Close, &[(O, TCP_SYN)]), SynSent);
        // A reopened connection forgets the old FINs.
        let p = Packed::new(Established)
            .next(O, TCP_FIN)
            .next(R, TCP_FIN)
            .next(O, TCP_SYN);
        assert_eq!(p, Packed::new(SynSent));
        // A SYN from the reply side does not reopen.
        assert_eq!(run(Close, &[(R, TCP_SYN)]), Close);
    }

    #[test]
    fn fin_before_handshake_is_ignored() {
        assert_eq!(run(SynSent, &[(O, TCP_FIN)]), SynSent);
        assert_eq!(run(SynSent, &[(O, TCP_ACK)]), SynSent);
    }

    #[test]
    fn udp_becomes_stream_on_reply() {
        assert_eq!(run(Unreplied, &[(O, 0)]), Unreplied);
        assert_eq!(run(Unreplied, &[(R, 0)]), Stream);
        assert_eq!(run(Echo, &[(R, 0)]), Echo);
    }

    #[test]
    fn creation_rules() {
        use super::super::Proto;
        assert_eq!(initial(Proto::Tcp, TCP_SYN, false), Some(SynSent));
        assert_eq!(initial(Proto::Tcp, TCP_SYN | TCP_ACK, true), None);
        assert_eq!(initial(Proto::Tcp, TCP_ACK, true), Some(Established));
        assert_eq!(initial(Proto::Tcp, TCP_ACK, false), None);
        assert_eq!(initial(Proto::Tcp, TCP_ACK | TCP_FIN, true), None);
        assert_eq!(initial(Proto::Tcp, TCP_RST, true), None);
        assert_eq!(initial(Proto::Udp, 0, false), Some(Unreplied));
        assert_eq!(initial(Proto::Icmp, 8, false), Some(Echo));
        assert_eq!(initial(Proto::Icmp, 0, true), None);
    }
}
