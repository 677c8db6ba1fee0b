//! Real frames for the seed corpus, built with etherparse (IP, TCP, UDP, ICMP, ICMPv6)
//! and by hand where etherparse's builder would get in the way (ARP, VLAN tags, VXLAN).
//! Every checksum is right unless a seed says otherwise.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{
    IpHeaders, IpNumber, Ipv4Header, Ipv4Options, Ipv6FlowLabel, Ipv6Header, PacketBuilder,
    TcpOptionElement,
};
use vtep::checksum::{add_bytes, finish, fold, pseudo_header_v4, pseudo_header_v6};

pub type Mac = [u8; 6];
pub const BROADCAST: Mac = [0xff; 6];

/// Runs an etherparse builder into a fresh vector.
pub fn build<E: std::fmt::Debug>(b: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Vec<u8> {
    let mut v = Vec::new();
    b(&mut v).expect("etherparse builds the packet");
    v
}

/// A TCP header's fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: Option<u32>,
    pub syn: bool,
    pub fin: bool,
    pub psh: bool,
    pub rst: bool,
    pub mss: Option<u16>,
}

/// What follows the IP header.
#[derive(Debug, Clone, Copy)]
pub enum L4 {
    Tcp(Tcp),
    Udp(u16, u16),
    /// ICMP / ICMPv6 echo request: id, seq.
    EchoRequest(u16, u16),
    EchoReply(u16, u16),
    /// ICMPv4 type, code, bytes 4-7; the payload is the quote.
    Icmp4(u8, u8, [u8; 4]),
}

/// An IPv4 header with everything the builders do not set.
pub fn v4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, df: bool) -> Ipv4Header {
    Ipv4Header {
        dont_fragment: df,
        ..Ipv4Header::new(0, ttl, IpNumber::UDP, src.octets(), dst.octets())
            .expect("an empty payload fits")
    }
}

/// The same with IPv4 options (a multiple of 4 bytes, at most 40).
pub fn v4_options(h: Ipv4Header, options: &[u8]) -> Ipv4Header {
    Ipv4Header {
        options: Ipv4Options::try_from(options).expect("valid option length"),
        ..h
    }
}

pub fn v6(src: Ipv6Addr, dst: Ipv6Addr, hop: u8) -> Ipv6Header {
    Ipv6Header {
        traffic_class: 0,
        flow_label: Ipv6FlowLabel::ZERO,
        payload_length: 0,
        next_header: IpNumber::UDP,
        hop_limit: hop,
        source: src.octets(),
        destination: dst.octets(),
    }
}

/// An IP packet (no link header) with `l4` and `payload`.
pub fn ip_packet(ip: IpHeaders, l4: L4, payload: &[u8]) -> Vec<u8> {
    let v6 = matches!(ip, IpHeaders::Ipv6(..));
    let b = PacketBuilder::ip(ip);
    match l4 {
        L4::Tcp(t) => {
            let mut s = b.tcp(t.sport, t.dport, t.seq, 64240);
            if t.syn {
                s = s.syn();
            }
            if let Some(a) = t.ack {
                s = s.ack(a);
            }
            if t.fin {
                s = s.fin();
            }
            if t.psh {
                s = s.psh();
            }
            if t.rst {
                s = s.rst();
            }
            if let Some(m) = t.mss {
                let opts = [
                    TcpOptionElement::MaximumSegmentSize(m),
                    TcpOptionElement::SelectiveAcknowledgementPermitted,
                    TcpOptionElement::WindowScale(7),
                ];
                s = s.options(&opts).expect("options fit");
            }
            build(|v| s.write(v, payload))
        }
        L4::Udp(sport, dport) => build(|v| b.udp(sport, dport).write(v, payload)),
        L4::EchoRequest(id, seq) if v6 => {
            build(|v| b.icmpv6_echo_request(id, seq).write(v, payload))
        }
        L4::EchoReply(id, seq) if v6 => build(|v| b.icmpv6_echo_reply(id, seq).write(v, payload)),
        L4::EchoRequest(id, seq) => build(|v| b.icmpv4_echo_request(id, seq).write(v, payload)),
        L4::EchoReply(id, seq) => build(|v| b.icmpv4_echo_reply(id, seq).write(v, payload)),
        L4::Icmp4(t, c, rest) => build(|v| b.icmpv4_raw(t, c, rest).write(v, payload)),
    }
}

