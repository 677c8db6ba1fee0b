//! The gateway's per-packet functions (`l3`: ARP parse and reply, ICMP echo reply, TTL
//! decrement, time exceeded) and vtep's MTU handling of an inner frame (`needs_icmp`
//! and what each verdict leads to: frag-needed, packet-too-big, fragmentation; MSS
//! clamping; the flow hash), on arbitrary frames, MTUs and output buffer sizes.
//!
//! Checks, beyond "no panic":
//! - an ARP message emits back to itself; a reply swaps the roles and answers with our
//!   MAC;
//! - an echo reply is the request with addresses swapped, type 0, and right IPv4 and
//!   ICMP checksums; a time exceeded quotes the packet's header and first 8 bytes with
//!   right checksums; nothing is written past the length returned;
//! - a TTL decrement changes the TTL by one and the header checksum only, keeping a
//!   right checksum right; a refused one changes nothing;
//! - `needs_icmp`'s verdicts lead where they say: the ICMP errors get built (within
//!   576 / 1280 bytes, right checksums, the MTU in them), fragments are each within the
//!   MTU, have right header checksums, and put back together give the payload; `Fits`
//!   means the IP packet fits;
//! - an MSS clamp writes the MSS and (with a complete checksum) the checksum field only,
//!   and keeps a right checksum right.

use std::net::Ipv4Addr;

use fdb::MacAddr;
use vswitch::l3::{self, Arp, ArpOp};
use vtep::{ChecksumState, Fragmenter, Verdict};

use super::check;
use super::input::Input;

pub const ROUTER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xfe]);
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);

/// Input: an MTU (u16), an MSS (u16), an output buffer size (u16; 0: 2048), a flags byte
/// (bit 0: clamp with a partial checksum), then the frame.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let mtu = u32::from(input.u16());
    let mss = input.u16();
    let out_len = match usize::from(input.u16()) {
        0 => 2048,
        n => n,
    };
    let partial = input.u8() & 1 != 0;
    let frame = input.rest();
    let mut out = vec![0u8; out_len];

    arp(frame, &mut out);
    echo(frame, &mut out);
    ttl(frame);
    time_exceeded(frame, &mut out);
    oversize(frame, mtu);
    clamp(frame, mss, partial);
    assert_eq!(vtep::flow_hash(frame), vtep::flow_hash(frame));
}

fn arp(frame: &[u8], out: &mut [u8]) {
    let Ok(a) = Arp::parse(frame) else {
        return;
    };
    if let Ok(n) = a.emit(out) {
        assert_eq!(n, l3::ARP_FRAME_LEN);
        assert_eq!(
            Arp::parse(&out[..n]),
            Ok(a),
            "ARP does not emit back to itself"
        );
    }
    match l3::build_reply(&a, ROUTER_MAC, out) {
        Ok(n) => {
            assert_eq!(a.op, ArpOp::Request, "answered a reply");
            let r = Arp::parse(&out[..n]).expect("our reply does not parse");
            assert_eq!(r.op, ArpOp::Reply);
            assert_eq!((r.eth_src, r.sender_mac), (ROUTER_MAC, ROUTER_MAC));
            assert_eq!((r.eth_dst, r.target_mac), (a.sender_mac, a.sender_mac));
            assert_eq!((r.sender_ip, r.target_ip), (a.target_ip, a.sender_ip));
        }
        Err(_) => assert!(a.op != ArpOp::Request || out.len() < l3::ARP_FRAME_LEN),
    }
    let _ = (a.is_gratuitous(), a.is_probe());
}

/// Checks an ICMP message the switch built: Ethernet + IPv4 without options, right
/// checksums, within `n`; returns the IPv4 header it has.
fn built_icmp(reply: &[u8]) -> check::Ip4 {
    assert!(
        reply.len() >= l3::MIN_FRAME_LEN,
        "built frame shorter than 60 bytes"
    );
    let ip = check::ipv4(&reply[14..]).expect("built frame without IPv4");
    assert_eq!(ip.ihl, 20);
    assert!(
        14 + ip.total <= reply.len(),
        "built IPv4 length past the frame"
    );
    assert!(check::ipv4_header_ok(&reply[14..]), "built IPv4 checksum");
    assert_eq!(
        check::l4_ok_v4(&reply[14..]),
        Some(true),
        "built ICMP checksum"
    );
    ip
}

