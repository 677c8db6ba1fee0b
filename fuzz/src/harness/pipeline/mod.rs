//! Frames through the packet path as one worker runs it, without the I/O: the pipeline
//! (`Pipeline::process`) from local ports of bridge, routed, internal and overlay
//! networks, from VXLAN peers (after `vtep::decapsulate`, as the worker does it) and
//! from the uplink; then what the worker does with each verdict that needs no port:
//! the router (ARP, ICMP echo, routing between networks, TTL, NAT to the uplink and
//! back), `Pipeline::routed` for the frames the router sends into a network, and the
//! tunnel egress (`egress::to_peers`: MSS clamp, GSO split, checksum completion, ICMP
//! too-big answers, fragmentation). The clock moves between frames; tables expire.
//!
//! Checks, beyond "no panic": a frame never leaves its network (a forward goes to a
//! port of the ingress network, never back out of the in-port; floods and router
//! hand-offs name the ingress network); split horizon (nothing from a peer is
//! encapsulated or flooded to peers); encapsulation only in an overlay network, with
//! its VNI; whatever the router emits comes from the router's MAC (or the uplink's on
//! the uplink); every datagram queued for a peer lies inside its buffer, starts with a
//! VXLAN header of the network's VNI and fits the tunnel (the MTU plus an untagged
//! Ethernet header, so a VLAN tag takes its 4 bytes from the packet's room); a
//! frame the router sends into a network, and one from a peer switched to local ports,
//! fits that network's MTU.

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use fdb::{Fdb, FdbConfig, Location, MacAddr, NetworkId, PortId};
use vswitch::datapath::counters::PerWorker;
use vswitch::datapath::offload::{self, VnetHdr};
use vswitch::datapath::pipeline::{FrameMeta, Ingress, Pipeline, Verdict};
use vswitch::datapath::pool::Pool;
use vswitch::datapath::router::{Ctx, Out, Router, RouterCounters};
use vswitch::datapath::topology::Topology;
use vswitch::datapath::tunnel::Transmit;
use vswitch::nat::Nat;
use vswitch::packet::VNET_HDR_LEN;
use vtep::{PeerLookup, Vni};

use super::input::Input;

mod setup;
mod tunnel;

pub use setup::{
    EXTERNAL, HOST_A, REMOTE_MAC, ROUTER_MAC, UPLINK_MAC, VNI, op, peer_v4, peer_v6, topology,
};

const MAX_RECORDS: usize = 24;

thread_local! {
    /// One receive buffer and the scratch buffers, allocated once (about 5 MB).
    static POOL: RefCell<Pool> = RefCell::new(Pool::new(1, 64));
}

/// One run's switch: tables start empty but for the static entries.
struct Switch<'t> {
    topo: &'t Topology,
    pipeline: Pipeline,
    fdb: Arc<Fdb>,
    nat: Arc<Nat>,
    router: Router,
    now: Duration,
    out: Vec<Out>,
    txs: Vec<Transmit>,
}

/// Input: records, each an op byte (see [`op`]; bits 5-7 also move the clock), a
/// virtio_net_hdr when bit 4 says so, and a frame (a 16-bit length and its bytes).
pub fn run(data: &[u8]) {
    let topo = topology();
    let fdb = Arc::new(Fdb::new(FdbConfig {
        aging: Duration::from_secs(300),
        max_entries: 64,
        max_per_location: 16,
    }));
    fdb.add_static(NetworkId(3), REMOTE_MAC, Location::Vtep(peer_v4()));
    let nat = setup::nat();
    let mut sw = Switch {
        topo,
        pipeline: Pipeline::new(fdb.clone()),
        fdb,
        nat: nat.clone(),
        router: Router::new(
            Some(nat),
            PerWorker::<RouterCounters>::new(1).mine(0),
            vswitch::datapath::neigh_share::NeighShare::alone(),
        ),
        now: Duration::from_secs(1),
        out: Vec::new(),
        txs: Vec::new(),
    };
    let mut input = Input::new(data);
    POOL.with(|pool| {
        let pool = &mut *pool.borrow_mut();
        let mut n = 0;
        while !input.is_empty() && n < MAX_RECORDS {
            n += 1;
            let op = input.u8();
            let vnet: [u8; VNET_HDR_LEN] = if op & op::VNET != 0 {
                input.array()
            } else {
                [0; VNET_HDR_LEN]
            };
            let frame = input.record();
            sw.advance(pool, op >> 5);
            pool.release_scratch();
            sw.record(pool, op, vnet, frame);
        }
        pool.release_scratch();
    });
}

