//! Network namespaces: open one the way `ip netns` names them, and move the calling
//! thread into it.
//!
//! `setns(CLONE_NEWNET)` changes the namespace of the *calling thread* only. Sockets and
//! TAP devices belong to the namespace their thread was in when it created them, and
//! keep belonging there (a TAP's descriptor even stays valid when the device is moved to
//! another namespace). The control plane does its in-namespace work on a dedicated
//! thread that enters the target, works, and goes back to [`NetNs::of_process`] (or
//! simply ends); worker threads never switch.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use super::cvt;

/// Where `ip netns add NAME` bind-mounts a namespace.
const NETNS_RUN_DIR: &str = "/run/netns";

#[derive(Debug, thiserror::Error)]
pub enum NetNsError {
    #[error("network namespace {name:?} does not exist (no {path}); create it with `ip netns add {name}` or check the name", path = path.display())]
    NotFound { name: String, path: PathBuf },
    #[error("{name:?} is not a valid network namespace name (no '/', not '.' or '..')")]
    InvalidName { name: String },
    #[error("cannot open network namespace {path}: {source}", path = path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot enter network namespace {path} (setns; needs CAP_SYS_ADMIN, and {path} must be a network namespace): {source}", path = path.display())]
    Enter {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// An open network namespace (a descriptor of its nsfs file). Holding it keeps the
/// namespace alive even after `ip netns del`.
#[derive(Debug)]
pub struct NetNs {
    file: File,
    path: PathBuf,
}

impl NetNs {
    /// The namespace `ip netns` calls `name` (`/run/netns/NAME`).
    pub fn named(name: &str) -> Result<NetNs, NetNsError> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(NetNsError::InvalidName {
                name: name.to_owned(),
            });
        }
        let path = Path::new(NETNS_RUN_DIR).join(name);
        NetNs::from_path(&path).map_err(|e| match e {
            NetNsError::Open { path, source } if source.kind() == io::ErrorKind::NotFound => {
                NetNsError::NotFound {
                    name: name.to_owned(),
                    path,
                }
            }
            other => other,
        })
    }

    /// The daemon's own namespace: that of the process's main thread
    /// (`/proc/self/ns/net`), which never switches.
    pub fn of_process() -> Result<NetNs, NetNsError> {
        NetNs::from_path(Path::new("/proc/self/ns/net"))
    }

    /// The calling thread's current namespace (`/proc/thread-self/ns/net`).
    pub fn of_current_thread() -> Result<NetNs, NetNsError> {
        NetNs::from_path(Path::new("/proc/thread-self/ns/net"))
    }

    /// A namespace file anywhere (`/proc/PID/ns/net`, a bind mount, ...).
    pub fn from_path(path: &Path) -> Result<NetNs, NetNsError> {
        // std opens with O_CLOEXEC.
        let file = File::open(path).map_err(|source| NetNsError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(NetNs {
            file,
            path: path.to_owned(),
        })
    }

    /// Moves the calling thread (only) into this namespace.
    pub fn enter(&self) -> Result<(), NetNsError> {
        // SAFETY: setns() takes no pointers; the descriptor is open for the call.
        cvt(unsafe { libc::setns(self.file.as_raw_fd(), libc::CLONE_NEWNET) })
            .map(drop)
            .map_err(|source| NetNsError::Enter {
                path: self.path.clone(),
                source,
            })
    }

    /// The file this namespace was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_namespace_says_how_to_create_it() {
        let err = NetNs::named("vst-does-not-exist").unwrap_err();
        assert!(matches!(err, NetNsError::NotFound { .. }), "{err:?}");
        assert!(
            err.to_string().contains("ip netns add vst-does-not-exist"),
            "{err}"
        );
        assert!(matches!(
            NetNs::named("../x"),
            Err(NetNsError::InvalidName { .. })
        ));
    }

    #[test]
    fn entering_our_own_namespace_is_a_no_op() {
        std::thread::spawn(|| {
            NetNs::of_process().unwrap().enter().unwrap();
            NetNs::of_current_thread().unwrap();
        })
        .join()
        .unwrap();
    }
}
