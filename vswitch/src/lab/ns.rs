//! Namespaces and commands for the lab: the lab drives iproute2 and ping exactly as a
//! user would type them, so what it shows can be repeated by hand.

use std::process::{Command, Output, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("cannot run {cmd}: {source} (is it installed?)")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("`{cmd}` failed: {msg}")]
    Failed { cmd: String, msg: String },
    #[error("{0}")]
    Other(String),
}

/// Runs a command; Err when it cannot start or exits non-zero.
pub fn sh(cmd: &str, args: &[&str]) -> Result<String, LabError> {
    let out = output(cmd, args)?;
    if !out.status.success() {
        return Err(LabError::Failed {
            cmd: format!("{cmd} {}", args.join(" ")),
            msg: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn output(cmd: &str, args: &[&str]) -> Result<Output, LabError> {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LabError::Spawn {
            cmd: cmd.to_string(),
            source,
        })
}

pub fn have(cmd: &str) -> bool {
    Command::new(cmd)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// A network namespace the lab made; deleted (with whatever runs in it) on drop, unless
/// kept (`lab up` leaves its lab running).
#[derive(Debug)]
pub struct Netns {
    pub name: String,
    keep: bool,
}

impl Netns {
    pub fn create(name: &str) -> Result<Netns, LabError> {
        sh("ip", &["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
            keep: false,
        };
        ns.run("ip", &["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Runs a command inside the namespace; Err on failure.
    pub fn run(&self, cmd: &str, args: &[&str]) -> Result<String, LabError> {
        let mut full = vec!["netns", "exec", &self.name, cmd];
        full.extend_from_slice(args);
        sh("ip", &full)
    }

    /// Runs a command inside the namespace and returns its output whatever the status.
    pub fn output(&self, cmd: &str, args: &[&str]) -> Result<Output, LabError> {
        let mut full = vec!["netns", "exec", &self.name, cmd];
        full.extend_from_slice(args);
        output("ip", &full)
    }

    pub fn command(&self, cmd: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, cmd]);
        c
    }
}

impl Netns {
    /// Leaves the namespace in place when this guard goes.
    pub fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if !self.keep {
            delete_netns(&self.name);
        }
    }
}

/// Kills what runs in a namespace and deletes it; quiet when it is already gone.
pub fn delete_netns(name: &str) {
    if let Ok(o) = output("ip", &["netns", "pids", name]) {
        for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
            let _ = output("kill", &["-9", pid]);
        }
    }
    let _ = output("ip", &["netns", "del", name]);
}
