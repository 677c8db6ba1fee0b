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
mod tests;
