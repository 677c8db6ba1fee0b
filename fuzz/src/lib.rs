//! vswitch's fuzz harnesses and seed generator, for the cargo-fuzz targets in
//! `fuzz_targets/`. See `harness` for what each target checks and `seeds` for the
//! corpus.

pub mod harness;
pub mod seeds;
