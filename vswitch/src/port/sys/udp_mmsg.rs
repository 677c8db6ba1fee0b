//! `recvmmsg` / `sendmmsg` of UDP datagrams, each with its peer address and a control
//! message: on receive the `UDP_GRO` segment size, on send the `UDP_SEGMENT` one.
//!
//! Message headers, iovecs, addresses and control buffers are allocated once per batch
//! object and re-pointed at the caller's buffers on every call: a batch allocates
//! nothing. One iovec per message: a received datagram lands at the frame position of a
//! `PacketBuf` (after its headroom), a sent one is a slice of a buffer.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::cmsg::{self, CMSG_BUF_LEN, CmsgBuf};
use super::cvt;
use super::udp::{decode_sockaddr, encode_sockaddr};
use crate::packet::PacketBuf;

/// The arrays one batch call points the kernel at.
struct Arrays {
    hdrs: Box<[libc::mmsghdr]>,
    iovs: Box<[libc::iovec]>,
    names: Box<[libc::sockaddr_storage]>,
    ctrls: Box<[CmsgBuf]>,
}

impl Arrays {
    fn new(capacity: usize) -> Arrays {
        let capacity = capacity.max(1);
        let iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        Arrays {
            // SAFETY: an all-zero mmsghdr is a valid value: null pointers, zero lengths.
            hdrs: (0..capacity)
                .map(|_| unsafe { std::mem::zeroed() })
                .collect(),
            iovs: vec![iov; capacity].into_boxed_slice(),
            // SAFETY: an all-zero sockaddr_storage is a valid value (AF_UNSPEC).
            names: (0..capacity)
                .map(|_| unsafe { std::mem::zeroed() })
                .collect(),
            ctrls: vec![CmsgBuf::new(); capacity].into_boxed_slice(),
        }
    }

    /// Points header `i` at its iovec, address (`namelen` bytes of it) and `ctrl_len`
    /// bytes of its control buffer (none when 0).
    fn point(&mut self, i: usize, namelen: libc::socklen_t, ctrl_len: usize) {
        let hdr = &mut self.hdrs[i];
        hdr.msg_len = 0;
        let msg = &mut hdr.msg_hdr;
        msg.msg_name = (&raw mut self.names[i]).cast();
        msg.msg_namelen = namelen;
        msg.msg_iov = &raw mut self.iovs[i];
        msg.msg_iovlen = 1;
        msg.msg_control = if ctrl_len == 0 {
            std::ptr::null_mut()
        } else {
            self.ctrls[i].0.as_mut_ptr().cast()
        };
        msg.msg_controllen = ctrl_len as _;
        msg.msg_flags = 0;
    }
}

// SAFETY: the raw pointers inside the arrays point either into the arrays themselves
// (heap slices that never move or shrink) or into buffers borrowed for one call only,
// rewritten before every syscall and never dereferenced by us afterwards; moving the
// batch to another thread moves no live borrow.
unsafe impl Send for Arrays {}

/// Preallocated arrays for receiving up to `capacity` datagrams per call.
pub struct UdpRecvBatch {
    a: Arrays,
    /// How many messages the last `recv` filled: only those may be inspected.
    filled: usize,
}

impl std::fmt::Debug for UdpRecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpRecvBatch")
            .field("capacity", &self.a.hdrs.len())
            .finish()
    }
}

impl UdpRecvBatch {
    /// Arrays for `capacity` datagrams (at least 1).
    pub fn new(capacity: usize) -> UdpRecvBatch {
        UdpRecvBatch {
            a: Arrays::new(capacity),
            filled: 0,
        }
    }

    /// Receives up to `min(capacity, bufs.len())` datagrams with one `recvmmsg`, without
    /// waiting. Each buffer is offered whole (`rx_space`, after the headroom). For
    /// `i < n`, [`len`](Self::len), [`truncated`](Self::truncated),
    /// [`source`](Self::source) and [`gro_segment_size`](Self::gro_segment_size)
    /// describe datagram `i`; its length is left to the caller to set. An error means
    /// nothing was taken.
    pub fn recv(&mut self, fd: BorrowedFd<'_>, bufs: &mut [PacketBuf]) -> io::Result<usize> {
        self.filled = 0;
        let n = bufs.len().min(self.a.hdrs.len());
        if n == 0 {
            return Ok(0);
        }
        let namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        for (i, buf) in bufs[..n].iter_mut().enumerate() {
            let space = buf.rx_space();
            self.a.iovs[i] = libc::iovec {
                iov_base: space.as_mut_ptr().cast(),
                iov_len: space.len(),
            };
            self.a.point(i, namelen, CMSG_BUF_LEN);
        }
        // SAFETY: `hdrs[..n]` are valid mmsghdrs whose iovecs point into `bufs[..n]`
        // (exclusively borrowed, alive and unmoved until this call returns) and whose
        // names and control buffers point into our own arrays; the kernel writes at most
        // the lengths given for each.
        let ret = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                self.a.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        let got = cvt(ret)? as usize;
        self.filled = got;
        Ok(got)
    }

