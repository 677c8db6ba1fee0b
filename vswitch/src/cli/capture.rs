//! `vswitch capture`: asks the daemon for copies of the frames at a port, a network, the
//! underlay or the uplink, and writes them to a pcap file (`-w`; `-w -` for stdout) or
//! prints one line per frame. Ends after `-c COUNT` frames, at Ctrl-C, or (as any CLI
//! does, by SIGPIPE) when the reader of a pipe goes away; each way the daemon stops
//! copying, and the pcap output is complete up to the last frame (each record is written
//! whole and flushed). Filtering is tcpdump's: `-w - | tcpdump -r - FILTER`.
//!
//! The pcap format is the classic one (microsecond timestamps, Ethernet link type), which
//! every version of tcpdump and tshark reads.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;

use super::client::call_and_keep;
use crate::control::api::Request;
use crate::control::capture::{
    CaptureCounts, CaptureLine, CaptureRequest, FrameLine, Layer, STATUS_EVERY, from_hex,
};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  vswitch capture ctr1 -w ctr1.pcap          (then: tcpdump -r ctr1.pcap)\n  vswitch capture blue -c 10                 (one line per frame)\n  vswitch capture blue -w - | tcpdump -n -r - 'tcp port 80'   (filtered)\n  vswitch capture underlay --outer -w vxlan.pcap\n\nTARGET is a network, an endpoint (or NETWORK/ENDPOINT), its switch-side interface,\n`underlay` or `uplink`. A network shows its local ports and, on an overlay, the inner\nframes to and from its peers; --outer shows its VXLAN datagrams instead."
)]
pub struct CaptureArgs {
    /// What to capture.
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// Write a pcap file instead of printing a line per frame (`-` writes it to stdout).
    #[arg(short = 'w', long = "write", value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Stop after this many frames.
    #[arg(short = 'c', long = "count", value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// The frames inside VXLAN (a network's own frames) [default for a network].
    #[arg(long, conflicts_with = "outer")]
    pub inner: bool,
    /// The VXLAN datagrams, with UDP, IP and Ethernet headers [default for `underlay`].
    #[arg(long)]
    pub outer: bool,
}

/// Runs a capture until the count is reached, the daemon ends it, or Ctrl-C.
pub fn run(socket: &Path, a: CaptureArgs) -> Result<(), String> {
    let layer = match (a.inner, a.outer) {
        (true, _) => Some(Layer::Inner),
        (_, true) => Some(Layer::Outer),
        _ => None,
    };
    let mut sink = match &a.write {
        Some(path) if path.as_os_str() == "-" => {
            if std::io::stdout().is_terminal() {
                return Err(
                    "-w - writes binary pcap: pipe it (| tcpdump -r -) or give a file name".into(),
                );
            }
            Sink::Pcap(PcapWriter::stdout()?)
        }
        Some(path) => Sink::Pcap(PcapWriter::create(path)?),
        None => Sink::Lines(std::io::stdout().lock()),
    };
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())
        .map_err(|e| format!("cannot catch Ctrl-C: {e}"))?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())
        .map_err(|e| format!("cannot catch SIGTERM: {e}"))?;
    let req = Request::Capture(CaptureRequest {
        target: a.target,
        layer,
        count: a.count,
    });
    // Reads wake at least this often (the daemon sends a status line every STATUS_EVERY)
    // so that Ctrl-C is noticed.
    let (_, mut conn) = call_and_keep(socket, &req, STATUS_EVERY * 4).map_err(|e| e.to_string())?;
    let mut counts = CaptureCounts::default();
    let mut line = String::new();
    let ended = loop {
        if stop.load(Ordering::Relaxed) {
            break false;
        }
        line.clear();
        match read_line(&mut conn, &mut line) {
            Ok(true) => {}
            Ok(false) => return Err("the daemon ended the capture (is it stopping?)".into()),
            Err(e) if is_timeout(&e) => continue,
            // Ctrl-C interrupts the read.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("lost the connection to the daemon: {e}")),
        }
        let parsed: CaptureLine = serde_json::from_str(&line)
            .map_err(|e| format!("the daemon sent a line this CLI does not understand: {e}"))?;
        match parsed {
            CaptureLine::Frame(f) => {
                counts.captured += 1;
                sink.frame(&f)?;
            }
            CaptureLine::Status(c) => counts.dropped = c.dropped,
            CaptureLine::End(c) => {
                counts = c;
                break true;
            }
        }
    };
    drop(conn);
    sink.finish()?;
    let how = if ended { "" } else { " (interrupted)" };
    eprintln!(
        "{} frames captured, {} dropped by the switch (capture too slow){how}",
        counts.captured, counts.dropped
    );
    Ok(())
}

