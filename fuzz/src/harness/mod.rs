//! The fuzz harnesses: one `run(&[u8])` per target, shared by the cargo-fuzz targets
//! (`fuzz/fuzz_targets/*.rs`, with libFuzzer) and by the corpus replay test
//! (`fuzz/replay.rs`, an integration test of the vswitch package). Each harness drives
//! real code with the input and asserts what must hold for any input, not only that
//! nothing panics; the module docs say what each one checks.
//!
//! Stable-only code: no nightly features, and no dependency beyond what the vswitch
//! package already has, so that the replay test can include this directory as it is.

pub mod check;
pub mod control;
pub mod input;
pub mod l3;
pub mod nat_icmp;
pub mod offload;
pub mod pipeline;
pub mod vxlan_decap;

/// A harness: runs one input, panics when a check fails.
pub type Harness = fn(&[u8]);

/// Every target: its name (the directory of its corpus) and its harness.
pub const TARGETS: [(&str, Harness); 6] = [
    ("pipeline", pipeline::run),
    ("vxlan_decap", vxlan_decap::run),
    ("offload", offload::run),
    ("nat_icmp", nat_icmp::run),
    ("l3", l3::run),
    ("control", control::run),
];
