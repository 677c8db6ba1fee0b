//! A two-port forwarder thread (the smallest possible switch: everything from one port
//! goes out of the other) and a checked TCP transfer to push through it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::lab::Ns;
use crate::packet::PacketBuf;
use crate::port::sys::epoll::{Epoll, Events};
use crate::port::sys::eventfd::EventFd;
use crate::port::{MAX_BATCH, Port, PortDrops, PortError};

/// What the forwarder saw.
#[derive(Debug, Default)]
pub struct FwdStats {
    /// Frames received on port 0 / port 1.
    pub frames: [u64; 2],
    /// The longest frame received (Ethernet header included, vnet header not).
    pub max_frame: usize,
    /// Frames longer than 1514 bytes whose virtio_net_hdr carried a GSO type.
    pub gso_frames: u64,
    /// The distinct GSO types seen (`vnet[1]`: 1 TCPv4, 4 TCPv6, 5 UDP_L4, 0x80 ECN).
    pub gso_types: Vec<u8>,
    pub drops: PortDrops,
    /// Sends that had to be retried because the port would block.
    pub send_stalls: u64,
}

pub struct Forwarder {
    stop: Arc<EventFd>,
    handle: JoinHandle<Result<FwdStats, PortError>>,
}

impl Forwarder {
    /// Starts forwarding in `ns` between the two ports `open` returns (called on the
    /// forwarding thread, inside `ns`, so the ports are created there); returns once
    /// they are open.
    pub fn start(ns: &Ns, open: impl FnOnce() -> [Box<dyn Port>; 2] + Send + 'static) -> Forwarder {
        let stop = Arc::new(EventFd::new().expect("eventfd"));
        let stop2 = Arc::clone(&stop);
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = ns.spawn(move || {
            let ports = open();
            tx.send(()).ok();
            forward(ports, &stop2)
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("forwarder ports did not open");
        Forwarder { stop, handle }
    }

    /// Stops the thread and returns what it saw (or the port error that stopped it).
    pub fn finish(self) -> Result<FwdStats, PortError> {
        self.stop.signal().expect("signal forwarder");
        self.handle.join().expect("forwarder panicked")
    }
}

const STOP: u64 = 2;
/// A forwarder that nobody stops (the test failed elsewhere) stops itself.
const DEADLINE: Duration = Duration::from_secs(60);

fn forward(mut ports: [Box<dyn Port>; 2], stop: &EventFd) -> Result<FwdStats, PortError> {
    let epoll = Epoll::new().expect("epoll");
    for (token, port) in ports.iter().enumerate() {
        epoll.add(port.as_fd(), token as u64).expect("epoll add");
    }
    epoll.add(stop.as_fd(), STOP).expect("epoll add");
    let mut events = Events::with_capacity(8);
    let mut bufs: Vec<PacketBuf> = (0..MAX_BATCH).map(|_| PacketBuf::new()).collect();
    let which: Vec<u32> = (0..MAX_BATCH as u32).collect();
    let mut stats = FwdStats::default();
    let started = Instant::now();
    while started.elapsed() < DEADLINE {
        epoll
            .wait(&mut events, Some(Duration::from_millis(200)))
            .expect("epoll wait");
        let mut ready = [false; 3];
        for event in events.iter() {
            ready[event.token as usize] = true;
        }
        if ready[STOP as usize] {
            break;
        }
        for src in (0..2).filter(|&p| ready[p]) {
            let (a, b) = ports.split_at_mut(1);
            let (from, to) = if src == 0 {
                (&mut a[0], &mut b[0])
            } else {
                (&mut b[0], &mut a[0])
            };
            // Bounded work per wake-up, as a real worker does.
            for _ in 0..4 {
                let n = from.recv_batch(&mut bufs)?;
                if n == 0 {
                    break;
                }
                stats.frames[src] += n as u64;
                for buf in &bufs[..n] {
                    stats.max_frame = stats.max_frame.max(buf.len());
                    let gso_type = buf.vnet[1];
                    if buf.len() > 1514 && gso_type != 0 {
                        stats.gso_frames += 1;
                        if !stats.gso_types.contains(&gso_type) {
                            stats.gso_types.push(gso_type);
                        }
                    }
                }
                let mut sent = 0;
                let give_up = Instant::now() + Duration::from_secs(1);
                while sent < n {
                    sent += to.send_batch(&bufs, &which[sent..n])?;
                    if sent < n {
                        stats.send_stalls += 1;
                        if Instant::now() > give_up {
                            break; // drop the rest, TCP will resend
                        }
                        std::thread::sleep(Duration::from_micros(50));
                    }
                }
            }
        }
        for port in ports.iter_mut() {
            add_drops(&mut stats.drops, port.take_drops());
        }
    }
    Ok(stats)
}

fn add_drops(sum: &mut PortDrops, d: PortDrops) {
    sum.rx_truncated += d.rx_truncated;
    sum.rx_offload_unsupported += d.rx_offload_unsupported;
    sum.tx_refused += d.tx_refused;
    sum.tx_link_down += d.tx_link_down;
    sum.tx_queue_full += d.tx_queue_full;
    sum.last_tx_errno = d.last_tx_errno.or(sum.last_tx_errno);
}

/// The byte at every offset of the test stream is a fixed function of the offset, so
/// the receiver can check any chunk it gets without state.
fn fill_pattern(offset: u64, buf: &mut [u8]) {
    let first_word = offset / 8;
    let skip = (offset % 8) as usize;
    let mut word_index = first_word;
    let mut pos = 0;
    while pos < buf.len() {
        let word = splitmix64(word_index).to_le_bytes();
        let from = if pos == 0 { skip } else { 0 };
        let take = (8 - from).min(buf.len() - pos);
        buf[pos..pos + take].copy_from_slice(&word[from..from + take]);
        pos += take;
        word_index += 1;
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x
        .wrapping_add(0x9e37_79b9_7f4a_7c15)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Sends `bytes` of the test stream over TCP from `client` to `server_ip` in `server`
/// and checks every byte on arrival. Returns the transfer time.
pub fn tcp_transfer(server: &Ns, server_ip: &str, client: &Ns, bytes: u64) -> Duration {
    let addr: SocketAddr = format!("{server_ip}:5201").parse().expect("address");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let receiver = server.spawn(move || -> Result<u64, String> {
        let listener = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        ready_tx.send(()).ok();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(format!("accept: {e}")),
            }
        };
        stream.set_nonblocking(false).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut got = vec![0u8; 256 << 10];
        let mut want = vec![0u8; 256 << 10];
        let mut offset = 0u64;
        loop {
            let n = stream
                .read(&mut got)
                .map_err(|e| format!("read at {offset}: {e}"))?;
            if n == 0 {
                return Ok(offset);
            }
            fill_pattern(offset, &mut want[..n]);
            if got[..n] != want[..n] {
                return Err(format!(
                    "corrupt data in bytes {offset}..{}",
                    offset + n as u64
                ));
            }
            offset += n as u64;
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("receiver did not start");
    let started = Instant::now();
    let sender = client.spawn(move || -> Result<(), String> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let mut chunk = vec![0u8; 256 << 10];
        let mut offset = 0u64;
        while offset < bytes {
            let n = (bytes - offset).min(chunk.len() as u64) as usize;
            fill_pattern(offset, &mut chunk[..n]);
            stream
                .write_all(&chunk[..n])
                .map_err(|e| format!("write at {offset}: {e}"))?;
            offset += n as u64;
        }
        stream
            .shutdown(std::net::Shutdown::Write)
            .map_err(|e| e.to_string())
    });
    sender.join().expect("sender panicked").expect("sender");
    let received = receiver
        .join()
        .expect("receiver panicked")
        .expect("receiver");
    assert_eq!(received, bytes, "receiver got {received} of {bytes} bytes");
    started.elapsed()
}

#[test]
fn pattern_is_the_same_whatever_the_chunking() {
    let mut whole = vec![0u8; 100];
    fill_pattern(3, &mut whole);
    let mut parts = vec![0u8; 100];
    fill_pattern(3, &mut parts[..13]);
    fill_pattern(16, &mut parts[13..50]);
    fill_pattern(53, &mut parts[50..]);
    assert_eq!(whole, parts);
}
