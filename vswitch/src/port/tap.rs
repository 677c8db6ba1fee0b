//! TAP ports: a TAP device the switch creates (or re-attaches to) and owns, for a VM's
//! NIC or as the parent of a Docker macvlan network.
//!
//! The device is opened with `IFF_VNET_HDR` and a 10-byte virtio_net_hdr (the same as
//! AF_PACKET's, so frames pass between the two kinds untouched) and offers the kernel
//! `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`: the stack on the other side then sends us
//! 64 KiB TCP super-frames with partial checksums, and takes the same from us.
//!
//! **Batches through io_uring.** The tun character device has no `recvmmsg` /
//! `sendmmsg` (they are socket calls, and a TAP fd is not a socket; the in-kernel
//! batching of `tun_sendmsg` with `TUN_MSG_PTR` is reachable only from vhost-net), so a
//! batch is one io_uring `READV` / `WRITEV` entry per frame, all submitted and completed
//! in one `io_uring_enter` ([`sys::tun_ring`](super::sys::tun_ring) says how, and why
//! every entry carries `RWF_NOWAIT`). Where io_uring is unavailable (`io_uring_setup`
//! fails: `kernel.io_uring_disabled`, a seccomp profile, an old kernel) the port loops
//! `readv` / `writev`, one syscall per frame; which of the two is chosen once, at open,
//! and logged once per process. Either way each frame is up to 64 KiB, which is why TAP
//! matched batched AF_PACKET even with one syscall per frame in
//! `lab/userspace-ceiling.md`.
//!
//! Both move frames in rounds (one `io_uring_enter`, or one syscall) that report a raw
//! result per frame, read by one loop. Receive first submits as many reads as the last
//! call found frames, plus [`RX_SLACK`]: a read that finds the queue empty costs more
//! than a whole `readv` syscall, so an idle or lightly loaded port must not pay for 64
//! of them on every wake-up; while every read of a round finds a frame, a round of
//! twice the size follows. Send submits the whole batch; entries are independent, so a
//! frame the device had no room for (`EAGAIN`, in practice never: a TAP's send buffer
//! is unlimited) while a later one went out is counted as `tx_queue_full` rather than
//! sent again out of order.
//!
//! **Persistence.** A persistent TAP outlives the daemon, so a Docker macvlan child on
//! it survives a daemon restart; [`TapPort::open`] with the same name re-attaches.
//! [`TapPort::destroy`] clears persistence and closes: the kernel deletes the device.
//! Re-attaching works only from the namespace the device is in: a TAP moved elsewhere
//! is not found by name and a *new* one would be created.
//!
//! **Deleted under us.** After `ip link del`, reads and writes fail with `EBADFD` (the
//! descriptor is detached) and epoll reports `EPOLLERR` forever; that is `Gone`. A TAP
//! that is merely down reads nothing and refuses writes with `EIO`: counted as
//! `tx_link_down`, not gone.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use super::steer;
use super::sys::bpf::BpfProgram;
use super::sys::ifname::validate_ifname;
use super::sys::tun::{TAP_OFFLOADS, TunFile};
use super::sys::tun_ring::{TunIo, TunRing};
use super::{MAX_BATCH, Port, PortDrops, PortError};
use crate::packet::{PacketBuf, VNET_HDR_LEN};

