//! `vswitch lab demo`: the quickest way to see the switch work. It builds a host
//! namespace running its own vswitch daemon and two container namespaces, connects both
//! to one network, pings across, measures TCP throughput, prints a table and removes
//! everything it made.

use std::net::Ipv4Addr;

use super::daemon::LabDaemon;
use super::measure;
use super::ns::{LabError, Netns};
use crate::control::api::{Attach, NetworkConnect, NetworkCreate, Request};

const SUBNET: &str = "10.250.0.0/24";

pub fn run() -> Result<(), LabError> {
    let tag = format!("vsdemo{}", std::process::id() % 100_000);
    let dir = std::env::temp_dir().join(&tag);
    let result = (|| {
        let host = Netns::create(&format!("{tag}-host"))?;
        let c1 = Netns::create(&format!("{tag}-c1"))?;
        let c2 = Netns::create(&format!("{tag}-c2"))?;
        println!(
            "lab demo: host namespace {} runs vswitch; containers {} and {}",
            host.name, c1.name, c2.name
        );
        let daemon = LabDaemon::start(&host.name, &dir, None)?;
        daemon.call(Request::NetworkCreate(NetworkCreate {
            name: "demo".into(),
            subnet: SUBNET.parse().ok(),
            ..NetworkCreate::default()
        }))?;
        let mut addrs = Vec::new();
        for c in [&c1, &c2] {
            let v = daemon.call(Request::NetworkConnect(NetworkConnect {
                network: "demo".into(),
                attach: Attach::Netns(c.name.clone()),
                name: None,
                ip: None,
                mac: None,
                ifname: None,
                aliases: vec![],
            }))?;
            let ip = v["ipv4"].as_str().unwrap_or_default().to_string();
            println!(
                "  connected {} to network demo ({SUBNET}): eth0 {ip}, port {}",
                c.name,
                v["port"].as_str().unwrap_or_default()
            );
            addrs.push(ip);
        }
        let ip2: Ipv4Addr = addrs[1]
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| LabError::Other("no address for the second container".into()))?;

        let ping = measure::ping(&c1, &ip2.to_string(), 50, 56)?;
        let (one, tool) = measure::tcp(&c1, &c2, ip2, 5, 1)?;
        let (four, _) = measure::tcp(&c1, &c2, ip2, 5, 4)?;
        println!();
        println!("{:<28} result", "measurement");
        println!(
            "{:<28} {}/{} replies, avg {:.3} ms",
            format!("ping {} -> {}", c1.name, ip2),
            ping.received,
            ping.sent,
            ping.avg_ms
        );
        println!("{:<28} {one:.2} Gbit/s ({tool}, 5 s)", "TCP, 1 stream");
        println!("{:<28} {four:.2} Gbit/s ({tool}, 5 s)", "TCP, 4 streams");
        if ping.received == 0 {
            return Err(LabError::Other(
                "the containers could not reach each other".into(),
            ));
        }
        drop(daemon);
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    println!("lab demo: removed every namespace, link and daemon it made");
    result
}
