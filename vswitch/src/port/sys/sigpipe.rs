//! SIGPIPE back to its default for the CLI: Rust ignores it, so `println!` to a closed pipe
//! (`vswitch network ls | head -1`) panics with "failed printing to stdout". A CLI should
//! end quietly instead, like any other Unix filter. The daemon keeps Rust's choice: it
//! must never die because a client hung up.

use std::io;

/// Restores the default action (terminate quietly) for SIGPIPE in this process.
pub fn restore_default() -> io::Result<()> {
    // SAFETY: signal() with SIG_DFL installs no handler code of ours, so nothing can run
    // in signal context; it is called once, at the start of the CLI, before any thread.
    let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    if old == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
