//! Ports: where frames enter and leave the switch. Every port is batch-native: one call
//! reads or writes as many frames as are waiting (up to the batch size), never one
//! syscall per frame when a batch call exists for the device.
//!
//! Kinds:
//! - [`tap::TapPort`]: a TAP device the switch creates and owns (`IFF_VNET_HDR`,
//!   offloads negotiated), for VMs and as the parent of a Docker macvlan network;
//! - [`af_packet::PacketPort`]: an existing interface (the switch's end of a veth pair,
//!   or anything else) read and written through AF_PACKET with `PACKET_VNET_HDR`.
//!
//! All ioctls, socket options and `unsafe` live in [`sys`].
//!
//! A port never logs per frame and never allocates per batch. What it drops on its own
//! (a frame cut short on receive, one the kernel refused to send) it counts in
//! [`PortDrops`], which the worker collects with [`Port::take_drops`] and adds to its
//! drop counters with a reason.

pub mod af_packet;
pub mod steer;
pub mod sys;
pub mod tap;
pub mod underlay;

#[cfg(test)]
mod tests;

use std::io;
use std::os::fd::BorrowedFd;

use crate::packet::PacketBuf;

/// The most frames one `recv_batch` / `send_batch` call moves (longer slices are
/// handled in part, never overrun): the size of a port's preallocated batch arrays.
pub const MAX_BATCH: usize = 64;

/// What went wrong on a port.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The interface behind the port no longer exists (deleted under the switch). Final:
    /// every later call says the same without a syscall; the caller removes the port.
    #[error("interface {0} is gone")]
    Gone(String),
    #[error("I/O error on {port}: {source}")]
    Io {
        port: String,
        #[source]
        source: io::Error,
    },
}

/// A port's kind, as shown by `network inspect` (`Kind`) and `stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortKind {
    /// The switch end of a veth pair whose other end is in a container namespace.
    Veth,
    /// A TAP device created and owned by the switch.
    Tap,
    /// An existing interface attached by name.
    Iface,
}

/// A batch-native L2 port.
pub trait Port: Send {
    /// The interface name on the host (in the daemon's namespace).
    fn name(&self) -> &str;

    /// The descriptor to wait on for readability.
    fn as_fd(&self) -> BorrowedFd<'_>;

    /// Whether frames on this port carry a virtio_net_hdr: when true, received frames may
    /// be GSO super-frames or have partial checksums (see `PacketBuf::vnet`), and frames
    /// sent to it may too.
    fn vnet_hdr(&self) -> bool;

    /// Reads up to `bufs.len()` frames into `bufs[0..n]` and returns `n`; `Ok(0)` when
    /// nothing is waiting. Each buffer is `reset` before it is filled.
    fn recv_batch(&mut self, bufs: &mut [PacketBuf]) -> Result<usize, PortError>;

    /// Sends `pool[i]` for each `i` in `which`, in order, and returns how many of them,
    /// from the front, the port is done with: sent, or dropped and counted in
    /// [`take_drops`](Self::take_drops) (refused by the kernel, link down). Fewer than
    /// `which.len()` means the next would block; it and the rest were not sent.
    ///
    /// # Panics
    /// If an index in `which` is out of `pool`'s bounds (a caller bug, not bad input).
    fn send_batch(&mut self, pool: &[PacketBuf], which: &[u32]) -> Result<usize, PortError>;

    /// Asks the kernel whether the interface is still there: `Err(Gone)` when not, as
    /// `recv_batch` / `send_batch` would say. For the worker's housekeeping tick (one
    /// cheap syscall, never per frame), because some deletions reach neither epoll nor
    /// the receive path: an AF_PACKET socket whose link was already down when the
    /// interface was deleted hears nothing, and would only learn of it at its next send.
    fn check_alive(&mut self) -> Result<(), PortError> {
        Ok(())
    }

    /// The frames this port dropped by itself since the last call, by reason; resets the
    /// counts. Added to the trait because `recv_batch` / `send_batch` return only counts:
    /// without it a truncated receive or a refused send could not be counted as a drop.
    fn take_drops(&mut self) -> PortDrops {
        PortDrops::default()
    }
}

/// Frames a port dropped by itself, by reason (see [`Port::take_drops`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PortDrops {
    /// Received frames longer than a buffer; the kernel cut them short, we dropped them.
    pub rx_truncated: u64,
    /// Received frames the kernel could not describe in a virtio_net_hdr (a GSO type the
    /// header has no code for, e.g. UDP-tunnel GSO from a container's own VXLAN device)
    /// and discarded before handing them over.
    pub rx_offload_unsupported: u64,
    /// Received frames whose VLAN tag the kernel had moved out of the frame data (an
    /// AF_PACKET port sees it only in `PACKET_AUXDATA`): tagged frames on an access port.
    pub rx_vlan_tagged: u64,
    /// Frames the kernel dropped because the port's receive queue was full (the switch
    /// fell behind): `PACKET_STATISTICS`.
    pub rx_overrun: u64,
    /// Frames the kernel refused to send: longer than the link MTU without a GSO type, a
    /// virtio_net_hdr it does not accept, ... (`last_tx_errno` says which).
    pub tx_refused: u64,
    /// Frames not sent because the interface is administratively down.
    pub tx_link_down: u64,
    /// Frames the device queue had no room for (`ENOBUFS`).
    pub tx_queue_full: u64,
    /// The errno of the last refused or queue-full send, for a rate-limited log line.
    pub last_tx_errno: Option<i32>,
}

impl PortDrops {
    /// Whether anything was dropped.
    pub fn any(&self) -> bool {
        self.rx_truncated
            + self.rx_offload_unsupported
            + self.rx_vlan_tagged
            + self.rx_overrun
            + self.tx_refused
            + self.tx_link_down
            + self.tx_queue_full
            > 0
    }
}
