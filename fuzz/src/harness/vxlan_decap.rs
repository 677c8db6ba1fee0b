//! VXLAN decapsulation: `vtep::decapsulate` on a UDP payload as the underlay socket hands
//! it over (from each kind of source: a peer of the VNI, a peer of every VNI, a peer of
//! other VNIs, a stranger), and `vtep::decapsulate_ip` on the same bytes read as a whole
//! outer IPv4/IPv6 packet; then what the worker does next with the inner frame
//! (`partial_checksum`, the flow hash).
//!
//! Checks, beyond "no panic": an accepted datagram has exactly the flags byte 0x08, a
//! VNI this host knows and a source that carries it; the inner range lies inside the
//! input, is at least an Ethernet header, and its VXLAN header sits right before it;
//! decapsulate_ip's addresses, port and inner range agree with the bytes, and its inner
//! datagram passes `decapsulate` from the same source with the same VNI. A
//! `partial_checksum` header points inside the frame, and completing the checksum with
//! it gives a checksum that verifies.

use std::net::IpAddr;

use vswitch::datapath::offload::{self, VnetHdr};
use vtep::{DecapError, PeerLookup, PeerTable, PeerVnis, Vni};

use super::check;
use super::input::Input;

pub const VXLAN_PORT: u16 = 4789;

/// The sources a datagram may come from.
pub fn sources() -> [IpAddr; 4] {
    [
        "192.0.2.2".parse().expect("literal"),    // peer of VNI 42 only
        "2001:db8::2".parse().expect("literal"),  // peer of every VNI
        "198.51.100.1".parse().expect("literal"), // peer of VNIs 7 and 0xffffff
        "203.0.113.9".parse().expect("literal"),  // not a peer
    ]
}

pub fn known_vnis() -> Vec<Vni> {
    [42, 7, 0xff_ffff]
        .into_iter()
        .filter_map(Vni::new)
        .collect()
}

pub fn peers() -> PeerTable {
    let [a, b, c, _] = sources();
    let vni = |n| Vni::new(n).expect("a 24-bit VNI");
    let mut t = PeerTable::new();
    for (ip, vnis) in [
        (a, PeerVnis::only([vni(42)])),
        (b, PeerVnis::All),
        (c, PeerVnis::only([vni(7), vni(0xff_ffff)])),
    ] {
        t.add(ip, vnis).expect("distinct peers");
    }
    t
}

/// Input: one byte choosing the source, then the datagram (the rest).
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let src = sources()[usize::from(input.u8() % 4)];
    let bytes = input.rest();
    let known = known_vnis();
    let peers = peers();

    match vtep::decapsulate(bytes, src, &known[..], &peers) {
        Ok(d) => {
            assert_eq!(d.inner, 8..bytes.len(), "the inner frame is the rest");
            assert!(
                d.inner.len() >= check::ETH_HLEN,
                "inner frame shorter than Ethernet"
            );
            assert_eq!(bytes[0], 0x08, "accepted flags other than I");
            let vni = u32::from_be_bytes([0, bytes[4], bytes[5], bytes[6]]);
            assert_eq!(d.vni.get(), vni, "VNI not read from bytes 4-6");
            assert!(known.contains(&d.vni) && peers.is_peer(src, d.vni));
            inner_frame(&bytes[d.inner.clone()]);
        }
        Err(e) => {
            assert!(e.index() < DecapError::COUNT && !e.name().is_empty());
        }
    }

    match vtep::decapsulate_ip(bytes, VXLAN_PORT, &known[..], &peers) {
        Ok(d) => {
            assert!(d.inner.start <= d.inner.end && d.inner.end <= bytes.len());
            assert!(d.inner.start >= 16, "no room for UDP and VXLAN headers");
            let (src, dst, end) = outer(bytes).expect("accepted packet without an IP header");
            assert_eq!((d.src, d.dst), (src, dst), "addresses not the header's");
            assert_eq!(
                d.inner.end, end,
                "inner frame does not end with the IP packet"
            );
            let udp = d.inner.start - 16;
            assert_eq!(check::be16(bytes, udp), Some(d.src_port));
            assert_eq!(check::be16(bytes, udp + 2), Some(VXLAN_PORT));
            let again = vtep::decapsulate(&bytes[udp + 8..end], d.src, &known[..], &peers)
                .expect("decapsulate_ip accepted what decapsulate refuses");
            assert_eq!(again.vni, d.vni);
            inner_frame(&bytes[d.inner]);
        }
        Err(e) => assert!(e.index() < DecapError::COUNT),
    }
}

/// Source, destination and end of the IP packet at the start of `p`.
fn outer(p: &[u8]) -> Option<(IpAddr, IpAddr, usize)> {
    match p.first()? >> 4 {
        4 => {
            let ip = check::ipv4(p)?;
            Some((ip.src.into(), ip.dst.into(), ip.total))
        }
        6 => {
            let a: [u8; 16] = p.get(8..24)?.try_into().ok()?;
            let b: [u8; 16] = p.get(24..40)?.try_into().ok()?;
            let end = 40 + usize::from(check::be16(p, 4)?);
            Some((IpAddr::from(a), IpAddr::from(b), end))
        }
        _ => None,
    }
}

/// What the worker does with a decapsulated frame before switching it.
pub fn inner_frame(frame: &[u8]) {
    let _ = vtep::flow_hash(frame);
    let Some(h) = offload::partial_checksum(frame) else {
        return;
    };
    assert!(h.needs_csum() && !h.is_gso(), "{h:?}");
    let at = usize::from(h.csum_start) + usize::from(h.csum_offset);
    // Finishing the checksum as a device would must give a verifiable one, over the IP
    // packet (trailing link padding is not part of it), so the field must lie inside it.
    let ip_end = ip_end(frame).expect("partial checksum header for a frame without an IP packet");
    assert!(
        at + 2 <= ip_end,
        "partial checksum field past the IP packet: {h:?}"
    );
    let mut copy = frame[..ip_end].to_vec();
    offload::complete_checksum(&mut copy, &h).expect("partial_checksum's own header refused");
    if let Some(ok) = check::frame_l4_ok(&copy) {
        assert!(ok, "completing a partial checksum gave a wrong one: {h:?}");
    }
    let _ = VnetHdr::parse(&h.to_bytes());
}

/// Where the IP packet of an Ethernet frame ends, when its length fits the frame.
pub fn ip_end(frame: &[u8]) -> Option<usize> {
    let (l3, t) = check::l3_of(frame)?;
    let p = frame.get(l3..)?;
    let len = match t {
        0x0800 => check::ipv4(p)?.total,
        0x86dd => 40 + usize::from(check::be16(p, 4)?),
        _ => return None,
    };
    (l3 + len <= frame.len()).then_some(l3 + len)
}
