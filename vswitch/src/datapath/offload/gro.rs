//! GRO coalesce for the VXLAN ingress: consecutive TCP segments of one flow, as they come
//! out of the decapsulation, are merged into one super-frame for a TAP or veth port,
//! with the virtio_net_hdr the kernel's `virtio_net_hdr_to_skb()` accepts for it.
//!
//! Merge rules (those of Linux `tcp_gro_receive`/`inet_gro_receive` and wireguard-go):
//! same Ethernet header (MACs, VLAN tag, ethertype), same addresses and ports, the next
//! expected sequence number, the same ack, window, TCP options and flags (ACK, optionally
//! ECE; PSH only on the last merged segment, which closes the super-frame); IPv4 without
//! options and not fragmented, same TOS, TTL and DF, ID one more than the previous
//! segment's; IPv6 without extension headers, same traffic class, flow label and hop
//! limit. Every merged segment but the last carries exactly gso_size (the first segment's
//! payload) bytes; a shorter one closes the super-frame; one that would take the IP
//! packet past 64 KiB starts a new one. Segments with a wrong IPv4 or TCP checksum are never merged: they pass through
//! as they came and the receiving stack drops and counts them (unless the caller vouches
//! for the bytes: [`Coalescer::push_trusted`]). SYN, FIN, RST, URG, CWR
//! and empty segments pass through too.
//!
//! Order within a flow is kept: a flow has at most one open super-frame, and any frame of
//! that flow that cannot join it closes it first (see [`Push`]).
//!
//! What the kernel requires of the header on a GSO frame written to TAP/AF_PACKET
//! (`virtio_net_hdr_to_skb`, `tun_vnet_hdr_get`, `__packet_snd_vnet_parse`): a known
//! gso_type matching the IP version, gso_size neither 0 nor 0xffff; with NEEDS_CSUM,
//! `csum_start + max(20, csum_offset + 2)` within the frame, `csum_start` at least one IP
//! header in, and `csum_offset` 16 (the TCP checksum) for TCP GSO; `hdr_len` no longer
//! than the frame (the kernel raises it to `csum_start + csum_offset + 2`); the TCP
//! checksum field holding the folded pseudo-header sum over the whole TCP length (the
//! stack treats the frame as CHECKSUM_PARTIAL and `tcp_gso_segment` derives each
//! segment's checksum from it); IPv4 total length and header checksum right (`ip_rcv`
//! checks both). A frame whose payload is not longer than gso_size is taken as non-GSO.
//!
//! Buffers: the coalescer owns `slots` [`PacketBuf`]s, allocated once by [`Coalescer::new`].
//! A super-frame is built in one slot; slots are handed out in order during a *round*
//! and all become free again when [`Coalescer::flush`] has returned `None`.

use super::csum::{self, sum};
use super::layout::{self, IPPROTO_TCP, Ip, TCP_HLEN};
use super::split::TCP_CSUM_OFF;
use super::vnet::{GsoType, VnetHdr};
use crate::packet::PacketBuf;

const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;
const TCP_ECE: u8 = 0x40;
/// The largest IP packet a super-frame may hold (IPv4 total length, IPv6 payload + 40).
const MAX_IP_LEN: usize = 65535;

/// Why a frame was not coalesced. Only `BadChecksum` is worth a counter of its own; the
/// others are the ordinary fate of ACKs, handshakes and other protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassReason {
    /// Not a well-formed Ethernet + IPv4/IPv6 + TCP frame.
    NotTcp,
    /// TCP that cannot take part: no payload, flags other than ACK/ECE/PSH, IPv4 options,
    /// or a PSH segment with nothing to close.
    Ineligible,
    /// The IPv4 header or TCP checksum is wrong.
    BadChecksum,
    /// No slot left in this round.
    NoSlot,
}

/// What became of a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Copied into slot `i` (possibly the [`Push::ready`] one): nothing to send for it now.
    Held(usize),
    /// Not taken: send the frame as it came, with [`VnetHdr::NONE`].
    Pass(PassReason),
}

