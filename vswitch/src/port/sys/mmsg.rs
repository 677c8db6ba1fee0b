//! `recvmmsg` / `sendmmsg` of whole frames, each as two iovecs: the virtio_net_hdr
//! (`PacketBuf::vnet`) and the frame. The message headers and iovecs are allocated once
//! per port and re-pointed at the caller's buffers on every call, so a batch allocates
//! nothing.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::cvt;
use crate::packet::{PacketBuf, VNET_HDR_LEN};

/// Preallocated `mmsghdr`s and iovecs for batches of up to `capacity` frames.
pub struct MmsgBatch {
    hdrs: Box<[libc::mmsghdr]>,
    /// Two per message: `[2 * i]` the vnet header, `[2 * i + 1]` the frame.
    iovs: Box<[libc::iovec]>,
}

// SAFETY: the raw pointers inside `hdrs` and `iovs` point into buffers borrowed for the
// duration of one `recv` / `send` call only; they are rewritten before every syscall and
// never dereferenced by us, so moving the batch to another thread moves no live borrow.
unsafe impl Send for MmsgBatch {}

impl std::fmt::Debug for MmsgBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmsgBatch")
            .field("capacity", &self.hdrs.len())
            .finish()
    }
}

impl MmsgBatch {
    /// Arrays for `capacity` messages (at least 1).
    pub fn new(capacity: usize) -> MmsgBatch {
        let capacity = capacity.max(1);
        let empty_iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        let hdrs = (0..capacity)
            // SAFETY: an all-zero mmsghdr is a valid value: null pointers, zero lengths.
            .map(|_| unsafe { std::mem::zeroed::<libc::mmsghdr>() })
            .collect();
        MmsgBatch {
            hdrs,
            iovs: vec![empty_iov; 2 * capacity].into_boxed_slice(),
        }
    }

    /// The most messages one call handles.
    pub fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// Receives up to `min(capacity, bufs.len())` frames with one `recvmmsg`, without
    /// waiting. Each buffer is `reset` and offered whole (`rx_space`); afterwards, for
    /// `i < n`, [`received_len`](Self::received_len) and [`truncated`](Self::truncated)
    /// describe message `i` and `bufs[i].vnet` holds its header. The frame length is
    /// left to the caller to set. An error means no frame was taken.
    pub fn recv(&mut self, fd: BorrowedFd<'_>, bufs: &mut [PacketBuf]) -> io::Result<usize> {
        let n = bufs.len().min(self.hdrs.len());
        if n == 0 {
            return Ok(0);
        }
        for (i, buf) in bufs[..n].iter_mut().enumerate() {
            buf.reset();
            // Take the frame pointer first: `rx_space` borrows the whole buffer, the vnet
            // pointer below borrows only its field and so does not invalidate this one.
            let space = buf.rx_space();
            self.iovs[2 * i + 1] = libc::iovec {
                iov_base: space.as_mut_ptr().cast(),
                iov_len: space.len(),
            };
            self.iovs[2 * i] = libc::iovec {
                iov_base: (&raw mut buf.vnet).cast(),
                iov_len: VNET_HDR_LEN,
            };
        }
        self.point_headers(n);
        // SAFETY: `hdrs[..n]` are valid mmsghdrs whose iovecs point into `bufs[..n]`
        // (vnet header and rx space), which stay exclusively borrowed, alive and unmoved
        // until this call returns; the kernel writes at most `iov_len` bytes to each.
        let ret = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        cvt(ret).map(|got| got as usize)
    }

    /// Bytes the kernel wrote for message `i` of the last `recv`, header included.
    pub fn received_len(&self, i: usize) -> usize {
        self.hdrs[i].msg_len as usize
    }

    /// Whether message `i` of the last `recv` did not fit its buffer.
    pub fn truncated(&self, i: usize) -> bool {
        self.hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0
    }

    /// Sends `pool[w]` for the first `min(capacity, which.len())` entries `w` of `which`
    /// with one `sendmmsg`, without waiting. Returns how many the kernel took, in order;
    /// fewer than asked means the next one failed or would block (send it again to learn
    /// which). An error concerns the first frame: none was taken.
    ///
    /// # Panics
    /// If an index in `which` is out of `pool`'s bounds (a caller bug).
    pub fn send(
        &mut self,
        fd: BorrowedFd<'_>,
        pool: &[PacketBuf],
        which: &[u32],
    ) -> io::Result<usize> {
        let n = which.len().min(self.hdrs.len());
        if n == 0 {
            return Ok(0);
        }
        for (i, &w) in which[..n].iter().enumerate() {
            let buf = &pool[w as usize];
            let frame = buf.frame();
            // The kernel only reads through these pointers (sendmmsg), so handing it
            // pointers derived from shared references is sound despite the `*mut` type.
            self.iovs[2 * i] = libc::iovec {
                iov_base: buf.vnet.as_ptr().cast_mut().cast(),
                iov_len: VNET_HDR_LEN,
            };
            self.iovs[2 * i + 1] = libc::iovec {
                iov_base: frame.as_ptr().cast_mut().cast(),
                iov_len: frame.len(),
            };
        }
        self.point_headers(n);
        // SAFETY: `hdrs[..n]` are valid mmsghdrs whose iovecs point into buffers of
        // `pool`, borrowed (and so alive and unmoved) until this call returns; sendmmsg
        // only reads them.
        let ret = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        cvt(ret).map(|sent| sent as usize)
    }

    /// Points message header `i` at its two iovecs, for `i < n`.
    fn point_headers(&mut self, n: usize) {
        let iovs = self.iovs.as_mut_ptr();
        for (i, hdr) in self.hdrs[..n].iter_mut().enumerate() {
            hdr.msg_hdr.msg_name = std::ptr::null_mut();
            hdr.msg_hdr.msg_namelen = 0;
            // `2 * i + 1 < 2 * n <= iovs.len()`: in bounds, as `wrapping_add` needs to
            // yield a usable pointer; no dereference happens here.
            hdr.msg_hdr.msg_iov = iovs.wrapping_add(2 * i);
            hdr.msg_hdr.msg_iovlen = 2;
            hdr.msg_hdr.msg_control = std::ptr::null_mut();
            hdr.msg_hdr.msg_controllen = 0;
            hdr.msg_hdr.msg_flags = 0;
            hdr.msg_len = 0;
        }
    }
}
