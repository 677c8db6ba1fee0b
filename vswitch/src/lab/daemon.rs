//! A `vswitch run` started by the lab inside a namespace, with its own state dir and
//! socket; stopped (SIGTERM, then SIGKILL) and cleaned up on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::ns::LabError;
use crate::cli::client;
use crate::control::api::Request;

#[derive(Debug)]
pub struct LabDaemon {
    pub netns: String,
    pub dir: PathBuf,
    pub socket: PathBuf,
    child: Option<Child>,
}

impl LabDaemon {
    /// Starts `vswitch run` in `netns`, keeping its files under `dir`.
    pub fn start(netns: &str, dir: &Path, config: Option<&Path>) -> Result<LabDaemon, LabError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| LabError::Other(format!("{}: {e}", dir.display())))?;
        let exe = std::env::current_exe().map_err(|e| LabError::Other(e.to_string()))?;
        let socket = dir.join("vswitch.sock");
        let log = std::fs::File::create(dir.join("daemon.log"))
            .map_err(|e| LabError::Other(e.to_string()))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns])
            .arg(exe)
            .arg("run")
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--socket")
            .arg(&socket);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|source| LabError::Spawn {
                cmd: "vswitch run".into(),
                source,
            })?;
        let d = LabDaemon {
            netns: netns.to_string(),
            dir: dir.to_path_buf(),
            socket,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while d.call(Request::NetworkLs).is_err() {
            if Instant::now() > deadline {
                return Err(LabError::Other(format!(
                    "the daemon in {netns} did not start; its log:\n{}",
                    std::fs::read_to_string(d.dir.join("daemon.log")).unwrap_or_default()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(d)
    }

    pub fn call(&self, req: Request) -> Result<Value, LabError> {
        client::call(&self.socket, &req).map_err(|e| LabError::Other(e.to_string()))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Leaves the daemon running when this guard goes (`lab up`); `lab down` stops it
    /// with its namespace.
    pub fn keep(mut self) {
        self.child = None;
    }
}

impl Drop for LabDaemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && !matches!(c.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