/// The result of [`Coalescer::push`]. Send in this order: first slot `ready` (a finished
/// frame, its `vnet` set), then, for [`Fate::Pass`], the pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Push {
    pub ready: Option<usize>,
    pub frame: Fate,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct FlowKey {
    addrs: [u8; 32],
    ports: [u8; 4],
    v6: bool,
}

/// An open super-frame.
#[derive(Debug, Clone, Copy, Default)]
struct Item {
    key: FlowKey,
    slot: usize,
    l3: usize,
    l4: usize,
    /// Ethernet + IP + TCP header length: where the payload starts.
    hdrs: usize,
    v6: bool,
    gso_size: usize,
    next_seq: u32,
    last_id: u16,
    segs: usize,
    born: u64,
}

/// A TCP segment that parsed.
struct Seg<'a> {
    /// The frame up to the end of its IP packet (link padding cut off).
    frame: &'a [u8],
    ip: Ip,
    hdrs: usize,
    key: FlowKey,
    seq: u32,
    flags: u8,
}

impl Seg<'_> {
    fn payload(&self) -> usize {
        self.frame.len() - self.hdrs
    }

    fn ip_id(&self) -> u16 {
        u16::from_be_bytes([self.frame[self.ip.l3 + 4], self.frame[self.ip.l3 + 5]])
    }
}

fn parse(frame: &[u8]) -> Option<Seg<'_>> {
    let ip = layout::locate(frame).ok()?;
    if ip.proto != IPPROTO_TCP {
        return None;
    }
    let thl = layout::tcp_hlen(frame, &ip).ok()?;
    let frame = &frame[..ip.end];
    let t = ip.l4;
    let mut key = FlowKey {
        v6: ip.v6,
        ..FlowKey::default()
    };
    let addrs = ip.addrs(frame);
    key.addrs[..addrs.len()].copy_from_slice(addrs);
    key.ports.copy_from_slice(&frame[t..t + 4]);
    Some(Seg {
        frame,
        ip,
        hdrs: t + thl,
        key,
        seq: u32::from_be_bytes([frame[t + 4], frame[t + 5], frame[t + 6], frame[t + 7]]),
        flags: frame[t + 13],
    })
}

fn eligible(seg: &Seg<'_>) -> bool {
    let ip_options = !seg.ip.v6 && seg.ip.l4 - seg.ip.l3 != 20;
    seg.flags & !(TCP_PSH | TCP_ECE) == TCP_ACK && seg.payload() > 0 && !ip_options
}

fn checksums_ok(seg: &Seg<'_>) -> bool {
    let f = seg.frame;
    if !seg.ip.v6 && sum(&f[seg.ip.l3..seg.ip.l4]) != 0xffff {
        return false;
    }
    let ps = csum::pseudo(seg.ip.addrs(f), IPPROTO_TCP, f.len() - seg.ip.l4);
    csum::add(ps, sum(&f[seg.ip.l4..])) == 0xffff
}

/// Merges TCP segments into super-frames; see the module doc. One per worker (or per
/// ingress), reused for every batch; no allocation after [`Coalescer::new`].
#[derive(Debug)]
pub struct Coalescer {
    slots: Box<[PacketBuf]>,
    items: Box<[Item]>,
    open: usize,
    next_slot: usize,
    clock: u64,
}

impl Coalescer {
    /// A coalescer that keeps up to `max_flows` super-frames open at once and builds at
    /// most `slots` of them per round (each slot is a 64 KiB [`PacketBuf`], allocated now).
    pub fn new(max_flows: usize, slots: usize) -> Self {
        Self::with_capacity(max_flows, slots, crate::packet::MAX_FRAME)
    }

    /// Like [`new`](Self::new), with slots that hold frames of `frame_capacity` bytes: a
    /// caller that swaps slots with buffers of its own keeps every buffer the same size.
    pub fn with_capacity(max_flows: usize, slots: usize, frame_capacity: usize) -> Self {
        Coalescer {
            slots: (0..slots)
                .map(|_| PacketBuf::with_capacity(frame_capacity))
                .collect(),
            items: vec![Item::default(); max_flows].into_boxed_slice(),
            open: 0,
            next_slot: 0,
            clock: 0,
        }
    }

