//! Where the IP and L4 headers sit inside an Ethernet frame: offsets, checked once, so
//! that `split` and `gro` can index without further checks.
//!
//! Written by hand rather than with etherparse's slicers because both callers need byte
//! offsets to rewrite fields in place in the copies they make, and because a GSO
//! super-frame is legal here where a sliced-packet parser would judge it by its lengths.

/// Ethernet header length.
pub(crate) const ETH_HLEN: usize = 14;
const VLAN_HLEN: usize = 4;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
pub(crate) const IPPROTO_TCP: u8 = 6;
pub(crate) const IPPROTO_UDP: u8 = 17;
pub(crate) const IPV6_HLEN: usize = 40;
pub(crate) const TCP_HLEN: usize = 20;
pub(crate) const UDP_HLEN: usize = 8;

/// Why a frame has no usable IP layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bad {
    /// Not IPv4/IPv6 behind Ethernet and at most one VLAN tag.
    NotIp,
    /// Ends before its headers or its IP length.
    Truncated,
    /// Impossible IP header (IHL < 5, fragment, IPv6 jumbogram, version mismatch).
    Malformed,
}

/// The IP packet inside a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ip {
    /// Offset of the IP header (14, or 18 behind a VLAN tag).
    pub l3: usize,
    /// Offset of the L4 header.
    pub l4: usize,
    /// End of the IP packet (`l3` + IP length); bytes after it are link padding.
    pub end: usize,
    pub v6: bool,
    /// IPv4 protocol or IPv6 next header.
    pub proto: u8,
}

impl Ip {
    /// Source and destination addresses, back to back.
    pub fn addrs<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        if self.v6 {
            &frame[self.l3 + 8..self.l3 + 40]
        } else {
            &frame[self.l3 + 12..self.l3 + 20]
        }
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Locates the IP header (after one optional 802.1Q/802.1ad tag) and checks that the IP
/// header and the IP length fit in the frame. Fragments are refused: neither split nor
/// coalesce applies to them.
pub(crate) fn locate(frame: &[u8]) -> Result<Ip, Bad> {
    if frame.len() < ETH_HLEN {
        return Err(Bad::Truncated);
    }
    let mut l3 = ETH_HLEN;
    let mut ethertype = be16(frame, 12);
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        if frame.len() < ETH_HLEN + VLAN_HLEN {
            return Err(Bad::Truncated);
        }
        l3 += VLAN_HLEN;
        ethertype = be16(frame, 16);
    }
    match ethertype {
        ETH_P_IPV4 => {
            if frame.len() < l3 + 20 {
                return Err(Bad::Truncated);
            }
            if frame[l3] >> 4 != 4 {
                return Err(Bad::Malformed);
            }
            let ihl = usize::from(frame[l3] & 0x0f) * 4;
            let total = usize::from(be16(frame, l3 + 2));
            if ihl < 20 || total < ihl {
                return Err(Bad::Malformed);
            }
            // MF set or a non-zero fragment offset.
            if be16(frame, l3 + 6) & 0x3fff != 0 {
                return Err(Bad::Malformed);
            }
            if frame.len() < l3 + total {
                return Err(Bad::Truncated);
            }
            Ok(Ip {
                l3,
                l4: l3 + ihl,
                end: l3 + total,
                v6: false,
                proto: frame[l3 + 9],
            })
        }
        ETH_P_IPV6 => {
            if frame.len() < l3 + IPV6_HLEN {
                return Err(Bad::Truncated);
            }
            if frame[l3] >> 4 != 6 {
                return Err(Bad::Malformed);
            }
            let payload = usize::from(be16(frame, l3 + 4));
            if payload == 0 {
                // A jumbogram (or BIG TCP's header-less 64 KiB+ packet): not ours.
                return Err(Bad::Malformed);
            }
            let end = l3 + IPV6_HLEN + payload;
            if frame.len() < end {
                return Err(Bad::Truncated);
            }
            Ok(Ip {
                l3,
                l4: l3 + IPV6_HLEN,
                end,
                v6: true,
                proto: frame[l3 + 6],
            })
        }
        _ => Err(Bad::NotIp),
    }
}

/// The TCP header length at `ip.l4`, checked to fit before `ip.end`.
pub(crate) fn tcp_hlen(frame: &[u8], ip: &Ip) -> Result<usize, Bad> {
    if ip.l4 + TCP_HLEN > ip.end {
        return Err(Bad::Truncated);
    }
    let thl = usize::from(frame[ip.l4 + 12] >> 4) * 4;
    if thl < TCP_HLEN {
        return Err(Bad::Malformed);
    }
    if ip.l4 + thl > ip.end {
        return Err(Bad::Truncated);
    }
    Ok(thl)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(ethertype: u16) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    #[test]
    fn vlan_tag_moves_l3() {
        let mut f = eth(ETH_P_8021Q);
        f.extend_from_slice(&[0, 5]);
        f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
        let mut ip6 = [0u8; 48];
        ip6[0] = 0x60;
        ip6[5] = 8;
        ip6[6] = IPPROTO_UDP;
        f.extend_from_slice(&ip6);
        let ip = locate(&f).unwrap();
        assert_eq!(
            ip,
            Ip {
                l3: 18,
                l4: 58,
                end: 66,
                v6: true,
                proto: IPPROTO_UDP
            }
        );
    }

    #[test]
    fn refuses_what_it_cannot_lay_out() {
        assert_eq!(locate(&[0; 13]), Err(Bad::Truncated));
        assert_eq!(locate(&eth(0x0806)), Err(Bad::NotIp));
        // Two VLAN tags: the inner ethertype is a tag again.
        let mut qinq = eth(ETH_P_8021AD);
        qinq.extend_from_slice(&[0, 1, 0x81, 0]);
        assert_eq!(locate(&qinq), Err(Bad::NotIp));
        let mut v4 = eth(ETH_P_IPV4);
        v4.extend_from_slice(&[0x45, 0, 0, 40, 0, 0, 0x20, 0, 64, 6]);
        v4.resize(14 + 40, 0);
        assert_eq!(locate(&v4), Err(Bad::Malformed), "MF set");
        v4[20] = 0x40;
        assert!(locate(&v4).is_ok());
        v4[17] = 41;
        assert_eq!(locate(&v4), Err(Bad::Truncated), "IP length past the frame");
        v4[17] = 40;
        v4[14] = 0x44;
        assert_eq!(locate(&v4), Err(Bad::Malformed), "IHL 4");
    }
}
