//! The underlay against the real kernel, between two network namespaces of its own:
//!
//! ```text
//!   vsu<pid>x<n> (a)                              vsu<pid>x<n+1> (b)
//!  +---------------------------+                +---------------------------+
//!  | Underlay 192.0.2.1        |      veth      | Underlay 192.0.2.2        |
//!  |       or 2001:db8::1      |================|       or 2001:db8::2      |
//!  | src ports 61000-61063  va |   MTU 1500     | vb   :4789 (+ AF_PACKET   |
//!  +---------------------------+                |       capture in tests)   |
//!                                               +---------------------------+
//! ```
//!
//! Each test makes its own namespaces and deletes them on drop, pass or fail; sockets
//! are opened on threads that entered them. Nothing touches the namespace the tests run
//! in. They need root.

mod lab;
mod lanes;
mod overrun;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use self::lab::{Ns, Pair};
use super::send::Route;
use super::*;

pub(super) const V4: (&str, &str) = ("192.0.2.1", "192.0.2.2");
const V6: (&str, &str) = ("2001:db8::1", "2001:db8::2");

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

pub(super) fn open(ns: &Ns, cfg: &UnderlayConfig) -> Underlay {
    let cfg = cfg.clone();
    ns.run(move || Underlay::open(&cfg).unwrap_or_else(|e| panic!("open: {e}")))
}

fn try_open(ns: &Ns, cfg: &UnderlayConfig) -> Result<Underlay, UnderlayError> {
    let cfg = cfg.clone();
    ns.run(move || Underlay::open(&cfg))
}

/// A payload that names its index and is recognisable byte by byte.
fn payload(index: usize, len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len).map(|j| (index * 7 + j) as u8).collect();
    p[..2].copy_from_slice(&(index as u16).to_be_bytes());
    p
}

/// Sends every transmit, retrying what would block, and checks nothing was dropped.
pub(super) fn send_all(u: &mut Underlay, pool: &[PacketBuf], txs: &[Transmit]) {
    let mut done = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while done < txs.len() {
        let end = txs.len().min(done + MAX_BATCH);
        done += u.send_batch(pool, &txs[done..end]).expect("send_batch");
        assert!(Instant::now() < deadline, "sends kept blocking");
    }
    let drops = u.take_drops();
    assert!(!drops.any(), "{drops:?}");
}

/// What arrived: each datagram (GRO reads split back apart) with its sender.
#[derive(Debug, Default)]
pub(super) struct Received {
    datagrams: Vec<(SocketAddr, Vec<u8>)>,
    reads: usize,
    /// Reads that held more than one datagram, and the segment sizes they reported.
    coalesced: Vec<(usize, u16)>,
    largest_batch: usize,
}

/// Reads until `want` datagrams arrived or five seconds passed (a bound for a failing
/// run: the first datagram may wait on neighbour resolution, which a loaded machine
/// can stretch past a second).
fn receive(u: &mut Underlay, want: usize) -> Received {
    receive_for(u, want, Duration::from_secs(5))
}

