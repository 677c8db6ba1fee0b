//! `recvmmsg` / `sendmmsg` of whole frames, each as two iovecs: the virtio_net_hdr
//! (`PacketBuf::vnet`) and the frame. The message headers and iovecs are allocated once
//! per port and re-pointed at the caller's buffers on every call, so a batch allocates
//! nothing. Received messages may carry a `PACKET_AUXDATA` control message (when the
//! socket asks for it), read back with [`MmsgBatch::vlan_tagged`].

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::cvt;
use crate::packet::{PacketBuf, VNET_HDR_LEN};

/// Preallocated `mmsghdr`s and iovecs for batches of up to `capacity` frames.
pub struct MmsgBatch {
    hdrs: Box<[libc::mmsghdr]>,
    /// Two per message: `[2 * i]` the vnet header, `[2 * i + 1]` the frame.
    iovs: Box<[libc::iovec]>,
    /// One control buffer per message, for receives (empty: none asked for).
    control: Box<[ControlBuf]>,
}

/// Room for one `cmsghdr` with a `tpacket_auxdata` (16 + 20 bytes, aligned) and more.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct ControlBuf([u8; 64]);

// From <linux/if_packet.h>: the control message's level/type and its status bit.
const PACKET_AUXDATA: libc::c_int = 8;
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;

/// `struct tpacket_auxdata`.
#[repr(C)]
#[derive(Clone, Copy)]
struct TpacketAuxdata {
    tp_status: u32,
    tp_len: u32,
    tp_snaplen: u32,
    tp_mac: u16,
    tp_net: u16,
    tp_vlan_tci: u16,
    tp_vlan_tpid: u16,
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
            control: Box::new([]),
        }
    }

    /// Like [`new`](Self::new), with a control buffer per message so that receives
    /// return the socket's `PACKET_AUXDATA`.
    pub fn with_auxdata(capacity: usize) -> MmsgBatch {
        let mut b = MmsgBatch::new(capacity);
        b.control = vec![ControlBuf([0; 64]); b.hdrs.len()].into_boxed_slice();
        b
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
        self.point_control(n);
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

    /// Whether the kernel took a VLAN tag off message `i` of the last `recv` (it is
    /// then reported in the `PACKET_AUXDATA` control message, not in the frame). Always
    /// false without [`with_auxdata`](Self::with_auxdata).
    pub fn vlan_tagged(&self, i: usize) -> bool {
        if self.control.is_empty() {
            return false;
        }
        let msg = &self.hdrs[i].msg_hdr;
        // CMSG_LEN: the header (a multiple of its own alignment already) and the data.
        let want = std::mem::size_of::<libc::cmsghdr>() + std::mem::size_of::<TpacketAuxdata>();
        // SAFETY: `msg` is the header the kernel filled in for message `i`: its control
        // pointer is `control[i]` (64 bytes, alive as long as `self`) and its
        // `msg_controllen` is what the kernel wrote there, at most 64; CMSG_FIRSTHDR /
        // CMSG_NXTHDR stay within that length and return null at its end.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
        while !cmsg.is_null() {
            // SAFETY: non-null pointers from CMSG_FIRSTHDR / CMSG_NXTHDR point to a whole
            // `cmsghdr` inside the control buffer.
            let hdr = unsafe { &*cmsg };
            if hdr.cmsg_level == libc::SOL_PACKET
                && hdr.cmsg_type == PACKET_AUXDATA
                && hdr.cmsg_len as usize >= want
            {
                // SAFETY: `cmsg_len` covers a whole `tpacket_auxdata` after the header,
                // inside the buffer; it may be unaligned, hence `read_unaligned`.
                let aux = unsafe {
                    libc::CMSG_DATA(cmsg)
                        .cast::<TpacketAuxdata>()
                        .read_unaligned()
                };
                return aux.tp_status & TP_STATUS_VLAN_VALID != 0;
            }
            // SAFETY: as for CMSG_FIRSTHDR above; `cmsg` is a header inside `msg`'s buffer.
            cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
        }
        false
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

    /// Points message header `i` at its control buffer, for `i < n` (receives only).
    fn point_control(&mut self, n: usize) {
        if self.control.is_empty() {
            return;
        }
        for (hdr, buf) in self.hdrs[..n].iter_mut().zip(self.control.iter_mut()) {
            hdr.msg_hdr.msg_control = buf.0.as_mut_ptr().cast();
            hdr.msg_hdr.msg_controllen = buf.0.len();
        }
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
