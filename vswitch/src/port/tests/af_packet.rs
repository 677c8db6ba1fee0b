//! AF_PACKET ports on veth pairs.

use std::time::{Duration, Instant};

use super::forward::{Forwarder, tcp_transfer};
use super::lab::{Ns, ip_n, quiet_switch_side, veth};
use crate::packet::PacketBuf;
use crate::port::af_packet::{PacketPort, PacketPortError};
use crate::port::sys::epoll::{Epoll, Events};
use crate::port::{Port, PortError};

const TRANSFER_BYTES: u64 = 100 << 20;

/// Two containers joined through a two-port AF_PACKET forwarder:
///
/// ```text
///   ctr1                       sw                            ctr2
///  +--------------+     +--------------------------+     +--------------+
///  | eth0         |     | swp1          swp2       |     |         eth0 |
///  | 10.77.0.1/24 |=====| PacketPort <-> PacketPort|=====| 10.77.0.2/24 |
///  +--------------+veth |   (forwarder thread,     |veth +--------------+
///   offloads on         |    epoll, batches)       |       offloads on
///                       +--------------------------+
/// ```
///
/// Ping and a 100 MB TCP transfer cross it intact, and frames far above 1514 bytes with
/// a GSO type in their virtio_net_hdr show the TSO super-frames pass whole.
#[test]
fn af_packet_forwarder_carries_tcp_super_frames() {
    let sw = Ns::new("sw");
    let ctr1 = Ns::new("c1");
    let ctr2 = Ns::new("c2");
    veth(&sw, "swp1", &ctr1, "eth0");
    veth(&sw, "swp2", &ctr2, "eth0");
    quiet_switch_side(&sw, "swp1");
    quiet_switch_side(&sw, "swp2");
    ctr1.ip(&["addr", "add", "10.77.0.1/24", "dev", "eth0"]);
    ctr2.ip(&["addr", "add", "10.77.0.2/24", "dev", "eth0"]);

    let fwd = Forwarder::start(&sw, || {
        [
            Box::new(PacketPort::open("swp1").expect("open swp1")) as Box<dyn Port>,
            Box::new(PacketPort::open("swp2").expect("open swp2")),
        ]
    });
    ctr1.exec(&["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.77.0.2"])
        .expect("ping through the forwarder");
    let took = tcp_transfer(&ctr2, "10.77.0.2", &ctr1, TRANSFER_BYTES);
    let stats = fwd.finish().expect("forwarder");
    eprintln!(
        "af_packet: {} MB in {took:?} ({:.1} Gbit/s); {stats:?}",
        TRANSFER_BYTES >> 20,
        TRANSFER_BYTES as f64 * 8.0 / took.as_secs_f64() / 1e9
    );
    assert!(stats.gso_frames > 0, "no GSO super-frames seen: {stats:?}");
    assert!(
        stats.max_frame > 30_000,
        "largest frame only {} bytes",
        stats.max_frame
    );
    assert_eq!(stats.drops.rx_truncated, 0, "{stats:?}");
}

/// Deleting the interface under an open port:
///
/// ```text
///   sw:  swp1 [PacketPort] ==veth== peer1      then `ip link del swp1`
///        swp2 [PacketPort] ==veth== peer2      then `ip link del peer2` (takes swp2)
///        swp3 [PacketPort] ==veth== peer3      set down, then `ip link del swp3`
/// ```
///
/// Down is not gone: a port on a link set down receives nothing and counts its sends as
/// link-down drops, and works again once the link is up. Deleted is gone: epoll wakes,
/// the next call says `Gone` (receive first on one port, send first on the other), and
/// every call after that says `Gone` again without a syscall. Deleted while down, the
/// kernel tells the receive side nothing: `check_alive` (and a send) find out.
#[test]
fn af_packet_port_reports_down_and_gone() {
    let sw = Ns::new("sw");
    veth(&sw, "swp1", &sw, "peer1");
    veth(&sw, "swp2", &sw, "peer2");
    veth(&sw, "swp3", &sw, "peer3");
    for ifname in ["swp1", "swp2", "swp3"] {
        quiet_switch_side(&sw, ifname);
    }
    // The peers too: only the test's own frames may arrive. An IPv6 report from a peer
    // queued just before `down` is read by the receive after the one that returns the
    // kernel's pending ENETDOWN (seen once in twenty full runs on swp3).
    for ifname in ["peer1", "peer2", "peer3"] {
        sw.sysctl(&format!("net.ipv6.conf.{ifname}.disable_ipv6"), "1");
    }

    let ns = sw.name.clone();
    let sw_ip = move |args: &[&str]| drop(ip_n(&ns, args));
    sw.run(move || {
        let mut port = PacketPort::open("swp1").expect("open swp1");
        let mut peer = PacketPort::open("peer1").expect("open peer1");
        let mut bufs: Vec<PacketBuf> = (0..4).map(|_| PacketBuf::new()).collect();
        let frame = PacketBuf::from_frame(&test_frame());
        let pool = std::slice::from_ref(&frame);

        // Up: a frame sent on swp1 arrives on peer1.
        assert_eq!(port.send_batch(pool, &[0]).unwrap(), 1);
        assert!(recv_within(&mut peer, &mut bufs, Duration::from_secs(1)) >= 1);

        // Down: not gone.
        sw_ip(&["link", "set", "swp1", "down"]);
        assert_eq!(
            port.recv_batch(&mut bufs).unwrap(),
            0,
            "ENETDOWN on a down link is not an error"
        );
        assert_eq!(port.send_batch(pool, &[0, 0]).unwrap(), 2);
        assert_eq!(port.take_drops().tx_link_down, 2);
        sw_ip(&["link", "set", "swp1", "up"]);
        sw_ip(&["link", "set", "peer1", "up"]);
        assert_eq!(port.send_batch(pool, &[0]).unwrap(), 1);
        assert!(
            recv_within(&mut peer, &mut bufs, Duration::from_secs(2)) >= 1,
            "link up again"
        );

        // Deleted: epoll wakes and the next receive says Gone.
        let epoll = Epoll::new().unwrap();
        epoll.add(port.as_fd(), 1).unwrap();
        sw_ip(&["link", "del", "swp1"]);
        let mut events = Events::with_capacity(4);
        assert_eq!(
            epoll
                .wait(&mut events, Some(Duration::from_secs(2)))
                .unwrap(),
            1,
            "epoll woke"
        );
        let started = Instant::now();
        assert!(matches!(port.recv_batch(&mut bufs), Err(PortError::Gone(n)) if n == "swp1"));
        assert!(matches!(
            port.recv_batch(&mut bufs),
            Err(PortError::Gone(_))
        ));
        assert!(matches!(
            port.send_batch(pool, &[0]),
            Err(PortError::Gone(_))
        ));
        assert!(started.elapsed() < Duration::from_millis(100));

        // Deleted, and the first call is a send.
        let mut port2 = PacketPort::open("swp2").expect("open swp2");
        sw_ip(&["link", "del", "peer2"]);
        assert!(matches!(port2.send_batch(pool, &[0]), Err(PortError::Gone(n)) if n == "swp2"));
        assert!(matches!(
            port2.recv_batch(&mut bufs),
            Err(PortError::Gone(_))
        ));

        // Deleted while down: receives see nothing, check_alive and sends find out.
        let mut port3 = PacketPort::open("swp3").expect("open swp3");
        port3.check_alive().expect("alive while it exists");
        sw_ip(&["link", "set", "swp3", "down"]);
        assert_eq!(port3.recv_batch(&mut bufs).unwrap(), 0);
        port3.check_alive().expect("down is alive");
        sw_ip(&["link", "del", "swp3"]);
        assert_eq!(
            port3.recv_batch(&mut bufs).unwrap(),
            0,
            "the kernel says nothing here"
        );
        assert!(matches!(port3.check_alive(), Err(PortError::Gone(n)) if n == "swp3"));
        assert!(matches!(
            port3.recv_batch(&mut bufs),
            Err(PortError::Gone(_))
        ));
    });
}