    /// All slots, for `Port::send_batch(coalescer.slots(), &which)`.
    pub fn slots(&self) -> &[PacketBuf] {
        &self.slots
    }

    /// One slot, e.g. to `std::mem::swap` a finished frame into the caller's own pool.
    /// Only slots reported by [`Push::ready`] or [`Coalescer::flush`] hold finished frames.
    pub fn slots_mut(&mut self) -> &mut [PacketBuf] {
        &mut self.slots
    }

    /// Offers one Ethernet frame (complete checksums, as decapsulated). Slots reported
    /// ready stay untouched until the round ends.
    pub fn push(&mut self, frame: &[u8]) -> Push {
        self.push_checked(frame, true)
    }

    /// Like [`push`](Self::push), for a frame whose bytes something below has already
    /// vouched for, so its IPv4 header and TCP checksums are not summed again here.
    ///
    /// The underlay uses it for the datagrams of a UDP GRO read: the kernel coalesces
    /// only datagrams with a non-zero UDP checksum, validated before they were merged
    /// (or that never left the host's memory: a `UDP_SEGMENT` run that crossed a veth
    /// whole), and that checksum covers the whole inner frame. What remains unchecked is
    /// a peer that built a wrong inner checksum itself; the kernel's own VXLAN trusts a
    /// local sender's partial checksums the same way.
    pub fn push_trusted(&mut self, frame: &[u8]) -> Push {
        self.push_checked(frame, false)
    }

    fn push_checked(&mut self, frame: &[u8], verify: bool) -> Push {
        let pass = |ready, why| Push {
            ready,
            frame: Fate::Pass(why),
        };
        let Some(seg) = parse(frame) else {
            return pass(None, PassReason::NotTcp);
        };
        let found = self.items[..self.open]
            .iter()
            .position(|it| it.key == seg.key);
        let why = if !eligible(&seg) {
            Some(PassReason::Ineligible)
        } else if verify && !checksums_ok(&seg) {
            Some(PassReason::BadChecksum)
        } else {
            None
        };
        if let Some(why) = why {
            return pass(found.map(|i| self.close(i)), why);
        }

        let mut ready = None;
        if let Some(i) = found {
            if let Some((slot, closed)) = self.merge(i, &seg) {
                let ready = closed.then_some(slot);
                return Push {
                    ready,
                    frame: Fate::Held(slot),
                };
            }
            ready = Some(self.close(i));
        }
        // A new super-frame. A PSH segment would close it at once: it is sent as it is.
        if seg.flags & TCP_PSH != 0 {
            return pass(ready, PassReason::Ineligible);
        }
        if self.next_slot >= self.slots.len() || self.items.is_empty() {
            return pass(ready, PassReason::NoSlot);
        }
        if self.open == self.items.len() {
            // Full (so nothing was closed above): the oldest open super-frame goes out.
            let oldest = (0..self.open)
                .min_by_key(|&i| self.items[i].born)
                .unwrap_or(0);
            ready = Some(self.close(oldest));
        }
        Push {
            ready,
            frame: Fate::Held(self.start(&seg)),
        }
    }

    /// Finishes one open super-frame and returns its slot; `None` when none is left,
    /// which ends the round (every slot is free again). Call until `None` at the end of
    /// each batch.
    pub fn flush(&mut self) -> Option<usize> {
        if self.open == 0 {
            self.next_slot = 0;
            return None;
        }
        let oldest = (0..self.open)
            .min_by_key(|&i| self.items[i].born)
            .unwrap_or(0);
        Some(self.close(oldest))
    }

    fn start(&mut self, seg: &Seg<'_>) -> usize {
        let slot = self.next_slot;
        self.next_slot += 1;
        self.slots[slot].set_frame(seg.frame);
        self.clock += 1;
        self.items[self.open] = Item {
            key: seg.key,
            slot,
            l3: seg.ip.l3,
            l4: seg.ip.l4,
            hdrs: seg.hdrs,
            v6: seg.ip.v6,
            gso_size: seg.payload(),
            next_seq: seg.seq.wrapping_add(seg.payload() as u32),
            last_id: seg.ip_id(),
            segs: 1,
            born: self.clock,
        };
        self.open += 1;
        slot
    }

