//! Seeds of the `pipeline` target: short conversations through the switch — L2
//! learning, the gateway, routing between networks, NAT to the uplink and back, the
//! overlay's floods, MTU cases and super-frames, and VXLAN from peers.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::harness::input::Writer;
use crate::harness::pipeline::op;

use super::frames::{Mac, Tcp};

mod overlay;
mod routing;
mod switching;

const B: Mac = [2, 0, 0, 0, 0, 0x0b];
const NET2_HOST: Mac = [2, 0, 0, 0, 2, 5];
const OVL_HOST: Mac = [2, 0, 0, 0, 3, 2];
const OUTSIDE_GW: Mac = [2, 0, 0, 0, 9, 1];

fn a4(s: &str) -> Ipv4Addr {
    s.parse().expect("literal address")
}

fn a6(s: &str) -> Ipv6Addr {
    s.parse().expect("literal address")
}

/// A conversation: records of (op, virtio_net_hdr, frame).
#[derive(Default)]
struct Talk(Writer);

impl Talk {
    fn at(self, op: u8, frame: &[u8]) -> Self {
        Talk(self.0.u8(op).record(frame))
    }

    fn vnet(self, op: u8, hdr: [u8; 10], frame: &[u8]) -> Self {
        Talk(self.0.u8(op | op::VNET).bytes(&hdr).record(frame))
    }

    fn done(self) -> Vec<u8> {
        self.0.done()
    }
}

/// Op byte for a port, moving the clock by step `t` (0-7) first.
fn port(p: u8, t: u8) -> u8 {
    p | t << 5
}

/// A TCP header of a conversation: a SYN (with an MSS option when given) or an ACK.
fn tcp(sport: u16, dport: u16, syn: bool, mss: Option<u16>) -> Tcp {
    Tcp {
        sport,
        dport,
        seq: 100,
        ack: (!syn).then_some(1),
        syn,
        mss,
        ..Tcp::default()
    }
}

pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = switching::seeds();
    out.extend(routing::seeds());
    out.extend(overlay::seeds());
    out
}
