//! The table's knobs: aging time and the two learned-entry limits. Plain data, read from
//! the daemon's config file; only `aging` can change while the table runs
//! ([`Fdb::set_aging`](crate::Fdb::set_aging)).

use std::time::Duration;

/// How long a learned entry may stay idle, and how many learned entries the table holds.
///
/// In config files `aging` is written in seconds (`aging = 300`, fractions allowed);
/// fields left out take their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FdbConfig {
    /// A learned entry not seen for longer than this is removed by the next
    /// [`Fdb::expire`](crate::Fdb::expire). Default 300 s (IEEE 802.1D, OVS, Linux bridge).
    #[serde(with = "secs")]
    pub aging: Duration,
    /// Learned entries in the whole table (all networks). Default 65536.
    pub max_entries: usize,
    /// Learned entries behind any one [`Location`](crate::Location) (a port or a VTEP).
    /// Default 4096.
    pub max_per_location: usize,
}

impl FdbConfig {
    pub const DEFAULT_AGING: Duration = Duration::from_secs(300);
    pub const DEFAULT_MAX_ENTRIES: usize = 65536;
    pub const DEFAULT_MAX_PER_LOCATION: usize = 4096;
}

impl Default for FdbConfig {
    fn default() -> Self {
        FdbConfig {
            aging: Self::DEFAULT_AGING,
            max_entries: Self::DEFAULT_MAX_ENTRIES,
            max_per_location: Self::DEFAULT_MAX_PER_LOCATION,
        }
    }
}

/// Nanoseconds in a `u64`: the table's clock unit (584 years from the daemon's start).
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A `Duration` as a number of seconds, so that configs and `fdb show --json` read
/// `300` or `12.5` rather than serde's default `{"secs":300,"nanos":0}`.
pub(crate) mod secs {
    use serde::de::{self, Deserializer, Visitor};
    use serde::ser::Serializer;
    use std::fmt;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        if d.subsec_nanos() == 0 {
            s.serialize_u64(d.as_secs())
        } else {
            s.serialize_f64(d.as_secs_f64())
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(SecsVisitor)
    }

    struct SecsVisitor;

    impl Visitor<'_> for SecsVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative number of seconds, e.g. 300 or 0.5")
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            Ok(Duration::from_secs(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
            u64::try_from(v)
                .map(Duration::from_secs)
                .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            Duration::try_from_secs_f64(v)
                .map_err(|_| E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }
}
