//! The packet path: decisions without I/O (`pipeline`), the batch loop around it
//! (`worker`), and offload handling (virtio_net_hdr, checksum completion, GSO split / GRO
//! coalesce) as pure functions.

pub mod capture;
pub mod counters;
pub mod egress;
pub mod flood_limit;
pub mod fragment;
pub mod id_hash;
pub mod neigh_share;
pub mod observe;
pub mod offload;
pub mod pipeline;
pub mod pool;
pub mod router;
pub mod topology;
pub mod tunnel;
pub mod worker;