    /// Bytes of UDP payload the kernel wrote for datagram `i` of the last `recv`.
    pub fn len(&self, i: usize) -> usize {
        self.a.hdrs[i].msg_len as usize
    }

    /// Whether datagram `i` of the last `recv` did not fit its buffer.
    pub fn truncated(&self, i: usize) -> bool {
        self.a.hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0
    }

    /// The sender of datagram `i` of the last `recv`.
    pub fn source(&self, i: usize) -> Option<SocketAddr> {
        if i >= self.filled {
            return None;
        }
        decode_sockaddr(&self.a.names[i])
    }

    /// The `UDP_GRO` segment size the kernel reported for datagram `i` of the last
    /// `recv` (present only when it coalesced datagrams into that read).
    pub fn gro_segment_size(&self, i: usize) -> Option<libc::c_int> {
        if i >= self.filled {
            return None;
        }
        // SAFETY: after a successful recvmmsg, message `i < filled` has `msg_control`
        // pointing at our control buffer `i` (or null) and `msg_controllen` lowered by
        // the kernel to the bytes it wrote there.
        unsafe { cmsg::find_int(&self.a.hdrs[i].msg_hdr, libc::SOL_UDP, libc::UDP_GRO) }
    }
}

/// One datagram (or, with `segment_size`, a run of datagrams) to send.
#[derive(Debug, Clone, Copy)]
pub struct OutDatagram<'a> {
    pub payload: &'a [u8],
    pub dst: SocketAddr,
    /// `UDP_SEGMENT`: cut `payload` into datagrams of this many bytes (the last may be
    /// shorter) in the kernel or the device.
    pub segment_size: Option<u16>,
}

/// Preallocated arrays for sending up to `capacity` messages per call.
pub struct UdpSendBatch {
    a: Arrays,
}

impl std::fmt::Debug for UdpSendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSendBatch")
            .field("capacity", &self.a.hdrs.len())
            .finish()
    }
}

impl UdpSendBatch {
    /// Arrays for `capacity` messages (at least 1).
    pub fn new(capacity: usize) -> UdpSendBatch {
        UdpSendBatch {
            a: Arrays::new(capacity),
        }
    }

    /// The most messages one `send` takes.
    pub fn capacity(&self) -> usize {
        self.a.hdrs.len()
    }

    /// Sends the first `capacity` messages of `msgs` with one `sendmmsg`, without
    /// waiting, and returns how many the kernel took, in order. Fewer than offered means
    /// the next one failed or would block (send it again to learn which). An error
    /// concerns the first message: none was taken.
    pub fn send<'a>(
        &mut self,
        fd: BorrowedFd<'_>,
        msgs: impl IntoIterator<Item = OutDatagram<'a>>,
    ) -> io::Result<usize> {
        let mut n = 0;
        for m in msgs.into_iter().take(self.a.hdrs.len()) {
            // sendmmsg only reads through this pointer, so deriving it from a shared
            // reference is sound despite the `*mut` type.
            self.a.iovs[n] = libc::iovec {
                iov_base: m.payload.as_ptr().cast_mut().cast(),
                iov_len: m.payload.len(),
            };
            let (name, namelen) = encode_sockaddr(m.dst);
            self.a.names[n] = name;
            let ctrl_len = match m.segment_size {
                Some(size) => {
                    cmsg::write_u16(&mut self.a.ctrls[n], libc::SOL_UDP, libc::UDP_SEGMENT, size)
                }
                None => 0,
            };
            self.a.point(n, namelen, ctrl_len);
            n += 1;
        }
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: `hdrs[..n]` are valid mmsghdrs whose iovecs point into the payload
        // slices (borrowed for 'a, which outlives this call) and whose names and control
        // messages point into our own arrays; sendmmsg only reads them.
        let ret = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                self.a.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        cvt(ret).map(|sent| sent as usize)
    }
}