fn read_line(conn: &mut BufReader<UnixStream>, line: &mut String) -> std::io::Result<bool> {
    Ok(conn.read_line(line)? > 0)
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

enum Sink {
    Pcap(PcapWriter),
    Lines(std::io::StdoutLock<'static>),
}

impl Sink {
    fn frame(&mut self, f: &FrameLine) -> Result<(), String> {
        let data = from_hex(&f.data).ok_or("the daemon sent a frame that is not hexadecimal")?;
        match self {
            Sink::Pcap(w) => w.record(f.ts_ns, &data),
            Sink::Lines(out) => {
                let text = format!(
                    "{} {} {} {}",
                    clock(f.ts_ns),
                    f.port,
                    f.dir,
                    super::frame_text::summary(&data)
                );
                writeln!(out, "{text}").map_err(|e| format!("cannot write to stdout: {e}"))
            }
        }
    }

    fn finish(&mut self) -> Result<(), String> {
        match self {
            Sink::Pcap(w) => w.flush(),
            Sink::Lines(out) => out.flush().map_err(|e| e.to_string()),
        }
    }
}

/// `HH:MM:SS.micros` (UTC) of a time in nanoseconds since the Unix epoch.
fn clock(ts_ns: u64) -> String {
    let secs = ts_ns / 1_000_000_000;
    let micros = (ts_ns % 1_000_000_000) / 1000;
    let day = secs % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{micros:06}",
        day / 3600,
        day % 3600 / 60,
        day % 60
    )
}

/// The classic pcap format: a 24-byte file header, then a 16-byte header per record.
struct PcapWriter {
    out: BufWriter<Box<dyn Write>>,
    /// What the errors name: the file, or stdout.
    name: String,
}

/// Longest frame kept whole: a 64 KiB super-frame with its headers fits.
const SNAPLEN: u32 = 262_144;
const LINKTYPE_ETHERNET: u32 = 1;
const PCAP_MAGIC_MICROS: u32 = 0xa1b2_c3d4;

impl PcapWriter {
    fn create(path: &Path) -> Result<PcapWriter, String> {
        let file =
            File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        PcapWriter::start(Box::new(file), path.display().to_string())
    }

    /// Writes to stdout (`-w -`), for a pipe into `tcpdump -r -`.
    fn stdout() -> Result<PcapWriter, String> {
        PcapWriter::start(Box::new(std::io::stdout()), "to stdout".into())
    }

    /// Writes the file header.
    fn start(out: Box<dyn Write>, name: String) -> Result<PcapWriter, String> {
        let mut w = PcapWriter {
            out: BufWriter::new(out),
            name,
        };
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&PCAP_MAGIC_MICROS.to_le_bytes());
        header.extend_from_slice(&2u16.to_le_bytes());
        header.extend_from_slice(&4u16.to_le_bytes());
        header.extend_from_slice(&0i32.to_le_bytes()); // GMT offset
        header.extend_from_slice(&0u32.to_le_bytes()); // timestamp accuracy
        header.extend_from_slice(&SNAPLEN.to_le_bytes());
        header.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        w.write(&header)?;
        w.flush()?;
        Ok(w)
    }

    fn record(&mut self, ts_ns: u64, data: &[u8]) -> Result<(), String> {
        let kept = data.len().min(SNAPLEN as usize);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
        h[4..8].copy_from_slice(&((ts_ns % 1_000_000_000 / 1000) as u32).to_le_bytes());
        h[8..12].copy_from_slice(&(kept as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(data.len() as u32).to_le_bytes());
        self.write(&h)?;
        self.write(&data[..kept])?;
        self.flush()
    }

    fn write(&mut self, b: &[u8]) -> Result<(), String> {
        self.out
            .write_all(b)
            .map_err(|e| format!("cannot write {}: {e}", self.name))
    }

    fn flush(&mut self) -> Result<(), String> {
        self.out
            .flush()
            .map_err(|e| format!("cannot write {}: {e}", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcap_file_has_the_classic_header_and_whole_records() {
        let dir = std::env::temp_dir().join(format!("vswitch-pcap-{}", std::process::id()));
        let mut w = PcapWriter::create(&dir).unwrap();
        w.record(1_700_000_000_123_456_789, &[1, 2, 3]).unwrap();
        drop(w);
        let b = std::fs::read(&dir).unwrap();
        let _ = std::fs::remove_file(&dir);
        assert_eq!(b.len(), 24 + 16 + 3);
        assert_eq!(b[0..4], [0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 1);
        assert_eq!(
            u32::from_le_bytes(b[24..28].try_into().unwrap()),
            1_700_000_000
        );
        assert_eq!(u32::from_le_bytes(b[28..32].try_into().unwrap()), 123_456);
        assert_eq!(b[32..40], [3, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(b[40..], [1, 2, 3]);
    }

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(
            clock(3_723_000_001_000 + 86_400_000_000_000),
            "01:02:03.000001"
        );
    }
}
