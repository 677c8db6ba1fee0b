//! `SIGPIPE` for the CLI: Rust programs ignore it, so a write to a closed pipe
//! (`vswitch stats | head -3`) fails with `EPIPE` and `println!` panics. A command-line
//! tool should instead end quietly, as `ls | head` does: the default action.

use std::io;

/// Restores the default action of `SIGPIPE` (terminate) for this process. For the CLI
/// only: the daemon keeps ignoring it, so a client that hangs up costs it nothing.
pub fn restore_default() -> io::Result<()> {
    // SAFETY: `signal` with SIG_DFL installs no handler code; it only changes the
    // disposition of SIGPIPE for this process, which no other code here relies on.
    let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    if old == libc::SIG_ERR {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
