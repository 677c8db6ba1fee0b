//! Prometheus metrics: `[metrics] listen = "127.0.0.1:9477"` serves `GET /metrics` in the
//! text exposition format (version 0.0.4) from a thread of its own. The figures are the
//! ones `vswitch stats` shows, read from the same counters: nothing extra is counted on
//! the packet path for them. Names follow Prometheus conventions: `vswitch_` prefix,
//! `_total` on counters, units in names.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::manager::Manager;

/// A metrics page being written: families with HELP and TYPE, then their samples.
#[derive(Debug, Default)]
pub struct Page {
    out: String,
}

impl Page {
    /// Starts a family.
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A family with one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen for metrics on {addr}: {source}")]
pub struct MetricsError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// Binds the metrics address (at start, so a taken port stops the daemon with a clear
/// error) and serves it on a thread.
pub fn serve(addr: SocketAddr, manager: Arc<Mutex<Manager>>) -> Result<(), MetricsError> {
    let listener = TcpListener::bind(addr).map_err(|source| MetricsError { addr, source })?;
    std::thread::Builder::new()
        .name("vswitch-metrics".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let m = manager.clone();
                if let Err(e) = answer(conn, &m) {
                    tracing::debug!("metrics: {e}");
                }
            }
        })
        .map_err(|source| MetricsError { addr, source })?;
    tracing::info!("metrics on http://{addr}/metrics");
    Ok(())
}

fn answer(conn: TcpStream, manager: &Mutex<Manager>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // The headers are read and ignored (up to the blank line).
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut conn = conn;
    let path = request.split_whitespace().nth(1).unwrap_or("");
    if !request.starts_with("GET ") || (path != "/metrics" && path != "/") {
        let body = "only GET /metrics is served here\n";
        write!(
            conn,
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return Ok(());
    }
    let body = {
        let m = manager.lock().unwrap_or_else(|p| p.into_inner());
        m.metrics()
    };
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    conn.write_all(body.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_and_samples_are_written_in_the_text_format() {
        let mut p = Page::default();
        p.family(
            "vswitch_port_receive_packets_total",
            "counter",
            "Frames received.",
        );
        p.sample(
            "vswitch_port_receive_packets_total",
            &[("endpoint", "a\"b")],
            3,
        );
        p.single("vswitch_fdb_entries", "gauge", "Entries.", 7);
        assert_eq!(
            p.finish(),
            "# HELP vswitch_port_receive_packets_total Frames received.\n# TYPE vswitch_port_receive_packets_total counter\nvswitch_port_receive_packets_total{endpoint=\"a\\\"b\"} 3\n# HELP vswitch_fdb_entries Entries.\n# TYPE vswitch_fdb_entries gauge\nvswitch_fdb_entries 7\n"
        );
    }
}
