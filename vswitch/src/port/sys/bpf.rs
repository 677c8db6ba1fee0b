//! `bpf(2)`, for the one thing the ports need from it: loading an eBPF socket-filter
//! program, the kind a TAP device's queue choice takes (`TUNSETSTEERINGEBPF`).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

/// One eBPF instruction, laid out as the kernel reads it (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u8,
    /// The destination and source registers, four bits each (the destination in the low
    /// four bits on a little-endian machine, in the high four on a big-endian one).
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

/// A loaded program. The kernel frees it when the last reference goes: this
/// descriptor, or a device it was attached to.
#[derive(Debug)]
pub struct BpfProgram {
    fd: OwnedFd,
}

/// The head of `union bpf_attr` for `BPF_PROG_LOAD`, up to the program's name; the
/// kernel treats the fields after it as zero when the size passed ends here.
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_TYPE_SOCKET_FILTER: u32 = 1;
/// The license the kernel is told; the programs use no GPL-only helper.
const LICENSE: &std::ffi::CStr = c"MIT OR Apache-2.0";

impl BpfProgram {
    /// Loads `insns` as a socket-filter program called `name` (what `bpftool prog`
    /// shows; letters, digits, `_` and `.`, cut at 15 bytes). When the verifier refuses
    /// it, the error carries the line of the verifier's log that says why.
    pub fn load_socket_filter(name: &str, insns: &[BpfInsn]) -> io::Result<BpfProgram> {
        match load(name, insns, None) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EINVAL)) => {
                let mut log = vec![0u8; 1 << 16];
                load(name, insns, Some(&mut log)).map_err(|again| {
                    let text = String::from_utf8_lossy(&log);
                    let text = text.trim_end_matches('\0');
                    // The reason is the last line before the closing statistics.
                    let why = (text.lines().rev())
                        .find(|l| !l.trim().is_empty() && !l.starts_with("processed "));
                    io::Error::new(again.kind(), format!("{again}: {}", why.unwrap_or("")))
                })
            }
            loaded => loaded,
        }
    }
}

/// The head of `union bpf_attr` for `BPF_PROG_TEST_RUN`, up to the context's buffers.
#[cfg(test)]
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
}

#[cfg(test)]
impl BpfProgram {
    /// Runs the program once on `frame` (from its Ethernet header; a socket filter
    /// sees it from the network header on, as on a socket's receive path) and returns
    /// what it returned (`BPF_PROG_TEST_RUN`).
    pub fn test_run(&self, frame: &[u8]) -> io::Result<u32> {
        use std::os::fd::AsRawFd;
        const BPF_PROG_TEST_RUN: libc::c_int = 10;
        let mut attr = TestRunAttr {
            prog_fd: u32::try_from(self.fd.as_raw_fd()).map_err(io::Error::other)?,
            data_size_in: u32::try_from(frame.len()).map_err(io::Error::other)?,
            data_in: frame.as_ptr() as u64,
            ..TestRunAttr::default()
        };
        let size = std::mem::size_of::<TestRunAttr>() as libc::c_uint;
        // SAFETY: BPF_PROG_TEST_RUN reads `size` bytes of `attr` and writes its
        // `retval`, `duration` and `data_size_out` (alive, exclusively borrowed for the
        // call); it reads
        // `data_size_in` bytes at `data_in`, which `frame` is; no output buffer is
        // given (null, size 0), so it writes nowhere else.
        let ret = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_TEST_RUN, &raw mut attr, size) };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(attr.retval)
    }
}

fn load(name: &str, insns: &[BpfInsn], log: Option<&mut [u8]>) -> io::Result<BpfProgram> {
    let mut prog_name = [0u8; 16];
    for (to, from) in prog_name[..15].iter_mut().zip(name.bytes()) {
        *to = from;
    }
    let too_long = |_| io::Error::from(io::ErrorKind::InvalidInput);
    let (log_level, log_size, log_buf) = match log {
        Some(buf) => (
            1,
            u32::try_from(buf.len()).map_err(too_long)?,
            buf.as_mut_ptr(),
        ),
        None => (0, 0, std::ptr::null_mut()),
    };
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_SOCKET_FILTER,
        insn_cnt: u32::try_from(insns.len()).map_err(too_long)?,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        log_level,
        log_size,
        log_buf: log_buf as u64,
        kern_version: 0,
        prog_flags: 0,
        prog_name,
    };
    let size = std::mem::size_of::<ProgLoadAttr>() as libc::c_uint;
    // SAFETY: BPF_PROG_LOAD reads `size` bytes of `attr`, alive for the call; through
    // it, `insn_cnt` instructions at `insns` and the NUL-terminated license, both
    // alive and only read; it writes at most `log_size` bytes to `log_buf`, which is
    // an exclusively borrowed buffer of that length (or null with size 0).
    let ret = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, &raw mut attr, size) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = libc::c_int::try_from(ret).map_err(|_| io::Error::other("bpf: bad descriptor"))?;
    // SAFETY: on success BPF_PROG_LOAD returns a new descriptor (close-on-exec) that
    // nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(BpfProgram { fd })
}

impl AsFd for BpfProgram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
