//! The API socket: a Unix stream socket, one JSON request per line, one JSON response
//! per line. A thread per connection; requests are applied one at a time by the manager.
//! A malformed request gets an error response; the daemon keeps serving.
//!
//! Who may talk to it: the socket file is mode 0660, owned by root and (when configured)
//! the `[control] group`; and every connection's peer credentials (SO_PEERCRED) are
//! checked: root, the daemon's own user, or a member of that group. Anyone else gets one
//! error line and the connection is closed.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::api::{MAX_REQUEST_LEN, Request, Response};
use super::manager::Manager;
use crate::port::sys::creds;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "another vswitch daemon is already listening on {0}: stop it, or give this one another --socket"
    )]
    InUse(PathBuf),
    #[error("cannot create the API socket {path}: {source}")]
    Bind {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Binds the API socket (mode 0660), replacing a stale socket file left by a daemon that
/// died, but never one that still answers.
pub fn bind(path: &Path) -> Result<UnixListener, ServerError> {
    let berr = |source| ServerError::Bind {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(berr)?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(ServerError::InUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(berr)?;
    }
    let listener = UnixListener::bind(path).map_err(berr)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(berr)?;
    Ok(listener)
}

/// Who may use the API.
#[derive(Debug, Clone, Copy, Default)]
pub struct Access {
    /// Members of this group may, besides root and the daemon's own user.
    pub gid: Option<u32>,
    /// The daemon's effective uid.
    pub own_uid: u32,
}

impl Access {
    /// Whether the peer may talk to the daemon; the refusal says why.
    pub fn check(&self, stream: &UnixStream) -> Result<(), String> {
        let cred = creds::peer_cred(stream)
            .map_err(|e| format!("permission denied: cannot read your credentials ({e})"))?;
        if cred.uid == 0 || cred.uid == self.own_uid {
            return Ok(());
        }
        if let Some(gid) = self.gid
            && (cred.gid == gid || creds::groups_of(cred.pid).contains(&gid))
        {
            return Ok(());
        }
        Err(match self.gid {
            Some(gid) => format!(
                "permission denied: uid {} is neither root nor in the daemon's group (gid {gid})",
                cred.uid
            ),
            None => format!(
                "permission denied: uid {} is not root (set [control] group to let a group in)",
                cred.uid
            ),
        })
    }
}

/// Gives the socket file to root and `gid`, mode 0660.
pub fn share_with_group(path: &Path, gid: u32) -> Result<(), ServerError> {
    creds::chown(path, 0, gid).map_err(|source| ServerError::Bind {
        path: path.to_path_buf(),
        source,
    })
}

/// Serves connections until the listener fails; runs on its own thread.
pub fn serve(listener: UnixListener, manager: Arc<Mutex<Manager>>, access: Access) {
    for conn in listener.incoming() {
        match conn {
            Ok(mut stream) => {
                if let Err(why) = access.check(&stream) {
                    tracing::warn!("API: refused a connection: {why}");
                    let body = serde_json::to_vec(&Response::Error(why)).unwrap_or_default();
                    let _ = stream.write_all(&body);
                    let _ = stream.write_all(b"\n");
                    continue;
                }
                let m = manager.clone();
                let spawned = std::thread::Builder::new()
                    .name("vswitch-api".into())
                    .spawn(move || serve_connection(stream, &m));
                if let Err(e) = spawned {
                    tracing::warn!("cannot start an API thread: {e}");
                }
            }
            Err(e) => tracing::warn!("API accept failed: {e}"),
        }
    }
}

fn serve_connection(stream: UnixStream, manager: &Mutex<Manager>) {
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut out = write_half;
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = match (&mut reader)
            .take(MAX_REQUEST_LEN as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 {
            return;
        }
        let too_long = line.len() > MAX_REQUEST_LEN;
        let response = if too_long {
            Response::Error(format!("request longer than {MAX_REQUEST_LEN} bytes"))
        } else {
            match serde_json::from_slice::<Request>(&line) {
                // The connection now carries the capture until it ends.
                Ok(Request::Capture(c)) => return super::capture::serve(out, c, manager),
                Ok(req) => answer(req, manager),
                Err(e) => Response::Error(format!("malformed request: {e}")),
            }
        };
        let mut body =
            serde_json::to_vec(&response).unwrap_or_else(|_| br#"{"error":"internal"}"#.to_vec());
        body.push(b'\n');
        if out.write_all(&body).is_err() || too_long {
            return;
        }
    }
}

fn answer(req: Request, manager: &Mutex<Manager>) -> Response {
    tracing::debug!("request: {req:?}");
    let mut m = match manager.lock() {
        Ok(m) => m,
        Err(poisoned) => poisoned.into_inner(),
    };
    match m.handle(req) {
        Ok(v) => Response::Ok(v),
        Err(e) => Response::Error(e.to_string()),
    }
}
