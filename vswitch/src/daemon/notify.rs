//! Telling systemd how the daemon is doing (`Type=notify`, sd_notify(3)): `READY=1` once
//! the API socket answers and the saved endpoints are attached, so `systemctl start
//! vswitch` returns only when `vswitch network ...` works; `STOPPING=1` when a stop
//! begins; `STATUS=` lines for `systemctl status`. Without `NOTIFY_SOCKET` (not under
//! systemd) every call does nothing. A failure to send is logged once per call, never
//! fatal: the daemon works the same, only systemd's view of it is late.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;

/// Sends `state` (newline-separated `KEY=VALUE` lines) to systemd, if it listens.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send(path.as_bytes(), state.as_bytes()) {
        tracing::warn!(
            "cannot tell systemd \"{state}\" on {}: {e}",
            path.to_string_lossy()
        );
    }
}

fn send(path: &[u8], msg: &[u8]) -> std::io::Result<usize> {
    let sock = UnixDatagram::unbound()?;
    match path.strip_prefix(b"@") {
        // An abstract socket ("@name").
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(msg, &addr)
        }
        None => sock.send_to(msg, std::ffi::OsStr::from_bytes(path)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_message_reaches_a_path_socket_and_an_abstract_one() {
        let dir = std::env::temp_dir().join(format!("vswitch-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let listener = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let sent = super::send(path.as_os_str().as_encoded_bytes(), b"READY=1");
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!((sent.unwrap(), &buf[..n]), (7, &b"READY=1"[..]));

        use std::os::linux::net::SocketAddrExt;
        let name = format!("vswitch-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = std::os::unix::net::UnixDatagram::bind_addr(&addr).unwrap();
        super::send(format!("@{name}").as_bytes(), b"STOPPING=1").unwrap();
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }
}