    /// Appends `seg` to item `i` if the merge rules allow it: its slot if so, and whether
    /// the item was closed because it can take no further segment.
    fn merge(&mut self, i: usize, seg: &Seg<'_>) -> Option<(usize, bool)> {
        let it = self.items[i];
        let head = self.slots[it.slot].frame();
        let f = seg.frame;
        let (l3, t, pl) = (it.l3, it.l4, seg.payload());
        let same = |r: std::ops::Range<usize>| head[r.clone()] == f[r];
        let ip_ok = if it.v6 {
            same(l3..l3 + 4) && head[l3 + 7] == f[l3 + 7]
        } else {
            head[l3 + 1] == f[l3 + 1]
                && same(l3 + 6..l3 + 9)
                && seg.ip_id() == it.last_id.wrapping_add(1)
        };
        let mergeable = seg.ip.l4 == t
            && seg.hdrs == it.hdrs
            && ip_ok
            && same(0..l3)
            && same(t + 8..t + 13)
            && head[t + 13] == f[t + 13] & !TCP_PSH
            && same(t + 14..t + 16)
            && same(t + TCP_HLEN..it.hdrs)
            && seg.seq == it.next_seq
            && pl <= it.gso_size
            && head.len() + pl - l3 <= MAX_IP_LEN;
        if !mergeable {
            return None;
        }
        let p = &mut self.slots[it.slot];
        let old = p.len();
        let buf = p.resize(old + pl)?;
        buf[old..].copy_from_slice(&f[seg.hdrs..]);
        if seg.flags & TCP_PSH != 0 {
            buf[t + 13] |= TCP_PSH;
        }
        let len = buf.len();
        let item = &mut self.items[i];
        item.next_seq = seg.seq.wrapping_add(pl as u32);
        item.last_id = seg.ip_id();
        item.segs += 1;
        // A full-sized segment that would not fit closes the super-frame when it comes,
        // not before: a shorter last segment (the tail of a 64 KiB send) may still fit.
        let done = seg.flags & TCP_PSH != 0 || pl < it.gso_size || len - l3 >= MAX_IP_LEN;
        if done {
            self.close(i);
        }
        Some((it.slot, done))
    }

    /// Finishes item `i` (headers and virtio_net_hdr), removes it from the open set and
    /// returns its slot.
    fn close(&mut self, i: usize) -> usize {
        let it = self.items[i];
        self.open -= 1;
        self.items[i] = self.items[self.open];
        let p = &mut self.slots[it.slot];
        if it.segs < 2 {
            // A lone segment: the frame as it came, checksums complete.
            p.vnet = VnetHdr::NONE.to_bytes();
            return it.slot;
        }
        let f = p.frame_mut();
        let len = f.len();
        let (l3, t) = (it.l3, it.l4);
        if it.v6 {
            f[l3 + 4..l3 + 6].copy_from_slice(&((len - t) as u16).to_be_bytes());
        } else {
            f[l3 + 2..l3 + 4].copy_from_slice(&((len - l3) as u16).to_be_bytes());
            f[l3 + 10..l3 + 12].fill(0);
            let c = !sum(&f[l3..t]);
            f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        }
        let addrs = if it.v6 {
            l3 + 8..l3 + 40
        } else {
            l3 + 12..l3 + 20
        };
        let ps = csum::pseudo(&f[addrs], IPPROTO_TCP, len - t);
        f[t + TCP_CSUM_OFF..t + TCP_CSUM_OFF + 2].copy_from_slice(&ps.to_be_bytes());
        p.vnet = VnetHdr {
            flags: VnetHdr::F_NEEDS_CSUM,
            gso_type: if it.v6 {
                GsoType::TcpV6
            } else {
                GsoType::TcpV4
            },
            gso_ecn: false,
            hdr_len: it.hdrs as u16,
            gso_size: it.gso_size as u16,
            csum_start: t as u16,
            csum_offset: TCP_CSUM_OFF as u16,
        }
        .to_bytes();
        it.slot
    }
}