impl<'t> Switch<'t> {
    fn cx(&self) -> Ctx<'t> {
        Ctx {
            now: self.now,
            topo: self.topo,
        }
    }

    /// Moves the clock by one of eight steps; the worker's timers run when it moves.
    fn advance(&mut self, pool: &mut Pool, step: u8) {
        let ms = [0, 0, 0, 10, 100, 1_000, 30_000, 400_000][usize::from(step & 7)];
        if ms == 0 {
            return;
        }
        self.now += Duration::from_millis(ms);
        self.fdb.expire(self.now);
        self.nat.expire(self.now);
        pool.release_scratch();
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let cx = Ctx {
            now: self.now,
            topo: self.topo,
        };
        self.router.tick(cx, pool, &mut out);
        self.dispatch(pool, &mut out);
        self.out = out;
    }

    fn record(&mut self, pool: &mut Pool, op: u8, vnet: [u8; VNET_HDR_LEN], frame: &[u8]) {
        let kind = op & 0x0f;
        let buf = &mut pool.rx()[0];
        buf.set_frame(frame);
        buf.vnet = vnet;
        match kind {
            0..=op::PORT_MAX => self.port_frame(pool, PortId(u32::from(kind))),
            op::VXLAN_PEER => self.vxlan_datagram(pool, peer_v4()),
            op::VXLAN_PEER6 => self.vxlan_datagram(pool, peer_v6()),
            op::VXLAN_STRANGER => self.vxlan_datagram(pool, IpAddr::from([203, 0, 113, 77])),
            op::UPLINK => {
                let mut out = std::mem::take(&mut self.out);
                out.clear();
                let cx = self.cx();
                self.router.from_uplink(cx, pool, 0, &mut out);
                self.dispatch(pool, &mut out);
                self.out = out;
            }
            _ => {
                let net = NetworkId(u16::from(op >> 5 & 3) + 1);
                let b = self.pipeline.begin(self.now, self.topo);
                let v = self.pipeline.routed(&b, net, pool.get(0).frame());
                drop(b);
                self.routed_checked(net, v);
                self.tunnel_side(pool, 0, net, v);
            }
        }
    }

    fn port_frame(&mut self, pool: &mut Pool, port: PortId) {
        let buf = pool.get(0);
        // As the worker reads it: any gso_type byte marks a super-frame.
        let meta = FrameMeta {
            gso: buf.vnet[1] != 0,
        };
        let b = self.pipeline.begin(self.now, self.topo);
        let v = self
            .pipeline
            .process(&b, Ingress::Port(port), buf.frame(), meta);
        drop(b);
        let Some((net, _)) = self.topo.network_of(port) else {
            assert!(
                matches!(v, Verdict::Drop(_)),
                "a frame from no port went on: {v:?}"
            );
            return;
        };
        self.verdict_checked(net, Some(port), v);
        match v {
            Verdict::ToRouter { network } => self.route(pool, network, Some(port)),
            _ => self.tunnel_side(pool, 0, net, v),
        }
    }

    /// A datagram as the underlay hands it over: decapsulate, switch (the worker's
    /// `decap_one` for a buffer holding one datagram).
    fn vxlan_datagram(&mut self, pool: &mut Pool, src: IpAddr) {
        let topo = self.topo;
        let knows = |v: Vni| topo.vnis.contains_key(&v);
        let datagram = pool.get(0).frame();
        let Ok(d) = vtep::decapsulate(datagram, src, &knows, &topo.peers) else {
            return;
        };
        assert!(
            topo.peers.is_peer(src, d.vni),
            "decapsulated from a stranger"
        );
        let network = *topo.vnis.get(&d.vni).expect("decapsulated an unknown VNI");
        let ingress = Ingress::Vtep { ip: src, network };
        let b = self.pipeline.begin(self.now, topo);
        let v = self.pipeline.process(
            &b,
            ingress,
            &datagram[d.inner.clone()],
            FrameMeta { gso: false },
        );
        drop(b);
        self.verdict_checked(network, None, v);
        if matches!(v, Verdict::Forward(_) | Verdict::Flood { .. }) {
            // Switched to local ports, it must fit them (the router fits what it routes).
            let mtu = topo.networks[&network].mtu;
            assert!(
                d.inner.len() <= mtu as usize + 14,
                "switched a {}-byte frame from a peer into a network of MTU {mtu}",
                d.inner.len()
            );
        }
        if let Verdict::ToRouter { network } = v {
            let buf = pool.get_mut(0);
            assert!(buf.pull_front(d.inner.start));
            buf.truncate(d.inner.len());
            buf.vnet = offload::decapsulated_vnet(buf.frame());
            self.route(pool, network, None);
        }
    }

    /// What a verdict for a frame from network `net` may be.
    fn verdict_checked(&self, net: NetworkId, in_port: Option<PortId>, v: Verdict) {
        let info = &self.topo.networks[&net];
        match v {
            Verdict::Forward(p) => {
                assert_eq!(
                    self.topo.network_of(p).map(|x| x.0),
                    Some(net),
                    "left its network"
                );
                assert_ne!(Some(p), in_port, "sent back out of its in-port");
            }
            Verdict::Flood { network, vni } => {
                assert_eq!(network, net, "flooded another network");
                match in_port {
                    Some(_) => assert_eq!(vni, info.vni, "flood without the network's VNI"),
                    None => assert_eq!(vni, None, "a peer's flood relayed to peers"),
                }
            }
            Verdict::Encap { vni, .. } => {
                assert!(in_port.is_some(), "a peer's frame relayed to a peer");
                assert_eq!(Some(vni), info.vni, "encapsulated with another VNI");
            }
            Verdict::ToRouter { network } => assert_eq!(network, net, "routed from elsewhere"),
            Verdict::Drop(_) => {}
        }
    }

    /// What `Pipeline::routed` may answer for a frame the router sends into `net`.
    fn routed_checked(&self, net: NetworkId, v: Verdict) {
        let info = &self.topo.networks[&net];
        match v {
            Verdict::Forward(p) => {
                assert_eq!(
                    self.topo.network_of(p).map(|x| x.0),
                    Some(net),
                    "routed out of its network"
                );
            }
            Verdict::Flood { network, vni } => assert_eq!((network, vni), (net, info.vni)),
            Verdict::Encap { vni, .. } => assert_eq!(Some(vni), info.vni),
            Verdict::ToRouter { .. } => panic!("the router's own frame went back to it"),
            Verdict::Drop(_) => {}
        }
    }

    fn route(&mut self, pool: &mut Pool, network: NetworkId, in_port: Option<PortId>) {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let cx = self.cx();
        self.router
            .from_network(cx, pool, 0, network, in_port, &mut out);
        self.dispatch(pool, &mut out);
        self.out = out;
    }

    /// A frame the router sends into network `n` fits its MTU (`router::fit`): a GSO
    /// super-frame is cut later; any other IPv4 frame, padding included, is no longer
    /// than the MTU and an Ethernet header.
    fn fits_network(&self, pool: &Pool, n: NetworkId, s: u32) {
        let buf = pool.get(s);
        let frame = buf.frame();
        if VnetHdr::parse(&buf.vnet).is_gso() || frame.get(12..14) != Some(&[8, 0][..]) {
            return;
        }
        let mtu = self
            .topo
            .networks
            .get(&n)
            .expect("routed into no network")
            .mtu;
        assert!(
            frame.len() <= mtu as usize + 14,
            "routed into network {n:?} a {}-byte frame, over its MTU {mtu}",
            frame.len()
        );
    }

    /// Carries out what the router produced, as the worker's `dispatch` does.
    fn dispatch(&mut self, pool: &mut Pool, out: &mut Vec<Out>) {
        for o in out.drain(..) {
            match o {
                Out::Port(p, s) => {
                    from_mac(pool, s, ROUTER_MAC);
                    assert!(self.topo.ports.contains_key(&p), "router answer to no port");
                }
                Out::Uplink(s) => from_mac(pool, s, UPLINK_MAC),
                Out::Network(n, s) => {
                    from_mac(pool, s, ROUTER_MAC);
                    self.fits_network(pool, n, s);
                    let b = self.pipeline.begin(self.now, self.topo);
                    let v = self.pipeline.routed(&b, n, pool.get(s).frame());
                    drop(b);
                    self.routed_checked(n, v);
                    self.tunnel_side(pool, s, n, v);
                }
            }
        }
    }
}

/// A frame the switch built in buffer `s` must come from `mac`.
fn from_mac(pool: &Pool, s: u32, mac: MacAddr) {
    let f = pool.get(s).frame();
    assert!(f.len() >= 14, "the switch built a runt");
    assert_eq!(&f[6..12], &mac.0, "built frame from another MAC");
}
