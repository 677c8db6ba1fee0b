//! The packet path: decisions without I/O (`pipeline`), the batch loop around it, and
//! offload handling (virtio_net_hdr, checksum completion, GSO split / GRO coalesce) as
//! pure functions.

pub mod offload;
