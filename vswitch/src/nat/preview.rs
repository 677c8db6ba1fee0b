//! What the NAT would do with a packet, changing nothing: for `vswitch trace`. An
//! existing connection's translation, or the rule that would create a new one and the
//! translation it would get ([`Nat::plan`], the same decision `outbound` and `inbound`
//! make, with the same refusals: a full table, a translated flow whose reply collides
//! with a tracked one; the port is the one the pool would hand out now, which another
//! flow may take first). ICMP errors and later fragments follow the flow they belong to
//! in the datapath, and the preview answers `NotTracked` / `Fragment` for them: the
//! trace builds no fragments, and sends the router's own ICMP errors about a previewed
//! packet straight back to its sender (the packet was not translated, and made no
//! connection for the error to find).

use std::net::Ipv4Addr;
use std::time::Duration;

use super::conn::{Conn, Egress, NatKind};
use super::drop::NatDrop;
use super::packet::{self, Kind};
use super::ports::Lane;
use super::table::Nat;
use super::tuple::{Key, Side, Tuple};

/// One side of a connection as the trace shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    pub src: (Ipv4Addr, u16),
    pub dst: (Ipv4Addr, u16),
}

/// The translation a packet would get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preview {
    pub kind: NatKind,
    pub egress: Egress,
    /// `tcp`, `udp` or `icmp`.
    pub proto: &'static str,
    pub original: Endpoints,
    pub translated: Endpoints,
    /// A tracked connection's translation (else: what a new one would be).
    pub existing: bool,
}

impl Nat {
    /// What [`Nat::outbound_on`] from the worker of `lane` would do with `pkt` (an
    /// IPv4 packet from a local network), without creating, refreshing or counting
    /// anything.
    pub fn preview_outbound(&self, lane: Lane, pkt: &[u8]) -> Result<Preview, NatDrop> {
        self.preview(pkt, Side::Inside, lane)
    }

    /// What [`Nat::inbound`] would do with `pkt` (an IPv4 packet from the uplink):
    /// a tracked connection's reply, a published port, or a refusal.
    pub fn preview_inbound(&self, pkt: &[u8]) -> Result<Preview, NatDrop> {
        self.preview(pkt, Side::Outside, Lane::ANY)
    }

    fn preview(&self, pkt: &[u8], side: Side, lane: Lane) -> Result<Preview, NatDrop> {
        let p = packet::parse(pkt)?;
        let Kind::Flow { flags } = p.kind else {
            // An ICMP error follows the flow it quotes; the trace does not build those.
            return Err(NatDrop::NotTracked);
        };
        let key = Key {
            proto: p.proto,
            side,
            tuple: p.tuple,
        };
        let t = p.tuple;
        let original = Endpoints {
            src: (t.src, t.sport),
            dst: (t.dst, t.dport),
        };
        let map = self.map.pin();
        if let Some(slot) = map.get(&key) {
            let n = slot.conn.translate(slot.dir);
            return Ok(Preview {
                kind: slot.conn.kind,
                egress: slot.conn.egress(slot.dir),
                proto: p.proto.name(),
                original,
                translated: Endpoints {
                    src: (n.src, n.sport),
                    dst: (n.dst, n.dport),
                },
                existing: true,
            });
        }
        let published = self.published.load();
        let flow = self.plan(&key, flags, &published)?;
        if self.is_full() {
            return Err(NatDrop::TableFull);
        }
        let src = if flow.masquerade {
            let reserved = |port: u16| published.reserves(key.proto, port, self.external);
            let pools = self.lock();
            let port = pools[key.proto.index()]
                .peek_for(t.sport, lane, reserved)
                .ok_or(NatDrop::PortsExhausted)?;
            (self.external, port)
        } else {
            (t.src, t.sport)
        };
        // The refusal `create` makes when the translated flow's reply would collide
        // with a tracked one.
        let xlat = Tuple {
            src: src.0,
            sport: src.1,
            dst: flow.dst.0,
            dport: flow.dst.1,
        };
        let probe = Conn::new(
            key.proto,
            flow.kind,
            t,
            xlat,
            None,
            flow.state,
            Duration::ZERO,
        );
        let [_, reply_key] = probe.keys();
        if map.contains_key(&reply_key) {
            return Err(NatDrop::TupleInUse);
        }
        Ok(Preview {
            kind: flow.kind,
            egress: match flow.kind {
                NatKind::Snat => Egress::Uplink,
                NatKind::Dnat | NatKind::Hairpin => Egress::Internal,
            },
            proto: p.proto.name(),
            original,
            translated: Endpoints { src, dst: flow.dst },
            existing: false,
        })
    }
}
