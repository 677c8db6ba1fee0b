//! Seeds of the `nat_icmp` target: conversations through the NAT and ICMP errors about
//! its flows, quoting packets as they left it.

use super::{HOST, PEER};
use crate::harness::input::Writer;
use crate::harness::nat_icmp::{CLIENT, EXTERNAL, INSIDE_A, INSIDE_B, REMOTE, ROUTER, TARGET};
use crate::seeds::frames::{self, L4, Tcp, ip4, v4};

/// The setup flows as they leave the NAT, for quoting in ICMP errors.
fn translated() -> Vec<Vec<u8>> {
    let (_, done) = crate::harness::nat_icmp::prepared(std::time::Duration::from_secs(1));
    done.into_iter().map(|(_, p)| p).collect()
}

/// `nat_icmp`: records of an op byte and an IPv4 packet.
pub fn nat_icmp() -> Vec<(String, Vec<u8>)> {
    const OUT: u8 = 0;
    const IN: u8 = 1;
    const PARTIAL: u8 = 2;
    const LATER: u8 = 8;
    let t = translated();
    let (tcp, udp, echo, dnat, hairpin, frag) = (&t[0], &t[1], &t[2], &t[3], &t[4], &t[5]);
    let ip = |f: Vec<u8>| f[14..].to_vec();
    let err = |from, to, kind, quoted: &[u8], n| {
        ip(frames::icmp4_error((PEER, HOST), from, to, kind, quoted, n))
    };
    let port_unreach = (3, 3, [0; 4]);
    let frag_needed = (3, 4, [0, 0, 0x05, 0x78]);
    let ttl = (11, 0, [0; 4]);
    let one = |op: u8, p: Vec<u8>| Writer::new().u8(op).record(&p).done();
    let mut out = vec![
        (
            "err_port_unreach_udp".to_string(),
            one(IN, err(REMOTE, EXTERNAL, port_unreach, udp, 28 + 8)),
        ),
        (
            "err_frag_needed_tcp".into(),
            one(IN, err(ROUTER, EXTERNAL, frag_needed, tcp, 40)),
        ),
        (
            "err_frag_needed_tcp_short".into(),
            one(IN, err(ROUTER, EXTERNAL, frag_needed, tcp, 28)),
        ),
        (
            "err_ttl_echo".into(),
            one(IN, err(ROUTER, EXTERNAL, ttl, echo, 28)),
        ),
        (
            "err_frag_needed_partial".into(),
            one(IN | PARTIAL, err(ROUTER, EXTERNAL, frag_needed, tcp, 40)),
        ),
        (
            "err_about_fragment".into(),
            one(IN, err(REMOTE, EXTERNAL, port_unreach, frag, 28 + 8)),
        ),
        (
            "err_untracked".into(),
            one(
                IN,
                err(
                    REMOTE,
                    EXTERNAL,
                    port_unreach,
                    &ip4(v4(EXTERNAL, REMOTE, 64, false), L4::Udp(40999, 53), b"x"),
                    36,
                ),
            ),
        ),
    ];
    // Errors from inside about what the NAT forwarded to a published port's target
    // (directly and hairpinned), and from outside about that target's reply.
    let reply = |src, sport, dst, dport| {
        ip4(
            v4(src, dst, 64, true),
            L4::Tcp(Tcp {
                sport,
                dport,
                seq: 9,
                ack: Some(1001),
                syn: true,
                ..Tcp::default()
            }),
            &[],
        )
    };
    out.push((
        "err_inside_dnat".into(),
        one(OUT, err(TARGET, CLIENT, port_unreach, dnat, 40)),
    ));
    out.push((
        "err_inside_hairpin".into(),
        one(OUT, err(TARGET, EXTERNAL, port_unreach, hairpin, 40)),
    ));
    let dnat_reply = reply(EXTERNAL, 8080, CLIENT, 50000);
    out.push((
        "err_dnat_reply".into(),
        one(IN, err(ROUTER, EXTERNAL, frag_needed, &dnat_reply, 40)),
    ));
    // Plain traffic: replies, new flows, a later fragment, an echo request from outside.
    let udp_reply = ip4(
        v4(REMOTE, EXTERNAL, 60, false),
        L4::Udp(53, 40002),
        b"answer",
    );
    let synack = reply(REMOTE, 443, EXTERNAL, 40001);
    let echo_reply = ip4(
        v4(REMOTE, EXTERNAL, 60, false),
        L4::EchoReply(40003, 1),
        b"ping",
    );
    let mut later = ip4(v4(INSIDE_A, REMOTE, 64, false), L4::Udp(0, 0), &[7u8; 40])[..20].to_vec();
    later.extend_from_slice(&[7u8; 48]);
    later[2..4].copy_from_slice(&68u16.to_be_bytes());
    later[4..6].copy_from_slice(&77u16.to_be_bytes());
    later[6..8].copy_from_slice(&9u16.to_be_bytes());
    later[10..12].fill(0);
    let c = frames::checksum(&later[..20]);
    later[10..12].copy_from_slice(&c.to_be_bytes());
    let new_udp = ip4(v4(INSIDE_B, REMOTE, 64, false), L4::Udp(12345, 123), b"ntp");
    let inbound_syn = ip4(
        v4(CLIENT, EXTERNAL, 64, true),
        L4::Tcp(Tcp {
            sport: 50001,
            dport: 8080,
            seq: 1,
            syn: true,
            ..Tcp::default()
        }),
        &[],
    );
    let fin = ip4(
        v4(INSIDE_A, REMOTE, 64, true),
        L4::Tcp(Tcp {
            sport: 40001,
            dport: 443,
            seq: 2,
            ack: Some(10),
            fin: true,
            ..Tcp::default()
        }),
        &[],
    );
    let rst = ip4(
        v4(REMOTE, EXTERNAL, 64, true),
        L4::Tcp(Tcp {
            sport: 443,
            dport: 40001,
            seq: 10,
            rst: true,
            ..Tcp::default()
        }),
        &[],
    );
    let ping_in = ip4(
        v4(CLIENT, EXTERNAL, 64, false),
        L4::EchoRequest(1, 1),
        b"hi",
    );
    out.push((
        "conversation".into(),
        Writer::new()
            .u8(IN)
            .record(&udp_reply)
            .u8(IN)
            .record(&synack)
            .u8(IN)
            .record(&echo_reply)
            .u8(OUT)
            .record(&later)
            .u8(OUT | PARTIAL)
            .record(&new_udp)
            .u8(IN)
            .record(&inbound_syn)
            .u8(OUT)
            .record(&fin)
            .u8(IN)
            .record(&rst)
            .u8(IN)
            .record(&ping_in)
            .u8(IN | LATER)
            .record(&err(REMOTE, EXTERNAL, port_unreach, udp, 36))
            .done(),
    ));
    out.push((
        "dnat_and_hairpin".into(),
        Writer::new()
            .u8(OUT)
            .record(dnat)
            .u8(OUT)
            .record(hairpin)
            .done(),
    ));
    out
}
