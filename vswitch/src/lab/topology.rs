//! The lab topology file (TOML): hosts, the underlay joining them, networks and
//! containers. Every name in the file is short; the lab prefixes them with its own name
//! to make the namespaces (`<lab>-<host>`, `<lab>-<container>`).
//!
//! ```toml
//! name = "demo"                  # lab name: prefix of everything it makes
//!
//! [underlay]
//! subnet = "192.168.77.0/24"     # hosts get .1, .2, ... in file order
//! mtu = 1500
//! kind = "bridge"                # "bridge" (a switch namespace, any number of hosts)
//!                                # or "veth" (exactly two hosts, joined directly)
//!
//! [[host]]
//! name = "h1"
//! [[host]]
//! name = "h2"
//!
//! [[network]]
//! name = "blue"
//! driver = "overlay"             # or "bridge" (one host only)
//! vni = 42
//! subnet = "10.88.0.0/24"
//! ip_range = { h1 = "10.88.0.16/28", h2 = "10.88.0.32/28" }   # per host: no collisions
//!
//! [[container]]
//! name = "c1"
//! host = "h1"
//! network = "blue"
//! ip = "10.88.0.17"              # optional
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabFile {
    pub name: String,
    pub underlay: UnderlaySpec,
    #[serde(rename = "host")]
    pub hosts: Vec<HostSpec>,
    #[serde(rename = "network", default)]
    pub networks: Vec<NetworkSpec>,
    #[serde(rename = "container", default)]
    pub containers: Vec<ContainerSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UnderlayKind {
    #[default]
    Bridge,
    Veth,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnderlaySpec {
    pub subnet: Ipv4Net,
    #[serde(default = "default_mtu")]
    pub mtu: u32,
    #[serde(default)]
    pub kind: UnderlayKind,
}

fn default_mtu() -> u32 {
    1500
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    pub name: String,
    /// Extra lines for this host's daemon config (TOML), appended as they are.
    #[serde(default)]
    pub config: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    pub name: String,
    #[serde(default = "default_driver")]
    pub driver: String,
    pub vni: Option<u32>,
    pub subnet: Ipv4Net,
    #[serde(default)]
    pub ip_range: BTreeMap<String, Ipv4Net>,
    pub mtu: Option<u32>,
}

fn default_driver() -> String {
    "bridge".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    pub name: String,
    pub host: String,
    pub network: String,
    pub ip: Option<Ipv4Addr>,
}

impl LabFile {
    pub fn parse(text: &str) -> Result<LabFile, String> {
        let lab: LabFile = toml::from_str(text).map_err(|e| e.message().to_string())?;
        lab.validate()?;
        Ok(lab)
    }

    fn validate(&self) -> Result<(), String> {
        let short = |what: &str, n: &str| -> Result<(), String> {
            let ok = !n.is_empty()
                && n.len() <= 8
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "{what} name '{n}': use 1 to 8 letters, digits or '-' (namespace and interface names are built from it)"
                ))
            }
        };
        short("lab", &self.name)?;
        if self.hosts.is_empty() {
            return Err("a lab needs at least one [[host]]".into());
        }
        let mut names = BTreeSet::new();
        for h in &self.hosts {
            short("host", &h.name)?;
            if !names.insert(h.name.as_str()) {
                return Err(format!("host '{}' is declared twice", h.name));
            }
        }
        if self.underlay.kind == UnderlayKind::Veth && self.hosts.len() != 2 {
            return Err(
                "underlay kind \"veth\" joins exactly two hosts; use \"bridge\" for more".into(),
            );
        }
        if self.underlay.subnet.hosts().count() < self.hosts.len() + 1 {
            return Err(format!(
                "underlay subnet {} is too small for {} hosts",
                self.underlay.subnet,
                self.hosts.len()
            ));
        }
        let nets: BTreeSet<&str> = self.networks.iter().map(|n| n.name.as_str()).collect();
        for n in &self.networks {
            for h in n.ip_range.keys() {
                if !names.contains(h.as_str()) {
                    return Err(format!(
                        "network '{}': ip_range names unknown host '{h}'",
                        n.name
                    ));
                }
            }
        }
        for c in &self.containers {
            short("container", &c.name)?;
            if names.contains(c.name.as_str()) {
                return Err(format!("container '{}' has a host's name", c.name));
            }
            if !names.contains(c.host.as_str()) {
                return Err(format!("container '{}': unknown host '{}'", c.name, c.host));
            }
            if !nets.contains(c.network.as_str()) {
                return Err(format!(
                    "container '{}': unknown network '{}'",
                    c.name, c.network
                ));
            }
        }
        Ok(())
    }

    /// A host's underlay address: the subnet's hosts in file order.
    pub fn host_address(&self, index: usize) -> Ipv4Addr {
        self.underlay
            .subnet
            .hosts()
            .nth(index)
            .unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// Namespace of a host or container.
    pub fn ns(&self, short: &str) -> String {
        format!("{}-{short}", self.name)
    }
}

/// The two-host overlay lab `vswitch lab demo` builds.
pub const DEMO: &str = r#"
name = "vsdemo"

[underlay]
subnet = "192.168.77.0/24"
mtu = 1500
kind = "veth"

[[host]]
name = "h1"
[[host]]
name = "h2"

[[network]]
name = "demo"
driver = "overlay"
vni = 42
subnet = "10.88.0.0/24"
ip_range = { h1 = "10.88.0.16/28", h2 = "10.88.0.32/28" }

[[container]]
name = "c1"
host = "h1"
network = "demo"

[[container]]
name = "c2"
host = "h2"
network = "demo"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_labs_parse() {
        for f in ["two-hosts.toml", "three-hosts.toml"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../labs")
                .join(f);
            let text = std::fs::read_to_string(&path).unwrap();
            LabFile::parse(&text).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }

    #[test]
    fn the_demo_parses_and_mistakes_are_named() {
        let lab = LabFile::parse(DEMO).unwrap();
        assert_eq!(lab.hosts.len(), 2);
        assert_eq!(lab.host_address(1).to_string(), "192.168.77.2");
        assert_eq!(lab.ns("h1"), "vsdemo-h1");
        let bad = DEMO.replace("host = \"h2\"", "host = \"h9\"");
        assert!(
            LabFile::parse(&bad)
                .unwrap_err()
                .contains("unknown host 'h9'")
        );
        let bad = DEMO.replace(
            "kind = \"veth\"",
            "kind = \"veth\"\n[[host]]\nname = \"h3\"",
        );
        assert!(LabFile::parse(&bad).is_err());
        assert!(LabFile::parse("name = \"x\"\nbogus = 1").is_err());
    }
}
