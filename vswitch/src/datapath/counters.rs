//! Counters on the packet path: per port rx/tx and drops by reason. Each counter block has
//! exactly one writer, so an increment is a relaxed load and store, not a locked
//! read-modify-write; readers (the control plane) may see a value a few packets old,
//! never a torn one.
//!
//! Every worker has a queue of every port, of the uplink and of the underlay, and runs
//! its own router, so what they count is kept [`PerWorker`]: one block each, written by
//! that worker alone and added up when read. One block shared by two workers would lose
//! increments (two load-and-store pairs interleaved) and bounce its cache line between
//! their CPUs on every frame.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Why a frame was dropped. Small and `Copy`: it is what the pipeline returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than an Ethernet header.
    Runt,
    /// Source MAC is multicast, broadcast or all zero (never valid as a source).
    InvalidSource,
    /// 802.1Q / 802.1ad tagged frame on an access port.
    VlanTagged,
    /// Larger than its network's MTU and not a GSO super-frame (from a local port of a
    /// network without a VNI, or from a VXLAN peer).
    OverMtu,
    /// Larger than the receive buffer (cut by the kernel).
    Truncated,
    /// The virtio_net_hdr that came with the frame is inconsistent with it, or the kernel
    /// had no virtio_net_hdr code for the frame's offload (tunnel GSO from a container).
    BadVnetHdr,
    /// The destination was learned on the port the frame came in on.
    SameSegment,
    /// From a VXLAN peer to a MAC behind another peer (split horizon: never relayed).
    VtepToVtep,
    /// The in-port or the egress port is not (or no longer) attached.
    NoSuchPort,
    /// The receive call failed (other than the interface being gone).
    RxError,
    /// Too big for the tunnel: dropped, and an ICMP "fragmentation needed" / "packet too
    /// big" sent back to the sender.
    TooBigIcmpSent,
    /// Too big for the tunnel, and nothing may be answered (not IP, an ICMP error, ...).
    TooBig,
    /// A GSO super-frame could not be cut into segments (inconsistent header).
    SplitFailed,
    /// An IPv4 packet without DF could not be fragmented (malformed options).
    FragmentFailed,
    /// The batch used up every scratch buffer (a burst of floods or splits).
    NoBuffer,
    /// An overlay network's frame, but this daemon has no underlay.
    NoUnderlay,
    /// The egress port would block: its queue is full.
    TxBusy,
    /// The kernel refused the send.
    TxError,
    /// The egress interface is administratively down.
    LinkDown,
    /// The port's interface disappeared.
    PortGone,
    /// The kernel dropped it before we read it: the port's receive queue was full.
    RxOverrun,
    /// A flood (broadcast, multicast, unknown unicast) past the in-port's
    /// `flood_limit_pps` (storm control).
    FloodLimited,
}

impl DropReason {
    pub const ALL: [DropReason; 22] = [
        DropReason::Runt,
        DropReason::InvalidSource,
        DropReason::VlanTagged,
        DropReason::OverMtu,
        DropReason::Truncated,
        DropReason::BadVnetHdr,
        DropReason::SameSegment,
        DropReason::VtepToVtep,
        DropReason::NoSuchPort,
        DropReason::RxError,
        DropReason::TooBigIcmpSent,
        DropReason::TooBig,
        DropReason::SplitFailed,
        DropReason::FragmentFailed,
        DropReason::NoBuffer,
        DropReason::NoUnderlay,
        DropReason::TxBusy,
        DropReason::TxError,
        DropReason::LinkDown,
        DropReason::PortGone,
        DropReason::RxOverrun,
        DropReason::FloodLimited,
    ];
    pub const COUNT: usize = Self::ALL.len();

    /// The name `vswitch stats` shows.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Runt => "runt",
            DropReason::InvalidSource => "invalid_source",
            DropReason::VlanTagged => "vlan_tagged",
            DropReason::OverMtu => "over_mtu",
            DropReason::Truncated => "truncated",
            DropReason::BadVnetHdr => "bad_vnet_hdr",
            DropReason::SameSegment => "same_segment",
            DropReason::VtepToVtep => "vtep_to_vtep",
            DropReason::NoSuchPort => "no_such_port",
            DropReason::RxError => "rx_error",
            DropReason::TooBigIcmpSent => "too_big_icmp_sent",
            DropReason::TooBig => "too_big",
            DropReason::SplitFailed => "split_failed",
            DropReason::FragmentFailed => "fragment_failed",
            DropReason::NoBuffer => "no_buffer",
            DropReason::NoUnderlay => "no_underlay",
            DropReason::TxBusy => "tx_busy",
            DropReason::TxError => "tx_error",
            DropReason::LinkDown => "link_down",
            DropReason::PortGone => "port_gone",
            DropReason::RxOverrun => "rx_overrun",
            DropReason::FloodLimited => "flood_limited",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A counter with a single writer (see the module doc: a block shared by workers is
/// kept [`PerWorker`]).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Relaxed).wrapping_add(n), Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// One block of `T` per worker. Worker `k` writes block `k` only, through the [`Mine`]
/// it was given; readers add the blocks up.
#[derive(Debug)]
pub struct PerWorker<T> {
    blocks: Box<[Padded<T>]>,
}

/// A block on cache lines of its own, so two workers' writes never share a line (128
/// bytes: adjacent-line prefetch pairs 64-byte lines on x86).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded<T>(T);

impl<T: Default> PerWorker<T> {
    /// Blocks for `workers` workers (at least one).
    pub fn new(workers: usize) -> Arc<PerWorker<T>> {
        Arc::new(PerWorker {
            blocks: (0..workers.max(1)).map(|_| Padded::default()).collect(),
        })
    }
}

impl<T> PerWorker<T> {
    /// Worker `worker`'s own block, to write. Workers beyond the blocks made would share
    /// one (and lose counts), so the caller sizes [`new`](Self::new) with the number of
    /// workers.
    pub fn mine(self: &Arc<Self>, worker: usize) -> Mine<T> {
        debug_assert!(worker < self.blocks.len(), "no block for worker {worker}");
        Mine {
            all: self.clone(),
            index: worker % self.blocks.len(),
        }
    }

    /// Every worker's block, to read.
    pub fn blocks(&self) -> impl Iterator<Item = &T> {
        self.blocks.iter().map(|b| &b.0)
    }

    /// One counter summed over the workers.
    pub fn sum(&self, get: impl Fn(&T) -> u64) -> u64 {
        self.blocks().map(get).fold(0, u64::wrapping_add)
    }
}

/// A worker's own block of a [`PerWorker`]: what it counts into.
#[derive(Debug)]
pub struct Mine<T> {
    all: Arc<PerWorker<T>>,
    index: usize,
}

impl<T> Clone for Mine<T> {
    fn clone(&self) -> Mine<T> {
        Mine {
            all: self.all.clone(),
            index: self.index,
        }
    }
}

impl<T> Deref for Mine<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.all.blocks[self.index].0
    }
}

