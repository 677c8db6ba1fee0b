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

pub mod af_packet;
pub mod sys;
pub mod tap;

use std::io;
use std::os::fd::BorrowedFd;

use crate::packet::PacketBuf;

/// What went wrong on a port.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The interface behind the port no longer exists (deleted under the switch).
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

    /// Sends `pool[i]` for each `i` in `which`, in order, and returns how many the kernel
    /// took. Fewer than `which.len()` means the rest would block and were not sent.
    fn send_batch(&mut self, pool: &[PacketBuf], which: &[u32]) -> Result<usize, PortError>;
}
