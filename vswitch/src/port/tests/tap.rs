//! TAP ports.

use std::time::{Duration, Instant};

use super::af_packet::{recv_within, test_frame};
use super::forward::{Forwarder, tcp_transfer};
use super::lab::{Ns, ip_n, quiet_switch_side, veth};
use crate::packet::PacketBuf;
use crate::port::af_packet::PacketPort;
use crate::port::sys::epoll::{Epoll, Events};
use crate::port::sys::seccomp::refuse_io_uring_on_this_thread;
use crate::port::tap::{TapError, TapIo, TapPort};
use crate::port::{Port, PortError};

const TRANSFER_BYTES: u64 = 100 << 20;

/// A TAP on one side, a veth on the other. The TAP is created in the switch namespace
/// and then moved into ctr1, playing a VM's NIC; our descriptor stays attached to it.
///
/// ```text
///   ctr1                       sw                            ctr2
///  +--------------+     +--------------------------+     +--------------+
///  | tap1 (moved) |     |  fd of tap1   swp2       |     |         eth0 |
///  | 10.78.0.1/24 |<--->| TapPort <-> PacketPort   |=====| 10.78.0.2/24 |
///  +--------------+ fd  |   (forwarder thread)     |veth +--------------+
///                       +--------------------------+
/// ```
#[test]
fn tap_forwarder_carries_tcp_super_frames() {
    tap_forwarder(TapIo::Auto);
}

/// The same with the fallback forced: one `readv` / `writev` per frame.
#[test]
fn tap_forwarder_carries_tcp_super_frames_without_io_uring() {
    tap_forwarder(TapIo::Syscalls);
}

/// Whether `TapIo::Auto` must get io_uring here: unless the host disables it.
fn io_uring_expected() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").is_ok_and(|v| v.trim() == "0")
}

/// Opens a TAP with `io` and checks it got the I/O it should.
pub(super) fn open_tap(name: &str, io: TapIo) -> TapPort {
    let tap = TapPort::open_with(name, false, io).unwrap_or_else(|e| panic!("open {name}: {e}"));
    let want = io == TapIo::Auto && io_uring_expected();
    assert_eq!(tap.uses_io_uring(), want, "{name} with {io:?}");
    tap
}

fn tap_forwarder(io: TapIo) {
    let sw = Ns::new("sw");
    let ctr1 = Ns::new("c1");
    let ctr2 = Ns::new("c2");
    veth(&sw, "swp2", &ctr2, "eth0");
    quiet_switch_side(&sw, "swp2");
    ctr2.ip(&["addr", "add", "10.78.0.2/24", "dev", "eth0"]);

    let fwd = Forwarder::start(&sw, move || {
        [
            Box::new(open_tap("tap1", io)) as Box<dyn Port>,
            Box::new(PacketPort::open("swp2").expect("open swp2")),
        ]
    });
    sw.ip(&["link", "set", "tap1", "netns", &ctr1.name]);
    ctr1.ip(&["addr", "add", "10.78.0.1/24", "dev", "tap1"]);
    ctr1.ip(&["link", "set", "tap1", "up"]);

    ctr1.exec(&["ping", "-c", "2", "-i", "0.2", "-W", "2", "10.78.0.2"])
        .expect("ping through the forwarder");
    let took = tcp_transfer(&ctr2, "10.78.0.2", &ctr1, TRANSFER_BYTES);
    // And the other way, so super-frames are also written into the TAP.
    let took_back = tcp_transfer(&ctr1, "10.78.0.1", &ctr2, TRANSFER_BYTES);
    let stats = fwd.finish().expect("forwarder");
    let gbps = |t: Duration| TRANSFER_BYTES as f64 * 8.0 / t.as_secs_f64() / 1e9;
    eprintln!(
        "tap ({io:?}): {} MB tap->veth in {took:?} ({:.1} Gbit/s), veth->tap in {took_back:?} ({:.1} Gbit/s); {stats:?}",
        TRANSFER_BYTES >> 20,
        gbps(took),
        gbps(took_back)
    );
    assert!(stats.gso_frames > 0, "no GSO super-frames seen: {stats:?}");
    assert!(
        stats.max_frame > 30_000,
        "largest frame only {} bytes",
        stats.max_frame
    );
    assert_eq!(stats.drops.rx_truncated, 0, "{stats:?}");
}

