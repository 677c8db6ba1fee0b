//! `RUSTC_BOOTSTRAP=1 cargo fuzz run nat_icmp` (or fuzz/run.sh): see `vswitch_fuzz::harness::nat_icmp` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vswitch_fuzz::harness::nat_icmp::run(data));