/// Why a TAP port could not be opened, or destroyed.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    #[error("{name:?} is not a valid interface name: {source}")]
    InvalidName {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot open /dev/net/tun: {source} (is the tun module loaded, and does the daemon have CAP_NET_ADMIN?)"
    )]
    OpenDevice {
        #[source]
        source: io::Error,
    },
    #[error("{}", set_iff_message(.name, .source))]
    SetIff {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot set the virtio_net_hdr size of TAP {name} to {VNET_HDR_LEN}: {source}")]
    SetVnetHdrSize {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("the kernel refused checksum/TSO offloads on TAP {name}: {source}")]
    SetOffload {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot change whether TAP {name} persists: {source}")]
    SetPersist {
        name: String,
        #[source]
        source: io::Error,
    },
}

fn set_iff_message(name: &str, source: &io::Error) -> String {
    match source.raw_os_error() {
        Some(libc::EBUSY) => format!(
            "TAP {name} is already attached by another process (is another vswitch running?); \
             stop it or pick another name"
        ),
        Some(libc::EINVAL) => format!(
            "interface {name} exists but is not a single-queue TAP; delete it or pick another name"
        ),
        Some(libc::EPERM) => {
            format!("not allowed to create or attach TAP {name}: {source} (needs CAP_NET_ADMIN)")
        }
        _ => format!("cannot create or attach TAP {name}: {source}"),
    }
}

/// How a TAP port moves its frames; chosen once, when it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapIo {
    /// Batches through io_uring when the kernel allows it, else [`TapIo::Syscalls`].
    Auto,
    /// One `readv` / `writev` per frame: the fallback, forced (tests, comparisons).
    Syscalls,
}

/// Reads submitted beyond the number of frames the last receive found (see the module
/// doc). Measured (`port/tests/tap_bench.rs`): with 1 frame waiting a receive took
/// 3.4 us with a slack of 1, 4.3 us with 2, 5.1 us with 4 (2.3 us by syscalls); a flood
/// fills whole batches whatever the slack.
pub const RX_SLACK: usize = 1;

/// A TAP device with a virtio_net_hdr on every frame.
#[derive(Debug)]
pub struct TapPort {
    name: String,
    // Before `tun`: the ring is closed first.
    io: TunIo,
    /// How many reads the next receive through the ring submits first.
    rx_hint: usize,
    tun: TunFile,
    persist: bool,
    drops: PortDrops,
    gone: bool,
}

impl TapPort {
    /// Creates TAP `name` in the calling thread's network namespace, or re-attaches to
    /// it if it exists there and nobody holds it (a persistent TAP left by an earlier
    /// run). `persist` sets whether it outlives this port; re-attaching with `false`
    /// makes a persistent TAP go away when the port is dropped.
    ///
    /// The link is left as it was: a new TAP is down, and the daemon brings it up.
    /// Frames move through io_uring where the kernel allows it ([`TapIo::Auto`]).
    pub fn open(name: &str, persist: bool) -> Result<TapPort, TapError> {
        TapPort::open_with(name, persist, TapIo::Auto)
    }

    /// [`open`](Self::open), choosing how frames move.
    pub fn open_with(name: &str, persist: bool, io: TapIo) -> Result<TapPort, TapError> {
        TapPort::open_queue(name, persist, io, false)
    }

    /// `queues` ports on one TAP device, one per worker: with more than one, the device
    /// is multi-queue (`IFF_MULTI_QUEUE`) and spreads the frames it sends us over the
    /// queues, by `steer` (a classic BPF program, [`crate::port::steer`], run in eBPF:
    /// queue `k` is the `k`-th port returned) or else by its own flow table (a flow goes
    /// to the queue that last wrote a frame of it, a new one by its hash). A device
    /// left by a run with another queue kind cannot be re-attached (`SetIff`, `EINVAL`);
    /// delete it and connect again.
    pub fn open_queues(
        name: &str,
        persist: bool,
        queues: usize,
        steer: Option<&[libc::sock_filter]>,
    ) -> Result<Vec<TapPort>, TapError> {
        let multi = queues > 1;
        let ports = (0..queues.max(1))
            .map(|_| TapPort::open_queue(name, persist, TapIo::Auto, multi))
            .collect::<Result<Vec<_>, _>>()?;
        if let (true, Some(program)) = (multi, steer) {
            steer_queues(&ports[0], program);
        }
        Ok(ports)
    }

