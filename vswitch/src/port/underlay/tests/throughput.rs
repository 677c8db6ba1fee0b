//! Goodput of 1400-byte datagrams between the two namespaces, datagram by datagram
//! (`sendmmsg`) against GSO + GRO. A measurement, not a check: run it alone, in release
//! mode, on a quiet machine:
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-underlay cargo test --release -p vswitch --lib \
//!     underlay_throughput -- --ignored --nocapture --test-threads 1
//! ```
//!
//! Measured on the 2-vCPU lab machine (kernel 6.18), load under 0.6, one flow, 3 s per
//! mode; receiver goodput (UDP payload) in Gbit/s, two runs:
//!
//! | sender -> receiver                                   | run 1 | run 2 |
//! |------------------------------------------------------|-------|-------|
//! | sendmmsg 64 x 1400 -> recvmmsg                       |  2.20 |  2.36 |
//! | sendmmsg 64 x 1400 -> veth `gro` + `rx-udp-gro-forwarding`, UDP_GRO | 1.62 | 1.78 |
//! | GSO 45 x 1400 -> socket without UDP_GRO              |  9.39 | 10.39 |
//! | GSO 45 x 1400 -> UDP_GRO (the run crosses the veth whole) | 37.75 | 38.39 |
//! | GSO split at the sending veth -> UDP_GRO             |  5.31 |  5.19 |
//! | GSO split at the sending veth -> veth GRO, UDP_GRO   |  9.08 |  6.48 |
//!
//! Datagrams sent one by one were never coalesced by veth GRO (0 coalesced reads): each
//! crosses in its own softirq pass, and turning veth GRO (NAPI) on only costs. The
//! 38 Gbit/s row is a veth artefact (nothing is ever segmented); a real NIC splits the
//! run on the wire, which the last two rows imitate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::lab::Pair;
use super::{V4, ip, open};
use crate::packet::PacketBuf;
use crate::port::MAX_BATCH;
use crate::port::sys::epoll::{Epoll, Events};
use crate::port::underlay::{RxMeta, Transmit, Underlay, UnderlayConfig};

const SEG: u16 = 1400;
const RUN: Duration = Duration::from_secs(3);

struct Mode {
    name: &'static str,
    /// Datagrams per transmit: 1 is a plain send, more is one GSO run.
    per_tx: usize,
    sender_gso: bool,
    receiver_gro: bool,
    /// `ethtool -K vb gro on rx-udp-gro-forwarding on` on the receiving veth.
    veth_gro: bool,
    /// `ethtool -K va tx-udp-segmentation off`: the sending veth splits GSO runs, as a
    /// NIC without USO (or the wire) would.
    split_at_veth: bool,
}

#[derive(Debug, Default)]
struct Tally {
    bytes: u64,
    datagrams: u64,
    reads: u64,
    coalesced_reads: u64,
}

#[test]
#[ignore = "a measurement: run alone in release mode"]
fn underlay_throughput() {
    let mode = |name, per_tx, receiver_gro, veth_gro, split_at_veth| Mode {
        name,
        per_tx,
        sender_gso: per_tx > 1,
        receiver_gro,
        veth_gro,
        split_at_veth,
    };
    let modes = [
        mode("sendmmsg 64 x 1400 -> recvmmsg", 1, false, false, false),
        mode(
            "sendmmsg 64 x 1400 -> veth GRO, UDP_GRO",
            1,
            true,
            true,
            false,
        ),
        mode("GSO 45 x 1400 -> no UDP_GRO", 45, false, false, false),
        mode("GSO 45 x 1400 -> UDP_GRO", 45, true, false, false),
        mode(
            "GSO 45 x 1400, split at veth -> UDP_GRO",
            45,
            true,
            false,
            true,
        ),
        mode(
            "GSO 45 x 1400, split -> veth GRO, UDP_GRO",
            45,
            true,
            true,
            true,
        ),
    ];
    for mode in &modes {
        let (sent, got, took) = measure(mode);
        eprintln!(
            "{:44} sent {:6.2} Gbit/s, received {:6.2} Gbit/s ({} datagrams, {} reads, {} coalesced), loss {:.1} %",
            mode.name,
            sent as f64 * 8.0 / took.as_secs_f64() / 1e9,
            got.bytes as f64 * 8.0 / took.as_secs_f64() / 1e9,
            got.datagrams,
            got.reads,
            got.coalesced_reads,
            100.0 * (1.0 - got.bytes as f64 / sent.max(1) as f64),
        );
    }
}

/// Returns bytes sent, what arrived, and how long the sender ran.
fn measure(mode: &Mode) -> (u64, Tally, Duration) {
    let lab = Pair::new();
    if mode.veth_gro {
        ethtool(
            &lab.b.name,
            &["-K", "vb", "gro", "on", "rx-udp-gro-forwarding", "on"],
        );
    }
    if mode.split_at_veth {
        ethtool(&lab.a.name, &["-K", "va", "tx-udp-segmentation", "off"]);
    }
    let mut a_cfg = UnderlayConfig::new(ip(V4.0));
    a_cfg.gso = mode.sender_gso;
    let mut b_cfg = UnderlayConfig::new(ip(V4.1));
    b_cfg.gro = mode.receiver_gro;
    let mut a = open(&lab.a, &a_cfg);
    let b = open(&lab.b, &b_cfg);

    let stop = Arc::new(AtomicBool::new(false));
    let receiver = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || receive_until(b, &stop))
    };

    let per_tx = mode.per_tx;
    let count = if per_tx == 1 { MAX_BATCH } else { 8 };
    let payload = vec![0x5au8; per_tx * usize::from(SEG)];
    let pool: Vec<PacketBuf> = (0..count)
        .map(|_| PacketBuf::from_frame(&payload))
        .collect();
    let txs: Vec<Transmit> = (0..count)
        .map(|i| Transmit {
            buf: i as u32,
            dst: ip(V4.1),
            flow_hash: 42,
            range: None,
            segment_size: (per_tx > 1).then_some(SEG),
        })
        .collect();
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < RUN {
        let done = a.send_batch(&pool, &txs).expect("send");
        sent += (done * payload.len()) as u64;
        if done < txs.len() {
            std::thread::yield_now();
        }
    }
    let took = start.elapsed();
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let got = receiver.join().expect("receiver");
    assert!(!a.take_drops().any());
    (sent, got, took)
}

fn ethtool(ns: &str, args: &[&str]) {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "ethtool"])
        .args(args)
        .output()
        .expect("ethtool");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn receive_until(mut u: Underlay, stop: &AtomicBool) -> Tally {
    let epoll = Epoll::new().expect("epoll");
    epoll.add(u.as_fd(), 0).expect("epoll add");
    let mut events = Events::with_capacity(4);
    let mut bufs: Vec<PacketBuf> = (0..MAX_BATCH).map(|_| PacketBuf::new()).collect();
    let mut meta = vec![RxMeta::default(); MAX_BATCH];
    let mut t = Tally::default();
    while !stop.load(Ordering::Relaxed) {
        epoll
            .wait(&mut events, Some(Duration::from_millis(20)))
            .expect("epoll wait");
        loop {
            let n = u.recv_batch(&mut bufs, &mut meta).expect("recv");
            if n == 0 {
                break;
            }
            for (buf, m) in bufs[..n].iter().zip(&meta[..n]) {
                t.reads += 1;
                t.bytes += buf.len() as u64;
                t.datagrams += match m.segment_size {
                    Some(s) => {
                        t.coalesced_reads += 1;
                        buf.len().div_ceil(usize::from(s)) as u64
                    }
                    None => 1,
                };
            }
        }
    }
    t
}