fn echo(frame: &[u8], out: &mut [u8]) {
    let Ok(n) = l3::build_echo_reply(frame, out) else {
        return;
    };
    assert!(n <= out.len());
    assert!(
        l3::is_echo_request(frame),
        "replied to what is not an echo request"
    );
    let reply = &out[..n];
    let ip = built_icmp(reply);
    let req = check::ipv4(&frame[14..]).expect("replied to a frame without IPv4");
    assert_eq!(
        (ip.src, ip.dst),
        (req.dst, req.src),
        "addresses not swapped"
    );
    assert_eq!((&reply[..6], &reply[6..12]), (&frame[6..12], &frame[..6]));
    let (q, r) = (14 + req.ihl, 14 + 20);
    assert_eq!(reply[r], 0, "not an echo reply");
    let len = req.total - req.ihl;
    assert_eq!(ip.total - 20, len, "echo reply length differs");
    assert_eq!(
        &reply[r + 4..r + len],
        &frame[q + 4..q + len],
        "echo data differs"
    );
}

fn ttl(frame: &[u8]) {
    let mut copy = frame.to_vec();
    match l3::decrement_ttl(&mut copy) {
        Ok(()) => {
            for at in check::diff(frame, &copy) {
                assert!([22, 24, 25].contains(&at), "TTL decrement wrote byte {at}");
            }
            assert_eq!(copy[22], frame[22] - 1);
            if check::ipv4_header_ok(&frame[14..]) {
                assert!(
                    check::ipv4_header_ok(&copy[14..]),
                    "TTL decrement broke the checksum"
                );
            }
        }
        Err(_) => assert_eq!(copy, frame, "a refused decrement changed the frame"),
    }
    let _ = l3::rewrite_l2(&mut copy, ROUTER_MAC, MacAddr::BROADCAST);
    assert_eq!(copy.len(), frame.len());
}

fn time_exceeded(frame: &[u8], out: &mut [u8]) {
    let Ok(n) = l3::build_time_exceeded(frame, ROUTER_MAC, GATEWAY, out) else {
        return;
    };
    assert!(n <= out.len() && n <= l3::MAX_TIME_EXCEEDED_LEN);
    let reply = &out[..n];
    let ip = built_icmp(reply);
    let orig = check::ipv4(&frame[14..]).expect("time exceeded about a frame without IPv4");
    assert_eq!((ip.src, ip.dst), (GATEWAY, orig.src));
    assert_eq!(&reply[34..36], &[11, 0], "not a time exceeded");
    let quote = &reply[42..14 + ip.total];
    let want = orig.ihl + (orig.total - orig.ihl).min(8);
    assert_eq!(
        quote,
        &frame[14..14 + want],
        "quote is not the packet's start"
    );
}

