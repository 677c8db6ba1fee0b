//! Offload handling at the edge of the switch: the virtio_net_hdr that TAP
//! (`IFF_VNET_HDR`) and AF_PACKET (`PACKET_VNET_HDR`) ports exchange with every frame,
//! checksum completion, GSO split into the VXLAN underlay and GRO coalesce out of it.
//!
//! Everything here is a pure function of its inputs: no I/O, no clock, no logging and no
//! allocation per packet (the [`Coalescer`] allocates its output buffers once, when it is
//! built). Every input — frame bytes and header alike — may lie; the answer is then an
//! [`OffloadError`] (or, for the coalescer, a [`PassReason`]) that the daemon counts as a
//! drop reason. Nothing here panics on any input.
//!
//! Frames are Ethernet (L2): an Ethernet header, at most one 802.1Q/802.1ad tag (copied
//! into every segment as it is; two or more tags are refused), then IPv4 (options allowed
//! when splitting, not when coalescing, like Linux GRO) or IPv6 (no extension headers),
//! then TCP or UDP. The idea follows wireguard-go's `tun/offload_linux.go`, which does the
//! same at L3; the kernel's `include/linux/virtio_net.h` (`virtio_net_hdr_to_skb`,
//! `virtio_net_hdr_from_skb`) is the reference for what the header means.
//!
//! Files:
//! - [`vnet`]: [`VnetHdr`], the parsed 10-byte legacy virtio_net_hdr, and [`GsoType`];
//! - `csum`: Internet checksum arithmetic and [`complete_checksum`];
//! - `layout`: finding the IP and L4 headers inside an Ethernet frame;
//! - [`split`](mod@split): cutting a super-frame into MSS-sized frames for one
//!   `UDP_SEGMENT` send;
//! - [`gro`]: merging consecutive TCP segments back into super-frames;
//! - `fixtures`, `tests`, `gro_tests`, `proptests`: tests, with etherparse building the
//!   frames and judging the results.

mod csum;
pub mod gro;
mod layout;
mod partial;
pub mod split;
pub mod vnet;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod gro_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use csum::complete_checksum;
pub use gro::{Coalescer, Fate, PassReason, Push};
pub use partial::{decapsulated_vnet, partial_checksum};
pub use split::{
    Batches, SegmentSpec, SplitLayout, gso_mislabelled, split, super_frame_mislabelled,
};
pub use vnet::{GsoType, VnetHdr};

/// Why a frame could not be completed or split. Small and `Copy`: the daemon counts each
/// variant as a drop reason and drops the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    /// The virtio_net_hdr contradicts the frame: `csum_start`/`csum_offset` outside the
    /// frame or not at the L4 checksum field the frame has, `hdr_len` longer than the
    /// frame, or `gso_size` 0 on a GSO frame.
    #[error(
        "virtio_net_hdr does not match the frame (csum_start, csum_offset, hdr_len or gso_size)"
    )]
    BadHeader,
    /// The frame ends before the headers it declares (Ethernet, IP, TCP/UDP), or its IP
    /// length runs past its end.
    #[error("frame is shorter than its headers declare")]
    Truncated,
    /// IP or L4 header fields that cannot be: IPv4 IHL below 5, a fragment, an IPv6
    /// jumbogram (payload length 0), a TCP data offset below 5.
    #[error("malformed IP or L4 header")]
    Malformed,
    /// gso_type is TCPV4/TCPV6 but the frame is not Ethernet (one optional VLAN tag) +
    /// IPv4/IPv6 (matching the gso_type, no IPv6 extension headers) + TCP.
    #[error("TCP GSO frame does not carry TCP over the IP version its gso_type names")]
    NotTcp,
    /// gso_type is UDP_L4 but the frame is not Ethernet (+ VLAN) + IP + UDP.
    #[error("UDP GSO frame does not carry UDP")]
    NotUdp,
    /// A gso_type this code does not segment: UFO (`UDP`, IP fragmentation, long
    /// deprecated) and unknown values; also `complete_checksum` asked to complete a GSO
    /// frame (that takes a split).
    #[error("unsupported gso_type {0:?}")]
    Unsupported(GsoType),
    /// The caller's output buffer cannot hold every segment.
    #[error("output buffer too small for the segments")]
    OutputTooSmall,
    /// A segment (gso_size plus headers, or the whole non-GSO frame) is longer than the
    /// egress allows: the sender's MSS was not clamped to the overlay MTU.
    #[error("segment longer than the egress maximum frame")]
    SegmentTooBig,
}