/// `ip link del` on an open TAP, and a TAP that is only down.
///
/// ```text
///   sw:  tapg  [TapPort] (down when new) -> up -> `ip link del tapg`
///        tapg2 [TapPort] -> up -> deleted, then send first
///        tapg3 [TapPort] -> deleted, then check_alive first
/// ```
#[test]
fn tap_port_reports_down_and_gone() {
    tap_down_and_gone(TapIo::Auto);
    tap_down_and_gone(TapIo::Syscalls);
}

fn tap_down_and_gone(io: TapIo) {
    let sw = Ns::new("sw");
    let ns = sw.name.clone();
    let sw_ip = move |args: &[&str]| drop(ip_n(&ns, args));
    sw.run(move || {
        let mut tap = open_tap("tapg", io);
        let frame = PacketBuf::from_frame(&test_frame());
        let pool = std::slice::from_ref(&frame);
        let mut bufs: Vec<PacketBuf> = (0..4).map(|_| PacketBuf::new()).collect();

        // A new TAP is down: writes are refused (EIO) and counted, not fatal.
        assert_eq!(tap.send_batch(pool, &[0, 0, 0]).unwrap(), 3);
        assert_eq!(tap.take_drops().tx_link_down, 3);
        sw_ip(&["link", "set", "tapg", "up"]);
        assert_eq!(tap.send_batch(pool, &[0]).unwrap(), 1);
        assert_eq!(tap.take_drops().tx_link_down, 0);
        tap.check_alive().expect("alive");

        let epoll = Epoll::new().unwrap();
        epoll.add(tap.as_fd(), 1).unwrap();
        sw_ip(&["link", "del", "tapg"]);
        let mut events = Events::with_capacity(4);
        assert_eq!(
            epoll
                .wait(&mut events, Some(Duration::from_secs(2)))
                .unwrap(),
            1,
            "epoll woke"
        );
        // Detached, the descriptor polls as an error (and stays so: level-triggered).
        assert!(events.iter().next().unwrap().error);
        let started = Instant::now();
        let first = tap.recv_batch(&mut bufs);
        assert!(
            matches!(first, Err(PortError::Gone(ref n)) if n == "tapg"),
            "{first:?}"
        );
        assert!(matches!(
            tap.send_batch(pool, &[0]),
            Err(PortError::Gone(_))
        ));
        assert!(started.elapsed() < Duration::from_millis(100));

        // Send first on a deleted TAP; check_alive sees it too.
        let mut tap2 = open_tap("tapg2", io);
        sw_ip(&["link", "set", "tapg2", "up"]);
        sw_ip(&["link", "del", "tapg2"]);
        let mut tap3 = open_tap("tapg3", io);
        sw_ip(&["link", "del", "tapg3"]);
        assert!(matches!(tap3.check_alive(), Err(PortError::Gone(n)) if n == "tapg3"));
        let first = tap2.send_batch(pool, &[0]);
        assert!(
            matches!(first, Err(PortError::Gone(ref n)) if n == "tapg2"),
            "{first:?}"
        );
        assert!(matches!(
            tap2.recv_batch(&mut bufs),
            Err(PortError::Gone(_))
        ));
        // destroy() of a gone TAP is fine.
        tap2.destroy().expect("destroy a gone TAP");
    });
}

