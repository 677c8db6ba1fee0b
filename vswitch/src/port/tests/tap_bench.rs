//! Measurements, not checks (`#[ignore]`d): TAP frame rates and TCP throughput with
//! io_uring against the syscall fallback. Run them alone, on a quiet machine, in release:
//! `cargo test --release -p vswitch tap_bench -- --ignored --nocapture --test-threads=1`

use std::time::{Duration, Instant};

use super::forward::{Forwarder, FwdStats};
use super::lab::{Ns, quiet_switch_side, veth};
use super::tap::open_tap;
use crate::packet::PacketBuf;
use crate::port::Port;
use crate::port::af_packet::PacketPort;
use crate::port::tap::TapIo;

/// Not a check, a measurement: small frames per second through a forwarder between two
/// TAPs (TAP receive and TAP send on every frame), io_uring against syscalls, alternated,
/// and the cost of one `recv_batch` with 0, 1 or 8 frames waiting.
///
/// ```text
///   c1                          sw                           c2
///  +-------------+      +--------------------------+     +-------------+
///  | tapa        |  fd  | TapPort <-> TapPort      |  fd | tapb        |
///  | PacketPort  |<---->|   (forwarder thread)     |<--->| (drops them:|
///  +-------------+      +--------------------------+     |  not its MAC)
///   sendmmsg of 64 60-byte frames to 02:00:00:00:09:09   +-------------+
/// ```
#[test]
#[ignore = "a measurement; run alone, in release"]
fn small_frame_rate() {
    const FLOOD: Duration = Duration::from_secs(3);
    for round in 1..=3 {
        for io in [TapIo::Auto, TapIo::Syscalls] {
            let (sent, stats) = flood_through_taps(io, FLOOD);
            eprintln!(
                "round {round} {io:?}: forwarded {:.0} kframes/s (offered {:.0} kframes/s)",
                stats.frames[0] as f64 / FLOOD.as_secs_f64() / 1e3,
                sent as f64 / FLOOD.as_secs_f64() / 1e3,
            );
        }
    }
    for io in [TapIo::Auto, TapIo::Syscalls] {
        for waiting in [0, 1, 8] {
            let per_call = recv_cost(io, waiting);
            eprintln!("{io:?}: recv_batch with {waiting} frames waiting: {per_call:?} per call");
        }
    }
}

/// The time one `recv_batch` takes to read `waiting` queued frames (and find the queue
/// empty), averaged over many calls; the frames are queued untimed (UDP to a neighbour
/// at a fixed MAC, as in `tap_recv_batch_takes_every_waiting_frame`).
fn recv_cost(io: TapIo, waiting: u8) -> Duration {
    let sw = Ns::new("sw");
    let tap = sw.run(move || open_tap("tapi", io));
    quiet_switch_side(&sw, "tapi");
    sw.ip(&["addr", "add", "10.79.3.1/24", "dev", "tapi"]);
    sw.ip(&["link", "set", "tapi", "up"]);
    sw.ip(&[
        "neigh",
        "add",
        "10.79.3.2",
        "lladdr",
        "02:00:00:00:03:02",
        "dev",
        "tapi",
    ]);
    sw.run(move || {
        let mut tap = tap;
        let mut bufs: Vec<PacketBuf> = (0..64).map(|_| PacketBuf::new()).collect();
        std::thread::sleep(Duration::from_millis(100));
        while tap.recv_batch(&mut bufs).expect("drain") > 0 {}
        let sock = std::net::UdpSocket::bind("10.79.3.1:0").expect("bind");
        let calls = 20_000u32;
        let mut took = Duration::ZERO;
        for _ in 0..calls {
            for _ in 0..waiting {
                sock.send_to(&[0; 18], "10.79.3.2:9").expect("send");
            }
            let started = Instant::now();
            let n = tap.recv_batch(&mut bufs).expect("recv");
            took += started.elapsed();
            assert_eq!(n, usize::from(waiting));
        }
        took / calls
    })
}

