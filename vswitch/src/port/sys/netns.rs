//! Network namespaces: open one the way `ip netns` names them, and move the calling
//! thread into it.
//!
//! `setns(CLONE_NEWNET)` changes the namespace of the *calling thread* only. Sockets and
//! TAP devices belong to the namespace their thread was in when it created them, and
//! keep belonging there (a TAP's descriptor even stays valid when the device is moved to
//! another namespace). The control plane does its in-namespace work on a dedicated
//! thread that enters the target, works, and goes back ([`open_process`]) or simply
//! ends; worker threads never switch.
//!
//! A namespace is held as the `File` of its nsfs handle; holding it keeps the namespace
//! alive even after `ip netns del`.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use super::cvt;

/// Where `ip netns add NAME` bind-mounts a namespace.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Opens the namespace `ip netns` calls `name` (`/run/netns/NAME`). A missing one is a
/// `NotFound` error whose message says how to create it; a name that cannot be an
/// `ip netns` name is `InvalidInput`.
pub fn open_named(name: &str) -> io::Result<File> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a valid network namespace name (no '/', not '.' or '..')"),
        ));
    }
    let path = Path::new(NETNS_RUN_DIR).join(name);
    // std opens with O_CLOEXEC.
    File::open(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "network namespace {name:?} does not exist (no {}); create it with \
                 `ip netns add {name}` or check the name",
                path.display()
            ),
        ),
        _ => io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())),
    })
}

/// The daemon's own namespace: that of the process's main thread
/// (`/proc/self/ns/net`), which never switches.
pub fn open_process() -> io::Result<File> {
    File::open("/proc/self/ns/net")
}

/// The calling thread's current namespace (`/proc/thread-self/ns/net`).
pub fn open_current_thread() -> io::Result<File> {
    File::open("/proc/thread-self/ns/net")
}

/// Moves the calling thread (only it) into namespace `ns`. `EINVAL`: `ns` is not a
/// network namespace; `EPERM`: no CAP_SYS_ADMIN.
pub fn enter(ns: impl AsFd) -> io::Result<()> {
    // SAFETY: setns() takes no pointers; the descriptor is borrowed, so open, for the
    // call; it changes only the calling thread's namespace.
    cvt(unsafe { libc::setns(ns.as_fd().as_raw_fd(), libc::CLONE_NEWNET) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_namespace_says_how_to_create_it() {
        let err = open_named("vst-does-not-exist").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(
            err.to_string().contains("ip netns add vst-does-not-exist"),
            "{err}"
        );
        let err = open_named("../x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn entering_our_own_namespace_is_a_no_op() {
        std::thread::spawn(|| {
            enter(open_process().unwrap()).unwrap();
            open_current_thread().unwrap();
        })
        .join()
        .unwrap();
    }

    #[test]
    fn entering_something_else_is_refused() {
        let not_a_netns = File::open("/proc/self/ns/uts").unwrap();
        std::thread::spawn(move || {
            let err = enter(&not_a_netns).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        })
        .join()
        .unwrap();
    }
}
