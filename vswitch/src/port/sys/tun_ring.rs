//! Batched TAP reads and writes through io_uring: one `READV` or `WRITEV` entry per
//! frame, each as two iovecs (the virtio_net_hdr in `PacketBuf::vnet`, then the frame),
//! a whole batch submitted and completed with one `io_uring_enter`.
//!
//! **Every entry carries `RWF_NOWAIT`.** Measured on Linux 6.18: a `READV` without it on
//! an empty TAP does *not* complete with `-EAGAIN`, although the file is `O_NONBLOCK`:
//! io_uring sees a pollable file, arms a poll and leaves the read pending until a frame
//! arrives, writing into the buffer whenever that is. With `RWF_NOWAIT` the same read
//! completes at once with `-EAGAIN` (and a write never goes to an io-wq worker), so every
//! entry completes inside the `io_uring_enter` that submits it. That is what lets the
//! buffers be borrowed for one call only: [`TunRing::read`] and [`TunRing::write`] return
//! only after every entry they submitted has completed, and nothing is ever in flight
//! between calls. A kernel whose tun has no `RWF_NOWAIT` support (it answers
//! `EOPNOTSUPP`) fails the probe in [`TunRing::new`], and the port uses plain syscalls.
//!
//! Entries run one after the other, in submission order, but independently: a later
//! entry may succeed after an earlier one got `-EAGAIN`. Results are returned by entry
//! index; what they mean is the caller's business. Entries are not linked: a read that
//! returns less than its buffer (every read of a frame does) would break the link, and
//! linked writes measured about 20 % slower than unlinked ones.
//!
//! The ring is set up once per port for the largest batch; the iovec and result arrays
//! are allocated with it, so a batch allocates nothing. `IORING_SETUP_SUBMIT_ALL`
//! (Linux 5.18) makes the kernel take every entry even when one fails early.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use io_uring::{IoUring, opcode, squeue, types};

use super::tun::TunFile;
use crate::packet::{PacketBuf, VNET_HDR_LEN};

/// How a TAP descriptor moves frames: in rounds of one `io_uring_enter` through a
/// [`TunRing`], or of one `readv` / `writev` (the fallback). Both report one raw result
/// per frame, bytes or `-errno` as io_uring does, so one loop above reads both alike.
#[derive(Debug)]
pub enum TunIo {
    Ring(Box<TunRing>),
    /// `last`: the result of the last syscall.
    Syscalls {
        last: [i32; 1],
    },
}

impl TunIo {
    pub const SYSCALLS: TunIo = TunIo::Syscalls { last: [0] };

    /// The most frames one round moves.
    pub fn capacity(&self) -> usize {
        match self {
            TunIo::Ring(ring) => ring.capacity(),
            TunIo::Syscalls { .. } => 1,
        }
    }

    /// Reads up to `capacity` frames into `bufs`, as [`TunRing::read`]. `Err`: the
    /// ring failed and is unusable; no frame was taken.
    pub fn read(&mut self, tun: &TunFile, bufs: &mut [PacketBuf]) -> io::Result<&[i32]> {
        match self {
            TunIo::Ring(ring) => ring.read(tun.as_fd(), bufs),
            TunIo::Syscalls { last } => {
                let Some(buf) = bufs.first_mut() else {
                    return Ok(&[]);
                };
                buf.reset();
                let mut vnet = [0u8; VNET_HDR_LEN];
                last[0] = raw_result(tun.read_frame(&mut vnet, buf.rx_space()));
                buf.vnet = vnet;
                Ok(&last[..])
            }
        }
    }

    /// Writes up to `capacity` frames of `which`, as [`TunRing::write`]. `Err`: the
    /// ring failed and is unusable; no frame was written.
    pub fn write(
        &mut self,
        tun: &TunFile,
        pool: &[PacketBuf],
        which: &[u32],
    ) -> io::Result<&[i32]> {
        match self {
            TunIo::Ring(ring) => ring.write(tun.as_fd(), pool, which),
            TunIo::Syscalls { last } => {
                let Some(&w) = which.first() else {
                    return Ok(&[]);
                };
                let buf = &pool[w as usize];
                last[0] = raw_result(tun.write_frame(&buf.vnet, buf.frame()));
                Ok(&last[..])
            }
        }
    }
}

/// A syscall's result as io_uring reports it: bytes, or `-errno`.
fn raw_result(res: io::Result<usize>) -> i32 {
    match res {
        // A TAP frame is at most 64 KiB and a header.
        Ok(len) => i32::try_from(len).unwrap_or(i32::MAX),
        Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
    }
}

