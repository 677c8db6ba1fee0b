//! `vswitch capture` on the daemon's side: which frames a capture target names, and the
//! streaming answer that carries them to the CLI.
//!
//! A capture request gets the usual first line (`{"ok": {...}}` or `{"error": "..."}`);
//! after an `ok` the connection belongs to the capture: one [`CaptureLine`] per line, a
//! frame, or a status every [`STATUS_EVERY`] when nothing came (it tells the CLI how many
//! frames the switch dropped for it, and lets the daemon notice a CLI that went away),
//! and `end` once the requested count was sent. The session stops, and the worker stops
//! copying, when the count is reached or the client closes the connection.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crossbeam_channel::RecvTimeoutError;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::api::Response;
use super::error::ControlError;
use super::manager::Manager;
use super::state::Driver;
use crate::datapath::capture::{Captured, Point, Scope};
use crate::datapath::topology::Topology;

/// Frames waiting for the API thread, per session: beyond this the worker drops them.
pub const QUEUE_DEPTH: usize = 4096;
/// How often the daemon writes a status line when no frame comes.
pub const STATUS_EVERY: Duration = Duration::from_millis(250);
/// A client that takes nothing for this long is gone: the session ends.
const STUCK_CLIENT: Duration = Duration::from_secs(10);

/// Which headers a capture shows where a frame crosses the underlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// The Ethernet frames inside VXLAN (a network's own frames).
    Inner,
    /// The VXLAN datagrams with their UDP, IP and Ethernet headers.
    Outer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    /// A network, an endpoint (`ENDPOINT` or `NETWORK/ENDPOINT`) or its switch-side
    /// interface, `underlay` or `uplink`.
    pub target: String,
    #[serde(default)]
    pub layer: Option<Layer>,
    /// Stop after this many frames.
    #[serde(default)]
    pub count: Option<u64>,
}

