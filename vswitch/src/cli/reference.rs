//! What is generated from the clap definition itself, so it cannot drift from it: shell
//! completion scripts (`vswitch completions SHELL`, clap_complete), and the reference in
//! `docs/`: `cli.md`, every command's full `--help` at a fixed width, and one man page
//! per command in `man/` (clap_mangen). A test (`vswitch/tests/cli_reference.rs`)
//! regenerates the reference and fails when the committed files differ: after changing
//! a command, run `cargo run -p vswitch --example cli_docs` and commit `docs/`. (An
//! example rather than a hidden subcommand: clap_complete would still offer a hidden
//! subcommand to bash and fish.)

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Command, CommandFactory};
use clap_complete::Shell;

use super::args::Cli;

/// Width the reference's help texts are wrapped at (the terminal's would vary).
const REFERENCE_WIDTH: usize = 100;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Writes the completion script for `shell` to `out`.
pub fn completions(shell: Shell, out: &mut dyn Write) {
    clap_complete::generate(shell, &mut Cli::command(), "vswitch", out);
}

/// The command tree as the reference shows it: fixed width, no environment values (a
/// `VSWITCH_SOCKET` set where the docs are made must not end up in them), built.
fn reference_command() -> Command {
    let mut cmd = fixed_width(Cli::command().mut_arg("socket", |a| a.hide_env_values(true)));
    cmd.build();
    cmd
}

fn fixed_width(cmd: Command) -> Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let mut cmd = cmd.term_width(REFERENCE_WIDTH);
    for name in names {
        cmd = cmd.mut_subcommand(name, fixed_width);
    }
    cmd
}

/// Every command the reference documents with its full name ("vswitch network create"),
/// parents before children, in definition order: hidden ones and clap's own `help` left
/// out.
fn documented(cmd: &Command) -> Vec<(String, Command)> {
    fn walk(prefix: &str, cmd: &Command, out: &mut Vec<(String, Command)>) {
        let name = match prefix {
            "" => cmd.get_name().to_string(),
            p => format!("{p} {}", cmd.get_name()),
        };
        out.push((name.clone(), cmd.clone()));
        for sub in cmd.get_subcommands() {
            if !sub.is_hide_set() && sub.get_name() != "help" {
                walk(&name, sub, out);
            }
        }
    }
    let mut out = Vec::new();
    walk("", cmd, &mut out);
    out
}

/// `docs/cli.md`.
pub fn markdown() -> String {
    let root = reference_command();
    let commands = documented(&root);
    let mut md = String::from(
        "# vswitch command-line reference\n\n\
         Generated from the CLI definition by `cargo run -p vswitch --example cli_docs` (a \
         test fails when this \
         file or `man/` differs from what the definition generates): do not edit by hand. \
         Man pages of the same text are in `man/`.\n\n",
    );
    for (name, c) in &commands {
        md += &format!("- [`{name}`](#{})", name.replace(' ', "-"));
        if let Some(about) = c.get_about() {
            md += &format!(": {about}");
        }
        md.push('\n');
    }
    for (name, c) in commands {
        let help = c.clone().render_long_help().to_string();
        md += &format!("\n## {name}\n\n```text\n{}\n```\n", help.trim_end());
    }
    md
}

/// One man page per documented command: (file name, roff text).
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>, std::io::Error> {
    documented(&reference_command())
        .into_iter()
        .map(|(_, c)| {
            let man = clap_mangen::Man::new(c)
                .source(format!("vswitch {}", env!("CARGO_PKG_VERSION")))
                .manual("vswitch manual");
            let mut page = Vec::new();
            man.render(&mut page)?;
            Ok((man.get_filename(), page))
        })
        .collect()
}

/// Writes `cli.md` and `man/*.1` under `dir`, removing man pages of commands that no
/// longer exist. Returns the files written.
pub fn write_docs(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let err = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let man_dir = dir.join("man");
    std::fs::create_dir_all(&man_dir).map_err(|e| err(&man_dir, e))?;
    let pages = man_pages().map_err(|e| err(&man_dir, e))?;
    let stale = std::fs::read_dir(&man_dir)
        .map_err(|e| err(&man_dir, e))?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vswitch") && n.ends_with(".1"))
        .filter(|n| !pages.iter().any(|(p, _)| p == n));
    for name in stale {
        let p = man_dir.join(name);
        std::fs::remove_file(&p).map_err(|e| err(&p, e))?;
    }
    let mut written = Vec::new();
    let md = dir.join("cli.md");
    std::fs::write(&md, markdown()).map_err(|e| err(&md, e))?;
    written.push(md);
    for (name, page) in pages {
        let p = man_dir.join(name);
        std::fs::write(&p, page).map_err(|e| err(&p, e))?;
        written.push(p);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every command a user can reach has an example in its --help.
    #[test]
    fn every_command_has_an_example() {
        let mut cmd = Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        for (name, c) in documented(&cmd) {
            let help = c.clone().render_long_help().to_string();
            if !help.contains("Example") {
                missing.push(name);
            }
        }
        assert!(missing.is_empty(), "no example in --help of: {missing:?}");
    }

    #[test]
    fn the_reference_names_every_command_once() {
        let md = markdown();
        for name in [
            "vswitch",
            "vswitch run",
            "vswitch network connect",
            "vswitch fdb show",
            "vswitch completions",
        ] {
            assert_eq!(
                md.matches(&format!("\n## {name}\n")).count(),
                1,
                "{name} in:\n{md}"
            );
        }
        let pages = man_pages().unwrap();
        assert!(pages.iter().any(|(n, _)| n == "vswitch-network-create.1"));
        assert_eq!(pages.len(), md.matches("\n## ").count());
    }
}