/// Persistence: a persistent TAP survives its port; opening it again by name re-attaches
/// (and a second opener is refused while we hold it); `destroy` deletes it. A TAP that
/// is not persistent goes away with its port.
///
/// ```text
///   sw:  tapp  open(persist) -> drop -> still there -> open again -> destroy -> gone
///        tapn  open(no persist) -> drop -> gone
/// ```
#[test]
fn tap_persistent_reattach_and_destroy() {
    let sw = Ns::new("sw");
    let tap = sw.run(|| TapPort::open("tapp", true).expect("create tapp"));
    assert!(tap.is_persistent());
    drop(tap);
    assert!(sw.has_link("tapp"), "a persistent TAP outlives its port");

    sw.ip(&["link", "set", "tapp", "up"]);
    let tap = sw.run(|| TapPort::open("tapp", true).expect("re-attach tapp"));
    // The re-attached TAP is usable: a frame written to it reaches the stack.
    let sent = sw.run(move || {
        let mut tap = tap;
        let frame = PacketBuf::from_frame(&test_frame());
        let n = tap
            .send_batch(std::slice::from_ref(&frame), &[0])
            .expect("send");
        (n, tap)
    });
    assert_eq!(sent.0, 1);
    let tap = sent.1;

    let busy = sw.run(|| TapPort::open("tapp", true).unwrap_err());
    assert!(matches!(busy, TapError::SetIff { .. }), "{busy:?}");
    assert!(busy.to_string().contains("already attached"), "{busy}");

    tap.destroy().expect("destroy");
    assert!(!sw.has_link("tapp"), "destroy deletes the TAP");

    drop(sw.run(|| TapPort::open("tapn", false).expect("create tapn")));
    assert!(
        !sw.has_link("tapn"),
        "a non-persistent TAP goes with its port"
    );

    // A name taken by something that is not a TAP.
    veth(&sw, "notatap", &sw, "notatap-peer");
    let err = sw.run(|| TapPort::open("notatap", true).unwrap_err());
    assert!(
        err.to_string().contains("is not a single-queue TAP"),
        "{err}"
    );
}

/// A TAP in a namespace, the kernel's own stack on the other side: a frame we write
/// comes back as the stack's answer (an ARP reply), read through `recv_batch`.
#[test]
fn tap_round_trip_with_the_kernel() {
    let sw = Ns::new("sw");
    let tap = sw.run(|| TapPort::open("tapk", false).expect("open tapk"));
    sw.ip(&["addr", "add", "10.79.0.1/24", "dev", "tapk"]);
    sw.ip(&["link", "set", "tapk", "up"]);
    let got = sw.run(move || {
        let mut tap = tap;
        let arp = PacketBuf::from_frame(&arp_request(
            [0x02, 0, 0, 0, 0, 9],
            [10, 79, 0, 9],
            [10, 79, 0, 1],
        ));
        assert_eq!(
            tap.send_batch(std::slice::from_ref(&arp), &[0])
                .expect("send"),
            1
        );
        let mut bufs: Vec<PacketBuf> = (0..8).map(|_| PacketBuf::new()).collect();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            let n = recv_within(&mut tap, &mut bufs, Duration::from_millis(200));
            if let Some(b) = bufs[..n]
                .iter()
                .find(|b| b.frame().get(12..14) == Some(&[0x08, 0x06]))
            {
                return Some(b.frame().to_vec());
            }
        }
        None
    });
    let reply = got.expect("no ARP reply from the kernel");
    assert_eq!(&reply[0..6], &[0x02, 0, 0, 0, 0, 9], "addressed to our MAC");
    assert_eq!(&reply[20..22], &[0, 2], "an ARP reply");
}

/// Frames queued on a TAP come out of one `recv_batch`, all of them and in order, with
/// io_uring and without; an idle TAP gives `Ok(0)`; a smaller batch takes the queue in
/// parts, still in order.
///
/// ```text
///   sw:  tapq 10.79.1.1/24, neighbour 10.79.1.2 at a fixed MAC (no ARP)
///        UDP socket -> 10.79.1.2:9, 10 datagrams -> 10 frames queued on tapq
/// ```
#[test]
fn tap_recv_batch_takes_every_waiting_frame() {
    recv_batch_scenario(TapIo::Auto, false);
    recv_batch_scenario(TapIo::Syscalls, false);
}

