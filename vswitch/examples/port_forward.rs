//! The userspace ceiling of vswitch's port layer: a two-port forwarder on the same
//! AF_PACKET ports the daemon uses (vnet header, batches, the same socket options), with
//! no switching at all. Every frame read from one interface is written to the other,
//! super-frames whole, from one thread that sleeps in `epoll_wait` like a worker.
//!
//! ```sh
//! ip netns exec SW cargo run --release -p vswitch --example port_forward -- IF_A IF_B
//! ```
//!
//! The lab bench runs it as the `ports` variant of the l2 scenario (in place of the
//! bridge between the two containers' veths), so that every run shows, beside the
//! Linux bridge and vswitch, what the port I/O alone costs: the gap from the bridge to
//! this forwarder is the kernel copies and the thread hop; the gap from this forwarder to
//! vswitch is the switch (the worker loop and the pipeline).
//!
//! It runs until killed. A frame the kernel refuses is dropped (the port counts it, as
//! the daemon's do); frames the other side cannot take at once are dropped uncounted,
//! since this measures the path, not a queue.

use std::process::ExitCode;
use std::time::Duration;

use vswitch::datapath::worker::DEFAULT_BATCH;
use vswitch::packet::PacketBuf;
use vswitch::port::Port;
use vswitch::port::af_packet::PacketPort;
use vswitch::port::sys::epoll::{Epoll, Events};

/// Frames read per turn, as many as a worker reads.
const BATCH: usize = DEFAULT_BATCH;

fn main() -> ExitCode {
    let names: Vec<String> = std::env::args().skip(1).collect();
    let [a, b] = names.as_slice() else {
        eprintln!("port_forward: give two interface names: port_forward IF_A IF_B");
        return ExitCode::FAILURE;
    };
    match run(a, b) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("port_forward: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(a: &str, b: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut ports = [PacketPort::open(a)?, PacketPort::open(b)?];
    let epoll = Epoll::new()?;
    for (token, port) in (0u64..).zip(&ports) {
        epoll.add(port.as_fd(), token)?;
    }
    let mut bufs: Vec<PacketBuf> = (0..BATCH).map(|_| PacketBuf::new()).collect();
    let which: Vec<u32> = (0..BATCH as u32).collect();
    let mut events = Events::with_capacity(2);
    loop {
        epoll.wait(&mut events, Some(Duration::from_millis(100)))?;
        for from in events.iter().map(|e| e.token as usize) {
            let n = ports[from].recv_batch(&mut bufs)?;
            // What does not go now (the other side's queue is full) is dropped.
            ports[1 - from].send_batch(&bufs, &which[..n])?;
        }
    }
}
