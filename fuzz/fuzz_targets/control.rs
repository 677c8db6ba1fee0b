//! `RUSTC_BOOTSTRAP=1 cargo fuzz run control` (or fuzz/run.sh): see `vswitch_fuzz::harness::control` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vswitch_fuzz::harness::control::run(data));
