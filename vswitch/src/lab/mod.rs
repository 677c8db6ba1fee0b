//! `vswitch lab`: labs of hosts and containers in network namespaces on one machine,
//! each host running its own vswitch daemon.

pub mod build;
pub mod daemon;
pub mod demo;
pub mod measure;
pub mod ns;
pub mod topology;
