//! Counters on the packet path: per port rx/tx and drops by reason. Each counter block has
//! exactly one writer (the worker that owns the port), so an increment is a relaxed load
//! and store, not a locked read-modify-write; readers (the control plane) may see a value
//! a few packets old, never a torn one.

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
    /// Larger than the port's MTU and not a GSO super-frame.
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
}

impl DropReason {
    pub const ALL: [DropReason; 21] = [
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
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A counter with a single writer.
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

/// One port's counters, written by the worker that owns the port.
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

    /// A plain copy for the control plane.
    pub fn snapshot(&self) -> PortStats {
        PortStats {
            rx_packets: self.rx_packets.get(),
            rx_bytes: self.rx_bytes.get(),
            tx_packets: self.tx_packets.get(),
            tx_bytes: self.tx_bytes.get(),
            drops: DropReason::ALL
                .iter()
                .filter(|r| self.drops(**r) > 0)
                .map(|r| (r.name().to_string(), self.drops(*r)))
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
    fn snapshot_lists_only_nonzero_drops() {
        let c = PortCounters::default();
        c.count_drop(DropReason::Runt);
        c.count_drop(DropReason::Runt);
        c.rx_packets.add(3);
        let s = c.snapshot();
        assert_eq!(s.rx_packets, 3);
        assert_eq!(
            s.drops.into_iter().collect::<Vec<_>>(),
            vec![("runt".to_string(), 2)]
        );
    }
}
