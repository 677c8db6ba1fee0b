//! `RUSTC_BOOTSTRAP=1 cargo fuzz run vxlan_decap` (or fuzz/run.sh): see `vswitch_fuzz::harness::vxlan_decap` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vswitch_fuzz::harness::vxlan_decap::run(data));
