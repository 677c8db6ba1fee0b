//! TAP ports: a TAP device the switch creates (or re-attaches to) and owns, for a VM's
//! NIC or as the parent of a Docker macvlan network.
//!
//! The device is opened with `IFF_VNET_HDR` and a 10-byte virtio_net_hdr (the same as
//! AF_PACKET's, so frames pass between the two kinds untouched) and offers the kernel
//! `TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6`: the stack on the other side then sends us
//! 64 KiB TCP super-frames with partial checksums, and takes the same from us.
//!
//! **No batch syscall.** The tun character device has no `recvmmsg` / `sendmmsg`
//! (they are socket calls, and a TAP fd is not a socket; the in-kernel batching of
//! `tun_sendmsg` with `TUN_MSG_PTR` is reachable only from vhost-net). `recv_batch`
//! loops `readv` until `EAGAIN` or the batch is full, `send_batch` loops `writev`: one
//! syscall per frame, but each frame is up to 64 KiB, which is why TAP matched batched
//! AF_PACKET in `lab/userspace-ceiling.md`. io_uring does batch here (checked: 32
//! `READV` or `WRITEV` entries on a TAP fd complete in one `io_uring_enter`, about 1.3x
//! the frames/s of a `writev` loop for 1514-byte frames); not used yet.
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

use super::sys::ifname::validate_ifname;
use super::sys::tun::{TAP_OFFLOADS, TunFile};
use super::{Port, PortDrops, PortError};
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

/// A TAP device with a virtio_net_hdr on every frame.
#[derive(Debug)]
pub struct TapPort {
    name: String,
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
    pub fn open(name: &str, persist: bool) -> Result<TapPort, TapError> {
        validate_ifname(name).map_err(|source| TapError::InvalidName {
            name: name.to_owned(),
            source,
        })?;
        let tun = TunFile::open().map_err(|source| TapError::OpenDevice { source })?;
        let name = tun.set_iff_tap(name).map_err(|source| TapError::SetIff {
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
        Ok(TapPort {
            name,
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

    /// Loops `readv` (see the module doc: the device has no batch read).
    fn recv_batch(&mut self, bufs: &mut [PacketBuf]) -> Result<usize, PortError> {
        if self.gone {
            return Err(PortError::Gone(self.name.clone()));
        }
        let mut n = 0;
        // Reads that yield no frame (a cut one, a signal) count too: at most
        // `bufs.len()` syscalls per call, whatever the device does.
        let mut reads = 0;
        while n < bufs.len() && reads < bufs.len() {
            reads += 1;
            let buf = &mut bufs[n];
            buf.reset();
            let mut vnet = [0u8; VNET_HDR_LEN];
            let space = buf.rx_space();
            let room = space.len();
            match self.tun.read_frame(&mut vnet, space) {
                // A frame that fills the buffer to the last byte may have been cut:
                // the kernel copies what fits and says nothing (no MSG_TRUNC on a tun
                // read). Our buffers hold the largest frame a TAP can carry, so this
                // should never happen.
                Ok(len) if len < VNET_HDR_LEN || len - VNET_HDR_LEN >= room => {
                    self.drops.rx_truncated += 1;
                }
                Ok(len) => {
                    buf.vnet = vnet;
                    buf.set_len(len - VNET_HDR_LEN);
                    n += 1;
                }
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN) => break,
                    Some(libc::EINTR) => {}
                    // Frames already read are good; the next call reports Gone.
                    Some(libc::EBADFD) if n > 0 => {
                        self.gone = true;
                        break;
                    }
                    Some(libc::EBADFD) => return Err(self.gone()),
                    _ if n > 0 => break,
                    _ => return Err(self.io_error(e)),
                },
            }
        }
        Ok(n)
    }

    /// Loops `writev` (see the module doc: the device has no batch write).
    fn send_batch(&mut self, pool: &[PacketBuf], which: &[u32]) -> Result<usize, PortError> {
        if self.gone {
            return Err(PortError::Gone(self.name.clone()));
        }
        let mut done = 0;
        while done < which.len() {
            let buf = &pool[which[done] as usize];
            let err = match self.tun.write_frame(&buf.vnet, buf.frame()) {
                Ok(_) => {
                    done += 1;
                    continue;
                }
                Err(err) => err,
            };
            match err.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(done),
                Some(libc::EINTR) => {}
                Some(libc::EBADFD) => return Err(self.gone()),
                // tun_get_user refuses every frame while the device is down.
                Some(libc::EIO) => {
                    self.drops.tx_link_down += (which.len() - done) as u64;
                    return Ok(which.len());
                }
                Some(errno @ (libc::ENOBUFS | libc::ENOMEM)) => {
                    self.drops.tx_queue_full += 1;
                    self.drops.last_tx_errno = Some(errno);
                    done += 1;
                }
                // A virtio_net_hdr the kernel rejects, a frame shorter than Ethernet.
                Some(errno @ (libc::EINVAL | libc::EMSGSIZE)) => {
                    self.drops.tx_refused += 1;
                    self.drops.last_tx_errno = Some(errno);
                    done += 1;
                }
                _ => return Err(self.io_error(err)),
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
