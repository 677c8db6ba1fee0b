//! Random identifiers: network ids (64 hex digits, like Docker's) and switch-side
//! interface names.

use std::io::Read;

/// `n` random bytes from the kernel.
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if let Err(e) = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)) {
        // Without a kernel RNG, fall back to something unique per call; these ids need
        // uniqueness, not secrecy.
        tracing::warn!("/dev/urandom unreadable ({e}); ids fall back to time-based values");
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (i, x) in b.iter_mut().enumerate() {
            *x = (t >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
    b
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A network id: 64 hex digits.
pub fn network_id() -> String {
    hex(&random_bytes::<32>())
}

/// A name for a switch-side interface: `vs` + 10 hex digits (12 characters, under the
/// kernel's 15).
pub fn port_ifname() -> String {
    format!("vs{}", hex(&random_bytes::<5>()))
}

/// A locally administered unicast MAC for the switch's gateway role.
pub fn router_mac() -> fdb::MacAddr {
    fdb::MacAddr::local_from(random_bytes::<6>())
}

/// The current time as RFC 3339 UTC with seconds, e.g. `2026-11-28T03:04:05Z`.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_ids_have_the_right_shape() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_834_800), "2026-11-28T03:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(network_id().len(), 64);
        let n = port_ifname();
        assert!(n.len() <= 15 && n.starts_with("vs"));
        assert_ne!(network_id(), network_id());
    }
}
