//! `cargo +nightly fuzz run vxlan_decap`: see `vswitch_fuzz::harness::vxlan_decap` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vswitch_fuzz::harness::vxlan_decap::run(data));
