//! What a Docker test needs on the machine, and how it finds out: Debian's `docker.io`
//! (dockerd, containerd, runc, the docker CLI) and the static busybox of
//! `busybox-static`, looked up where Debian installs them; and a command runner with a
//! time limit, so a hung CLI call fails the test instead of hanging it.
//!
//! The tests never install anything themselves: `.ci/run` installs both packages, and
//! when that fails it says why in `VSWITCH_DOCKER_UNAVAILABLE`. That is the one case a
//! Docker test skips; missing tools without that explanation fail the test, so a broken
//! CI setup cannot pass as a skip.

#![allow(dead_code)]

use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where Debian puts what `docker.io` installs: searched first, so that a different
/// Docker CLI earlier on the caller's PATH (e.g. in /usr/local/bin) is not picked up.
pub const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin";

/// The busybox that `busybox-static` installs.
pub const BUSYBOX: &str = "/bin/busybox";

/// Set by `.ci/run` when `apt-get install docker.io busybox-static` failed: the reason.
pub const UNAVAILABLE_VAR: &str = "VSWITCH_DOCKER_UNAVAILABLE";

/// Finds `name` on [`PATH`].
pub fn which(name: &str) -> Option<PathBuf> {
    PATH.split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// The Docker CLI to use: the one `docker.io` ships.
pub fn docker_cli() -> PathBuf {
    which("docker").unwrap_or_else(|| PathBuf::from("docker"))
}

/// What is missing for a Docker test, or `None` when nothing is.
pub fn missing() -> Option<String> {
    let mut miss = Vec::new();
    for tool in ["dockerd", "containerd", "runc", "docker"] {
        if which(tool).is_none() {
            miss.push(format!("{tool} not found"));
        }
    }
    if !Path::new(BUSYBOX).is_file() {
        miss.push(format!("{BUSYBOX} not found"));
    } else if !busybox_is_static() {
        miss.push(format!("{BUSYBOX} is not statically linked"));
    }
    (!miss.is_empty()).then(|| miss.join(", "))
}

/// Whether a Docker test can run here: `Ok(None)` yes; `Ok(Some(why))` it must skip,
/// because `.ci/run` could not install the packages (`why` says what failed);
/// `Err(what)` tools are missing and nobody tried to install them — a failure.
pub fn availability() -> Result<Option<String>, String> {
    let Some(miss) = missing() else {
        return Ok(None);
    };
    match std::env::var(UNAVAILABLE_VAR) {
        Ok(why) if !why.trim().is_empty() => Ok(Some(format!("{miss}; {why}"))),
        _ => Err(format!(
            "{miss}: install docker.io and busybox-static (`.ci/run` does; it sets \
             {UNAVAILABLE_VAR} when it cannot, and only then does this test skip)"
        )),
    }
}

/// A scratch image has no libc: the busybox copied into it must be static.
fn busybox_is_static() -> bool {
    // An ELF executable is dynamically linked exactly when it has a PT_INTERP header.
    let Ok(b) = std::fs::read(BUSYBOX) else {
        return false;
    };
    let u16_at = |o: usize| b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .and_then(|s| <[u8; 8]>::try_from(s).ok())
            .map(u64::from_le_bytes)
    };
    if b.get(..5) != Some(b"\x7fELF\x02") {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    !(0..usize::from(phnum)).any(|i| {
        let o = usize::try_from(phoff).unwrap_or(usize::MAX) + i * usize::from(phentsize);
        b.get(o..o + 4) == Some(&3u32.to_le_bytes()[..])
    })
}

/// Runs a command with a time limit: killed when it is exceeded (then the status is a
/// failure and stderr says so). Stdin is the caller's to set (inherited otherwise).
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = match cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) => {
            // Report "cannot start" like a failed run, through a command that fails.
            let mut out = Command::new("false").output().expect("run false");
            out.stderr = format!("cannot start {:?}: {e}", cmd.get_program()).into_bytes();
            return out;
        }
    };
    let reader = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let so = reader(Box::new(child.stdout.take().expect("stdout")));
    let se = reader(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().expect("wait for killed child");
            }
        }
    };
    let stdout = so.join().unwrap_or_default();
    let mut stderr = se.join().unwrap_or_default();
    if timed_out {
        let _ = write!(
            stderr,
            "\n(killed after {timeout:?}: {:?} did not finish)",
            cmd.get_program()
        );
    }
    Output {
        status,
        stdout,
        stderr,
    }
}