/// Floods 60-byte frames into `tapa` for `time`; returns how many the sender's port
/// took and what the forwarder saw.
fn flood_through_taps(io: TapIo, time: Duration) -> (u64, FwdStats) {
    let sw = Ns::new("sw");
    let c1 = Ns::new("c1");
    let c2 = Ns::new("c2");
    let fwd = Forwarder::start(&sw, move || {
        [
            Box::new(open_tap("tapa", io)) as Box<dyn Port>,
            Box::new(open_tap("tapb", io)),
        ]
    });
    for (ns, tap) in [(&c1, "tapa"), (&c2, "tapb")] {
        sw.ip(&["link", "set", tap, "netns", &ns.name]);
        quiet_switch_side(ns, tap);
        ns.ip(&["link", "set", tap, "up"]);
    }
    std::thread::sleep(Duration::from_millis(200));
    let sent = c1
        .spawn(move || {
            let mut port = PacketPort::open("tapa").expect("open tapa");
            let mut frame = vec![0u8; 60];
            frame[..12].copy_from_slice(&[2, 0, 0, 0, 9, 9, 2, 0, 0, 0, 1, 1]);
            frame[12..14].copy_from_slice(&[0x08, 0x00]);
            let pool: Vec<PacketBuf> = (0..64).map(|_| PacketBuf::from_frame(&frame)).collect();
            let which: Vec<u32> = (0..64).collect();
            let deadline = Instant::now() + time;
            let mut sent = 0u64;
            while Instant::now() < deadline {
                sent += port.send_batch(&pool, &which).expect("send") as u64;
            }
            sent
        })
        .join()
        .expect("sender");
    (sent, fwd.finish().expect("forwarder"))
}

/// TCP throughput through a TAP <-> veth forwarder with iperf3 (5 s, one stream, then
/// the reverse direction), io_uring against syscalls, alternated.
///
/// ```text
///   ctr1 [tap1 10.78.9.1] <-fd-> sw [TapPort <-> PacketPort] <=veth=> ctr2 [eth0 10.78.9.2]
/// ```
#[test]
#[ignore = "a measurement; run alone, in release"]
fn tcp_rate() {
    for round in 1..=3 {
        for io in [TapIo::Auto, TapIo::Syscalls] {
            let sw = Ns::new("sw");
            let ctr1 = Ns::new("c1");
            let ctr2 = Ns::new("c2");
            veth(&sw, "swp2", &ctr2, "eth0");
            quiet_switch_side(&sw, "swp2");
            ctr2.ip(&["addr", "add", "10.78.9.2/24", "dev", "eth0"]);
            let fwd = Forwarder::start(&sw, move || {
                [
                    Box::new(open_tap("tap1", io)) as Box<dyn Port>,
                    Box::new(PacketPort::open("swp2").expect("open swp2")),
                ]
            });
            sw.ip(&["link", "set", "tap1", "netns", &ctr1.name]);
            ctr1.ip(&["addr", "add", "10.78.9.1/24", "dev", "tap1"]);
            ctr1.ip(&["link", "set", "tap1", "up"]);
            ctr1.exec(&["ping", "-c", "1", "-W", "2", "10.78.9.2"])
                .expect("ping");
            let mut gbps = Vec::new();
            for reverse in [false, true] {
                // `-s -1`: serves one test, then exits.
                let name = ctr2.name.clone();
                let server = std::thread::spawn(move || {
                    let cmd = ["ip", "netns", "exec", &name, "iperf3", "-s", "-1"];
                    std::process::Command::new(cmd[0]).args(&cmd[1..]).output()
                });
                std::thread::sleep(Duration::from_millis(300));
                let mut args = vec!["iperf3", "-c", "10.78.9.2", "-t", "5", "-J"];
                if reverse {
                    args.push("-R");
                }
                let out = ctr1.exec(&args).expect("iperf3 client");
                let json: serde_json::Value = serde_json::from_str(&out).expect("iperf3 json");
                let bps = json["end"]["sum_received"]["bits_per_second"].as_f64();
                gbps.push(bps.unwrap_or(0.0) / 1e9);
                server
                    .join()
                    .expect("iperf3 server")
                    .expect("run iperf3 -s");
            }
            let stats = fwd.finish().expect("forwarder");
            eprintln!(
                "round {round} {io:?}: tap->veth {:.2} Gbit/s, veth->tap {:.2} Gbit/s; frames {:?}",
                gbps[0], gbps[1], stats.frames
            );
        }
    }
}
