//! `RUSTC_BOOTSTRAP=1 cargo fuzz run l3` (or fuzz/run.sh): see `vswitch_fuzz::harness::l3` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vswitch_fuzz::harness::l3::run(data));
