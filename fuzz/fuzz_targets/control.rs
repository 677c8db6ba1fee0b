//! `cargo +nightly fuzz run control`: see `vswitch_fuzz::harness::control` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vswitch_fuzz::harness::control::run(data));