    fn open_queue(name: &str, persist: bool, io: TapIo, multi: bool) -> Result<TapPort, TapError> {
        validate_ifname(name).map_err(|source| TapError::InvalidName {
            name: name.to_owned(),
            source,
        })?;
        let tun = TunFile::open().map_err(|source| TapError::OpenDevice { source })?;
        let name = tun
            .set_iff_tap(name, multi)
            .map_err(|source| TapError::SetIff {
                name: name.to_owned(),
                source,
            })?;
        // From here on, an error drops `tun`: a TAP we just created is deleted with it.
        tun.set_vnet_hdr_size(VNET_HDR_LEN)
            .map_err(|source| TapError::SetVnetHdrSize {
                name: name.clone(),
                source,
            })?;
        tun.set_offload(TAP_OFFLOADS)
            .map_err(|source| TapError::SetOffload {
                name: name.clone(),
                source,
            })?;
        // Persistence last, so a failed open never leaves a new device behind.
        tun.set_persist(persist)
            .map_err(|source| TapError::SetPersist {
                name: name.clone(),
                source,
            })?;
        let io = choose_io(&tun, &name, io);
        Ok(TapPort {
            name,
            io,
            rx_hint: 1,
            tun,
            persist,
            drops: PortDrops::default(),
            gone: false,
        })
    }

