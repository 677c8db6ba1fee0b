//! The outside world for NAT tests: a host namespace whose vswitch owns an uplink veth
//! (`ext0`) to an "external" namespace (203.0.113.1/24, no route back to any container
//! subnet, so only the switch's NAT can make traffic work), and small TCP/UDP helpers
//! that run in threads inside namespaces.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::time::Duration;

use super::{Daemon, Netns};

pub const EXTERNAL: &str = "203.0.113.2";
pub const SECOND: &str = "203.0.113.3";
pub const OUTSIDE: &str = "203.0.113.1";

/// A vswitch host with an uplink to the external namespace.
#[derive(Debug)]
pub struct NatLab {
    pub host: Netns,
    pub ext: Netns,
    pub d: Daemon,
}

impl NatLab {
    pub fn new(extra_config: &str) -> NatLab {
        let host = Netns::new("h");
        let ext = Netns::new("x");
        host.ip(&[
            "link", "add", "ext0", "type", "veth", "peer", "name", "eth0", "netns", &ext.name,
        ]);
        ext.ip(&["link", "set", "eth0", "up"]);
        ext.ip(&["addr", "add", &format!("{OUTSIDE}/24"), "dev", "eth0"]);
        let cfg = format!(
            "[uplink]\ninterface = \"ext0\"\naddress = \"{EXTERNAL}/24\"\ngateway = \"{OUTSIDE}\"\nextra_addresses = [\"{SECOND}\"]\n{extra_config}\n"
        );
        let d = Daemon::start_with_config(&host, Some(&cfg));
        NatLab { host, ext, d }
    }

    /// Creates network `name` on `subnet`, with `more` options of `network create`.
    pub fn network(&self, name: &str, subnet: &str, more: &[&str]) {
        let mut args = vec!["network", "create", name, "--subnet", subnet];
        args.extend_from_slice(more);
        self.d.must(&args);
    }

    /// Creates network `name` on `subnet` and a container on it, and waits until the
    /// container reaches the outside host through the NAT (failing with the daemon's
    /// log if it does not).
    pub fn container_reaching_outside(&self, name: &str, subnet: &str) -> Netns {
        self.network(name, subnet, &[]);
        let c = self.container(name);
        assert!(
            c.ping_until(OUTSIDE, Duration::from_secs(5)),
            "{}",
            self.d.log()
        );
        c
    }

    pub fn container(&self, network: &str) -> Netns {
        let c = Netns::new("c");
        self.d
            .must(&["network", "connect", network, "--netns", &c.name]);
        c
    }

    pub fn stats(&self) -> serde_json::Value {
        self.d.json(&["stats", "--format", "json"])
    }
}

/// Runs `f` on a thread inside namespace `ns` and returns its result.
pub fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = vswitch::port::sys::netns::open_named(ns).expect("open namespace");
    std::thread::spawn(move || {
        vswitch::port::sys::netns::enter(&file).expect("enter namespace");
        f()
    })
    .join()
    .expect("namespace thread")
}

