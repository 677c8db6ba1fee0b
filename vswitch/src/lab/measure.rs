//! Measurements the lab prints: ping RTT and TCP throughput (iperf3 when installed, else
//! a built-in single TCP stream between two namespaces).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use super::ns::{LabError, Netns, have};
use crate::port::sys::netns;

/// Ping summary.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ping {
    pub sent: u32,
    pub received: u32,
    pub avg_ms: f64,
}

pub fn ping(from: &Netns, to: &str, count: u32, size: u32) -> Result<Ping, LabError> {
    let (c, s) = (count.to_string(), size.to_string());
    let out = from.output(
        "ping",
        &["-c", &c, "-i", "0.01", "-W", "2", "-s", &s, "-q", to],
    )?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut p = Ping {
        sent: count,
        ..Ping::default()
    };
    for line in text.lines() {
        if let Some(rx) = line
            .split(", ")
            .nth(1)
            .and_then(|f| f.strip_suffix(" received"))
        {
            p.received = rx.trim().parse().unwrap_or(0);
        }
        if let Some(stats) = line.split(" = ").nth(1) {
            p.avg_ms = stats
                .split('/')
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
        }
    }
    Ok(p)
}

/// TCP throughput in Gbit/s from `client` to `server_ip` in `server`, and the tool used.
pub fn tcp(
    client: &Netns,
    server: &Netns,
    server_ip: Ipv4Addr,
    secs: u32,
    streams: u32,
) -> Result<(f64, &'static str), LabError> {
    if have("iperf3") {
        iperf3(client, server, server_ip, secs, streams).map(|g| (g, "iperf3"))
    } else {
        builtin(client, server, server_ip, secs).map(|g| (g, "built-in"))
    }
}

fn iperf3(
    client: &Netns,
    server: &Netns,
    server_ip: Ipv4Addr,
    secs: u32,
    streams: u32,
) -> Result<f64, LabError> {
    let mut srv = server
        .command("iperf3")
        .args(["-s", "-1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|source| LabError::Spawn {
            cmd: "iperf3".into(),
            source,
        })?;
    std::thread::sleep(Duration::from_millis(300));
    let (t, p, ip) = (secs.to_string(), streams.to_string(), server_ip.to_string());
    let out = client.output("iperf3", &["-c", &ip, "-t", &t, "-P", &p, "-J"]);
    let _ = srv.kill();
    let _ = srv.wait();
    let out = out?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| LabError::Other(format!("iperf3 gave no JSON: {e}")))?;
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .map(|b| b / 1e9)
        .ok_or_else(|| LabError::Other(format!("iperf3 failed: {}", v["error"])))
}

/// One TCP stream for `secs` seconds; the receiver counts bytes.
fn builtin(
    client: &Netns,
    server: &Netns,
    server_ip: Ipv4Addr,
    secs: u32,
) -> Result<f64, LabError> {
    let addr = SocketAddr::from((server_ip, 5301));
    let server_ns = netns::open_named(&server.name).map_err(|e| LabError::Other(e.to_string()))?;
    let client_ns = netns::open_named(&client.name).map_err(|e| LabError::Other(e.to_string()))?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let rx = std::thread::spawn(move || -> std::io::Result<(u64, Duration)> {
        netns::enter(&server_ns)?;
        let l = TcpListener::bind(addr)?;
        let _ = ready_tx.send(());
        let (mut s, _) = l.accept()?;
        let mut buf = vec![0u8; 1 << 20];
        let (mut total, start) = (0u64, Instant::now());
        loop {
            match s.read(&mut buf)? {
                0 => break,
                n => total += n as u64,
            }
        }
        Ok((total, start.elapsed()))
    });
    let _ = ready_rx.recv_timeout(Duration::from_secs(5));
    let tx = std::thread::spawn(move || -> std::io::Result<()> {
        netns::enter(&client_ns)?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        let buf = vec![0x5au8; 1 << 20];
        let end = Instant::now() + Duration::from_secs(u64::from(secs));
        while Instant::now() < end {
            s.write_all(&buf)?;
        }
        Ok(())
    });
    let sent = tx
        .join()
        .map_err(|_| LabError::Other("sender panicked".into()))?;
    sent.map_err(|e| LabError::Other(format!("built-in TCP sender: {e}")))?;
    let (bytes, took) = rx
        .join()
        .map_err(|_| LabError::Other("receiver panicked".into()))?
        .map_err(|e| LabError::Other(format!("built-in TCP receiver: {e}")))?;
    Ok(bytes as f64 * 8.0 / took.as_secs_f64().max(1e-9) / 1e9)
}