    /// Deletes the device: clears persistence and closes it.
    pub fn destroy(self) -> Result<(), TapError> {
        if self.persist && !self.gone {
            self.tun
                .set_persist(false)
                .map_err(|source| TapError::SetPersist {
                    name: self.name.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    /// Whether the device outlives this port.
    pub fn is_persistent(&self) -> bool {
        self.persist
    }

    /// Whether frames move through io_uring (else one syscall per frame).
    pub fn uses_io_uring(&self) -> bool {
        matches!(self.io, TunIo::Ring(_))
    }

    fn gone(&mut self) -> PortError {
        self.gone = true;
        PortError::Gone(self.name.clone())
    }

    fn io_error(&self, source: io::Error) -> PortError {
        PortError::Io {
            port: self.name.clone(),
            source,
        }
    }

    /// The ring failed (`io_uring_enter` itself, not a frame): syscalls from now on.
    fn ring_broken(&mut self, err: &io::Error) {
        tracing::warn!(
            "TAP {}: io_uring failed ({err}); one syscall per frame from now on",
            self.name
        );
        self.io = TunIo::SYSCALLS;
    }
}

impl Port for TapPort {
    fn name(&self) -> &str {
        &self.name
    }

    fn as_fd(&self) -> BorrowedFd<'_> {
        self.tun.as_fd()
    }

    fn vnet_hdr(&self) -> bool {
        true
    }

    /// Reads in rounds (see the module doc); never more than `bufs.len()` reads in all,
    /// whatever the device does. Frames stay in queue order (entries run in order; one
    /// that found a frame after an earlier one found the queue empty is kept, behind).
    fn recv_batch(&mut self, bufs: &mut [PacketBuf]) -> Result<usize, PortError> {
        if self.gone {
            return Err(PortError::Gone(self.name.clone()));
        }
        let mut n = 0;
        let mut budget = bufs.len();
        let mut size = self.rx_hint;
        let mut failed = None;
        let mut gone = false;
        while n < bufs.len() && budget > 0 {
            let base = n;
            let k = size
                .clamp(1, self.io.capacity())
                .min(bufs.len() - base)
                .min(budget);
            let results = match self.io.read(&self.tun, &mut bufs[base..base + k]) {
                Ok(results) => results,
                Err(e) => {
                    self.ring_broken(&e);
                    continue;
                }
            };
            budget -= results.len();
            let mut more = true;
            for (i, &res) in results.iter().enumerate() {
                let buf = &mut bufs[base + i];
                match rx_outcome(res, buf.rx_space().len()) {
                    Rx::Frame(len) => {
                        buf.set_len(len);
                        // Swapping buffers moves only their pointers.
                        bufs.swap(n, base + i);
                        n += 1;
                    }
                    Rx::Truncated => self.drops.rx_truncated += 1,
                    Rx::Interrupted => {}
                    Rx::Empty => more = false,
                    Rx::Gone => {
                        more = false;
                        gone = true;
                    }
                    Rx::Failed(e) => {
                        more = false;
                        failed.get_or_insert(e);
                    }
                }
            }
            if !more {
                break;
            }
            size = 2 * k;
        }
        self.rx_hint = n + RX_SLACK;
        match (gone, failed) {
            // Frames already read are good; the next call reports Gone.
            (true, _) if n > 0 => {
                self.gone = true;
                Ok(n)
            }
            (true, _) => Err(self.gone()),
            (false, Some(e)) if n == 0 => Err(self.io_error(e)),
            _ => Ok(n),
        }
    }

    fn send_batch(&mut self, pool: &[PacketBuf], which: &[u32]) -> Result<usize, PortError> {
        if self.gone {
            return Err(PortError::Gone(self.name.clone()));
        }
        let mut done = 0;
        while done < which.len() {
            let results = match self.io.write(&self.tun, pool, &which[done..]) {
                Ok(results) => results,
                Err(e) => {
                    self.ring_broken(&e);
                    continue;
                }
            };
            let mut link_down = false;
            for (i, &res) in results.iter().enumerate() {
                match tx_outcome(res, &mut self.drops) {
                    Tx::Sent | Tx::Dropped => {}
                    Tx::LinkDown => {
                        self.drops.tx_link_down += 1;
                        link_down = true;
                    }
                    // Ring entries are independent: when a later frame went out anyway,
                    // this one is already overtaken, and sending it again would reorder
                    // (and duplicate the ones after): count it as queue full.
                    Tx::NotSent(errno) if results[i + 1..].iter().any(|&r| r >= 0) => {
                        self.drops.tx_queue_full += 1;
                        self.drops.last_tx_errno = Some(errno);
                    }
                    // Otherwise stop here: the caller sends it and the rest again.
                    Tx::NotSent(_) => return Ok(done + i),
                    Tx::Gone => return Err(self.gone()),
                    Tx::Failed(e) => return Err(self.io_error(e)),
                }
            }
            done += results.len();
            if link_down {
                // A down device refuses the rest as well: count them without trying.
                self.drops.tx_link_down += (which.len() - done) as u64;
                return Ok(which.len());
            }
        }
        Ok(done)
    }

    fn check_alive(&mut self) -> Result<(), PortError> {
        if self.gone {
            return Err(PortError::Gone(self.name.clone()));
        }
        match self.tun.attached() {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.gone()),
            Err(e) => Err(self.io_error(e)),
        }
    }

    fn take_drops(&mut self) -> PortDrops {
        std::mem::take(&mut self.drops)
    }
}

/// Gives the device `program` to choose its queues with (set on one queue, it holds for
/// all). The device's own flow table mostly agrees once a flow's answers were written
/// by the worker the switch's hash picks; the program makes the first frames of a flow
/// agree too, and spares the device a hash and a table update on every frame we write.
/// Steering is an optimisation, so where the kernel refuses it (no `CAP_BPF` or
/// `CAP_SYS_ADMIN`, a seccomp profile, a kernel before 5.1, whose eBPF lacks the 32-bit
/// jumps the translation uses) the device keeps its own choice, and the first refusal is
/// logged.
fn steer_queues(port: &TapPort, program: &[libc::sock_filter]) {
    static REFUSED_LOGGED: AtomicBool = AtomicBool::new(false);
    let steered = steer::ebpf::from_classic(program)
        .map_err(|e| e.to_string())
        .and_then(|insns| {
            BpfProgram::load_socket_filter("vsw_tap_lanes", &insns)
                .map_err(|e| format!("loading the program: {e}"))
        })
        .and_then(|prog| {
            (port.tun.set_steering_program(&prog)).map_err(|e| format!("TUNSETSTEERINGEBPF: {e}"))
        });
    if let Err(e) = steered {
        if !REFUSED_LOGGED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "TAP {}: cannot steer its queues by the switch's flow hash ({e}); the \
                 device chooses them by its own flow table",
                port.name
            );
        }
        tracing::debug!("TAP {}: not steered: {e}", port.name);
    }
}