/// Where `io_uring_setup` is refused (here by a seccomp filter, as in a container),
/// `TapIo::Auto` falls back to syscalls, and the port works the same.
#[test]
fn tap_falls_back_when_io_uring_is_refused() {
    recv_batch_scenario(TapIo::Auto, true);
}

fn recv_batch_scenario(io: TapIo, refuse_io_uring: bool) {
    let sw = Ns::new("sw");
    let tap = sw.run(move || {
        if !refuse_io_uring {
            return open_tap("tapq", io);
        }
        refuse_io_uring_on_this_thread().expect("seccomp filter");
        let tap = TapPort::open_with("tapq", false, io).expect("open tapq");
        assert!(!tap.uses_io_uring(), "io_uring was refused");
        tap
    });
    quiet_switch_side(&sw, "tapq");
    sw.ip(&["addr", "add", "10.79.1.1/24", "dev", "tapq"]);
    sw.ip(&["link", "set", "tapq", "up"]);
    let mac = "02:00:00:00:01:02";
    sw.ip(&["neigh", "add", "10.79.1.2", "lladdr", mac, "dev", "tapq"]);
    sw.run(move || {
        let mut tap = tap;
        let mut bufs: Vec<PacketBuf> = (0..16).map(|_| PacketBuf::new()).collect();
        // Whatever the stack sent when the link came up (IGMP, ...).
        std::thread::sleep(Duration::from_millis(100));
        while tap.recv_batch(&mut bufs).expect("drain") > 0 {}
        assert_eq!(tap.recv_batch(&mut bufs).expect("idle"), 0, "{io:?}");

        let sock = std::net::UdpSocket::bind("10.79.1.1:0").expect("bind");
        let send_10 = |first: u8| {
            for i in first..first + 10 {
                sock.send_to(&[i; 18], "10.79.1.2:9").expect("send");
            }
            // The sends pass the qdisc onto the TAP's queue before they return;
            // leave a margin all the same.
            std::thread::sleep(Duration::from_millis(50));
        };
        send_10(0);
        let n = tap.recv_batch(&mut bufs).expect("recv");
        assert_eq!(
            udp_payload_ids(&bufs[..n]),
            (0..10).collect::<Vec<_>>(),
            "{io:?}"
        );
        assert_eq!(tap.recv_batch(&mut bufs).expect("idle"), 0, "{io:?}");

        send_10(10);
        let mut ids = Vec::new();
        for want in [4, 4, 2, 0] {
            let n = tap.recv_batch(&mut bufs[..4]).expect("recv part");
            assert_eq!(n, want, "{io:?}: {ids:?}");
            ids.extend(udp_payload_ids(&bufs[..n]));
        }
        assert_eq!(ids, (10..20).collect::<Vec<_>>(), "{io:?}");
        assert_eq!(tap.take_drops(), Default::default());
    });
}

/// The first payload byte of each frame, which must all be our UDP datagrams to port 9.
fn udp_payload_ids(frames: &[PacketBuf]) -> Vec<u8> {
    frames
        .iter()
        .map(|b| {
            let f = b.frame();
            assert_eq!(f.get(12..14), Some(&[0x08, 0x00][..]), "IPv4: {f:02x?}");
            assert_eq!(f.get(23), Some(&17), "UDP: {f:02x?}");
            assert_eq!(f.get(36..38), Some(&[0, 9][..]), "to port 9: {f:02x?}");
            f[42]
        })
        .collect()
}

fn arp_request(mac: [u8; 6], ip: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target);
    f.resize(60, 0);
    f
}
