//! Test frames built, and test output checked, with etherparse: an oracle that shares no
//! code with the module under test.

use etherparse::{
    IpHeaders, IpNumber, Ipv4Header, Ipv6FlowLabel, Ipv6Header, NetSlice, PacketBuilder,
    SlicedPacket, TcpHeader, TransportSlice, VlanId,
};

use super::gro::{Coalescer, Fate};
use super::vnet::{GsoType, VnetHdr};

pub const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];
pub const IP4_A: [u8; 4] = [10, 0, 0, 1];
pub const IP4_B: [u8; 4] = [10, 0, 0, 2];
pub const IP6_A: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const IP6_B: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

/// How to build one TCP frame.
#[derive(Debug, Clone, Copy)]
pub struct Tcp {
    pub v6: bool,
    pub vlan: bool,
    pub seq: u32,
    pub ack: u32,
    pub ip_id: u16,
    pub psh: bool,
    pub fin: bool,
    pub cwr: bool,
    pub syn: bool,
    /// Add a timestamp option (12 bytes with padding), as Linux does.
    pub ts: bool,
    pub sport: u16,
}

impl Tcp {
    pub fn v4() -> Self {
        Tcp {
            v6: false,
            vlan: false,
            seq: 0xfff0_0000,
            ack: 77,
            ip_id: 0xfff0,
            psh: false,
            fin: false,
            cwr: false,
            syn: false,
            ts: true,
            sport: 40000,
        }
    }

    pub fn v6() -> Self {
        Tcp {
            v6: true,
            ..Self::v4()
        }
    }

    /// A complete frame, every checksum right.
    pub fn frame(&self, payload: &[u8]) -> Vec<u8> {
        let mut th = TcpHeader::new(self.sport, 5201, self.seq, 512);
        th.ack = true;
        th.acknowledgment_number = self.ack;
        th.psh = self.psh;
        th.fin = self.fin;
        th.cwr = self.cwr;
        th.syn = self.syn;
        if self.ts {
            th.set_options_raw(&[1, 1, 8, 10, 0, 0, 1, 0, 0, 0, 2, 0])
                .unwrap();
        }
        let ip = if self.v6 {
            let h = Ipv6Header {
                traffic_class: 0,
                flow_label: Ipv6FlowLabel::try_new(0x12345).unwrap(),
                payload_length: 0,
                next_header: IpNumber::TCP,
                hop_limit: 64,
                source: IP6_A,
                destination: IP6_B,
            };
            IpHeaders::Ipv6(h, Default::default())
        } else {
            let mut h = Ipv4Header::new(0, 64, IpNumber::TCP, IP4_A, IP4_B).unwrap();
            h.identification = self.ip_id;
            h.dont_fragment = true;
            IpHeaders::Ipv4(h, Default::default())
        };
        let eth = PacketBuilder::ethernet2(MAC_A, MAC_B);
        let mut out = Vec::new();
        if self.vlan {
            eth.single_vlan(VlanId::try_new(42).unwrap())
                .ip(ip)
                .tcp_header(th)
                .write(&mut out, payload)
        } else {
            eth.ip(ip).tcp_header(th).write(&mut out, payload)
        }
        .unwrap();
        out
    }

    /// A TSO super-frame as the kernel hands it over: the TCP checksum field holds only
    /// the pseudo-header sum, and the header says NEEDS_CSUM + TCPV4/TCPV6.
    pub fn super_frame(&self, payload: &[u8], mss: u16) -> (Vec<u8>, VnetHdr) {
        let mut f = self.frame(payload);
        let l3 = if self.vlan { 18 } else { 14 };
        let l4 = l3 + if self.v6 { 40 } else { 20 };
        let thl = usize::from(f[l4 + 12] >> 4) * 4;
        let (addrs, tcp_len) = if self.v6 {
            (l3 + 8..l3 + 40, f.len() - l4)
        } else {
            (l3 + 12..l3 + 20, f.len() - l4)
        };
        let ps = pseudo_sum(&f[addrs], 6, tcp_len);
        f[l4 + 16..l4 + 18].copy_from_slice(&ps.to_be_bytes());
        let hdr = VnetHdr {
            flags: VnetHdr::F_NEEDS_CSUM,
            gso_type: if self.v6 {
                GsoType::TcpV6
            } else {
                GsoType::TcpV4
            },
            gso_ecn: false,
            hdr_len: (l4 + thl) as u16,
            gso_size: mss,
            csum_start: l4 as u16,
            csum_offset: 16,
        };
        (f, hdr)
    }
}

/// Folded pseudo-header sum, computed the slow obvious way.
pub fn pseudo_sum(addrs: &[u8], proto: u8, len: usize) -> u16 {
    let mut s: u32 = 0;
    for w in addrs.chunks(2) {
        s += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    s += u32::from(proto) + (len as u32 >> 16) + (len as u32 & 0xffff);
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Deterministic payload bytes.
pub fn payload(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt) ^ (i >> 8) as u8)
        .collect()
}

/// A TCP segment as etherparse reads it, its checksums verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub seq: u32,
    pub ack: u32,
    pub psh: bool,
    pub fin: bool,
    pub cwr: bool,
    pub ip_id: Option<u16>,
    pub vlan: bool,
    pub payload: Vec<u8>,
}

/// Parses `frame` with etherparse and panics unless the IPv4 header checksum and the TCP
/// checksum are right.
pub fn check_tcp(frame: &[u8]) -> Checked {
    let p = SlicedPacket::from_ethernet(frame).expect("etherparse reads the segment");
    let Some(TransportSlice::Tcp(tcp)) = &p.transport else {
        panic!("not TCP")
    };
    let (csum, ip_id) = match p.net.as_ref().expect("IP") {
        NetSlice::Ipv4(ip) => {
            let h = ip.header().to_header();
            assert_eq!(
                h.header_checksum,
                h.calc_header_checksum(),
                "IPv4 header checksum"
            );
            (
                tcp.calc_checksum_ipv4(h.source, h.destination).unwrap(),
                Some(h.identification),
            )
        }
        NetSlice::Ipv6(ip) => {
            let h = ip.header();
            (
                tcp.calc_checksum_ipv6(h.source(), h.destination()).unwrap(),
                None,
            )
        }
        NetSlice::Arp(_) => panic!("ARP"),
    };
    assert_eq!(tcp.checksum(), csum, "TCP checksum");
    Checked {
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        psh: tcp.psh(),
        fin: tcp.fin(),
        cwr: tcp.cwr(),
        ip_id,
        vlan: !p.link_exts.is_empty(),
        payload: tcp.payload().to_vec(),
    }
}

/// Pushes every segment and flushes; returns (slot contents, vnet) for each frame sent,
/// in sending order, and the pass-throughs as `None` headers.
pub fn coalesce(c: &mut Coalescer, segs: &[Vec<u8>]) -> Vec<(Vec<u8>, Option<VnetHdr>)> {
    let mut sent = Vec::new();
    let take = |c: &Coalescer, i: usize| {
        let p = &c.slots()[i];
        (p.frame().to_vec(), Some(VnetHdr::parse(&p.vnet)))
    };
    for s in segs {
        let r = c.push(s);
        if let Some(i) = r.ready {
            sent.push(take(c, i));
        }
        if let Fate::Pass(_) = r.frame {
            sent.push((s.clone(), None));
        }
    }
    while let Some(i) = c.flush() {
        sent.push(take(c, i));
    }
    sent
}
