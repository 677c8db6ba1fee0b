//! The userspace ceiling of vswitch's overlay path: one container veth bridged to one
//! VXLAN peer on the same ports and offload code the daemon uses (an AF_PACKET port
//! with the vnet header, the underlay's UDP GSO and GRO sockets, the egress split of
//! super-frames into VXLAN datagrams, the coalescer that joins them again), with no
//! switching at all: no FDB, no topology, no pipeline, one VNI, one peer.
//!
//! ```sh
//! ip netns exec HOST cargo run --release -p vswitch --example vtep_forward -- \
//!     VETH LOCAL_IP PEER_IP VNI MTU [UNDERLAY_IF]
//! ```
//!
//! The lab bench runs it on both hosts as the `ports` variant of the overlay scenario,
//! in place of the daemons: the gap from kernel VXLAN to this forwarder is the kernel
//! copies, the userspace split and coalescing, and the thread hops; the gap from this
//! forwarder to vswitch is the switch (the worker loop, the pipeline, the counters).
//!
//! It runs until killed, from one thread that sleeps in `epoll_wait` like a worker.
//! What a side cannot take at once is dropped uncounted: this measures the path, not a
//! queue.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::Duration;

use vswitch::datapath::egress::{self, Outcome, Target};
use vswitch::datapath::offload::{Coalescer, Fate, VnetHdr, partial_checksum};
use vswitch::datapath::pool::{Pool, SCRATCH_EXTRA};
use vswitch::datapath::topology::OverlayParams;
use vswitch::datapath::tunnel::{RxMeta, Transmit};
use vswitch::datapath::worker::{DEFAULT_BATCH, GRO_FLOWS, GRO_SLOTS, SCRATCH, SCRATCH_PER_FRAME};
use vswitch::packet::MAX_FRAME;
use vswitch::port::Port;
use vswitch::port::af_packet::PacketPort;
use vswitch::port::sys::epoll::{Epoll, Events};
use vswitch::port::underlay::{Underlay, UnderlayConfig};

const PORT_TOKEN: u64 = 0;
const TUNNEL_TOKEN: u64 = 1;

struct Args {
    veth: String,
    local: IpAddr,
    peer: IpAddr,
    vni: vtep::Vni,
    mtu: u32,
    underlay_if: Option<String>,
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1).collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("vtep_forward: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vtep_forward: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: Vec<String>) -> Result<Args, String> {
    const USAGE: &str = "usage: vtep_forward VETH LOCAL_IP PEER_IP VNI MTU [UNDERLAY_IF]";
    let (veth, local, peer, vni, mtu, underlay_if) = match args.as_slice() {
        [v, l, p, n, m] => (v, l, p, n, m, None),
        [v, l, p, n, m, u] => (v, l, p, n, m, Some(u.clone())),
        _ => return Err(USAGE.into()),
    };
    let ip = |s: &str| {
        s.parse::<IpAddr>()
            .map_err(|_| format!("{s}: not an IP address"))
    };
    Ok(Args {
        veth: veth.clone(),
        local: ip(local)?,
        peer: ip(peer)?,
        vni: vni
            .parse()
            .ok()
            .and_then(vtep::Vni::new)
            .ok_or(format!("{vni}: not a VNI (0-16777215)"))?,
        mtu: mtu.parse().map_err(|_| format!("{mtu}: not an MTU"))?,
        underlay_if,
    })
}

/// The forwarder's state: both ports and the buffers between them.
struct Forwarder {
    port: PacketPort,
    underlay: Underlay,
    pool: Pool,
    meta: Vec<RxMeta>,
    txs: Vec<Transmit>,
    /// Pool buffers queued for the veth.
    to_port: Vec<u32>,
    gro: Coalescer,
    ov: OverlayParams,
    peers: vtep::PeerTable,
    args: Args,
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = UnderlayConfig::new(args.local);
    cfg.interface.clone_from(&args.underlay_if);
    let mut peers = vtep::PeerTable::new();
    peers.add(args.peer, vtep::PeerVnis::All)?;
    let mut f = Forwarder {
        port: PacketPort::open(&args.veth)?,
        underlay: Underlay::open(&cfg)?,
        pool: Pool::new(DEFAULT_BATCH, SCRATCH),
        meta: vec![RxMeta::default(); DEFAULT_BATCH],
        txs: Vec::with_capacity(4 * SCRATCH),
        to_port: Vec::with_capacity(SCRATCH),
        gro: Coalescer::with_capacity(GRO_FLOWS, GRO_SLOTS, MAX_FRAME + SCRATCH_EXTRA),
        ov: OverlayParams {
            local: args.local,
            vxlan_port: cfg.port,
            src_ports: cfg.src_ports,
            mss_clamp: false,
        },
        peers,
        args,
    };
    let epoll = Epoll::new()?;
    epoll.add(f.port.as_fd(), PORT_TOKEN)?;
    epoll.add(f.underlay.as_fd(), TUNNEL_TOKEN)?;
    let mut events = Events::with_capacity(2);
    loop {
        epoll.wait(&mut events, Some(Duration::from_millis(100)))?;
        for token in events.iter().map(|e| e.token) {
            match token {
                PORT_TOKEN => f.encapsulate_batch()?,
                _ => f.decapsulate_batch()?,
            }
        }
    }
}

