//! `cargo +nightly fuzz run pipeline`: see `vswitch_fuzz::harness::pipeline` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vswitch_fuzz::harness::pipeline::run(data));
