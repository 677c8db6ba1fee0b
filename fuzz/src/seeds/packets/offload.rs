//! Seeds of the `offload` target: TSO and UDP GSO super-frames as a TAP hands them over,
//! frames whose checksum is left to finish, and GRO runs of segments.

use super::{HOST, PEER, a4};
use crate::harness::input::Writer;
use crate::seeds::frames::{self, L4, Tcp, eth4, ip4, v4};

/// `offload`: header, max_frame, prefix, buffer size, then frames.
pub fn offload() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let hdr = |h: [u8; 10], max_frame: u16, out_len: u16| {
        Writer::new().bytes(&h).u16(max_frame).u8(8).u16(out_len)
    };
    let t = Tcp {
        sport: 40100,
        dport: 5201,
        seq: 1000,
        ack: Some(1),
        psh: true,
        ..Tcp::default()
    };
    let big = frames::pattern(5000, 3);
    // TSO super-frames as TAP hands them over, cut for a 1450-byte overlay.
    let cases: [(&str, bool, Option<u16>, u16, u16); 4] = [
        ("tso4", false, None, 34, 1448),
        ("tso6", true, None, 54, 1428),
        ("tso4_vlan", false, Some(7), 38, 1448),
        ("tso4_small_mss", false, None, 34, 536),
    ];
    for (name, v6, vlan, start, mss) in cases {
        let f = frames::tso_frame(HOST, PEER, v6, vlan, t, &big);
        let gso = if v6 { 4 } else { 1 };
        let h = frames::vnet(1, gso, start + 20, mss, start, 16);
        out.push((
            name.into(),
            hdr(h, 1464 + vlan.map_or(0, |_| 4), 0).record(&f).done(),
        ));
    }
    let f = frames::tso_frame(HOST, PEER, false, None, t, &big);
    out.push((
        "tso4_too_big".into(),
        hdr(frames::vnet(1, 1, 54, 8000, 34, 16), 1464, 0)
            .record(&f)
            .done(),
    ));
    out.push((
        "tso4_small_out".into(),
        hdr(frames::vnet(1, 1, 54, 1448, 34, 16), 1464, 3000)
            .record(&f)
            .done(),
    ));
    out.push((
        "tso4_ecn".into(),
        hdr(frames::vnet(1, 0x81, 54, 1448, 34, 16), 1464, 0)
            .record(&f)
            .done(),
    ));
    // UDP GSO (UDP_L4).
    let mut u = eth4(
        HOST,
        PEER,
        &ip4(
            v4(a4("10.3.0.2"), a4("10.3.0.9"), 64, false),
            L4::Udp(4000, 4001),
            &frames::pattern(3000, 4),
        ),
    );
    frames::make_partial(&mut u, 14);
    out.push((
        "udp_l4".into(),
        hdr(frames::vnet(1, 5, 42, 1200, 34, 6), 1464, 0)
            .record(&u)
            .done(),
    ));
    // TCP with IPv4 options (a no-op and end of list, padded).
    let opts = frames::v4_options(v4(a4("10.3.0.2"), a4("10.3.0.9"), 64, true), &[1, 1, 1, 0]);
    let mut o = eth4(HOST, PEER, &ip4(opts, L4::Tcp(t), &big[..3000]));
    frames::make_partial(&mut o, 14);
    out.push((
        "tso4_ip_options".into(),
        hdr(frames::vnet(1, 1, 58, 1400, 38, 16), 1464, 0)
            .record(&o)
            .done(),
    ));
    // Non-GSO frames whose checksum is left to finish.
    let mut small = eth4(
        HOST,
        PEER,
        &ip4(
            v4(a4("10.3.0.2"), a4("10.3.0.9"), 64, true),
            L4::Tcp(t),
            &big[..600],
        ),
    );
    frames::make_partial(&mut small, 14);
    out.push((
        "needs_csum_tcp".into(),
        hdr(frames::vnet(1, 0, 0, 0, 34, 16), 1514, 0)
            .record(&small)
            .done(),
    ));
    let mut su = eth4(
        HOST,
        PEER,
        &ip4(
            v4(a4("10.3.0.2"), a4("10.3.0.9"), 64, false),
            L4::Udp(1, 2),
            &big[..300],
        ),
    );
    frames::make_partial(&mut su, 14);
    out.push((
        "needs_csum_udp".into(),
        hdr(frames::vnet(1, 0, 0, 0, 34, 6), 1514, 0)
            .record(&su)
            .done(),
    ));
    // GRO: segments of one flow, then two flows interleaved, IPv6, a PSH closing.
    for (name, v6, n, mss, psh) in [
        ("gro4", false, 5, 1448, true),
        ("gro6", true, 4, 1428, false),
        ("gro4_short_tail", false, 3, 1000, false),
    ] {
        let mut w = hdr([0; 10], 1514, 0);
        let mut segs = frames::segments(v6, n, mss, psh);
        if name == "gro4_short_tail" {
            let last = segs.len() - 1;
            segs[last] = frames::segments(v6, n, mss, psh)[last][..14 + 20 + 20 + 500].to_vec();
        }
        for s in &segs {
            w = w.record(s);
        }
        out.push((name.into(), w.done()));
    }
    let (a, b) = (
        frames::segments(false, 3, 1448, false),
        frames::segments(true, 3, 1428, false),
    );
    let mut w = hdr([0; 10], 1514, 0);
    for i in 0..3 {
        w = w.record(&a[i]).record(&b[i]);
    }
    out.push(("gro_two_flows".into(), w.done()));
    out
}