/// Starts a server on a thread inside `ns`: `bind` there, then `serve` what it bound,
/// until `serve` returns or the test process ends. Returns once `bind` has.
fn serve_in_ns<S: 'static>(
    ns: &str,
    bind: impl FnOnce() -> S + Send + 'static,
    serve: impl FnOnce(S) + Send + 'static,
) {
    let (ready_tx, ready_rx) = mpsc::channel();
    let file = vswitch::port::sys::netns::open_named(ns).expect("open namespace");
    std::thread::spawn(move || {
        vswitch::port::sys::netns::enter(&file).expect("enter namespace");
        let bound = bind();
        let _ = ready_tx.send(());
        serve(bound);
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("server up");
}

/// A TCP server in `ns` on `port`: echoes what it reads, and reports each client's
/// address on the returned channel. Runs until the test process ends.
pub fn tcp_echo_server(ns: &str, port: u16) -> mpsc::Receiver<SocketAddr> {
    let (tx, rx) = mpsc::channel();
    let bind = move || TcpListener::bind(("0.0.0.0", port)).expect("bind");
    serve_in_ns(ns, bind, move |l| {
        for conn in l.incoming().flatten() {
            if let Ok(peer) = conn.peer_addr() {
                let _ = tx.send(peer);
            }
            std::thread::spawn(move || {
                let mut c = conn;
                let mut buf = [0u8; 4096];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    rx
}

/// A UDP server in `ns` on `port`: sends every datagram back to where it came from.
/// Runs until the test process ends.
pub fn udp_echo_server(ns: &str, port: u16) {
    let bind = move || UdpSocket::bind(("0.0.0.0", port)).expect("bind");
    serve_in_ns(ns, bind, |s| {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], from);
        }
    });
}

/// Opens a TCP connection from inside `ns` (on a thread that stays there, holding the
/// connection) and returns a handle to talk through it.
pub fn tcp_client(ns: &str, to: &str, port: u16) -> Option<Client> {
    let (req_tx, req_rx) = mpsc::channel::<Vec<u8>>();
    let (resp_tx, resp_rx) = mpsc::channel::<Option<Vec<u8>>>();
    let file = vswitch::port::sys::netns::open_named(ns).expect("open namespace");
    let addr: SocketAddr = format!("{to}:{port}").parse().expect("address");
    let (conn_tx, conn_rx) = mpsc::channel();
    std::thread::spawn(move || {
        vswitch::port::sys::netns::enter(&file).expect("enter namespace");
        let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
            Ok(s) => s,
            Err(_) => {
                let _ = conn_tx.send(false);
                return;
            }
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
        let _ = conn_tx.send(true);
        for msg in req_rx {
            let mut back = vec![0u8; msg.len()];
            let ok = s.write_all(&msg).is_ok() && s.read_exact(&mut back).is_ok();
            let _ = resp_tx.send(ok.then_some(back));
        }
    });
    conn_rx.recv().ok().filter(|ok| *ok).map(|_| Client {
        req: req_tx,
        resp: resp_rx,
    })
}

/// A connection held open by a thread in a namespace.
#[derive(Debug)]
pub struct Client {
    req: mpsc::Sender<Vec<u8>>,
    resp: mpsc::Receiver<Option<Vec<u8>>>,
}

impl Client {
    /// Sends `msg` and reads it back from the echo server.
    pub fn echo(&self, msg: &[u8]) -> bool {
        self.req.send(msg.to_vec()).is_ok()
            && matches!(self.resp.recv_timeout(Duration::from_secs(5)), Ok(Some(b)) if b == msg)
    }
}

/// Sends one UDP datagram from `ns` (from port `from_port`, 0: any) to `to:port` and
/// returns the source address the receiver in `rx_ns` saw.
pub fn udp_source_seen(
    ns: &str,
    from_port: u16,
    rx_ns: &str,
    to: &str,
    port: u16,
) -> Option<SocketAddr> {
    let (tx, rx) = mpsc::channel();
    let bind = move || UdpSocket::bind(("0.0.0.0", port)).expect("bind");
    serve_in_ns(rx_ns, bind, move |s| {
        s.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        let mut buf = [0u8; 64];
        let _ = tx.send(s.recv_from(&mut buf).ok().map(|(_, from)| from));
    });
    let to = format!("{to}:{port}");
    in_ns(ns, move || {
        let s = UdpSocket::bind(("0.0.0.0", from_port)).expect("bind");
        for _ in 0..3 {
            let _ = s.send_to(b"hello", &to);
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    rx.recv_timeout(Duration::from_secs(5)).ok().flatten()
}

/// A UDP socket in `ns` on `port` for `secs` seconds: the size of each datagram it
/// receives goes to the returned channel.
pub fn udp_sizes_received(ns: &str, port: u16, secs: u64) -> mpsc::Receiver<usize> {
    let (tx, rx) = mpsc::channel();
    let bind = move || {
        let s = UdpSocket::bind(("0.0.0.0", port)).expect("bind");
        s.set_read_timeout(Some(Duration::from_secs(secs)))
            .expect("timeout");
        s
    };
    serve_in_ns(ns, bind, move |s| {
        let mut buf = vec![0u8; 65536];
        while let Ok(n) = s.recv(&mut buf) {
            if tx.send(n).is_err() {
                break;
            }
        }
    });
    rx
}

/// Sends three `size`-byte UDP datagrams from `ns` to `to:port`, with DF and path-MTU
/// discovery (`df`, Linux's `IP_PMTUDISC_DO`) or without (`IP_PMTUDISC_DONT`). Returns
/// what each send said: "sent", or the error (a send refused for a learned path MTU
/// says "Message too long").
pub fn udp_send_sized(ns: &Netns, to: &str, port: u16, size: usize, df: bool) -> String {
    const SCRIPT: &str = "import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, int(sys.argv[4]))  # IP_MTU_DISCOVER
for _ in range(3):
    try:
        s.sendto(b'x' * int(sys.argv[3]), (sys.argv[1], int(sys.argv[2])))
        print('sent')
    except OSError as e:
        print(e)
    time.sleep(0.3)
";
    let out = ns.exec(
        "python3",
        &[
            "-c",
            SCRIPT,
            to,
            &port.to_string(),
            &size.to_string(),
            if df { "2" } else { "0" },
        ],
    );
    assert!(
        out.status.success(),
        "python3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