impl Forwarder {
    /// One batch from the veth, split and encapsulated for the peer.
    fn encapsulate_batch(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        let n = self.port.recv_batch(self.pool.rx())?;
        let peers = [self.args.peer];
        let target = Target {
            vni: self.args.vni,
            peers: &peers,
            exclusive: true,
            mtu: self.args.mtu,
            gateway: Ipv4Addr::UNSPECIFIED,
        };
        for i in 0..n as u32 {
            if self.pool.scratch_left() < SCRATCH_PER_FRAME {
                self.send_tunnel()?;
            }
            let router_mac = fdb::MacAddr([0; 6]);
            let out = egress::to_peers(
                &mut self.pool,
                i,
                &target,
                &self.ov,
                router_mac,
                &mut self.txs,
            );
            // A frame too big for the tunnel: the ICMP error goes back to its sender.
            if let Outcome::Reply(s) = out {
                self.to_port.push(s);
            }
        }
        self.send_tunnel()?;
        self.send_port()
    }

    /// One batch of VXLAN reads, decapsulated and coalesced into super-frames.
    fn decapsulate_batch(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        let n = self.underlay.recv_batch(self.pool.rx(), &mut self.meta)?;
        let vnis = [self.args.vni];
        for i in 0..n {
            let meta = self.meta[i];
            let len = self.pool.get(i as u32).len();
            let seg = meta.segment_size.map_or(len, usize::from).max(1);
            let single = seg >= len;
            let mut off = 0;
            while off < len {
                if self.pool.scratch_left() == 0 {
                    self.send_port()?;
                }
                let start = off;
                off = (off + seg).min(len);
                let datagram = &self.pool.get(i as u32).frame()[start..off];
                let Ok(d) = vtep::decapsulate(datagram, meta.src.ip(), &vnis[..], &self.peers)
                else {
                    continue;
                };
                let inner = &datagram[d.inner.clone()];
                // As the worker: a GRO read passed the kernel's UDP checksum check.
                let push = if single {
                    self.gro.push(inner)
                } else {
                    self.gro.push_trusted(inner)
                };
                if let Some(slot) = push.ready {
                    self.queue_coalesced(slot)?;
                }
                if let Fate::Pass(_) = push.frame {
                    let Some(s) = self.pool.scratch() else {
                        continue;
                    };
                    let (src, dst) = self.pool.pair(i as u32, s);
                    dst.set_frame(&src.frame()[start + d.inner.start..start + d.inner.end]);
                    dst.vnet = partial_checksum(dst.frame())
                        .unwrap_or(VnetHdr::NONE)
                        .to_bytes();
                    self.to_port.push(s);
                }
            }
        }
        while let Some(slot) = self.gro.flush() {
            self.queue_coalesced(slot)?;
        }
        self.send_port()
    }

    /// Queues a finished super-frame for the veth: its buffer is swapped with a scratch
    /// buffer of the same size, as the worker does.
    fn queue_coalesced(&mut self, slot: usize) -> Result<(), Box<dyn std::error::Error>> {
        if self.pool.scratch_left() == 0 {
            self.send_port()?;
        }
        if let Some(s) = self.pool.scratch() {
            std::mem::swap(&mut self.gro.slots_mut()[slot], self.pool.get_mut(s));
            self.to_port.push(s);
        }
        Ok(())
    }

    /// Sends what is queued for the peer; takes the scratch buffers back once nothing
    /// queued for the veth still uses them.
    fn send_tunnel(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        self.underlay.send_batch(self.pool.all(), &self.txs)?;
        self.txs.clear();
        if self.to_port.is_empty() {
            self.pool.release_scratch();
        }
        Ok(())
    }

    fn send_port(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        self.port.send_batch(self.pool.all(), &self.to_port)?;
        self.to_port.clear();
        if self.txs.is_empty() {
            self.pool.release_scratch();
        }
        Ok(())
    }
}
