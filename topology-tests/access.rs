//! Who may talk to the daemon, and what it keeps of root's powers.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

#[path = "common/mod.rs"]
mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use common::{Daemon, Netns, require_root, vswitch_bin};

/// Runs the CLI as `uid`:`gid` with no supplementary groups (util-linux setpriv).
fn cli_as(d: &Daemon, uid: u32, gid: u32, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            "--clear-groups",
        ])
        .arg(vswitch_bin())
        .arg("--socket")
        .arg(&d.socket)
        .args(args)
        .output()
        .expect("setpriv")
}

/// ```text
///   root ----------------------+
///   uid 4242, gid nogroup -----+--> /…/vswitch.sock (root:nogroup 0660) --> vswitch run
///   uid 4242, gid 4242 ---x    |        [control] group = "nogroup"
/// ```
/// The socket is root:group 0660; a member of the group may use the CLI, others may
/// not, and the daemon checks the peer's credentials itself even when the file lets
/// anyone in. The daemon keeps only the capabilities networking needs.
#[test]
fn only_root_and_the_control_group_may_talk_and_capabilities_are_dropped() {
    require_root();
    let host = Netns::new("h");
    let d = Daemon::start_with_config(&host, Some("[control]\ngroup = \"nogroup\"\n"));
    // The state dir sits under the system temp dir; let other users reach the socket.
    std::fs::set_permissions(&d.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o660, "socket mode");
    assert_eq!((meta.uid(), meta.gid()), (0, 65534), "socket owner");

    assert!(
        cli_as(&d, 4242, 65534, &["network", "ls"]).status.success(),
        "a group member was refused"
    );
    let out = cli_as(&d, 4242, 4242, &["network", "ls"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.lines().count() == 1,
        "an outsider got in: {err}"
    );

    // Even if the file is opened to everyone, the daemon refuses by credentials.
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = cli_as(&d, 4242, 4242, &["network", "create", "sneaky"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("permission denied"),
        "{err}"
    );
    assert!(!d.must(&["network", "ls"]).contains("sneaky"));
    assert!(d.log().contains("refused a connection"), "{}", d.log());

    // Capabilities: only the networking set is left (net_admin, net_raw, sys_admin for
    // setns, net_bind_service, dac_override, fowner, chown).
    let status = std::fs::read_to_string(format!("/proc/{}/status", d.pid())).unwrap();
    let eff = status.lines().find(|l| l.starts_with("CapEff:")).unwrap();
    let mask = u64::from_str_radix(eff.split_whitespace().nth(1).unwrap(), 16).unwrap();
    let keep: u64 = [0u32, 1, 3, 10, 12, 13, 21].iter().map(|c| 1u64 << c).sum();
    assert_eq!(mask, keep, "effective capabilities {mask:#x}");
    let bnd = status.lines().find(|l| l.starts_with("CapBnd:")).unwrap();
    let bmask = u64::from_str_radix(bnd.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_eq!(bmask, keep, "bounding set {bmask:#x}");
    // And it still does its job: a container endpoint needs setns and netlink.
    let c = Netns::new("c");
    d.must(&["network", "create", "blue", "--subnet", "10.57.0.0/24"]);
    d.must(&["network", "connect", "blue", "--netns", &c.name]);
}
