//! Into VXLAN: a frame from a local port on its way to one peer (known unicast) or to
//! every peer of its VNI (flood).
//!
//! - TCP SYNs get their MSS clamped to what fits the tunnel (when configured).
//! - A GSO super-frame is split into segments that fit the overlay MTU — at its own
//!   gso_size, or smaller when that would not fit (TCP accepts any segment up to its
//!   MSS; a super-frame is never dropped for size). The segments are written into one
//!   scratch buffer, each behind its VXLAN header, so each peer gets them in as few
//!   UDP GSO sends as the 64-segment / 64 KB limits allow.
//! - A frame with a partial checksum is completed (the receiving host gets no
//!   virtio_net_hdr to finish it).
//! - A frame too big for the tunnel (the MTU plus an untagged Ethernet header: a VLAN
//!   tag takes its 4 bytes from the packet's room): IPv4 with DF gets an ICMP
//!   "fragmentation needed" back to its sender from the network's gateway address,
//!   IPv6 an ICMPv6 "packet too big", IPv4 without DF is fragmented (inner) and each
//!   fragment encapsulated.
//! - A known-unicast frame is encapsulated in place (its buffer goes nowhere else); a
//!   flooded one is copied once into scratch, and that copy goes to every peer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use fdb::MacAddr;
use vtep::{IpFamily, Vni, VxlanRepr};

use super::counters::DropReason;
use super::offload::{self, SegmentSpec, VnetHdr};
use super::pipeline::ETH_HLEN;
use super::pool::Pool;
use super::topology::OverlayParams;
use super::tunnel::Transmit;

/// Largest UDP payload one GSO send may carry, and most segments (UDP_MAX_SEGMENTS).
const GSO_MAX_BYTES: usize = 65_000;
const GSO_MAX_SEGMENTS: usize = 64;
const VXLAN_HLEN: usize = vtep::VXLAN_HLEN;

/// Where a frame goes into the tunnel.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub vni: Vni,
    pub peers: &'a [IpAddr],
    /// No other egress uses the frame's buffer: it may be encapsulated in place.
    pub exclusive: bool,
    /// The network's (inner) MTU.
    pub mtu: u32,
    pub gateway: Ipv4Addr,
}

/// What became of the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Queued for the peers.
    Queued,
    /// Too big and without DF: cut into IPv4 fragments, each queued for the peers.
    Fragmented,
    /// Not sent; an ICMP error to the sender is in this scratch buffer.
    Reply(u32),
    Drop(DropReason),
}

/// Sends pool buffer `i` (from a local port) into the tunnel; transmits go to `txs`.
pub fn to_peers(
    pool: &mut Pool,
    i: u32,
    t: &Target<'_>,
    ov: &OverlayParams,
    router_mac: MacAddr,
    txs: &mut Vec<Transmit>,
) -> Outcome {
    if t.peers.is_empty() {
        return Outcome::Queued;
    }
    let mut hdr = VnetHdr::parse(&pool.get(i).vnet);
    if ov.mss_clamp {
        clamp(pool, i, &hdr, t.mtu);
    }
    let max_frame = t.mtu as usize + ETH_HLEN;
    let flow = vtep::flow_hash(pool.get(i).frame());
    if hdr.is_gso() {
        return split_to_peers(pool, i, &hdr, max_frame, t, flow, txs);
    }
    if hdr.needs_csum() {
        let buf = pool.get_mut(i);
        if offload::complete_checksum(buf.frame_mut(), &hdr).is_err() {
            return Outcome::Drop(DropReason::BadVnetHdr);
        }
        buf.vnet = VnetHdr::NONE.to_bytes();
        hdr = VnetHdr::NONE;
    }
    debug_assert!(!hdr.needs_csum());
    if pool.get(i).len() <= max_frame {
        return whole_to_peers(pool, i, t, flow, txs);
    }
    too_big(pool, i, t, router_mac, flow, txs)
}

fn clamp(pool: &mut Pool, i: u32, hdr: &VnetHdr, mtu: u32) {
    let frame = pool.get_mut(i).frame_mut();
    let family = match frame.get(12..14) {
        Some([0x86, 0xdd]) => IpFamily::V6,
        _ => IpFamily::V4,
    };
    vtep::clamp_mss(frame, vtep::mss_for_mtu(mtu, family), hdr.checksum_state());
}

/// One datagram per peer: in place when exclusive, else one shared copy.
fn whole_to_peers(
    pool: &mut Pool,
    i: u32,
    t: &Target<'_>,
    flow: u32,
    txs: &mut Vec<Transmit>,
) -> Outcome {
    let buf = if t.exclusive {
        i
    } else {
        let Some(s) = pool.scratch() else {
            return Outcome::Drop(DropReason::NoBuffer);
        };
        let (src, dst) = pool.pair(i, s);
        dst.set_frame(src.frame());
        s
    };
    let Some(head) = pool.get_mut(buf).push_front(VXLAN_HLEN) else {
        return Outcome::Drop(DropReason::NoBuffer);
    };
    if (VxlanRepr { vni: t.vni }).write(head).is_none() {
        return Outcome::Drop(DropReason::NoBuffer);
    }
    for &dst in t.peers {
        txs.push(Transmit {
            buf,
            range: None,
            dst,
            flow_hash: flow,
            segment_size: None,
        });
    }
    Outcome::Queued
}

