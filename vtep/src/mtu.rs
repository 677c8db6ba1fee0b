//! MTU arithmetic for overlay networks.
//!
//! An overlay MTU is the largest inner IP packet a network carries. Each inner packet
//! travels with an inner Ethernet header, a VXLAN header, UDP and the outer IP header,
//! so it is the underlay MTU minus 50 over IPv4 and minus 70 over IPv6
//! ([`crate::encap::OVERHEAD_V4`], [`crate::encap::OVERHEAD_V6`]). That is the default
//! and also the largest value accepted: a larger one would need the underlay to
//! fragment every full-size packet, which Linux's VXLAN refuses too.
//!
//! The smallest overlay MTU accepted is 68, the IPv4 minimum (RFC 791). Networks that
//! carry IPv6 need 1280 (RFC 8200); that is the operator's business, not refused here,
//! since the same network may be IPv4-only.

use std::fmt;
use std::net::IpAddr;

use crate::encap::{OVERHEAD_V4, OVERHEAD_V6};

/// The smallest overlay MTU accepted (the IPv4 minimum).
pub const MIN_OVERLAY_MTU: u32 = 68;

/// An IP address family: of the underlay (for overheads) or of an inner packet (for
/// MSS arithmetic).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    /// The family of `addr`.
    pub const fn of(addr: IpAddr) -> IpFamily {
        match addr {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }

    /// What the overlay costs over an underlay of this family: 50 or 70 bytes.
    pub const fn overhead(self) -> u32 {
        match self {
            IpFamily::V4 => OVERHEAD_V4 as u32,
            IpFamily::V6 => OVERHEAD_V6 as u32,
        }
    }
}

impl fmt::Display for IpFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        })
    }
}

/// The default overlay MTU over an underlay with `underlay_mtu` (0 if the underlay is
/// smaller than the overhead).
pub const fn overlay_mtu(underlay_mtu: u32, underlay: IpFamily) -> u32 {
    underlay_mtu.saturating_sub(underlay.overhead())
}

/// The largest overlay MTU accepted over this underlay. Today equal to
/// [`overlay_mtu`]; kept as its own function so the check and its message do not
/// change if the default ever leaves a margin.
pub const fn max_overlay_mtu(underlay_mtu: u32, underlay: IpFamily) -> u32 {
    overlay_mtu(underlay_mtu, underlay)
}

/// The TCP MSS that fits an MTU: MTU minus the IP header (20 or 40) minus the TCP
/// header (20), with no options. Saturates at 0 and at 65535.
pub const fn mss_for_mtu(mtu: u32, inner: IpFamily) -> u16 {
    let headers = match inner {
        IpFamily::V4 => 40,
        IpFamily::V6 => 60,
    };
    let mss = mtu.saturating_sub(headers);
    if mss > u16::MAX as u32 {
        u16::MAX
    } else {
        mss as u16
    }
}

/// An overlay MTU that fits its underlay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OverlayMtu(u32);

/// An overlay MTU that was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MtuError {
    #[error(
        "MTU {requested} is too large for a {underlay} underlay with MTU {underlay_mtu}: the maximum is {max} (underlay MTU minus {overhead} bytes of VXLAN overhead)",
        overhead = underlay.overhead()
    )]
    TooLarge {
        requested: u32,
        max: u32,
        underlay_mtu: u32,
        underlay: IpFamily,
    },
    #[error("MTU {requested} is too small: the minimum is {MIN_OVERLAY_MTU}")]
    TooSmall { requested: u32 },
    #[error(
        "the {underlay} underlay MTU {underlay_mtu} leaves no room for an overlay: it must be at least {min}",
        min = MIN_OVERLAY_MTU + underlay.overhead()
    )]
    UnderlayTooSmall {
        underlay_mtu: u32,
        underlay: IpFamily,
    },
}

impl OverlayMtu {
    /// The overlay MTU for a network: `requested`, or the default when `None`; refused
    /// if above [`max_overlay_mtu`] or below [`MIN_OVERLAY_MTU`].
    pub fn new(
        requested: Option<u32>,
        underlay_mtu: u32,
        underlay: IpFamily,
    ) -> Result<OverlayMtu, MtuError> {
        let max = max_overlay_mtu(underlay_mtu, underlay);
        if max < MIN_OVERLAY_MTU {
            return Err(MtuError::UnderlayTooSmall {
                underlay_mtu,
                underlay,
            });
        }
        let mtu = requested.unwrap_or(overlay_mtu(underlay_mtu, underlay));
        if mtu > max {
            return Err(MtuError::TooLarge {
                requested: mtu,
                max,
                underlay_mtu,
                underlay,
            });
        }
        if mtu < MIN_OVERLAY_MTU {
            return Err(MtuError::TooSmall { requested: mtu });
        }
        Ok(OverlayMtu(mtu))
    }

    /// The MTU in bytes (largest inner IP packet).
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The largest inner Ethernet frame, without VLAN tags: MTU + 14.
    pub const fn max_frame(self) -> usize {
        self.0 as usize + crate::encap::ETH_HLEN
    }

    /// The MSS that fits this MTU for an inner packet of `inner` family.
    pub const fn mss(self, inner: IpFamily) -> u16 {
        mss_for_mtu(self.0, inner)
    }
}

impl fmt::Display for OverlayMtu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        assert_eq!(overlay_mtu(1500, IpFamily::V4), 1450);
        assert_eq!(overlay_mtu(1500, IpFamily::V6), 1430);
        assert_eq!(overlay_mtu(9000, IpFamily::V4), 8950);
        assert_eq!(overlay_mtu(40, IpFamily::V6), 0);
        assert_eq!(max_overlay_mtu(1500, IpFamily::V4), 1450);
        assert_eq!(IpFamily::of("::1".parse().unwrap()), IpFamily::V6);
    }

    #[test]
    fn mss() {
        assert_eq!(mss_for_mtu(1450, IpFamily::V4), 1410);
        assert_eq!(mss_for_mtu(1430, IpFamily::V6), 1370);
        assert_eq!(mss_for_mtu(30, IpFamily::V4), 0);
        assert_eq!(mss_for_mtu(u32::MAX, IpFamily::V4), u16::MAX);
        let m = OverlayMtu::new(None, 1500, IpFamily::V4).unwrap();
        assert_eq!(
            (m.get(), m.max_frame(), m.mss(IpFamily::V6)),
            (1450, 1464, 1390)
        );
    }

    #[test]
    fn checked_constructor() {
        assert_eq!(
            OverlayMtu::new(Some(1400), 1500, IpFamily::V6)
                .unwrap()
                .get(),
            1400
        );
        assert_eq!(
            OverlayMtu::new(Some(1450), 1500, IpFamily::V4)
                .unwrap()
                .get(),
            1450
        );
        let err = OverlayMtu::new(Some(1500), 1500, IpFamily::V4).unwrap_err();
        assert_eq!(
            err,
            MtuError::TooLarge {
                requested: 1500,
                max: 1450,
                underlay_mtu: 1500,
                underlay: IpFamily::V4
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains("maximum is 1450") && msg.contains("50 bytes"),
            "{msg}"
        );
        assert!(
            OverlayMtu::new(Some(1431), 1500, IpFamily::V6)
                .unwrap_err()
                .to_string()
                .contains("maximum is 1430")
        );
        assert_eq!(
            OverlayMtu::new(Some(67), 1500, IpFamily::V4),
            Err(MtuError::TooSmall { requested: 67 })
        );
        let err = OverlayMtu::new(None, 100, IpFamily::V6).unwrap_err();
        assert!(err.to_string().contains("at least 138"), "{err}");
    }
}
