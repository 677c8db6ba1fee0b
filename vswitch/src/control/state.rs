//! The daemon's durable state: networks and their endpoints, as the user created them.
//! Written to `<state-dir>/state.json` atomically (write a temporary file, fsync it,
//! rename it over the old one, fsync the directory), so a crash at any moment leaves
//! either the old or the new file, never a half-written one.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use fdb::MacAddr;
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::port::PortKind;

const STATE_FILE: &str = "state.json";
const STATE_VERSION: u32 = 1;

/// Everything the daemon must remember across restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u32,
    /// Networks by name.
    pub networks: BTreeMap<String, Network>,
    /// VXLAN peers (underlay addresses) and the VNIs each carries; an empty list means
    /// every VNI.
    #[serde(default)]
    pub peers: BTreeMap<IpAddr, Vec<u32>>,
    /// The MAC the switch answers and sends from as each network's gateway; made once and
    /// kept, so containers' neighbour caches stay right across restarts.
    #[serde(default)]
    pub router_mac: Option<MacAddr>,
    /// Published ports (`vswitch port publish`), in the order they were made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<Published>,
}

/// A published port: `spec` of `endpoint` in `network`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Published {
    pub network: String,
    pub endpoint: String,
    pub spec: crate::nat::PortSpec,
}

/// How frames of a network travel between hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// One host only.
    #[default]
    Bridge,
    /// Spans hosts over VXLAN.
    Overlay,
}

impl std::fmt::Display for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Driver::Bridge => "bridge",
            Driver::Overlay => "overlay",
        })
    }
}

/// A network's address plan, as `docker network create` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpamConfig {
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// Where automatic addresses come from (defaults to the whole subnet).
    pub ip_range: Option<Ipv4Net>,
    /// Addresses never handed out, by name.
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub name: String,
    /// 64 hex digits, like Docker's network ids.
    pub id: String,
    pub driver: Driver,
    /// RFC 3339, UTC.
    pub created: String,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub mtu: u32,
    /// VXLAN network identifier (overlay networks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vni: Option<u32>,
    pub ipam: IpamConfig,
    /// Endpoints by name.
    pub endpoints: BTreeMap<String, Endpoint>,
    /// Static FDB entries (`vswitch fdb add`), by MAC.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub static_macs: BTreeMap<MacAddr, StaticTarget>,
    /// Networks this one routes to and from (`--route-to`; the relation is symmetric).
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub route_to: std::collections::BTreeSet<String>,
}

/// Where a static FDB entry points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StaticTarget {
    /// An endpoint of the network, by name (its port changes across restarts).
    Endpoint(String),
    /// A remote VTEP.
    Vtep(IpAddr),
}

/// One attachment of something to a network: a port of the switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub name: String,
    pub kind: PortKind,
    /// The switch-side interface (veth end, TAP, or attached interface) in the daemon's
    /// namespace.
    pub port: String,
    /// The endpoint's own MAC (the container's interface, or what sits behind a TAP).
    pub mac: Option<MacAddr>,
    pub ipv4: Option<Ipv4Addr>,
    /// Container namespace and interface name inside it (veth endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ifname: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// Where the state lives and how it is written.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create state directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read state file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "state file {path} is not valid ({source}); move it aside to start empty, or restore a backup"
    )]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("state file {path} has version {found}, this vswitch reads version {STATE_VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("cannot write state file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl StateStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StateStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// Reads the state; an absent file is an empty state.
    pub fn load(&self) -> Result<State, StateError> {
        fs::create_dir_all(&self.dir).map_err(|source| StateError::CreateDir {
            path: self.dir.clone(),
            source,
        })?;
        let path = self.path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(State {
                    version: STATE_VERSION,
                    ..State::default()
                });
            }
            Err(source) => return Err(StateError::Read { path, source }),
        };
        let state: State = serde_json::from_str(&text).map_err(|source| StateError::Parse {
            path: path.clone(),
            source,
        })?;
        if state.version != STATE_VERSION {
            return Err(StateError::Version {
                path,
                found: state.version,
            });
        }
        Ok(state)
    }

    /// Writes the state atomically: temp file, fsync, rename, fsync of the directory.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let path = self.path();
        let tmp = self.dir.join(format!(".{STATE_FILE}.tmp"));
        let werr = |source| StateError::Write {
            path: path.clone(),
            source,
        };
        let mut body = serde_json::to_vec_pretty(state).map_err(|e| werr(e.into()))?;
        body.push(b'\n');
        let mut f = File::create(&tmp).map_err(werr)?;
        f.write_all(&body).map_err(werr)?;
        f.sync_all().map_err(werr)?;
        drop(f);
        fs::rename(&tmp, &path).map_err(werr)?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(werr)?;
        Ok(())
    }
}

impl State {
    /// All endpoints of all networks, with their network.
    pub fn endpoints(&self) -> impl Iterator<Item = (&Network, &Endpoint)> {
        self.networks
            .values()
            .flat_map(|n| n.endpoints.values().map(move |e| (n, e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vswitch-state-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp_file() {
        let dir = tmpdir("rt");
        let store = StateStore::new(&dir);
        let mut st = store.load().unwrap();
        assert!(st.networks.is_empty());
        st.networks.insert(
            "n1".into(),
            Network {
                name: "n1".into(),
                id: "ab".repeat(32),
                driver: Driver::Bridge,
                created: "2026-11-28T00:00:00Z".into(),
                internal: false,
                labels: BTreeMap::new(),
                mtu: 1500,
                vni: None,
                ipam: IpamConfig {
                    subnet: "10.1.0.0/24".parse().unwrap(),
                    gateway: "10.1.0.1".parse().unwrap(),
                    ip_range: None,
                    aux_addresses: BTreeMap::new(),
                },
                endpoints: BTreeMap::new(),
                static_macs: BTreeMap::new(),
                route_to: Default::default(),
            },
        );
        st.peers.insert("192.0.2.9".parse().unwrap(), vec![42]);
        st.router_mac = Some(MacAddr([2, 0, 0, 0, 0, 1]));
        store.save(&st).unwrap();
        assert_eq!(store.load().unwrap(), st);
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(STATE_FILE)]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_file_is_an_error_that_says_what_to_do() {
        let dir = tmpdir("bad");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(STATE_FILE), "{ not json").unwrap();
        let err = StateStore::new(&dir).load().unwrap_err().to_string();
        assert!(err.contains("move it aside"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