fn oversize(frame: &[u8], mtu: u32) {
    let verdict = vtep::needs_icmp(frame, mtu);
    let mut out = vec![0u8; vtep::icmp::MAX_REPLY_FRAME];
    match verdict {
        Verdict::Fits => {
            let Some((l3, _)) = check::l3_of(frame) else {
                return;
            };
            let ip_len = super::vxlan_decap::ip_end(frame).map(|e| e - l3);
            assert!(
                frame.len().saturating_sub(l3) <= mtu as usize
                    || ip_len.is_some_and(|n| n <= mtu as usize),
                "Fits, but the IP packet is larger than the MTU"
            );
        }
        Verdict::Ipv4Df => {
            let n = vtep::build_frag_needed(frame, mtu, ROUTER_MAC.0, GATEWAY, &mut out)
                .expect("frag-needed verdict, but no frag-needed built");
            let (l3, _) = check::l3_of(frame).expect("IPv4 verdict without an IP header");
            let reply = &out[..n];
            assert_eq!(&reply[12..l3], &frame[12..l3], "VLAN tags not repeated");
            let ip = check::ipv4(&reply[l3..]).expect("frag-needed without IPv4");
            assert!(ip.total <= vtep::icmp::MAX_ICMPV4_ERROR && l3 + ip.total == n);
            assert!(check::ipv4_header_ok(&reply[l3..]));
            assert_eq!(
                check::l4_ok_v4(&reply[l3..]),
                Some(true),
                "frag-needed checksum"
            );
            let icmp = &reply[l3 + 20..];
            assert_eq!(&icmp[..2], &[3, 4]);
            let said = u32::from(u16::from_be_bytes([icmp[6], icmp[7]]));
            assert_eq!(said, mtu.min(65535), "frag-needed carries another MTU");
        }
        Verdict::Ipv6 => {
            let gw = vswitch::datapath::egress::link_local(ROUTER_MAC);
            let n = vtep::build_packet_too_big(frame, mtu, ROUTER_MAC.0, gw, &mut out)
                .expect("packet-too-big verdict, but none built");
            let (l3, _) = check::l3_of(frame).expect("IPv6 verdict without an IP header");
            let reply = &out[..n];
            assert!(n - l3 <= vtep::icmp::MAX_ICMPV6_ERROR);
            assert_eq!(
                check::l4_ok_v6(&reply[l3..]),
                Some(true),
                "packet-too-big checksum"
            );
            assert_eq!(reply[l3 + 40], 2, "not a packet too big");
        }
        Verdict::Ipv4NoDf => fragments(frame, mtu),
        Verdict::Drop(r) => assert!(r.index() < vtep::OversizeDrop::COUNT),
    }
}

/// Cuts an IPv4 frame without DF and checks the pieces.
fn fragments(frame: &[u8], mtu: u32) {
    let Ok(mut f) = Fragmenter::new(frame, mtu) else {
        return;
    };
    let (l3, _) = check::l3_of(frame).expect("fragmented a frame without an IP header");
    let orig = check::ipv4(&frame[l3..]).expect("fragmented a frame without IPv4");
    let payload = &frame[l3 + orig.ihl..l3 + orig.total];
    let mut out = vec![0u8; l3 + (mtu as usize).min(65535) + 60];
    let mut at = 0;
    let mut last_mf = true;
    let mut count = 0;
    while let Some(len) = f.next_len() {
        count += 1;
        assert!(count <= 65536 / 8 + 1, "fragmenting does not end");
        let n = f
            .next_into(&mut out)
            .expect("a buffer of the MTU was too small")
            .expect("next_len promised a fragment");
        assert_eq!(n, len);
        let piece = &out[..n];
        assert_eq!(&piece[..l3], &frame[..l3], "link header changed");
        let ip = check::ipv4(&piece[l3..]).expect("fragment without IPv4");
        assert!(ip.total <= mtu as usize || count == 1 && ip.total == orig.total);
        assert_eq!(l3 + ip.total, n);
        assert!(
            check::ipv4_header_ok(&piece[l3..]),
            "fragment header checksum"
        );
        assert_eq!(ip.offset, orig.offset + at, "fragment offset");
        assert!(!ip.df);
        let data = &piece[l3 + ip.ihl..];
        assert_eq!(data, &payload[at..at + data.len()], "fragment data");
        assert!(ip.mf || at + data.len() == payload.len());
        at += data.len();
        last_mf = ip.mf;
    }
    assert_eq!(at, payload.len(), "fragments lost data");
    assert_eq!(
        last_mf, orig.mf,
        "the last fragment's MF is not the original's"
    );
}

fn clamp(frame: &[u8], mss: u16, partial: bool) {
    let state = if partial {
        ChecksumState::Partial
    } else {
        ChecksumState::Complete
    };
    let mut copy = frame.to_vec();
    let changed = vtep::clamp_mss(&mut copy, mss, state);
    let d = check::diff(frame, &copy);
    if !changed {
        assert!(d.is_empty(), "clamp_mss said no but wrote");
        return;
    }
    assert!(
        d.len() <= if partial { 2 } else { 4 },
        "clamp_mss wrote {d:?}"
    );
    if !partial && check::frame_l4_ok(frame) == Some(true) {
        assert_eq!(
            check::frame_l4_ok(&copy),
            Some(true),
            "clamp_mss broke the checksum"
        );
    }
}
