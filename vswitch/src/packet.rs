//! `PacketBuf`: one frame in a pooled buffer, with headroom in front for the outer
//! headers of an encapsulation and the virtio_net_hdr that came with it (or goes with it).
//!
//! Buffers are allocated once per worker and reused for every batch; nothing on the
//! packet path allocates.

/// Bytes kept free in front of every received frame, enough for an outer
/// Ethernet + IPv6 + UDP + VXLAN header (14 + 40 + 8 + 8 = 70) with room to spare.
pub const HEADROOM: usize = 128;

/// The largest frame a port may hand us: a 64 KiB TSO super-frame plus its Ethernet
/// and one VLAN header.
pub const MAX_FRAME: usize = 65536 + 14 + 4;

/// Length of the virtio_net_hdr exchanged with TAP (IFF_VNET_HDR, default size) and
/// AF_PACKET (PACKET_VNET_HDR). Both ports are kept at the legacy 10-byte form.
pub const VNET_HDR_LEN: usize = 10;

/// One frame and its offload metadata.
pub struct PacketBuf {
    buf: Box<[u8]>,
    start: usize,
    len: usize,
    /// The raw virtio_net_hdr (little-endian fields). All zero means: no offload,
    /// checksums complete. See `datapath::offload` for its meaning.
    pub vnet: [u8; VNET_HDR_LEN],
}

impl std::fmt::Debug for PacketBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketBuf")
            .field("start", &self.start)
            .field("len", &self.len)
            .field("vnet", &self.vnet)
            .finish()
    }
}

impl Default for PacketBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketBuf {
    pub fn new() -> Self {
        Self::with_capacity(MAX_FRAME)
    }

    /// A buffer that holds frames of up to `frame_capacity` bytes (scratch buffers that
    /// receive a split super-frame need more than `MAX_FRAME`).
    pub fn with_capacity(frame_capacity: usize) -> Self {
        PacketBuf {
            buf: vec![0u8; HEADROOM + frame_capacity].into_boxed_slice(),
            start: HEADROOM,
            len: 0,
            vnet: [0; VNET_HDR_LEN],
        }
    }

    /// A buffer holding a copy of `frame` (tests, generated replies).
    pub fn from_frame(frame: &[u8]) -> Self {
        let mut p = Self::new();
        p.set_frame(frame);
        p
    }

    /// Empties the buffer and restores the full headroom, ready for a receive.
    pub fn reset(&mut self) {
        self.start = HEADROOM;
        self.len = 0;
        self.vnet = [0; VNET_HDR_LEN];
    }

    /// Replaces the content with a copy of `frame` (truncated to the capacity).
    pub fn set_frame(&mut self, frame: &[u8]) {
        self.reset();
        let n = frame.len().min(self.buf.len() - HEADROOM);
        self.buf[HEADROOM..HEADROOM + n].copy_from_slice(&frame[..n]);
        self.len = n;
    }

    /// The frame bytes.
    pub fn frame(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    pub fn frame_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where a receive writes: everything after the headroom. Call `set_len` after.
    pub fn rx_space(&mut self) -> &mut [u8] {
        self.start = HEADROOM;
        &mut self.buf[HEADROOM..]
    }

    /// Sets the frame length after a receive into `rx_space`.
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.buf.len() - self.start);
    }

    /// Drops `n` bytes from the end of the frame.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Bytes free in front of the frame.
    pub fn headroom(&self) -> usize {
        self.start
    }

    /// Grows the frame at the front by `n` bytes (taken from the headroom) and returns
    /// the new bytes to fill. `None` when the headroom is too small.
    pub fn push_front(&mut self, n: usize) -> Option<&mut [u8]> {
        let start = self.start.checked_sub(n)?;
        self.start = start;
        self.len += n;
        Some(&mut self.buf[start..start + n])
    }

    /// Removes `n` bytes from the front of the frame (they become headroom).
    /// `false`, and nothing changes, when the frame is shorter than `n`.
    pub fn pull_front(&mut self, n: usize) -> bool {
        if n > self.len {
            return false;
        }
        self.start += n;
        self.len -= n;
        true
    }

    /// Makes the frame `len` bytes long, growing it into the tail room.
    /// `None` when the buffer cannot hold that much.
    pub fn resize(&mut self, len: usize) -> Option<&mut [u8]> {
        if self.start + len > self.buf.len() {
            return None;
        }
        self.len = len;
        Some(self.frame_mut())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_and_pull_front_keep_the_frame() {
        let mut p = PacketBuf::from_frame(&[1, 2, 3]);
        p.push_front(2).unwrap().copy_from_slice(&[9, 8]);
        assert_eq!(p.frame(), &[9, 8, 1, 2, 3]);
        assert!(p.pull_front(2));
        assert_eq!(p.frame(), &[1, 2, 3]);
        assert!(!p.pull_front(4));
        assert!(p.push_front(HEADROOM + 1).is_none());
        assert_eq!(p.frame(), &[1, 2, 3]);
    }
}