/// Marks a result slot whose completion has not been seen yet.
const PENDING: i32 = i32::MIN;

/// `io_uring_enter` failures that say "try again" (no memory for requests, completion
/// queue busy) are retried this many times in one call before the ring is given up.
const MAX_TRANSIENT: u32 = 16;

/// Consecutive failed waits, while entries are still in flight, before we abort: the
/// kernel still holds pointers into the caller's buffers, so returning would let it write
/// into memory we no longer own. Unreachable unless the kernel breaks its contract
/// (with `RWF_NOWAIT` nothing stays in flight, and a wait only fails with `EINTR`).
const MAX_WAIT_FAILURES: u32 = 1000;

/// An io_uring for one TAP descriptor, with room for batches of `capacity` frames.
pub struct TunRing {
    ring: IoUring,
    /// Two per entry: `[2 * i]` the vnet header, `[2 * i + 1]` the frame.
    iovs: Box<[libc::iovec]>,
    /// The result of entry `i` of the last batch: bytes moved, or `-errno`.
    results: Box<[i32]>,
    /// A failed `io_uring_enter` may have left entries in the submission queue that
    /// point into buffers no longer borrowed: the ring is never entered again.
    broken: bool,
}

// SAFETY: the raw pointers in `iovs` (and in the entries written to the ring) point into
// buffers borrowed for the duration of one `read` / `write` call only; every entry has
// completed before the call returns, so moving the ring to another thread moves no live
// borrow. The `IoUring` itself is `Send`.
unsafe impl Send for TunRing {}

impl std::fmt::Debug for TunRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunRing")
            .field("capacity", &self.results.len())
            .field("broken", &self.broken)
            .finish()
    }
}

impl TunRing {
    /// A ring for batches of up to `capacity` frames (at least 1) on `tun`, checked
    /// with one empty `READV` with `RWF_NOWAIT`: `io_uring_setup` fails with `ENOSYS`
    /// (no io_uring), `EPERM` (`kernel.io_uring_disabled`, a seccomp profile) or
    /// `EINVAL` (a kernel older than 5.18); the probe with `EOPNOTSUPP` when tun takes
    /// no `RWF_NOWAIT`. The probe reads nothing: a zero-length read takes no frame.
    pub fn new(tun: BorrowedFd<'_>, capacity: usize) -> io::Result<TunRing> {
        let capacity = capacity.max(1);
        let entries = u32::try_from(capacity)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?
            .next_power_of_two();
        let ring = IoUring::builder().setup_submit_all().build(entries)?;
        let empty_iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        let mut ring = TunRing {
            ring,
            iovs: vec![empty_iov; 2 * capacity].into_boxed_slice(),
            results: vec![PENDING; capacity].into_boxed_slice(),
            broken: false,
        };
        let fd = types::Fd(tun.as_raw_fd());
        // SAFETY: the entry points at no memory (no iovecs); `tun` is open for the call.
        let probe = unsafe {
            ring.run(1, |_| {
                opcode::Readv::new(fd, std::ptr::null(), 0)
                    .offset(u64::MAX)
                    .rw_flags(libc::RWF_NOWAIT)
                    .build()
            })
        }?;
        match probe[0] {
            0.. => Ok(ring),
            err => Err(io::Error::from_raw_os_error(-err)),
        }
    }

    /// The most frames one call moves.
    pub fn capacity(&self) -> usize {
        self.results.len()
    }

    /// Reads up to `min(capacity, bufs.len())` frames from `tun` with one `READV` each,
    /// without waiting, and returns each entry's result: bytes read (header included)
    /// into `bufs[i]` (its `vnet` and `rx_space`), or `-errno` (`-EAGAIN`: no frame).
    /// Each buffer is `reset` first; the frame length is left to the caller to set.
    /// An error means the ring is unusable from now on and no frame was taken.
    pub fn read(&mut self, tun: BorrowedFd<'_>, bufs: &mut [PacketBuf]) -> io::Result<&[i32]> {
        let n = bufs.len().min(self.capacity());
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
        let fd = types::Fd(tun.as_raw_fd());
        let iovs = self.iovs.as_ptr();
        // SAFETY: entry `i` points at `iovs[2 * i..2 * i + 2]` (in bounds: `n <=
        // capacity`), which point into `bufs[i]`; `self.iovs` is not touched and `bufs`
        // stays exclusively borrowed, alive and unmoved until `run` returns, after
        // every entry has completed. The kernel writes at most `iov_len` to each.
        unsafe {
            self.run(n, |i| {
                opcode::Readv::new(fd, iovs.wrapping_add(2 * i), 2)
                    .offset(u64::MAX)
                    .rw_flags(libc::RWF_NOWAIT)
                    .build()
            })
        }
    }

