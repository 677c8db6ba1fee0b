//! The fuzz harnesses on stable: every file of the seed corpus (`fuzz/corpus/<target>/`)
//! and every input that once crashed a target (`fuzz/regressions/<target>/`) replayed
//! through the same `run` functions the cargo-fuzz targets call, so that CI compiles
//! and exercises them without nightly, and a fixed crash stays fixed.
//!
//! Declared as an integration test of the vswitch package (`cargo test -p vswitch
//! --test fuzz_corpus`); it includes the harness and seed sources of the fuzz crate.

#![allow(clippy::unwrap_used)]

#[path = "src/harness/mod.rs"]
mod harness;
#[path = "src/seeds/mod.rs"]
mod seeds;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted (none when it does not exist).
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Runs every file of `<fuzz>/<sub>/<target>/` through its harness; names the failures.
fn replay(sub: &str) -> usize {
    let mut failed = Vec::new();
    let mut n = 0;
    for (target, run) in harness::TARGETS {
        for f in files(&fuzz_dir().join(sub).join(target)) {
            let data = std::fs::read(&f).unwrap();
            n += 1;
            if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
                failed.push(f.display().to_string());
            }
        }
    }
    assert!(
        failed.is_empty(),
        "inputs that fail their harness: {failed:#?}"
    );
    n
}

#[test]
fn seed_corpus_replays() {
    let n = replay("corpus");
    assert!(n > 0, "no seed corpus in fuzz/corpus");
}

#[test]
fn crash_regressions_replay() {
    replay("regressions");
}

/// The generator's seeds, not only the files written from them, pass their harness.
#[test]
fn generated_seeds_replay() {
    let all = seeds::all();
    for (target, run) in harness::TARGETS {
        let mine: Vec<_> = all.iter().filter(|s| s.target == target).collect();
        assert!(mine.len() >= 10, "{target}: only {} seeds", mine.len());
        for s in mine {
            let r = catch_unwind(AssertUnwindSafe(|| run(&s.bytes)));
            assert!(r.is_ok(), "seed {target}/{} fails its harness", s.name);
        }
    }
}

/// The corpus on disk is the generator's, and stays small.
#[test]
fn corpus_matches_the_generator() {
    let mut total = 0;
    for s in seeds::all() {
        let path = fuzz_dir().join("corpus").join(s.target).join(&s.name);
        let on_disk = std::fs::read(&path).unwrap_or_default();
        assert!(
            on_disk == s.bytes,
            "{} differs from the generator: regenerate with `cargo test -p vswitch --test fuzz_corpus -- --ignored write_seed_corpus`",
            path.display()
        );
        total += on_disk.len();
    }
    assert!(total < 1 << 20, "the seed corpus is {total} bytes");
}

/// The ICMP error seeds are about the flows the harness sets up: the NAT translates
/// them (rather than refusing them as untracked), so fuzzing starts deep in
/// `icmp_error.rs`.
#[test]
fn nat_error_seeds_are_translated() {
    use harness::nat_icmp::prepared;
    use vswitch::nat::ChecksumState;
    for s in seeds::all() {
        if s.target != "nat_icmp" || !s.name.starts_with("err_") || s.name == "err_untracked" {
            continue;
        }
        let mut input = harness::input::Input::new(&s.bytes);
        let op = input.u8();
        let mut pkt = input.record().to_vec();
        let now = std::time::Duration::from_secs(1);
        let (nat, _) = prepared(now);
        let csum = if op & 2 == 0 {
            ChecksumState::Complete
        } else {
            ChecksumState::Partial
        };
        let r = if op & 1 == 0 {
            nat.outbound(now, &mut pkt, csum)
        } else {
            nat.inbound(now, &mut pkt, csum)
        };
        assert!(r.is_ok(), "{}: {r:?}", s.name);
    }
}

/// Writes the seed corpus: `cargo test -p vswitch --test fuzz_corpus -- --ignored
/// write_seed_corpus`.
#[test]
#[ignore = "writes fuzz/corpus; run by hand after changing the seeds"]
fn write_seed_corpus() {
    let n = seeds::write(&fuzz_dir().join("corpus")).unwrap();
    println!("wrote {n} seeds");
}