fn split_to_peers(
    pool: &mut Pool,
    i: u32,
    hdr: &VnetHdr,
    max_frame: usize,
    t: &Target<'_>,
    flow: u32,
    txs: &mut Vec<Transmit>,
) -> Outcome {
    let Some(s) = pool.scratch() else {
        return Outcome::Drop(DropReason::NoBuffer);
    };
    let (src, dst) = pool.pair(i, s);
    let fitted = fit_gso(src.frame(), hdr, max_frame);
    let spec = SegmentSpec {
        prefix: VXLAN_HLEN,
        max_frame,
    };
    let layout = match offload::split(src.frame(), &fitted, spec, dst.rx_space()) {
        Ok(l) => l,
        Err(_) => return Outcome::Drop(DropReason::SplitFailed),
    };
    dst.set_len(layout.total_len());
    let out = dst.frame_mut();
    for k in 0..layout.count {
        let at = layout.datagram(k).start;
        if (VxlanRepr { vni: t.vni }).write(&mut out[at..]).is_none() {
            return Outcome::Drop(DropReason::SplitFailed);
        }
    }
    for &peer in t.peers {
        for r in layout.batches(GSO_MAX_BYTES, GSO_MAX_SEGMENTS) {
            let several = r.len() > layout.stride;
            txs.push(Transmit {
                buf: s,
                segment_size: several.then_some(layout.stride as u16),
                range: Some(r),
                dst: peer,
                flow_hash: flow,
            });
        }
    }
    Outcome::Queued
}

/// The super-frame's header with gso_size lowered, if needed, so that every TCP segment
/// fits `max_frame`. UDP GSO keeps its size (its segments are datagrams: cutting them
/// differently would change the application's messages); `split` refuses it if too big.
pub(crate) fn fit_gso(frame: &[u8], hdr: &VnetHdr, max_frame: usize) -> VnetHdr {
    use offload::GsoType;
    if !matches!(hdr.gso_type, GsoType::TcpV4 | GsoType::TcpV6) {
        return *hdr;
    }
    let l4 = usize::from(hdr.csum_start);
    let Some(&doff) = frame.get(l4 + 12) else {
        return *hdr;
    };
    let headers = l4 + usize::from(doff >> 4) * 4;
    let room = max_frame.saturating_sub(headers);
    let mut h = *hdr;
    if room > 0 && usize::from(h.gso_size) > room {
        h.gso_size = room as u16;
    }
    h
}

/// A non-GSO frame larger than the tunnel takes (its network's MTU plus an untagged
/// Ethernet header): nothing sent to a peer is larger, or the underlay would refuse it.
/// A VLAN-tagged frame is judged, answered and fragmented by the room its tags leave
/// its packet (the pipeline drops tagged frames from ports today; this keeps the rule
/// whatever the frame).
fn too_big(
    pool: &mut Pool,
    i: u32,
    t: &Target<'_>,
    router_mac: MacAddr,
    flow: u32,
    txs: &mut Vec<Transmit>,
) -> Outcome {
    let t = &Target {
        mtu: vtep::tunnel_ip_mtu(pool.get(i).frame(), t.mtu),
        ..*t
    };
    match vtep::needs_icmp(pool.get(i).frame(), t.mtu) {
        // The IP packet fits and the frame does not: bytes after the packet, which no
        // sender puts on a frame this long.
        vtep::Verdict::Fits => Outcome::Drop(DropReason::TooBig),
        vtep::Verdict::Ipv4Df => reply(pool, i, |frame, out| {
            vtep::build_frag_needed(frame, t.mtu, router_mac.0, t.gateway, out)
        }),
        vtep::Verdict::Ipv6 => reply(pool, i, |frame, out| {
            vtep::build_packet_too_big(frame, t.mtu, router_mac.0, link_local(router_mac), out)
        }),
        vtep::Verdict::Ipv4NoDf => fragment(pool, i, t, flow, txs),
        vtep::Verdict::Drop(_) => Outcome::Drop(DropReason::TooBig),
    }
}

fn reply<E>(
    pool: &mut Pool,
    i: u32,
    build: impl FnOnce(&[u8], &mut [u8]) -> Result<usize, E>,
) -> Outcome {
    let Some(s) = pool.scratch() else {
        return Outcome::Drop(DropReason::NoBuffer);
    };
    let (src, dst) = pool.pair(i, s);
    match build(src.frame(), dst.rx_space()) {
        Ok(n) => {
            dst.set_len(n);
            Outcome::Reply(s)
        }
        Err(_) => Outcome::Drop(DropReason::TooBig),
    }
}

