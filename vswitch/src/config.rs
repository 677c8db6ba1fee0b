//! The daemon's configuration file (TOML, `vswitch run --config FILE`). Every key is
//! optional; command-line flags override the file. Unknown keys are an error, so a typo
//! never silently does nothing.
//!
//! ```toml
//! state_dir = "/var/lib/vswitch"
//! socket = "/run/vswitch/vswitch.sock"
//!
//! [fdb]
//! aging_secs = 300          # idle time before a learned MAC is forgotten
//! max_entries = 65536       # learned MACs in total
//! max_per_port = 4096       # learned MACs behind one port or VTEP
//!
//! [ipam]
//! default_pool = "10.89.0.0/16"   # where networks without --subnet get theirs
//! default_prefix = 24
//!
//! [datapath]
//! batch = 64                # frames read from a port per turn
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::control::ipam::PoolConfig;

pub const DEFAULT_SOCKET: &str = "/run/vswitch/vswitch.sock";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/vswitch";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub state_dir: Option<PathBuf>,
    pub socket: Option<PathBuf>,
    #[serde(default)]
    pub fdb: FdbSection,
    #[serde(default)]
    pub ipam: PoolConfig,
    #[serde(default)]
    pub datapath: DatapathSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FdbSection {
    pub aging_secs: u64,
    pub max_entries: usize,
    pub max_per_port: usize,
}

impl Default for FdbSection {
    fn default() -> Self {
        let d = fdb::FdbConfig::default();
        FdbSection {
            aging_secs: d.aging.as_secs(),
            max_entries: d.max_entries,
            max_per_port: d.max_per_location,
        }
    }
}

impl FdbSection {
    pub fn to_fdb_config(&self) -> fdb::FdbConfig {
        fdb::FdbConfig {
            aging: Duration::from_secs(self.aging_secs),
            max_entries: self.max_entries,
            max_per_location: self.max_per_port,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatapathSection {
    pub batch: usize,
}

impl Default for DatapathSection {
    fn default() -> Self {
        DatapathSection {
            batch: crate::datapath::worker::DEFAULT_BATCH,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {msg}")]
    Parse { path: PathBuf, msg: String },
    #[error("config file {path}: {msg}")]
    Invalid { path: PathBuf, msg: String },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            msg: e.message().to_string(),
        })?;
        let invalid = |msg: &str| ConfigError::Invalid {
            path: path.to_path_buf(),
            msg: msg.to_string(),
        };
        if cfg.datapath.batch == 0 || cfg.datapath.batch > 1024 {
            return Err(invalid("[datapath] batch must be between 1 and 1024"));
        }
        if cfg.fdb.aging_secs == 0 {
            return Err(invalid("[fdb] aging_secs must be at least 1"));
        }
        if cfg.ipam.default_prefix < cfg.ipam.default_pool.prefix_len()
            || cfg.ipam.default_prefix > 30
        {
            return Err(invalid(
                "[ipam] default_prefix must be between the pool's prefix length and 30",
            ));
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults_and_typos_are_errors() {
        let p = Path::new("t.toml");
        let c = Config::parse("", p).unwrap();
        assert_eq!(c.fdb.aging_secs, 300);
        assert_eq!(c.datapath.batch, 64);
        let c = Config::parse("[fdb]\naging_secs = 10\n[ipam]\ndefault_pool = \"10.200.0.0/16\"\ndefault_prefix = 26\n", p).unwrap();
        assert_eq!(c.fdb.to_fdb_config().aging, Duration::from_secs(10));
        assert_eq!(c.ipam.default_prefix, 26);
        assert!(Config::parse("[fdb]\naging_sec = 10\n", p).is_err());
        assert!(Config::parse("[datapath]\nbatch = 0\n", p).is_err());
        assert!(
            Config::parse(
                "[ipam]\ndefault_pool = \"10.0.0.0/16\"\ndefault_prefix = 8\n",
                p
            )
            .is_err()
        );
    }
}
