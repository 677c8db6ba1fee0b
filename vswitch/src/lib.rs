//! vswitch: a userspace virtual switch and VXLAN overlay router.
//!
//! The crate is both the daemon (`vswitch run`) and its CLI. The packet path is
//! `port` (I/O in batches) around `datapath` (decisions without I/O); `control` is the
//! API server, state store and IPAM, which never runs on the packet path; `cli` is the
//! clap front end that talks to the daemon over its Unix socket.

pub mod cli;
pub mod config;
pub mod control;
pub mod daemon;
pub mod datapath;
pub mod l3;
pub mod lab;
pub mod nat;
pub mod packet;
pub mod port;
