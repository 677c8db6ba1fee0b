//! Seeds of the `vxlan_decap` target: datagrams from each kind of source, every kind of
//! inner frame, broken VXLAN headers, whole outer IPv4/IPv6 packets.

use super::{PEER, a4, a6, inner_frames};
use crate::harness::input::Writer;
use crate::seeds::frames::{self, BROADCAST, L4, ip4, ip6, v4, v6};

/// `vxlan_decap`: a source selector byte, then a UDP payload or a whole outer packet.
pub fn vxlan_decap() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, inner) in inner_frames() {
        out.push((
            format!("peer42_{name}"),
            Writer::new()
                .u8(0)
                .bytes(&frames::vxlan(8, 42, &inner))
                .done(),
        ));
        out.push((
            format!("peer_all_{name}"),
            Writer::new()
                .u8(1)
                .bytes(&frames::vxlan(8, 7, &inner))
                .done(),
        ));
    }
    let inner = frames::arp(
        PEER,
        BROADCAST,
        1,
        (PEER, a4("10.3.0.9")),
        ([0; 6], a4("10.3.0.2")),
    );
    for (name, src, flags, vni) in [
        ("bad_flags", 0u8, 0x0c_u8, 42),
        ("no_i_flag", 0, 0, 42),
        ("unknown_vni", 0, 8, 43),
        ("wrong_peer_vni", 2, 8, 42),
        ("max_vni", 2, 8, 0xff_ffff),
        ("stranger", 3, 8, 42),
    ] {
        out.push((
            name.into(),
            Writer::new()
                .u8(src)
                .bytes(&frames::vxlan(flags, vni, &inner))
                .done(),
        ));
    }
    out.push((
        "truncated".into(),
        Writer::new()
            .u8(0)
            .bytes(&frames::vxlan(8, 42, &inner[..13]))
            .done(),
    ));
    // Whole outer packets for decapsulate_ip, from the peers' addresses.
    let payload = frames::vxlan(8, 42, &inner);
    let outer4 = |csum: bool, port: u16| {
        let mut p = ip4(
            v4(a4("192.0.2.2"), a4("192.0.2.1"), 64, false),
            L4::Udp(61000, port),
            &payload,
        );
        if !csum {
            p[26..28].fill(0);
        }
        p
    };
    out.push((
        "outer4".into(),
        Writer::new().u8(0).bytes(&outer4(false, 4789)).done(),
    ));
    out.push((
        "outer4_csum".into(),
        Writer::new().u8(0).bytes(&outer4(true, 4789)).done(),
    ));
    out.push((
        "outer4_port".into(),
        Writer::new().u8(0).bytes(&outer4(false, 8472)).done(),
    ));
    let mut frag = outer4(false, 4789);
    frag[6] |= 0x20;
    frag[10..12].fill(0);
    let c = frames::checksum(&frag[..20]);
    frag[10..12].copy_from_slice(&c.to_be_bytes());
    out.push((
        "outer4_fragment".into(),
        Writer::new().u8(0).bytes(&frag).done(),
    ));
    let outer6 = ip6(
        v6(a6("2001:db8::2"), a6("2001:db8::1"), 64),
        L4::Udp(61001, 4789),
        &frames::vxlan(8, 7, &inner),
    );
    out.push(("outer6".into(), Writer::new().u8(1).bytes(&outer6).done()));
    out
}
