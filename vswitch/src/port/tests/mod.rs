//! Port tests against the real kernel, each in network namespaces of its own
//! (`vst-<pid>-<n>-<role>`), deleted when the test ends, pass or fail. Nothing is created
//! in, or sent from, the namespace the tests run in. They need root.

mod af_packet;
mod forward;
mod lab;
mod steer;
mod tap;
mod tap_bench;
