//! Test helper: a seccomp filter on the calling thread that refuses `io_uring_setup`
//! with `EPERM`, as Docker's default profile and other sandboxes do, so the fallback
//! of the TAP port can be tested without touching `kernel.io_uring_disabled` (a
//! machine-wide sysctl).

use std::io;

use super::cvt;

/// Makes `io_uring_setup` fail with `EPERM` on the calling thread (and threads it
/// spawns) from now on; nothing else changes. Sets `no_new_privs` on the thread, which
/// a filter needs without `CAP_SYS_ADMIN`. Both last as long as the thread.
pub fn refuse_io_uring_on_this_thread() -> io::Result<()> {
    let nr = u32::try_from(libc::SYS_io_uring_setup)
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let filter = [
        // The syscall number (`seccomp_data.nr`, offset 0). The architecture is not
        // checked: this process makes native syscalls only.
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: nr,
        },
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integers; no memory is passed.
    cvt(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    // SAFETY: `prog` points at `filter`, a valid classic BPF program of `len`
    // instructions; both are alive for the call, and the kernel copies the program.
    cvt(unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &raw const prog,
            0,
            0,
        )
    })
    .map(drop)
}