/// One line of a running capture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CaptureLine {
    Frame(FrameLine),
    Status(CaptureCounts),
    /// The requested count was reached; nothing follows.
    End(CaptureCounts),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameLine {
    /// Nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Endpoint name, `uplink`, or `vtep:ADDRESS`.
    pub port: String,
    /// `rx` (into the switch) or `tx` (out of it).
    pub dir: String,
    /// The Ethernet frame, in hexadecimal.
    pub data: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CaptureCounts {
    /// Frames the daemon sent to this client.
    pub captured: u64,
    /// Frames that matched but were dropped because the client was too slow.
    pub dropped: u64,
}

impl Manager {
    /// What `req.target` names, and a description of it for the first answer.
    pub(super) fn capture_scope(&self, req: &CaptureRequest) -> Result<Scope, ControlError> {
        let t = req.target.as_str();
        let port_layer = || {
            ControlError::Invalid(format!(
                "--inner and --outer apply to networks and the underlay, not to '{t}'"
            ))
        };
        if let Ok(net) = self.network(t) {
            let id = *self
                .net_ids
                .get(t)
                .ok_or(ControlError::NoSuchNetwork(t.into()))?;
            let outer = req.layer == Some(Layer::Outer);
            if outer && net.driver != Driver::Overlay {
                return Err(ControlError::Invalid(format!(
                    "network '{t}' is not an overlay network: --outer needs VXLAN"
                )));
            }
            let vni = net.vni.and_then(vtep::Vni::new);
            return Ok(Scope::Network { id, vni, outer });
        }
        if t == "underlay" {
            if self.underlay.is_none() {
                return Err(ControlError::Invalid(
                    "this daemon has no [underlay]: nothing to capture there".into(),
                ));
            }
            if req.layer == Some(Layer::Inner) {
                return Err(ControlError::Invalid(
                    "--inner needs a network: capture NETWORK --inner".into(),
                ));
            }
            return Ok(Scope::Underlay);
        }
        if t == "uplink" {
            if self.uplink.is_none() {
                return Err(ControlError::Invalid(
                    "this daemon has no [uplink]: nothing to capture there".into(),
                ));
            }
            return match req.layer {
                Some(_) => Err(port_layer()),
                None => Ok(Scope::Uplink),
            };
        }
        let (only_net, name) = match t.split_once('/') {
            Some((n, e)) => (Some(n), e),
            None => (None, t),
        };
        let found: Vec<(String, String)> = self
            .state
            .networks
            .values()
            .filter(|n| only_net.is_none_or(|o| o == n.name))
            .flat_map(|n| {
                n.endpoints
                    .values()
                    .filter(|e| e.name == name || e.port == name)
                    .map(|e| (n.name.clone(), e.name.clone()))
            })
            .collect();
        match found.as_slice() {
            [] => Err(ControlError::Invalid(format!(
                "nothing named '{t}' to capture: give a network, an endpoint (or NETWORK/ENDPOINT), its switch-side interface, 'underlay' or 'uplink'"
            ))),
            [(net, ep)] => {
                if req.layer.is_some() {
                    return Err(port_layer());
                }
                let id = self.port_of(net, ep).ok_or_else(|| {
                    ControlError::Invalid(format!(
                        "endpoint '{ep}' of network '{net}' has no port on the switch right now"
                    ))
                })?;
                Ok(Scope::Port(id))
            }
            several => Err(ControlError::Invalid(format!(
                "'{t}' is an endpoint of several networks ({}): say NETWORK/{name}",
                several
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

/// Serves a capture request on `out` until the count is reached or the client leaves.
pub fn serve(mut out: UnixStream, req: CaptureRequest, manager: &Mutex<Manager>) {
    let started = {
        let m = manager.lock().unwrap_or_else(PoisonError::into_inner);
        m.capture_scope(&req).map(|scope| {
            let (session, rx) = m.capture.start(scope, req.count, QUEUE_DEPTH);
            (session, rx, m.capture.clone(), m.topology.clone())
        })
    };
    let (session, rx, hub, topology) = match started {
        Ok(s) => s,
        Err(e) => {
            let _ = write_line(&mut out, &Response::Error(e.to_string()));
            return;
        }
    };
    // A client that stops reading must not keep the session (and the copying) alive.
    let _ = out.set_write_timeout(Some(STUCK_CLIENT));
    tracing::info!("capture of '{}' started", req.target);
    let first = Response::Ok(json!({ "target": req.target }));
    let limit = req.count.unwrap_or(u64::MAX);
    let mut sent = 0u64;
    let mut ok = write_line(&mut out, &first);
    while ok && sent < limit {
        let line = match rx.recv_timeout(STATUS_EVERY) {
            Ok(c) => {
                sent += 1;
                CaptureLine::Frame(frame_line(&c, &topology.load()))
            }
            Err(RecvTimeoutError::Timeout) => CaptureLine::Status(CaptureCounts {
                captured: sent,
                dropped: session.dropped(),
            }),
            Err(RecvTimeoutError::Disconnected) => break,
        };
        ok = write_line(&mut out, &line);
    }
    hub.stop(&session);
    if ok {
        let end = CaptureLine::End(CaptureCounts {
            captured: sent,
            dropped: session.dropped(),
        });
        let _ = write_line(&mut out, &end);
    }
    tracing::info!(
        "capture of '{}' ended: {sent} frames sent, {} dropped",
        req.target,
        session.dropped()
    );
}

fn frame_line(c: &Captured, topo: &Arc<Topology>) -> FrameLine {
    let port = match c.point {
        Point::Port(p) => topo
            .ports
            .get(&p)
            .map_or_else(|| format!("port{}", p.0), |i| i.endpoint.clone()),
        Point::Uplink => "uplink".into(),
        Point::Vtep(ip) => format!("vtep:{ip}"),
    };
    FrameLine {
        ts_ns: c.ts_ns,
        port,
        dir: c.dir.name().into(),
        data: to_hex(&c.data),
    }
}

fn write_line<T: Serialize>(out: &mut UnixStream, v: &T) -> bool {
    let Ok(mut body) = serde_json::to_vec(v) else {
        return false;
    };
    body.push(b'\n');
    out.write_all(&body).is_ok()
}

/// Lower-case hexadecimal.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// The bytes of hexadecimal text; `None` if it is not.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        let b = [0u8, 1, 0x7f, 0x80, 0xff];
        assert_eq!(to_hex(&b), "00017f80ff");
        assert_eq!(from_hex("00017f80ff").unwrap(), b);
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
    }

    #[test]
    fn lines_are_parsed_strictly() {
        let l: CaptureLine =
            serde_json::from_str(r#"{"status":{"captured":1,"dropped":2}}"#).unwrap();
        assert_eq!(
            l,
            CaptureLine::Status(CaptureCounts {
                captured: 1,
                dropped: 2
            })
        );
        assert!(serde_json::from_str::<CaptureLine>(r#"{"status":{"captured":1}}"#).is_err());
        let r: CaptureRequest =
            serde_json::from_str(r#"{"target":"blue","layer":"outer","count":3}"#).unwrap();
        assert_eq!(r.layer, Some(Layer::Outer));
        assert!(serde_json::from_str::<CaptureRequest>(r#"{"target":"b","layer":"x"}"#).is_err());
    }
}