    /// Writes `pool[w]` behind its vnet header for the first `min(capacity,
    /// which.len())` entries `w` of `which`, one `WRITEV` each, without waiting, and
    /// returns each entry's result: bytes written (header included) or `-errno`. An
    /// error means the ring is unusable from now on and no frame was written.
    ///
    /// # Panics
    /// If an index in `which` is out of `pool`'s bounds (a caller bug).
    pub fn write(
        &mut self,
        tun: BorrowedFd<'_>,
        pool: &[PacketBuf],
        which: &[u32],
    ) -> io::Result<&[i32]> {
        let n = which.len().min(self.capacity());
        for (i, &w) in which[..n].iter().enumerate() {
            let buf = &pool[w as usize];
            let frame = buf.frame();
            // The kernel only reads through these pointers (WRITEV), so handing it
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
        let fd = types::Fd(tun.as_raw_fd());
        let iovs = self.iovs.as_ptr();
        // SAFETY: entry `i` points at `iovs[2 * i..2 * i + 2]` (in bounds), which point
        // into buffers of `pool`, borrowed (so alive and unmoved) until `run` returns,
        // after every entry has completed; the kernel only reads them.
        unsafe {
            self.run(n, |i| {
                opcode::Writev::new(fd, iovs.wrapping_add(2 * i), 2)
                    .offset(u64::MAX)
                    .rw_flags(libc::RWF_NOWAIT)
                    .build()
            })
        }
    }

    /// Queues `n` entries made by `entry(i)` (tagged `i`), submits them, waits until
    /// all `n` have completed and returns their results by index.
    ///
    /// # Safety
    /// Whatever the entries point at must stay valid (and, where the kernel writes,
    /// unaliased) until this returns.
    unsafe fn run(
        &mut self,
        n: usize,
        entry: impl Fn(usize) -> squeue::Entry,
    ) -> io::Result<&[i32]> {
        if self.broken {
            return Err(io::Error::other(
                "io_uring given up after an earlier failure",
            ));
        }
        assert!(n <= self.capacity(), "batch larger than the ring");
        if n == 0 {
            return Ok(&[]);
        }
        {
            let mut sq = self.ring.submission();
            // The queue is empty between calls (every entry is taken before we return),
            // so `n <= capacity <= sq.capacity()` entries fit; checked all at once so
            // that a full queue leaves nothing half-pushed behind.
            if sq.capacity() - sq.len() < n {
                self.broken = true;
                return Err(io::Error::other("io_uring submission queue not empty"));
            }
            for i in 0..n {
                let e = entry(i).user_data(i as u64);
                // SAFETY: the caller keeps what `e` points at valid until we return,
                // and we return only once every entry pushed here has completed (or,
                // on failure, once none can still run: see below).
                if unsafe { sq.push(&e) }.is_err() {
                    // Unreachable (checked above); what was pushed must never run.
                    self.broken = true;
                    return Err(io::Error::other("io_uring submission queue full"));
                }
            }
        } // Dropping `sq` publishes the new tail.
        self.results[..n].fill(PENDING);
        let mut reaped = 0;
        let mut transient = 0;
        let mut wait_failures = 0;
        while reaped < n {
            // Submits what the kernel has not taken yet and waits for the rest. May
            // return early (a signal): the loop counts completions, not return values.
            let entered = self.ring.submit_and_wait(n - reaped);
            for cqe in self.ring.completion() {
                let i = cqe.user_data() as usize;
                if i < n && self.results[i] == PENDING {
                    self.results[i] = cqe.result();
                    reaped += 1;
                }
            }
            let Err(e) = entered else {
                wait_failures = 0;
                continue;
            };
            let retry = match e.raw_os_error() {
                Some(libc::EINTR) => true,
                Some(libc::EAGAIN | libc::EBUSY) => {
                    transient += 1;
                    transient <= MAX_TRANSIENT
                }
                _ => false,
            };
            if retry {
                continue;
            }
            // Entries the kernel has taken must complete before the buffers are let
            // go; those it has not taken stay queued and are never submitted, because
            // a broken ring is never entered again (and is dropped by its owner).
            let taken = n - self.ring.submission().len();
            if taken == reaped {
                self.broken = true;
                return Err(e);
            }
            wait_failures += 1;
            if wait_failures > MAX_WAIT_FAILURES {
                eprintln!("io_uring: entries in flight but waiting fails ({e}); aborting");
                std::process::abort();
            }
        }
        Ok(&self.results[..n])
    }
}
