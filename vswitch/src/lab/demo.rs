//! `vswitch lab demo`: the quickest way to see the switch work. It builds a two-host lab
//! (two namespaces each running its own vswitch daemon, joined by an underlay veth), one
//! overlay network across both, a container on each host; pings across, measures TCP
//! throughput across, prints a table and removes everything it made.

use super::build::Lab;
use super::measure;
use super::ns::LabError;
use super::topology::{DEMO, LabFile};

pub fn run() -> Result<(), LabError> {
    let file = LabFile::parse(DEMO).map_err(LabError::Other)?;
    let lab = Lab::build(&file)?;
    print!("{}", lab.describe());
    let result = measure_across(&lab);
    drop(lab);
    println!("lab demo: removed every namespace, link and daemon it made");
    result
}

fn measure_across(lab: &Lab) -> Result<(), LabError> {
    let missing = || LabError::Other("the demo lab lacks a container".into());
    let (c1, c2) = (
        lab.netns("c1").ok_or_else(missing)?,
        lab.netns("c2").ok_or_else(missing)?,
    );
    let ip2 = lab.address("c2").ok_or_else(missing)?;
    // The first packets learn MACs across the overlay; give ARP a moment.
    let _ = measure::ping(c1, &ip2.to_string(), 3, 56);
    let ping = measure::ping(c1, &ip2.to_string(), 50, 56)?;
    let big = measure::ping(c1, &ip2.to_string(), 10, 3200)?;
    let (one, tool) = measure::tcp(c1, c2, ip2, 5, 1)?;
    let (four, _) = measure::tcp(c1, c2, ip2, 5, 4)?;
    println!();
    println!("{:<34} result", "measurement (c1 on h1 -> c2 on h2)");
    println!(
        "{:<34} {}/{} replies, avg {:.3} ms",
        "ping 56 bytes", ping.received, ping.sent, ping.avg_ms
    );
    println!(
        "{:<34} {}/{} replies, avg {:.3} ms",
        "ping 3200 bytes (fragments)", big.received, big.sent, big.avg_ms
    );
    println!("{:<34} {one:.2} Gbit/s ({tool}, 5 s)", "TCP, 1 stream");
    println!("{:<34} {four:.2} Gbit/s ({tool}, 5 s)", "TCP, 4 streams");
    let stats = lab
        .daemon("h1")?
        .call(crate::control::api::Request::Stats)?;
    let t = &stats["underlay"];
    println!(
        "{:<34} {} datagrams out, {} in, drops {}",
        "h1 underlay", t["tx_datagrams"], t["rx_datagrams"], t["drops"]
    );
    if ping.received == 0 {
        return Err(LabError::Other(
            "the containers could not reach each other across the overlay".into(),
        ));
    }
    Ok(())
}
