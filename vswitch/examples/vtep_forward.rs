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
//! It runs until killed, from one thread that sleeps in `epoll_wait` like a worker, and
//! does per frame what the worker does on this path (the GSO label check, MSS clamping,
//! the split, decapsulation in place or into scratch, the coalescer) with two
//! exceptions: it decapsulates every datagram of a GRO read (the worker reuses the
//! previous datagram's verdict when the headers repeat), and it answers nothing (a
//! frame too big for the tunnel with DF is dropped, with no "fragmentation needed":
//! this forwarder is nobody's gateway). What a side cannot take at once is dropped
//! uncounted: this measures the path, not a queue.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::time::Duration;

use vswitch::datapath::egress::{self, Target};
use vswitch::datapath::offload::{Coalescer, Fate, decapsulated_vnet, super_frame_mislabelled};
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
    rx_meta: Vec<RxMeta>,
    /// Transmits queued for the peer.
    txs: Vec<Transmit>,
    /// Pool buffers queued for the veth.
    to_port: Vec<u32>,
    gro: Coalescer,
    overlay: OverlayParams,
    peers: vtep::PeerTable,
    vni: vtep::Vni,
    peer: IpAddr,
    mtu: u32,
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = UnderlayConfig::new(args.local);
    cfg.interface = args.underlay_if;
    let mut peers = vtep::PeerTable::new();
    peers.add(args.peer, vtep::PeerVnis::All)?;
    let mut f = Forwarder {
        port: PacketPort::open(&args.veth)?,
        underlay: Underlay::open(&cfg)?,
        pool: Pool::new(DEFAULT_BATCH, SCRATCH),
        rx_meta: vec![RxMeta::default(); DEFAULT_BATCH],
        txs: Vec::with_capacity(4 * SCRATCH),
        to_port: Vec::with_capacity(SCRATCH),
        gro: Coalescer::with_capacity(GRO_FLOWS, GRO_SLOTS, MAX_FRAME + SCRATCH_EXTRA),
        // As the daemon's defaults: MSS clamping on.
        overlay: OverlayParams {
            local: args.local,
            vxlan_port: cfg.port,
            src_ports: cfg.src_ports,
            mss_clamp: true,
        },
        peers,
        vni: args.vni,
        peer: args.peer,
        mtu: args.mtu,
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
                TUNNEL_TOKEN => f.decapsulate_batch()?,
                _ => {}
            }
        }
    }
}

impl Forwarder {
    /// One batch from the veth, split and encapsulated for the peer.
    fn encapsulate_batch(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        let n = self.port.recv_batch(self.pool.rx())?;
        let peers = [self.peer];
        let target = Target {
            vni: self.vni,
            peers: &peers,
            exclusive: true,
            mtu: self.mtu,
            gateway: Ipv4Addr::UNSPECIFIED,
        };
        let router_mac = fdb::MacAddr([0; 6]);
        for i in 0..n as u32 {
            // As the worker: a super-frame whose headers contradict its GSO type is dropped.
            if super_frame_mislabelled(self.pool.get(i)) {
                continue;
            }
            if self.pool.scratch_left() < SCRATCH_PER_FRAME {
                self.flush()?;
            }
            // A frame too big for the tunnel with DF set gets no "fragmentation needed"
            // here (this forwarder is nobody's gateway): the error is dropped.
            let _ = egress::to_peers(
                &mut self.pool,
                i,
                &target,
                &self.overlay,
                router_mac,
                &mut self.txs,
            );
        }
        self.flush()
    }

    /// One batch of VXLAN reads, decapsulated and coalesced into super-frames.
    fn decapsulate_batch(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        let n = self
            .underlay
            .recv_batch(self.pool.rx(), &mut self.rx_meta)?;
        let vnis = [self.vni];
        for i in 0..n as u32 {
            let meta = self.rx_meta[i as usize];
            let len = self.pool.get(i).len();
            let seg = meta.segment_size.map_or(len, usize::from).max(1);
            let single = seg >= len;
            let mut off = 0;
            while off < len {
                if !single && self.pool.scratch_left() == 0 {
                    self.flush()?;
                }
                let start = off;
                off = (off + seg).min(len);
                let datagram = &self.pool.get(i).frame()[start..off];
                // Unlike the worker, every datagram is decapsulated: the worker skips that
                // for a GRO read's datagrams whose headers repeat the previous one's.
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
                    let inner = start + d.inner.start..start + d.inner.end;
                    self.queue_inner(i, inner, single);
                }
            }
        }
        while let Some(slot) = self.gro.flush() {
            self.queue_coalesced(slot)?;
        }
        self.flush()
    }

    /// Queues the inner frame at `inner` of pool buffer `i` for the veth: in place when
    /// the datagram had the buffer to itself, else copied into scratch (as the worker).
    fn queue_inner(&mut self, i: u32, inner: std::ops::Range<usize>, single: bool) {
        let out = if single {
            let buf = self.pool.get_mut(i);
            buf.pull_front(inner.start);
            buf.truncate(inner.len());
            i
        } else {
            let Some(s) = self.pool.scratch() else {
                return;
            };
            let (src, dst) = self.pool.pair(i, s);
            dst.set_frame(&src.frame()[inner]);
            s
        };
        let buf = self.pool.get_mut(out);
        buf.vnet = decapsulated_vnet(buf.frame());
        self.to_port.push(out);
    }

    /// Queues a finished super-frame for the veth: its buffer is swapped with a scratch
    /// buffer of the same size, as the worker does.
    fn queue_coalesced(&mut self, slot: usize) -> Result<(), Box<dyn std::error::Error>> {
        if self.pool.scratch_left() == 0 {
            self.flush()?;
        }
        if let Some(s) = self.pool.scratch() {
            std::mem::swap(&mut self.gro.slots_mut()[slot], self.pool.get_mut(s));
            self.to_port.push(s);
        }
        Ok(())
    }

    /// Sends what is queued for the peer and for the veth, then takes every scratch
    /// buffer back. What a side cannot take now is dropped.
    fn flush(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        self.underlay.send_batch(self.pool.all(), &self.txs)?;
        self.txs.clear();
        self.port.send_batch(self.pool.all(), &self.to_port)?;
        self.to_port.clear();
        self.pool.release_scratch();
        Ok(())
    }
}
