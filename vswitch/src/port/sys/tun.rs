//! `/dev/net/tun` in TAP mode: the character device, its ioctls, and frame I/O.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;

use super::bpf::BpfProgram;
use super::cvt;
use super::ifname::{from_ifr_name, to_ifr_name};
use crate::packet::VNET_HDR_LEN;

/// The offloads a TAP port asks for: the kernel may hand us frames with a partial
/// checksum (`CSUM`) and TCP super-frames up to 64 KiB (`TSO4`, `TSO6`), each described
/// by the virtio_net_hdr in front of it, and accepts the same from us.
pub const TAP_OFFLOADS: libc::c_uint = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;

/// An open `/dev/net/tun`, close-on-exec and non-blocking. Before `set_iff` it is not
/// attached to any device; closing it detaches (and deletes a non-persistent TAP).
#[derive(Debug)]
pub struct TunFile {
    file: File,
}

impl TunFile {
    /// Opens `/dev/net/tun` (std opens every file with `O_CLOEXEC`). The device created
    /// or attached later belongs to the calling thread's network namespace *now*.
    pub fn open() -> io::Result<TunFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/net/tun")?;
        Ok(TunFile { file })
    }

    /// `TUNSETIFF` with `IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`: creates TAP `name`, or
    /// attaches to the existing one (a persistent TAP nobody holds). Returns the name the
    /// kernel used. `EBUSY`: someone else holds it; `EINVAL`: `name` exists and is not a
    /// TAP of the same queue kind. With `multi_queue` (`IFF_MULTI_QUEUE`) each file
    /// attached to the same name is one more queue of the device.
    pub fn set_iff_tap(&self, name: &str, multi_queue: bool) -> io::Result<String> {
        // SAFETY: an all-zero ifreq is a valid value (plain integers, arrays and unions of
        // them).
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        ifr.ifr_name = to_ifr_name(name)?;
        // IFF_* flags all fit in the 16-bit ifr_flags.
        let mq = if multi_queue {
            libc::IFF_MULTI_QUEUE
        } else {
            0
        };
        ifr.ifr_ifru.ifru_flags =
            (libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR | mq) as i16;
        // SAFETY: the fd is an open /dev/net/tun; TUNSETIFF reads and writes one ifreq,
        // which `ifr` is, alive and exclusively borrowed for the call.
        cvt(unsafe { libc::ioctl(self.file.as_raw_fd(), libc::TUNSETIFF, &raw mut ifr) })?;
        Ok(from_ifr_name(&ifr.ifr_name))
    }

    /// `TUNSETVNETHDRSZ`: the length of the virtio_net_hdr in front of every frame.
    pub fn set_vnet_hdr_size(&self, size: usize) -> io::Result<()> {
        let size = libc::c_int::try_from(size)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: TUNSETVNETHDRSZ reads one int through the pointer, which points to
        // `size`, alive for the call.
        cvt(unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::TUNSETVNETHDRSZ,
                &raw const size,
            )
        })
        .map(drop)
    }

    /// `TUNSETOFFLOAD`: which `TUN_F_*` offloads the kernel may use towards us.
    pub fn set_offload(&self, flags: libc::c_uint) -> io::Result<()> {
        // SAFETY: TUNSETOFFLOAD takes its argument by value; no memory is passed.
        cvt(unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                libc::c_ulong::from(flags),
            )
        })
        .map(drop)
    }

    /// `TUNSETPERSIST`: whether the device outlives this descriptor.
    pub fn set_persist(&self, persist: bool) -> io::Result<()> {
        // SAFETY: TUNSETPERSIST takes its argument by value; no memory is passed.
        cvt(unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::TUNSETPERSIST,
                libc::c_ulong::from(persist),
            )
        })
        .map(drop)
    }

    /// `TUNSETSTEERINGEBPF`: the device gives each frame it sends us to the queue
    /// `program` returns (its low 16 bits, modulo the queues), instead of choosing by its
    /// own flow table.
    /// Set on one queue, it holds for the device; the device keeps its own reference.
    pub fn set_steering_program(&self, program: &BpfProgram) -> io::Result<()> {
        let fd: libc::c_int = program.as_fd().as_raw_fd();
        // SAFETY: TUNSETSTEERINGEBPF reads one int (a program's descriptor) through the
        // pointer, which points to `fd`, alive for the call.
        cvt(unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::TUNSETSTEERINGEBPF,
                &raw const fd,
            )
        })
        .map(drop)
    }

    /// Whether the descriptor is still attached to a device (`TUNGETIFF`): `false` once
    /// the device was deleted under us (`EBADFD`).
    pub fn attached(&self) -> io::Result<bool> {
        // SAFETY: an all-zero ifreq is a valid value.
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        // SAFETY: TUNGETIFF writes one ifreq, which `ifr` is, alive and exclusively
        // borrowed for the call.
        match cvt(unsafe { libc::ioctl(self.file.as_raw_fd(), libc::TUNGETIFF, &raw mut ifr) }) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EBADFD) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Reads one frame: the virtio_net_hdr into `vnet`, the frame into `frame`, with one
    /// `readv`. Returns the bytes read including the header. `WouldBlock` when no frame
    /// is waiting; a frame longer than `frame` is cut short by the kernel.
    pub fn read_frame(&self, vnet: &mut [u8; VNET_HDR_LEN], frame: &mut [u8]) -> io::Result<usize> {
        let mut iov = [IoSliceMut::new(vnet), IoSliceMut::new(frame)];
        (&self.file).read_vectored(&mut iov)
    }

    /// Writes one frame behind its virtio_net_hdr with one `writev`. Returns the bytes
    /// written including the header (the kernel takes a frame whole or not at all).
    pub fn write_frame(&self, vnet: &[u8; VNET_HDR_LEN], frame: &[u8]) -> io::Result<usize> {
        let iov = [IoSlice::new(vnet), IoSlice::new(frame)];
        (&self.file).write_vectored(&iov)
    }
}

impl AsFd for TunFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}