pub fn ip4(h: Ipv4Header, l4: L4, payload: &[u8]) -> Vec<u8> {
    ip_packet(IpHeaders::Ipv4(h, Default::default()), l4, payload)
}

pub fn ip6(h: Ipv6Header, l4: L4, payload: &[u8]) -> Vec<u8> {
    ip_packet(IpHeaders::Ipv6(h, Default::default()), l4, payload)
}

/// An Ethernet frame around `payload`, with VLAN tags (VIDs) in front of `ethertype`.
pub fn eth(src: Mac, dst: Mac, vlans: &[u16], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 4 * vlans.len() + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for (i, vid) in vlans.iter().enumerate() {
        let tpid: u16 = if i + 1 < vlans.len() { 0x88a8 } else { 0x8100 };
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

pub fn eth4(src: Mac, dst: Mac, packet: &[u8]) -> Vec<u8> {
    eth(src, dst, &[], 0x0800, packet)
}

pub fn eth6(src: Mac, dst: Mac, packet: &[u8]) -> Vec<u8> {
    eth(src, dst, &[], 0x86dd, packet)
}

/// An ARP message (Ethernet, IPv4), padded to 60 bytes. `op`: 1 request, 2 reply.
pub fn arp(
    eth_src: Mac,
    eth_dst: Mac,
    op: u16,
    sender: (Mac, Ipv4Addr),
    target: (Mac, Ipv4Addr),
) -> Vec<u8> {
    let mut m = vec![0, 1, 8, 0, 6, 4];
    m.extend_from_slice(&op.to_be_bytes());
    m.extend_from_slice(&sender.0);
    m.extend_from_slice(&sender.1.octets());
    m.extend_from_slice(&target.0);
    m.extend_from_slice(&target.1.octets());
    let mut f = eth(eth_src, eth_dst, &[], 0x0806, &m);
    f.resize(60, 0);
    f
}

/// A VXLAN header (flags, VNI) and the inner frame: a UDP payload.
pub fn vxlan(flags: u8, vni: u32, inner: &[u8]) -> Vec<u8> {
    let v = vni.to_be_bytes();
    let mut d = vec![flags, 0, 0, 0, v[1], v[2], v[3], 0];
    d.extend_from_slice(inner);
    d
}

/// Bytes 0..len of a repeating pattern (payloads that show where they were cut).
pub fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

/// Replaces the L4 checksum of an Ethernet + IPv4/IPv6 + TCP/UDP frame with the
/// pseudo-header sum, as a sender that offloads its checksum leaves it.
pub fn make_partial(frame: &mut [u8], l3: usize) {
    let v6 = frame[l3] >> 4 == 6;
    let (l4, proto, len) = if v6 {
        let len = usize::from(u16::from_be_bytes([frame[l3 + 4], frame[l3 + 5]]));
        (l3 + 40, frame[l3 + 6], len)
    } else {
        let ihl = usize::from(frame[l3] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]));
        (l3 + ihl, frame[l3 + 9], total - ihl)
    };
    let sum = if v6 {
        let a: [u8; 16] = frame[l3 + 8..l3 + 24].try_into().expect("16 bytes");
        let b: [u8; 16] = frame[l3 + 24..l3 + 40].try_into().expect("16 bytes");
        pseudo_header_v6(a.into(), b.into(), proto, len as u32)
    } else {
        let a: [u8; 4] = frame[l3 + 12..l3 + 16].try_into().expect("4 bytes");
        let b: [u8; 4] = frame[l3 + 16..l3 + 20].try_into().expect("4 bytes");
        pseudo_header_v4(a.into(), b.into(), proto, len as u16)
    };
    let at = l4 + if proto == 6 { 16 } else { 6 };
    frame[at..at + 2].copy_from_slice(&fold(sum).to_be_bytes());
}

