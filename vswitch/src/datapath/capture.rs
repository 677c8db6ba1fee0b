//! Packet capture at the worker's I/O boundary: copies of the frames a port receives or
//! is given to send, and of the VXLAN datagrams the underlay carries, for `vswitch
//! capture`.
//!
//! Cost when nobody captures: the worker reads [`CaptureHub::is_active`] (one relaxed
//! atomic load) once per received batch and once per flush, never per frame. Only when a
//! capture runs does it look at the sessions and copy what matches.
//!
//! A copy goes into a session's bounded channel with `try_send`; when the consumer (the
//! API thread streaming to the CLI) is behind and the channel is full, the frame is not
//! copied and the session counts it as dropped. The datapath never waits for a capture.
//!
//! What a session sees ([`Scope`]): one port; a network (its local ports, plus the inner
//! frames it sends to and receives from VTEPs), or only its VXLAN datagrams (outer); all
//! of the underlay (outer); the uplink. The underlay hands the worker UDP payloads only,
//! so outer captures get Ethernet, IP and UDP headers built from what the worker knows
//! (addresses, ports; the MACs are zero).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use fdb::{NetworkId, PortId};
use vtep::Vni;

use super::topology::Topology;

/// Which way a frame crossed the capture point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received by the switch.
    Rx,
    /// Sent by the switch.
    Tx,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Rx => "rx",
            Direction::Tx => "tx",
        }
    }
}

/// Where a frame was captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    Port(PortId),
    Uplink,
    /// The underlay, to or from this VTEP (an inner frame, or a whole datagram).
    Vtep(IpAddr),
}

/// What a capture session sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Port(PortId),
    /// A network's frames: at its local ports and, unless `outer`, the inner frames of
    /// its VNI on the underlay. With `outer`, only its VXLAN datagrams, whole.
    Network {
        id: NetworkId,
        vni: Option<Vni>,
        outer: bool,
    },
    /// Every VXLAN datagram, whole.
    Underlay,
    Uplink,
}

/// One copied frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    pub point: Point,
    pub dir: Direction,
    /// An Ethernet frame.
    pub data: Vec<u8>,
}

/// One running capture.
#[derive(Debug)]
pub struct Session {
    pub scope: Scope,
    tx: Sender<Captured>,
    /// Stop copying after this many frames.
    limit: u64,
    copied: AtomicU64,
    dropped: AtomicU64,
}

impl Session {
    /// Frames copied so far.
    pub fn copied(&self) -> u64 {
        self.copied.load(Relaxed)
    }

