//! A frame longer than the overlay tunnel carries around an IP packet that fits it:
//! bytes after the packet, which no IP stack sends, so the container's raw socket does.

use std::time::Duration;

use crate::common::{require_root, wait_until};
use crate::wire::{self, ETHERTYPE_IPV4};
use crate::{Job, assert_alive, counter, inject, mac_of, neighbour_mac, two_hosts};

/// ```text
///   c1 (eth0 MTU 1500, raw socket) -- h1 ==(overlay MTU 1450, underlay 1500)== h2 -- c2
/// ```
/// A 1400-byte UDP packet in a 1470-byte frame: the packet fits the network's MTU, the
/// frame is 6 bytes more than the tunnel carries. Sent whole, the underlay refused the
/// datagram, counted only as the underlay's `tx_dropped`, with nothing to say which
/// port sent it; it is dropped as `too_big` on the port it came from. The same packet
/// without the trailing bytes crosses.
#[test]
fn a_padded_frame_too_long_for_the_tunnel_is_dropped_at_its_port() {
    require_root();
    let (_ul, a, b) = two_hosts();
    let c1 = a.container("blue", "10.88.0.17");
    let c2 = b.container("blue", "10.88.0.33");
    assert!(c1.ping_until("10.88.0.33", Duration::from_secs(5)));
    // Else c1's own kernel refuses a frame over its MTU.
    c1.ip(&["link", "set", "eth0", "mtu", "1500"]);
    let (src, dst) = (mac_of(&c1, "eth0"), neighbour_mac(&c1, "10.88.0.33"));
    let mut udp = vec![0u8; 1380];
    udp[..4].copy_from_slice(&[0x30, 0x39, 0x30, 0x39]);
    udp[4..6].copy_from_slice(&1380u16.to_be_bytes());
    let ip = wire::ipv4(
        wire::ipv4_addr("10.88.0.17"),
        wire::ipv4_addr("10.88.0.33"),
        17,
        &[],
        &udp,
    );
    let plain = wire::ethernet(dst, src, ETHERTYPE_IPV4, &ip);
    let mut padded = plain.clone();
    padded.resize(1470, 0xee);
    let delivered = || counter(&b.port(&c2), &["tx_packets"]);
    let before = delivered();

    let sent = inject(&c1, "eth0", &[Job::new(3, padded), Job::new(3, plain)]);
    assert_eq!(sent, 6);
    let dropped = || counter(&a.port(&c1), &["drops", "too_big"]);
    assert!(
        wait_until(Duration::from_secs(5), || dropped() >= 3),
        "the padded frames were not dropped as too_big at c1's port: {}",
        a.stats()
    );
    assert!(
        wait_until(Duration::from_secs(5), || delivered() >= before + 3),
        "the unpadded packets did not reach c2: {}",
        b.stats()
    );
    assert_eq!(
        counter(&a.stats(), &["underlay", "tx_dropped"]),
        0,
        "the underlay refused a datagram: {}",
        a.stats()
    );
    assert_alive(&a.d);
}