/// The local stack's own frames leaving the interface are not read back, by a lone
/// port nor by the queues of a fanout group (where `PACKET_IGNORE_OUTGOING` alone lets
/// them through):
///
/// ```text
///   sw: swp1 10.78.0.1/24 [PacketPort x1, then x2] ==veth== ctr: eth0 10.78.0.2/24
/// ```
///
/// `sw` pings `ctr` out of swp1: the ARP request and the echo requests leave swp1 (the
/// local stack's), the answers arrive on it. The ports read the answers, none of the
/// requests.
#[test]
fn af_packet_queues_do_not_read_back_what_the_local_stack_sends() {
    for queues in [1, 2] {
        let sw = Ns::new("sw");
        let ctr = Ns::new("c");
        veth(&sw, "swp1", &ctr, "eth0");
        sw.ip(&["addr", "add", "10.78.0.1/24", "dev", "swp1"]);
        ctr.ip(&["addr", "add", "10.78.0.2/24", "dev", "eth0"]);
        let own_mac = sw
            .exec(&["cat", "/sys/class/net/swp1/address"])
            .expect("swp1's MAC");
        let own_mac: Vec<u8> = own_mac
            .trim()
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).expect("hex"))
            .collect();
        let mut ports = sw.run(move || PacketPort::open_queues("swp1", queues).expect("open"));
        sw.exec(&["ping", "-c", "3", "-i", "0.2", "-W", "2", "10.78.0.2"])
            .expect("ping out of swp1");
        let (mut ours, mut theirs) = (0, 0);
        let mut bufs: Vec<PacketBuf> = (0..64).map(|_| PacketBuf::new()).collect();
        for port in &mut ports {
            loop {
                let n = port.recv_batch(&mut bufs).expect("recv");
                if n == 0 {
                    break;
                }
                for b in &bufs[..n] {
                    if b.frame().get(6..12) == Some(&own_mac[..]) {
                        ours += 1;
                    } else {
                        theirs += 1;
                    }
                }
            }
        }
        assert_eq!(
            ours, 0,
            "{queues} queue(s) read back the local stack's frames"
        );
        assert!(theirs >= 3, "{queues} queue(s): {theirs} frames from ctr");
    }
}

#[test]
fn af_packet_open_names_the_missing_interface() {
    let sw = Ns::new("sw");
    let err = sw.run(|| PacketPort::open("vsp12").unwrap_err());
    assert!(
        matches!(err, PacketPortError::NoSuchInterface { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("interface vsp12 does not exist"),
        "{err}"
    );
    let err = sw.run(|| PacketPort::open("no/slash").unwrap_err());
    assert!(
        matches!(err, PacketPortError::InvalidName { .. }),
        "{err:?}"
    );
}

/// A broadcast frame with a payload nobody will answer (an unused EtherType).
pub fn test_frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f.extend_from_slice(&[0x88, 0xb5]); // local experimental EtherType
    f.extend_from_slice(&[0x5a; 46]);
    f
}

/// Receives until at least one frame arrived or `timeout` passed; returns how many.
pub fn recv_within(port: &mut dyn Port, bufs: &mut [PacketBuf], timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let n = port.recv_batch(bufs).expect("recv");
        if n > 0 || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