/// Which I/O a new port uses; logged once per process, not per port.
fn choose_io(tun: &TunFile, name: &str, io: TapIo) -> TunIo {
    static RING_LOGGED: AtomicBool = AtomicBool::new(false);
    static FALLBACK_LOGGED: AtomicBool = AtomicBool::new(false);
    if io == TapIo::Syscalls {
        tracing::debug!("TAP {name}: one readv/writev per frame (asked for)");
        return TunIo::SYSCALLS;
    }
    match TunRing::new(tun.as_fd(), MAX_BATCH) {
        Ok(ring) => {
            if !RING_LOGGED.swap(true, Ordering::Relaxed) {
                tracing::info!("TAP ports read and write in batches through io_uring");
            }
            TunIo::Ring(Box::new(ring))
        }
        Err(e) => {
            if !FALLBACK_LOGGED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "io_uring is unavailable for TAP ports ({e}; see sysctl kernel.io_uring_disabled \
                     and the seccomp profile): they read and write one frame per syscall"
                );
            }
            tracing::debug!("TAP {name}: io_uring unavailable ({e}), one syscall per frame");
            TunIo::SYSCALLS
        }
    }
}

/// What one read did.
enum Rx {
    /// A frame of this length (header excluded).
    Frame(usize),
    /// A frame that may have been cut short; dropped.
    Truncated,
    /// No frame waiting (`EAGAIN`).
    Empty,
    Interrupted,
    /// The device was deleted (`EBADFD`).
    Gone,
    Failed(io::Error),
}

/// `res`: bytes read (header included) or `-errno`; `room`: the frame buffer's size.
fn rx_outcome(res: i32, room: usize) -> Rx {
    let Ok(len) = usize::try_from(res) else {
        return match -res {
            libc::EAGAIN => Rx::Empty,
            libc::EINTR => Rx::Interrupted,
            libc::EBADFD => Rx::Gone,
            errno => Rx::Failed(io::Error::from_raw_os_error(errno)),
        };
    };
    // A frame that fills the buffer to the last byte may have been cut: the kernel
    // copies what fits and says nothing (no MSG_TRUNC on a tun read). Our buffers hold
    // the largest frame a TAP can carry, so this should never happen.
    if len < VNET_HDR_LEN || len - VNET_HDR_LEN >= room {
        Rx::Truncated
    } else {
        Rx::Frame(len - VNET_HDR_LEN)
    }
}

/// What one write did.
enum Tx {
    Sent,
    /// Refused by the kernel, this frame only; counted in the drops.
    Dropped,
    /// Not sent, may be sent again: `EAGAIN` or `EINTR`.
    NotSent(i32),
    /// The device is down (`EIO`: `tun_get_user` refuses every frame then).
    LinkDown,
    /// The device was deleted (`EBADFD`).
    Gone,
    Failed(io::Error),
}

/// `res`: bytes written or `-errno`. Counts the frames it drops in `drops`.
fn tx_outcome(res: i32, drops: &mut PortDrops) -> Tx {
    if res >= 0 {
        return Tx::Sent;
    }
    match -res {
        errno @ (libc::EAGAIN | libc::EINTR) => Tx::NotSent(errno),
        libc::EBADFD => Tx::Gone,
        libc::EIO => Tx::LinkDown,
        errno @ (libc::ENOBUFS | libc::ENOMEM) => {
            drops.tx_queue_full += 1;
            drops.last_tx_errno = Some(errno);
            Tx::Dropped
        }
        // A virtio_net_hdr the kernel rejects, a frame shorter than Ethernet.
        errno @ (libc::EINVAL | libc::EMSGSIZE) => {
            drops.tx_refused += 1;
            drops.last_tx_errno = Some(errno);
            Tx::Dropped
        }
        errno => Tx::Failed(io::Error::from_raw_os_error(errno)),
    }
}
