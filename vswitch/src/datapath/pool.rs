//! The worker's buffers: the first `rx` are what a port's batch is read into; the rest
//! are scratch, handed out during a batch for frames the switch builds (encapsulated
//! copies, GSO segments, ICMP errors, fragments, decapsulated frames) and all taken back
//! when the batch has been flushed. Allocated once; nothing on the packet path allocates.

use crate::packet::{MAX_FRAME, PacketBuf};

/// Room in a scratch buffer beyond a full frame: a 64 KiB super-frame split into
/// MTU-sized segments grows by one set of headers (and a VXLAN header) per segment.
pub const SCRATCH_EXTRA: usize = 16 * 1024;

#[derive(Debug)]
pub struct Pool {
    bufs: Vec<PacketBuf>,
    rx: usize,
    next: usize,
}

impl Pool {
    pub fn new(rx: usize, scratch: usize) -> Pool {
        let mut bufs: Vec<PacketBuf> = (0..rx).map(|_| PacketBuf::new()).collect();
        bufs.extend((0..scratch).map(|_| PacketBuf::with_capacity(MAX_FRAME + SCRATCH_EXTRA)));
        Pool { bufs, rx, next: rx }
    }

    /// The receive buffers.
    pub fn rx(&mut self) -> &mut [PacketBuf] {
        &mut self.bufs[..self.rx]
    }

    /// A fresh scratch buffer's index, or `None` when this batch used them all.
    pub fn scratch(&mut self) -> Option<u32> {
        let i = self.next;
        let buf = self.bufs.get_mut(i)?;
        buf.reset();
        self.next += 1;
        Some(i as u32)
    }

    /// Scratch buffers still free in this batch.
    pub fn scratch_left(&self) -> usize {
        self.bufs.len() - self.next
    }

    /// Takes every scratch buffer back (after the flush).
    pub fn release_scratch(&mut self) {
        self.next = self.rx;
    }

    pub fn all(&self) -> &[PacketBuf] {
        &self.bufs
    }

    pub fn get(&self, i: u32) -> &PacketBuf {
        &self.bufs[i as usize]
    }

    pub fn get_mut(&mut self, i: u32) -> &mut PacketBuf {
        &mut self.bufs[i as usize]
    }

    /// Buffer `i` (a receive buffer, or a scratch buffer already handed out) to read
    /// from, and fresh scratch buffers to write several frames into while it is borrowed.
    pub fn source_and_scratch(&mut self, i: u32) -> (&PacketBuf, Scratch<'_>) {
        // Everything before `next` is in use, the source among it; fresh ones follow.
        let (used, fresh) = self.bufs.split_at_mut(self.next);
        (
            &used[i as usize],
            Scratch {
                bufs: fresh,
                base: self.next,
                next: &mut self.next,
                from: 0,
            },
        )
    }

    /// Two distinct buffers at once: one to read from, one to write into.
    pub fn pair(&mut self, from: u32, to: u32) -> (&PacketBuf, &mut PacketBuf) {
        let (from, to) = (from as usize, to as usize);
        assert_ne!(from, to, "a buffer cannot be copied into itself");
        if from < to {
            let (a, b) = self.bufs.split_at_mut(to);
            (&a[from], &mut b[0])
        } else {
            let (a, b) = self.bufs.split_at_mut(from);
            (&b[0], &mut a[to])
        }
    }
}

/// Scratch buffers handed out while a receive buffer is borrowed.
#[derive(Debug)]
pub struct Scratch<'a> {
    bufs: &'a mut [PacketBuf],
    base: usize,
    next: &'a mut usize,
    from: usize,
}

impl Scratch<'_> {
    /// A fresh scratch buffer and its pool index, or `None` when all are in use.
    pub fn take(&mut self) -> Option<(u32, &mut PacketBuf)> {
        let k = self.from;
        let buf = self.bufs.get_mut(k)?;
        buf.reset();
        self.from += 1;
        *self.next = self.base + self.from;
        Some(((self.base + k) as u32, buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_buffer_can_be_the_source_of_more_scratch() {
        // A routed frame already in scratch, fragmented into further scratch buffers.
        let mut p = Pool::new(2, 3);
        let s = p.scratch().unwrap();
        p.get_mut(s).set_frame(&[7, 7]);
        let (src, mut more) = p.source_and_scratch(s);
        assert_eq!(src.frame(), &[7, 7]);
        let (a, _) = more.take().unwrap();
        let (b, _) = more.take().unwrap();
        assert_eq!((a, b), (3, 4));
        assert!(more.take().is_none());
        assert_eq!(p.scratch_left(), 0);
    }

    #[test]
    fn scratch_runs_out_and_comes_back() {
        let mut p = Pool::new(2, 2);
        assert_eq!(p.rx().len(), 2);
        assert_eq!(
            (p.scratch(), p.scratch(), p.scratch()),
            (Some(2), Some(3), None)
        );
        p.release_scratch();
        assert_eq!(p.scratch(), Some(2));
        p.get_mut(0).set_frame(&[1, 2, 3]);
        let (src, dst) = p.pair(0, 2);
        dst.set_frame(src.frame());
        assert_eq!(p.get(2).frame(), &[1, 2, 3]);
        let (src, mut s) = p.source_and_scratch(0);
        assert_eq!(src.frame(), &[1, 2, 3]);
        assert_eq!(s.take().map(|(i, _)| i), Some(3));
        assert!(s.take().is_none());
        assert!(p.scratch().is_none());
    }
}
