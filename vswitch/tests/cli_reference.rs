//! What is generated from the CLI definition: completion scripts for each shell (the
//! bash one must pass `bash -n`), and the committed reference in `docs/`, which must be
//! exactly what the definition generates now (`cargo run -p vswitch --example
//! cli_docs` writes it). No daemon, no root needed.

use std::path::Path;
use std::process::{Command, Stdio};

fn vswitch(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(args)
        .output()
        .expect("run vswitch")
}

fn completions(shell: &str) -> String {
    let out = vswitch(&["completions", shell]);
    assert!(
        out.status.success(),
        "completions {shell}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 script")
}

#[test]
fn a_completion_script_is_produced_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = completions(shell);
        // Every top-level command is offered, down to the nested ones.
        // (fish writes options as `-l format`, the others as `--format`.)
        for word in [
            "network",
            "inspect",
            "connect",
            "completions",
            "format",
            "socket",
        ] {
            assert!(script.contains(word), "{shell} script lacks {word}");
        }
    }
    let bad = vswitch(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn bash_accepts_the_bash_script() {
    let script = completions("bash");
    let dir = std::env::temp_dir().join(format!("vswitch-completions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("vswitch.bash");
    std::fs::write(&file, &script).unwrap();
    let check = Command::new("bash").arg("-n").arg(&file).output();
    // And it defines the completion for `vswitch` when sourced.
    let sourced = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p vswitch", file.display()))
        .stdin(Stdio::null())
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let check = check.expect("bash is installed");
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let sourced = sourced.expect("bash is installed");
    assert!(
        String::from_utf8_lossy(&sourced.stdout).contains("vswitch"),
        "sourcing did not register a completion: {}",
        String::from_utf8_lossy(&sourced.stderr)
    );
}

/// Fails when `docs/cli.md` or `docs/man/` is not what the CLI definition generates.
#[test]
fn the_committed_reference_is_what_the_cli_generates() {
    let fix = "regenerate with `cargo run -p vswitch --example cli_docs` and commit docs/";
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let committed = std::fs::read_to_string(docs.join("cli.md")).unwrap_or_default();
    assert!(
        committed == vswitch::cli::reference::markdown(),
        "docs/cli.md is out of date: {fix}"
    );
    let pages = vswitch::cli::reference::man_pages().expect("render man pages");
    let mut want: Vec<String> = pages.iter().map(|(n, _)| n.clone()).collect();
    want.sort();
    let mut have: Vec<String> = std::fs::read_dir(docs.join("man"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    have.sort();
    assert_eq!(
        have, want,
        "docs/man/ has other pages than generated: {fix}"
    );
    for (name, page) in pages {
        let on_disk = std::fs::read(docs.join("man").join(&name)).unwrap_or_default();
        assert!(on_disk == page, "docs/man/{name} is out of date: {fix}");
    }
}
