//! `cargo +nightly fuzz run offload`: see `vswitch_fuzz::harness::offload` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vswitch_fuzz::harness::offload::run(data));
