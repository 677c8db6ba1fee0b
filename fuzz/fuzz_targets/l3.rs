//! `cargo +nightly fuzz run l3`: see `vswitch_fuzz::harness::l3` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vswitch_fuzz::harness::l3::run(data));
