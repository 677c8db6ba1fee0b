//! The only place in the crate with ioctls, raw socket options and `unsafe`.
//!
//! Each file wraps one kernel object in a type that owns its descriptor (`OwnedFd` or
//! `File`, closed on drop) and offers one named method per ioctl / socket option. The
//! methods return plain `io::Error`s; the port modules above turn them into errors that
//! name the operation and tell the operator what to do. Nothing here logs, allocates on
//! the packet path, or decides policy (which offloads, which buffer sizes): callers do.
//!
//! Every `unsafe` block says why it is sound in a `// SAFETY:` comment.
#![allow(unsafe_code)]

pub mod affinity;
pub mod bpf;
pub mod caps;
pub mod cmsg;
pub mod creds;
pub mod epoll;
pub mod ethtool;
pub mod eventfd;
pub mod ifname;
pub mod mmsg;
pub mod netns;
pub mod packet_socket;
#[cfg(test)]
pub mod seccomp;
pub mod sigpipe;
pub mod tun;
pub mod tun_ring;
pub mod udp;
pub mod udp_mmsg;

use std::io;

/// Turns the `-1`-and-errno convention of a syscall returning `c_int` into a `Result`.
fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `setsockopt` for an option whose value is a classic BPF program (`struct sock_fprog`:
/// a filter, a fanout group's or a reuseport group's steering program).
fn set_bpf_program(
    fd: std::os::fd::BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    program: &[libc::sock_filter],
) -> io::Result<()> {
    let prog = libc::sock_fprog {
        len: u16::try_from(program.len()).map_err(|_| io::ErrorKind::InvalidInput)?,
        filter: program.as_ptr().cast_mut(),
    };
    // `prog` points at `program`, alive until after the call; the kernel copies the
    // program and never writes through the pointer.
    setsockopt(fd, level, name, &prog)
}

/// `setsockopt` for an option whose value is a plain `T` (an `int` or a small struct).
fn setsockopt<T>(
    fd: std::os::fd::BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::socklen_t::try_from(std::mem::size_of::<T>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `fd` is a valid open descriptor for the duration of the borrow; `value`
    // points to `len` readable bytes that the kernel only reads during the call.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(value).cast::<libc::c_void>(),
            len,
        )
    };
    cvt(ret).map(drop)
}
