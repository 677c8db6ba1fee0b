//! virtio_net_hdr handling, checksum completion, GSO split and GRO coalesce (being written).