    /// Frames that matched but were not copied because the consumer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// Copies a frame if there is room; `make` builds the copy.
    fn offer(&self, make: impl FnOnce() -> Option<Captured>) {
        if self.copied.load(Relaxed) >= self.limit {
            return;
        }
        if self.tx.is_full() {
            self.dropped.fetch_add(1, Relaxed);
            return;
        }
        let Some(c) = make() else {
            return;
        };
        match self.tx.try_send(c) {
            Ok(()) => {
                self.copied.fetch_add(1, Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    fn sees_port(&self, topo: &Topology, port: PortId) -> bool {
        match self.scope {
            Scope::Port(p) => p == port,
            Scope::Network {
                id, outer: false, ..
            } => topo.ports.get(&port).is_some_and(|p| p.network == id),
            Scope::Uplink => port == super::worker::UPLINK_PORT,
            Scope::Network { outer: true, .. } | Scope::Underlay => false,
        }
    }
}

/// The registry of running captures, shared by the control plane and the workers.
#[derive(Debug)]
pub struct CaptureHub {
    active: AtomicBool,
    sessions: ArcSwap<Vec<Arc<Session>>>,
    /// Serialises starts and stops (the workers never take it).
    edit: Mutex<()>,
}

impl Default for CaptureHub {
    fn default() -> Self {
        CaptureHub {
            active: AtomicBool::new(false),
            sessions: ArcSwap::from_pointee(Vec::new()),
            edit: Mutex::new(()),
        }
    }
}

impl CaptureHub {
    /// Whether any capture runs: the worker's only question when none does.
    #[inline]
    pub fn is_active(&self) -> bool {
        self.active.load(Relaxed)
    }

    /// Starts a session that keeps up to `depth` frames waiting and copies at most
    /// `limit` frames in all.
    pub fn start(
        &self,
        scope: Scope,
        limit: Option<u64>,
        depth: usize,
    ) -> (Arc<Session>, Receiver<Captured>) {
        let (tx, rx) = crossbeam_channel::bounded(depth.max(1));
        let session = Arc::new(Session {
            scope,
            tx,
            limit: limit.unwrap_or(u64::MAX),
            copied: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        });
        let _g = self.edit.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = Vec::clone(&self.sessions.load());
        next.push(session.clone());
        self.sessions.store(Arc::new(next));
        self.active.store(true, Relaxed);
        (session, rx)
    }

    /// Ends a session; the workers stop copying for it at their next batch.
    pub fn stop(&self, session: &Arc<Session>) {
        let _g = self.edit.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = Vec::clone(&self.sessions.load());
        next.retain(|s| !Arc::ptr_eq(s, session));
        self.active.store(!next.is_empty(), Relaxed);
        self.sessions.store(Arc::new(next));
    }

    /// How many sessions run.
    pub fn len(&self) -> usize {
        self.sessions.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frames received on, or about to be sent out of, a local port (or the uplink).
    pub fn port_frames<'a>(
        &self,
        topo: &Topology,
        port: PortId,
        dir: Direction,
        frames: impl Iterator<Item = &'a [u8]> + Clone,
    ) {
        let sessions = self.sessions.load();
        let point = if port == super::worker::UPLINK_PORT {
            Point::Uplink
        } else {
            Point::Port(port)
        };
        let ts_ns = now_ns();
        for s in sessions.iter().filter(|s| s.sees_port(topo, port)) {
            for f in frames.clone() {
                s.offer(|| {
                    Some(Captured {
                        ts_ns,
                        point,
                        dir,
                        data: f.to_vec(),
                    })
                });
            }
        }
    }

    /// VXLAN datagrams (UDP payloads) between this host's `local` address and port and
    /// each datagram's `remote` one.
    pub fn tunnel_datagrams<'a>(
        &self,
        dir: Direction,
        datagrams: impl Iterator<Item = Datagram<'a>> + Clone,
    ) {
        let sessions = self.sessions.load();
        let ts_ns = now_ns();
        for s in sessions.iter() {
            let (outer, vni) = match s.scope {
                Scope::Underlay => (true, None),
                Scope::Network {
                    vni: Some(v),
                    outer,
                    ..
                } => (outer, Some(v)),
                _ => continue,
            };
            for d in datagrams.clone() {
                let Some(header) = vtep::VxlanPacket::new_checked(d.payload)
                    .ok()
                    .and_then(|p| vtep::VxlanRepr::parse(&p).ok())
                else {
                    if vni.is_none() {
                        s.offer(|| d.outer_frame(dir, ts_ns));
                    }
                    continue;
                };
                if vni.is_some_and(|v| v != header.vni) {
                    continue;
                }
                let point = Point::Vtep(d.remote.ip().to_canonical());
                if outer {
                    s.offer(|| d.outer_frame(dir, ts_ns));
                } else {
                    s.offer(|| {
                        Some(Captured {
                            ts_ns,
                            point,
                            dir,
                            data: d.payload.get(vtep::VXLAN_HLEN..)?.to_vec(),
                        })
                    });
                }
            }
        }
    }
}

/// One VXLAN datagram as the underlay socket sees it.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// This host's VTEP address and UDP port.
    pub local: SocketAddr,
    /// The peer's.
    pub remote: SocketAddr,
    /// The UDP payload: VXLAN header and inner frame.
    pub payload: &'a [u8],
}

impl Datagram<'_> {
    /// The datagram as it is on the wire: Ethernet (zero MACs), IP and UDP headers in
    /// front of the payload. `None` when the addresses are of different families.
    fn outer_frame(&self, dir: Direction, ts_ns: u64) -> Option<Captured> {
        let (src, dst) = match dir {
            Direction::Rx => (self.remote, self.local),
            Direction::Tx => (self.local, self.remote),
        };
        let eth = etherparse::PacketBuilder::ethernet2([0; 6], [0; 6]);
        let ip = match (src.ip().to_canonical(), dst.ip().to_canonical()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
            (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
            _ => return None,
        };
        let mut data = Vec::with_capacity(self.payload.len() + 62);
        ip.udp(src.port(), dst.port())
            .write(&mut data, self.payload)
            .ok()?;
        Some(Captured {
            ts_ns,
            point: Point::Vtep(self.remote.ip().to_canonical()),
            dir,
            data,
        })
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::topology::{NetworkInfo, PortInfo};

    fn topo() -> Topology {
        let mut t = Topology::default();
        for (p, n) in [(1u32, 1u16), (2, 1), (3, 2)] {
            t.ports.insert(
                PortId(p),
                PortInfo {
                    network: NetworkId(n),
                    endpoint: format!("e{p}"),
                },
            );
        }
        t.networks.insert(
            NetworkId(1),
            NetworkInfo {
                name: "n1".into(),
                mtu: 1500,
                ports: vec![PortId(1), PortId(2)],
                vni: Vni::new(42),
                gateway: "10.0.0.1".parse().unwrap(),
                subnet: "10.0.0.0/24".parse().unwrap(),
                internal: false,
            },
        );
        t
    }

    fn vxlan(vni: u32, inner: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; vtep::VXLAN_HLEN];
        vtep::VxlanRepr {
            vni: Vni::new(vni).unwrap(),
        }
        .write(&mut d)
        .unwrap();
        d.extend_from_slice(inner);
        d
    }

    #[test]
    fn inactive_until_a_session_starts_and_after_it_stops() {
        let hub = CaptureHub::default();
        assert!(!hub.is_active());
        let (s, _rx) = hub.start(Scope::Port(PortId(1)), None, 4);
        assert!(hub.is_active());
        let (s2, _rx2) = hub.start(Scope::Uplink, None, 4);
        hub.stop(&s);
        assert!(hub.is_active());
        hub.stop(&s2);
        assert!(!hub.is_active());
        assert!(hub.is_empty());
    }

    #[test]
    fn port_and_network_scopes_copy_what_they_see() {
        let hub = CaptureHub::default();
        let t = topo();
        let (_a, port1) = hub.start(Scope::Port(PortId(1)), None, 8);
        let net = Scope::Network {
            id: NetworkId(1),
            vni: Vni::new(42),
            outer: false,
        };
        let (_b, net1) = hub.start(net, None, 8);
        let frames: [&[u8]; 2] = [b"one", b"two"];
        hub.port_frames(&t, PortId(2), Direction::Tx, frames.iter().copied());
        hub.port_frames(&t, PortId(3), Direction::Rx, frames.iter().copied());
        hub.port_frames(&t, PortId(1), Direction::Rx, frames[..1].iter().copied());
        let got: Vec<Captured> = port1.try_iter().collect();
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].point, got[0].dir),
            (Point::Port(PortId(1)), Direction::Rx)
        );
        let got: Vec<(Point, Vec<u8>)> = net1.try_iter().map(|c| (c.point, c.data)).collect();
        assert_eq!(
            got,
            vec![
                (Point::Port(PortId(2)), b"one".to_vec()),
                (Point::Port(PortId(2)), b"two".to_vec()),
                (Point::Port(PortId(1)), b"one".to_vec()),
            ]
        );
    }

    #[test]
    fn a_full_channel_drops_and_counts_and_the_limit_stops_copying() {
        let hub = CaptureHub::default();
        let t = topo();
        let (s, rx) = hub.start(Scope::Port(PortId(1)), None, 2);
        let frames: [&[u8]; 5] = [b"a", b"b", b"c", b"d", b"e"];
        hub.port_frames(&t, PortId(1), Direction::Rx, frames.iter().copied());
        assert_eq!((s.copied(), s.dropped()), (2, 3));
        assert_eq!(rx.try_iter().count(), 2);
        let (s, rx) = hub.start(Scope::Port(PortId(1)), Some(3), 8);
        hub.port_frames(&t, PortId(1), Direction::Rx, frames.iter().copied());
        assert_eq!((s.copied(), s.dropped()), (3, 0));
        assert_eq!(rx.try_iter().count(), 3);
    }

    #[test]
    fn tunnel_datagrams_inner_by_vni_or_outer_with_built_headers() {
        let hub = CaptureHub::default();
        let inner_scope = Scope::Network {
            id: NetworkId(1),
            vni: Vni::new(42),
            outer: false,
        };
        let (_a, inner) = hub.start(inner_scope, None, 8);
        let (_b, outer) = hub.start(Scope::Underlay, None, 8);
        let d42 = vxlan(42, b"inner-frame");
        let d43 = vxlan(43, b"other");
        let local: SocketAddr = "192.0.2.1:4789".parse().unwrap();
        let remote: SocketAddr = "192.0.2.2:50000".parse().unwrap();
        let dgs = [&d42, &d43].map(|p| Datagram {
            local,
            remote,
            payload: p,
        });
        hub.tunnel_datagrams(Direction::Rx, dgs.iter().copied());
        let got: Vec<Captured> = inner.try_iter().collect();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data, b"inner-frame");
        assert_eq!(got[0].point, Point::Vtep(remote.ip()));
        let got: Vec<Captured> = outer.try_iter().collect();
        assert_eq!(got.len(), 2);
        let p = etherparse::SlicedPacket::from_ethernet(&got[0].data).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = p.net else {
            panic!("not IPv4");
        };
        assert_eq!(ip.header().source(), [192, 0, 2, 2]);
        assert_eq!(ip.header().destination(), [192, 0, 2, 1]);
        let Some(etherparse::TransportSlice::Udp(udp)) = p.transport else {
            panic!("not UDP");
        };
        assert_eq!((udp.source_port(), udp.destination_port()), (50000, 4789));
        assert_eq!(udp.payload(), &d42[..]);
    }
}