/// One port's counters: one worker's block of them (see [`PerWorker`]).
#[derive(Debug, Default)]
pub struct PortCounters {
    pub rx_packets: Counter,
    pub rx_bytes: Counter,
    pub tx_packets: Counter,
    pub tx_bytes: Counter,
    drops: [Counter; DropReason::COUNT],
}

impl PortCounters {
    #[inline]
    pub fn count_drop(&self, reason: DropReason) {
        self.drops[reason.index()].add(1);
    }

    #[inline]
    pub fn count_drops(&self, reason: DropReason, n: u64) {
        if n > 0 {
            self.drops[reason.index()].add(n);
        }
    }

    /// Adds what a port dropped by itself (see `Port::take_drops`).
    pub fn add_port_drops(&self, d: &crate::port::PortDrops) {
        self.count_drops(DropReason::Truncated, d.rx_truncated);
        self.count_drops(DropReason::BadVnetHdr, d.rx_offload_unsupported);
        self.count_drops(DropReason::VlanTagged, d.rx_vlan_tagged);
        self.count_drops(DropReason::RxOverrun, d.rx_overrun);
        self.count_drops(DropReason::TxError, d.tx_refused);
        self.count_drops(DropReason::LinkDown, d.tx_link_down);
        self.count_drops(DropReason::TxBusy, d.tx_queue_full);
    }

    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()].get()
    }
}

impl PerWorker<PortCounters> {
    /// Frames dropped for `reason`, by all workers.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.sum(|c| c.drops(reason))
    }

    /// The port's counters summed over the workers, for the control plane.
    pub fn snapshot(&self) -> PortStats {
        PortStats {
            rx_packets: self.sum(|c| c.rx_packets.get()),
            rx_bytes: self.sum(|c| c.rx_bytes.get()),
            tx_packets: self.sum(|c| c.tx_packets.get()),
            tx_bytes: self.sum(|c| c.tx_bytes.get()),
            drops: DropReason::ALL
                .iter()
                .map(|r| (r.name().to_string(), self.drops(*r)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        }
    }
}

/// Counters as `vswitch stats` reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PortStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Non-zero drop counts by reason.
    pub drops: std::collections::BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_indexed_in_order_and_named_uniquely() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }

    #[test]
    fn snapshot_sums_the_workers_and_lists_only_nonzero_drops() {
        let all = PerWorker::<PortCounters>::new(2);
        let (w0, w1) = (all.mine(0), all.mine(1));
        w0.count_drop(DropReason::Runt);
        w1.count_drop(DropReason::Runt);
        w0.rx_packets.add(3);
        w1.rx_packets.add(4);
        let s = all.snapshot();
        assert_eq!(s.rx_packets, 7);
        assert_eq!(
            s.drops.into_iter().collect::<Vec<_>>(),
            vec![("runt".to_string(), 2)]
        );
    }

    /// Workers counting into the same port at once lose nothing: each has its own
    /// block (one block shared would lose increments to interleaved load-and-store).
    #[test]
    fn workers_counting_at_once_lose_nothing() {
        const WORKERS: usize = 4;
        const EACH: u64 = 200_000;
        let all = PerWorker::<PortCounters>::new(WORKERS);
        std::thread::scope(|s| {
            for k in 0..WORKERS {
                let mine = all.mine(k);
                s.spawn(move || {
                    for _ in 0..EACH {
                        mine.rx_packets.add(1);
                        mine.count_drop(DropReason::RxOverrun);
                    }
                });
            }
        });
        let s = all.snapshot();
        assert_eq!(s.rx_packets, WORKERS as u64 * EACH);
        assert_eq!(s.drops["rx_overrun"], WORKERS as u64 * EACH);
    }

    #[test]
    fn a_block_is_on_cache_lines_of_its_own() {
        let all = PerWorker::<Counter>::new(2);
        let (a, b) = (
            &*all.mine(0) as *const Counter,
            &*all.mine(1) as *const Counter,
        );
        assert!((b as usize).abs_diff(a as usize) >= 128);
    }
}