fn fragment(
    pool: &mut Pool,
    i: u32,
    t: &Target<'_>,
    flow: u32,
    txs: &mut Vec<Transmit>,
) -> Outcome {
    // Each fragment gets its own scratch buffer: all are sent at the end of the batch.
    let pieces = match super::fragment::cut(pool, i, t.mtu, VXLAN_HLEN) {
        Ok(r) => r,
        Err(reason) => return Outcome::Drop(reason),
    };
    for s in pieces {
        if (VxlanRepr { vni: t.vni })
            .write(pool.get_mut(s).frame_mut())
            .is_none()
        {
            return Outcome::Drop(DropReason::FragmentFailed);
        }
        for &peer in t.peers {
            txs.push(Transmit {
                buf: s,
                range: None,
                dst: peer,
                flow_hash: flow,
                segment_size: None,
            });
        }
    }
    Outcome::Fragmented
}

/// The router's IPv6 link-local address (EUI-64 from its MAC): the source of its
/// ICMPv6 errors.
pub fn link_local(mac: MacAddr) -> Ipv6Addr {
    let m = mac.0;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        m[0] ^ 0x02,
        m[1],
        m[2],
        0xff,
        0xfe,
        m[3],
        m[4],
        m[5],
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    const MTU: u32 = 1450;
    const TAG: [u8; 4] = [0x81, 0x00, 0x00, 0x09];
    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

    /// An IPv4 UDP packet of `ip_len` bytes from 10.0.0.2 to 10.0.0.3, behind `tags`.
    fn ipv4_frame(tags: &[[u8; 4]], ip_len: usize, df: bool) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 3, 2, 0, 0, 0, 0, 2];
        for t in tags {
            f.extend_from_slice(t);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let mut ip = vec![0u8; ip_len];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[6] = if df { 0x40 } else { 0 };
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[10, 0, 0, 2]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 3]);
        f.extend_from_slice(&ip);
        f
    }

    /// Sends `frame` from a local port to one peer of a network of MTU 1450.
    fn send(frame: &[u8]) -> (Outcome, Vec<Transmit>, Pool) {
        let mut pool = Pool::new(1, 64);
        pool.rx()[0].set_frame(frame);
        let target = Target {
            vni: Vni::new(42).unwrap(),
            peers: &[PEER],
            exclusive: true,
            mtu: MTU,
            gateway: Ipv4Addr::new(10, 0, 0, 1),
        };
        let ov = OverlayParams {
            local: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            vxlan_port: vtep::VXLAN_PORT,
            src_ports: vtep::PortRange::DEFAULT,
            mss_clamp: false,
        };
        let mut txs = Vec::new();
        let out = to_peers(
            &mut pool,
            0,
            &target,
            &ov,
            MacAddr([2, 0, 0, 0, 0, 1]),
            &mut txs,
        );
        (out, txs, pool)
    }

    fn inner_lens(txs: &[Transmit], pool: &Pool) -> Vec<usize> {
        txs.iter()
            .map(|t| t.payload(pool.all()).len() - VXLAN_HLEN)
            .collect()
    }

    #[test]
    fn an_untagged_packet_of_the_full_mtu_goes_whole() {
        let (out, txs, pool) = send(&ipv4_frame(&[], 1450, true));
        assert_eq!(out, Outcome::Queued);
        assert_eq!(inner_lens(&txs, &pool), [1464]);
    }

    /// Found by the pipeline fuzz target (`fuzz/regressions/pipeline/`): a tagged frame
    /// whose packet fitted the MTU went whole, 3 bytes over the tunnel.
    #[test]
    fn a_tagged_packet_gets_the_room_its_tag_leaves_in_the_tunnel() {
        // Whole, this 1468-byte frame would make a datagram 4 bytes over the underlay's
        // MTU, which the kernel refuses: the sender hears of 1446 instead.
        let (out, txs, pool) = send(&ipv4_frame(&[TAG], 1450, true));
        let Outcome::Reply(s) = out else {
            panic!("{out:?}, not fragmentation needed");
        };
        assert!(txs.is_empty());
        let icmp = pool.get(s).frame();
        assert_eq!(&icmp[12..16], &TAG, "the reply repeats the tag");
        assert_eq!(&icmp[38..40], &[3, 4], "fragmentation needed");
        assert_eq!(u16::from_be_bytes([icmp[44], icmp[45]]), 1446);
        // Without DF it is cut to fit, tag and all.
        let (out, txs, pool) = send(&ipv4_frame(&[TAG], 1450, false));
        assert_eq!(out, Outcome::Fragmented);
        let lens = inner_lens(&txs, &pool);
        assert!(
            lens.len() > 1 && lens.iter().all(|&l| l <= 1464),
            "{lens:?}"
        );
        // What fits with its tag goes whole.
        let (out, txs, pool) = send(&ipv4_frame(&[TAG], 1446, true));
        assert_eq!(out, Outcome::Queued);
        assert_eq!(inner_lens(&txs, &pool), [1464]);
    }

    #[test]
    fn a_frame_too_long_for_the_tunnel_around_a_packet_that_fits_is_dropped() {
        let mut padded = ipv4_frame(&[], 1400, true);
        padded.resize(1470, 0);
        let (out, txs, _) = send(&padded);
        assert_eq!(out, Outcome::Drop(DropReason::TooBig));
        assert!(txs.is_empty());
    }
}
