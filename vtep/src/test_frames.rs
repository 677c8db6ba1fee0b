//! Frames for unit tests (crate-private, test builds only).

use etherparse::{IpNumber, Ipv4Header, PacketBuilder};

pub(crate) const HOST: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub(crate) const PEER: [u8; 6] = [2, 0, 0, 0, 0, 2];
pub(crate) const ROUTER: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];

/// An IPv4 UDP frame whose IP packet is `ip_len` bytes.
pub(crate) fn udp4(ip_len: usize, df: bool, dst: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::new();
    let h = Ipv4Header {
        dont_fragment: df,
        ..Ipv4Header::new(0, 64, IpNumber::UDP, [10, 0, 0, 1], dst).unwrap()
    };
    let payload: Vec<u8> = (0..ip_len - 28).map(|i| i as u8).collect();
    PacketBuilder::ethernet2(HOST, PEER)
        .ip(etherparse::IpHeaders::Ipv4(h, Default::default()))
        .udp(1000, 2000)
        .write(&mut f, &payload)
        .unwrap();
    f
}

pub(crate) fn udp6(ip_len: usize, dst: [u8; 16]) -> Vec<u8> {
    let mut f = Vec::new();
    let payload: Vec<u8> = (0..ip_len - 48).map(|i| i as u8).collect();
    PacketBuilder::ethernet2(HOST, PEER)
        .ipv6([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], dst, 64)
        .udp(1000, 2000)
        .write(&mut f, &payload)
        .unwrap();
    f
}

pub(crate) const V6_PEER: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
