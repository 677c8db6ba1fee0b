//! Writes the CLI reference, `docs/cli.md` and `docs/man/*.1`, from the clap definition:
//!
//! ```sh
//! cargo run -p vswitch --example cli_docs            # into the repository's docs/
//! cargo run -p vswitch --example cli_docs -- DIR     # somewhere else
//! ```
//!
//! `vswitch/tests/cli_reference.rs` fails when the committed files differ from what this
//! writes.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs"));
    match vswitch::cli::reference::write_docs(&dir) {
        Ok(files) => {
            println!("wrote {} files under {}", files.len(), dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cli_docs: {e}");
            ExitCode::FAILURE
        }
    }
}
