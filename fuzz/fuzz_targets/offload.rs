//! `RUSTC_BOOTSTRAP=1 cargo fuzz run offload` (or fuzz/run.sh): see `vswitch_fuzz::harness::offload` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vswitch_fuzz::harness::offload::run(data));