/// A super-frame as a TSO sender hands it over: one TCP segment of `payload` bytes
/// (its IP length covering all of it), the checksum partial.
pub fn tso_frame(
    src: Mac,
    dst: Mac,
    v6: bool,
    vlan: Option<u16>,
    t: Tcp,
    payload: &[u8],
) -> Vec<u8> {
    let (a4, b4) = (Ipv4Addr::new(10, 3, 0, 2), Ipv4Addr::new(10, 3, 0, 9));
    let (a6, b6): (Ipv6Addr, Ipv6Addr) = (
        "fd00::2".parse().expect("literal"),
        "fd00::9".parse().expect("literal"),
    );
    let (packet, ethertype) = if v6 {
        (ip6(v6_hdr(a6, b6), L4::Tcp(t), payload), 0x86dd)
    } else {
        (ip4(v4(a4, b4, 64, true), L4::Tcp(t), payload), 0x0800)
    };
    let vlans: Vec<u16> = vlan.into_iter().collect();
    let mut f = eth(src, dst, &vlans, ethertype, &packet);
    make_partial(&mut f, 14 + 4 * vlans.len());
    f
}

fn v6_hdr(a: Ipv6Addr, b: Ipv6Addr) -> Ipv6Header {
    v6(a, b, 64)
}

/// The 10-byte virtio_net_hdr (little-endian fields).
pub fn vnet(
    flags: u8,
    gso_type: u8,
    hdr_len: u16,
    gso_size: u16,
    start: u16,
    offset: u16,
) -> [u8; 10] {
    let mut h = [0u8; 10];
    h[0] = flags;
    h[1] = gso_type;
    h[2..4].copy_from_slice(&hdr_len.to_le_bytes());
    h[4..6].copy_from_slice(&gso_size.to_le_bytes());
    h[6..8].copy_from_slice(&start.to_le_bytes());
    h[8..10].copy_from_slice(&offset.to_le_bytes());
    h
}

/// A TCP flow cut into MSS-sized segments with right checksums, as GRO receives them.
pub fn segments(ipv6: bool, count: usize, mss: usize, psh_last: bool) -> Vec<Vec<u8>> {
    let (src, dst) = ([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 6]);
    (0..count)
        .map(|i| {
            let t = Tcp {
                sport: 5201,
                dport: 40100,
                seq: 7000 + (i * mss) as u32,
                ack: Some(1),
                psh: psh_last && i + 1 == count,
                ..Tcp::default()
            };
            let payload = pattern(mss, i as u8);
            if ipv6 {
                let h = v6(
                    "fd00::9".parse().expect("literal"),
                    "fd00::2".parse().expect("literal"),
                    64,
                );
                eth6(src, dst, &ip6(h, L4::Tcp(t), &payload))
            } else {
                let mut h = v4(
                    Ipv4Addr::new(10, 3, 0, 9),
                    Ipv4Addr::new(10, 3, 0, 2),
                    64,
                    true,
                );
                h.identification = 100 + i as u16;
                eth4(src, dst, &ip4(h, L4::Tcp(t), &payload))
            }
        })
        .collect()
}

/// An IPv4 ICMP error (Ethernet) quoting `quoted` (an IP packet), cut to `quote_len`.
pub fn icmp4_error(
    macs: (Mac, Mac),
    from: Ipv4Addr,
    to: Ipv4Addr,
    kind: (u8, u8, [u8; 4]),
    quoted: &[u8],
    quote_len: usize,
) -> Vec<u8> {
    let q = &quoted[..quote_len.min(quoted.len())];
    eth4(
        macs.0,
        macs.1,
        &ip4(
            v4(from, to, 64, false),
            L4::Icmp4(kind.0, kind.1, kind.2),
            q,
        ),
    )
}

/// The Internet checksum of `data` (for hand-made seeds).
pub fn checksum(data: &[u8]) -> u16 {
    finish(add_bytes(0, data))
}