pub(super) fn receive_for(u: &mut Underlay, want: usize, wait: Duration) -> Received {
    let mut bufs: Vec<PacketBuf> = (0..MAX_BATCH).map(|_| PacketBuf::new()).collect();
    let mut meta = vec![RxMeta::default(); MAX_BATCH];
    let mut got = Received::default();
    let deadline = Instant::now() + wait;
    while got.datagrams.len() < want && Instant::now() < deadline {
        let n = u.recv_batch(&mut bufs, &mut meta).expect("recv_batch");
        if n == 0 {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        got.largest_batch = got.largest_batch.max(n);
        for (buf, m) in bufs[..n].iter().zip(&meta[..n]) {
            got.reads += 1;
            let seg = m.segment_size.map_or(buf.len(), usize::from);
            if let Some(s) = m.segment_size {
                got.coalesced.push((buf.len(), s));
            }
            for d in buf.frame().chunks(seg) {
                got.datagrams.push((m.src, d.to_vec()));
            }
        }
    }
    got
}

/// `count` transmits of one buffer each, sizes and flows varied.
pub(super) fn varied(dst: IpAddr, count: usize) -> (Vec<PacketBuf>, Vec<Transmit>) {
    let pool: Vec<PacketBuf> = (0..count)
        .map(|i| PacketBuf::from_frame(&payload(i, 8 + (i * 137) % 1400)))
        .collect();
    let txs = (0..count)
        .map(|i| Transmit {
            buf: i as u32,
            dst,
            flow_hash: (i as u32).wrapping_mul(0x9e37_79b9),
            range: None,
            segment_size: None,
        })
        .collect();
    (pool, txs)
}

/// One GSO transmit of `count` datagrams of `seg` bytes, datagram `k` filled with `k`.
fn run_of(dst: IpAddr, count: usize, seg: u16) -> (Vec<PacketBuf>, Transmit, Vec<u8>) {
    let bytes: Vec<u8> = (0..count * usize::from(seg))
        .map(|j| (j / usize::from(seg)) as u8)
        .collect();
    let tx = Transmit {
        buf: 0,
        dst,
        flow_hash: 0x1234_5678,
        range: None,
        segment_size: Some(seg),
    };
    (vec![PacketBuf::from_frame(&bytes)], tx, bytes)
}

#[test]
fn underlay_carries_single_datagrams_with_flow_source_ports() {
    for (a_ip, b_ip) in [V4, V6] {
        let lab = Pair::new();
        let mut a = open(&lab.a, &UnderlayConfig::new(ip(a_ip)));
        let mut b = open(&lab.b, &UnderlayConfig::new(ip(b_ip)));
        let (pool, txs) = varied(ip(b_ip), 100);
        send_all(&mut a, &pool, &txs);

        let got = receive(&mut b, 100);
        assert_eq!(got.datagrams.len(), 100, "{a_ip}: {got:?}");
        let mut seen = [false; 100];
        let mut ports = std::collections::BTreeSet::new();
        for (src, d) in &got.datagrams {
            let i = usize::from(u16::from_be_bytes([d[0], d[1]]));
            assert_eq!(d, &payload(i, d.len()), "datagram {i} changed");
            assert_eq!(d.len(), pool[i].len());
            assert_eq!(src.ip(), ip(a_ip));
            assert_eq!(src.port(), a.source_port(txs[i].flow_hash));
            assert!(vtep::PortRange::DEFAULT.contains(src.port()));
            ports.insert(src.port());
            seen[i] = true;
        }
        assert!(seen.iter().all(|&s| s), "{a_ip}: some datagram missing");
        assert!(
            ports.len() > 30,
            "{a_ip}: only {} source ports used",
            ports.len()
        );
        assert!(
            got.largest_batch > 1,
            "{a_ip}: never more than one per read"
        );
        eprintln!(
            "{a_ip}: 100 datagrams in {} reads, largest batch {}, {} source ports",
            got.reads,
            got.largest_batch,
            ports.len()
        );
    }
}

#[test]
fn underlay_sends_a_gso_run_in_one_call_and_receives_it_whole() {
    for (a_ip, b_ip) in [V4, V6] {
        let lab = Pair::new();
        let mut a = open(&lab.a, &UnderlayConfig::new(ip(a_ip)));
        let mut b = open(&lab.b, &UnderlayConfig::new(ip(b_ip)));
        assert_eq!(
            a.caps(),
            UnderlayCaps {
                gso: true,
                gro: true
            }
        );
        let (pool, tx, bytes) = run_of(ip(b_ip), 40, 1400);
        send_all(&mut a, &pool, &[tx]);
        assert!(a.caps().gso, "GSO was given up");

        let got = receive(&mut b, 40);
        assert_eq!(got.datagrams.len(), 40, "{a_ip}: {got:?}");
        let joined: Vec<u8> = got.datagrams.iter().flat_map(|(_, d)| d.clone()).collect();
        assert_eq!(joined, bytes, "{a_ip}: contents differ");
        assert!(got.datagrams.iter().all(|(_, d)| d.len() == 1400));
        eprintln!(
            "{a_ip}: 40 x 1400 arrived in {} read(s); coalesced (bytes, segment): {:?}",
            got.reads, got.coalesced
        );
        // A GSO packet crosses a veth whole, and a UDP_GRO socket takes it as one read.
        assert_eq!(got.coalesced, vec![(56_000, 1400)], "{a_ip}: no GRO read");
    }
}

#[test]
fn underlay_ipv4_checksum_is_zero_for_single_datagrams_and_set_for_gso() {
    for udp_checksum in [false, true] {
        let lab = Pair::new();
        let mut cfg = UnderlayConfig::new(ip(V4.0));
        cfg.udp_checksum = udp_checksum;
        let mut a = open(&lab.a, &cfg);
        let mut b = open(&lab.b, &UnderlayConfig::new(ip(V4.1)));
        let capture = lab::Capture::start(&lab.b, "vb");

        let (pool, txs) = varied(ip(V4.1), 3);
        send_all(&mut a, &pool, &txs);
        let (gso_pool, gso_tx, _) = run_of(ip(V4.1), 40, 1400);
        send_all(&mut a, &gso_pool, &[gso_tx]);
        assert!(a.caps().gso, "checksum {udp_checksum}: GSO was given up");
        assert_eq!(receive(&mut b, 43).datagrams.len(), 43);

        let seen = capture.finish(4);
        assert_eq!(seen.len(), 4, "{seen:?}");
        for pkt in &seen {
            assert!(pkt.dont_fragment, "DF not set: {pkt:?}");
            let gso = pkt.gso_type != 0;
            // A GSO run crosses the veth as one packet, segmented (if ever) further on.
            assert_eq!(gso, pkt.len > 1514, "{pkt:?}");
            // On a veth the checksum of a checksummed datagram is left partial (the
            // pseudo-header sum, never 0); a zero-checksum one carries 0.
            let want_zero = !udp_checksum && !gso;
            assert_eq!(
                pkt.udp_checksum == 0,
                want_zero,
                "checksum {udp_checksum}: {pkt:?}"
            );
        }
        assert_eq!(seen.iter().filter(|p| p.gso_type != 0).count(), 1);
        eprintln!("udp_checksum = {udp_checksum}: {seen:?}");
    }
}

#[test]
fn underlay_without_gso_sends_runs_datagram_by_datagram() {
    let lab = Pair::new();
    let mut cfg = UnderlayConfig::new(ip(V4.0));
    cfg.gso = false;
    let mut a = open(&lab.a, &cfg);
    let mut b_cfg = UnderlayConfig::new(ip(V4.1));
    b_cfg.gro = false;
    let mut b = open(&lab.b, &b_cfg);
    assert!(!a.caps().gso);
    assert!(!b.caps().gro);
    let (pool, tx, bytes) = run_of(ip(V4.1), 40, 1400);
    send_all(&mut a, &pool, &[tx]);
    let got = receive(&mut b, 40);
    assert_eq!(got.reads, 40, "{got:?}");
    let joined: Vec<u8> = got.datagrams.iter().flat_map(|(_, d)| d.clone()).collect();
    assert_eq!(joined, bytes);
}

#[test]
fn underlay_gives_up_gso_when_the_kernel_refuses_it_and_loses_nothing() {
    let lab = Pair::new();
    let mut a = open(&lab.a, &UnderlayConfig::new(ip(V4.0)));
    let mut b = open(&lab.b, &UnderlayConfig::new(ip(V4.1)));
    let (pool, tx, bytes) = run_of(ip(V4.1), 40, 1400);
    // Make the kernel refuse GSO on the socket this flow uses, as a device or kernel
    // without it would: SO_NO_CHECK makes udp_send_skb answer EINVAL.
    let Route::Msg { sock, gso: true } = a.route(&pool, &tx) else {
        panic!("not a GSO route");
    };
    let gso_pool = a.tx.gso.as_ref().expect("a checksummed GSO pool");
    gso_pool[sock.index]
        .set_no_check(true)
        .expect("SO_NO_CHECK");

    send_all(&mut a, &pool, &[tx.clone(), tx]);
    assert!(!a.caps().gso, "GSO still on after EINVAL");
    let got = receive(&mut b, 80);
    assert_eq!(got.datagrams.len(), 80, "{got:?}");
    let joined: Vec<u8> = got.datagrams.iter().flat_map(|(_, d)| d.clone()).collect();
    assert_eq!(&joined[..bytes.len()], &bytes[..]);
    assert_eq!(&joined[bytes.len()..], &bytes[..]);
}

#[test]
fn underlay_refuses_oversize_datagrams_instead_of_fragmenting() {
    for (a_ip, b_ip) in [V4, V6] {
        let lab = Pair::new();
        let mut a = open(&lab.a, &UnderlayConfig::new(ip(a_ip)));
        let mut b = open(&lab.b, &UnderlayConfig::new(ip(b_ip)));
        assert_eq!(a.mtu(), Some(1500));
        let headers = if a_ip == V4.0 { 28 } else { 48 };
        assert_eq!(a.max_payload(), Some(1500 - headers));
        // 1600-byte segments and a 1600-byte single: neither fits 1500 with DF.
        let (mut pool, tx, _) = run_of(ip(b_ip), 3, 1600);
        pool.push(PacketBuf::from_frame(&payload(1, 1600)));
        let single = Transmit {
            buf: 1,
            segment_size: None,
            ..tx.clone()
        };
        assert_eq!(a.send_batch(&pool, &[tx, single.clone()]).expect("send"), 2);
        let drops = a.take_drops();
        assert_eq!(drops.tx_refused, 4, "{a_ip}: {drops:?}");
        assert_eq!(drops.last_tx_errno, Some(libc::EMSGSIZE));
        assert!(a.caps().gso, "{a_ip}: an oversize run is not GSO's fault");
        // A family mismatch is refused before the kernel sees it.
        let other = if a_ip == V4.0 { ip(V6.1) } else { ip(V4.1) };
        let wrong = Transmit {
            dst: other,
            ..single.clone()
        };
        assert_eq!(a.send_batch(&pool, &[wrong]).expect("send"), 1);
        assert_eq!(a.take_drops().last_tx_errno, Some(libc::EAFNOSUPPORT));
        let got = receive_for(&mut b, 1, Duration::from_millis(200));
        assert_eq!(got.datagrams.len(), 0, "{a_ip}: something arrived");
    }
}

#[test]
fn underlay_open_errors_tell_the_operator_what_to_do() {
    let lab = Pair::new();
    let err = try_open(&lab.a, &UnderlayConfig::new(ip("192.0.2.99"))).unwrap_err();
    assert!(
        matches!(err, UnderlayError::AddressNotLocal { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("local address 192.0.2.99 is not configured on any interface"),
        "{err}"
    );

    // Ports are never reused after a drop here: a socket closed while another test
    // thread forks `ip` stays held by the child until its exec.
    let _first = open(&lab.a, &UnderlayConfig::new(ip(V4.0)));
    let err = try_open(&lab.a, &UnderlayConfig::new(ip(V4.0))).unwrap_err();
    assert!(matches!(err, UnderlayError::PortInUse { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("UDP port 4789 on 192.0.2.1 is already in use"),
        "{err}"
    );

    let mut cfg = UnderlayConfig::new(ip(V6.0));
    cfg.port = 4790;
    let _holder = open(&lab.a, &cfg);
    cfg.port = 4789;
    cfg.src_ports = vtep::PortRange::new(4790, 4800).expect("range");
    let err = try_open(&lab.a, &cfg).unwrap_err();
    assert!(
        matches!(err, UnderlayError::SourcePortInUse { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("UDP source port 4790 on 2001:db8::1"),
        "{err}"
    );

    cfg.src_ports = vtep::PortRange::new(4780, 4799).expect("range");
    let err = try_open(&lab.a, &cfg).unwrap_err();
    assert!(
        matches!(err, UnderlayError::SourcePortsContainPort { .. }),
        "{err:?}"
    );

    let mut cfg = UnderlayConfig::new(ip(V4.0));
    cfg.interface = Some("nonesuch0".into());
    let err = try_open(&lab.a, &cfg).unwrap_err();
    assert!(
        matches!(err, UnderlayError::NoSuchInterface { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("nonesuch0 does not exist"),
        "{err}"
    );

    let err = try_open(&lab.a, &UnderlayConfig::new(ip("0.0.0.0"))).unwrap_err();
    assert!(matches!(err, UnderlayError::InvalidLocal { .. }), "{err:?}");
    let err = try_open(&lab.a, &UnderlayConfig::new(ip("fe80::1"))).unwrap_err();
    assert!(
        matches!(err, UnderlayError::LinkLocalNeedsInterface { .. }),
        "{err:?}"
    );
}

#[test]
fn underlay_bound_to_an_interface_reports_its_mtu() {
    let lab = Pair::new();
    lab.a.ip(&["link", "set", "va", "mtu", "1400"]);
    let mut cfg = UnderlayConfig::new(ip(V6.0));
    cfg.interface = Some("va".into());
    let mut a = open(&lab.a, &cfg);
    assert_eq!(a.mtu(), Some(1400));
    let mut b = open(&lab.b, &UnderlayConfig::new(ip(V6.1)));
    let (pool, txs) = varied(ip(V6.1), 10);
    send_all(&mut a, &pool, &txs);
    assert_eq!(receive(&mut b, 10).datagrams.len(), 10);
}

mod throughput;
