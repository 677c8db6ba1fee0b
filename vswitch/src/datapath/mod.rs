//! The packet path: decisions without I/O (`pipeline`), the batch loop around it
//! (`worker`), and offload handling (virtio_net_hdr, checksum completion, GSO split / GRO
//! coalesce) as pure functions.

pub mod counters;
pub mod offload;
pub mod pipeline;
pub mod topology;
pub mod worker;
