//! Offload handling with arbitrary virtio_net_hdr fields: `VnetHdr::parse`, `split` of
//! a (super-)frame into an output buffer of arbitrary size, `complete_checksum`,
//! `partial_checksum`, and a `Coalescer` fed with the input's frames and the split's
//! segments.
//!
//! Checks, beyond "no panic":
//! - the header round-trips through parse and emit, byte for byte;
//! - a successful split's layout fits the buffer, every segment is at most `max_frame`
//!   and at most gso_size of payload, batches cover the layout in order within the
//!   GSO limits; every segment has a right IPv4 header checksum and a right L4
//!   checksum, and the segments' payloads put together are the super-frame's payload;
//!   a non-GSO frame comes out as it went in, but for the checksum field;
//! - `complete_checksum` writes only the two bytes of the checksum field;
//! - `gso_mislabelled` never calls a frame mislabelled that `split` accepts;
//! - everything the coalescer hands out is a frame whose payload is exactly the
//!   payloads of the segments it held, in order, and whose virtio_net_hdr the kernel
//!   would accept (and which `split` cuts back into valid segments).

use std::cell::RefCell;

use vswitch::datapath::offload::{
    self, Coalescer, Fate, GsoType, OffloadError, SegmentSpec, SplitLayout, VnetHdr,
};
use vswitch::datapath::pool::SCRATCH_EXTRA;
use vswitch::packet::{MAX_FRAME, VNET_HDR_LEN};

use super::check;
use super::input::Input;

const GRO_FLOWS: usize = 4;
const GRO_SLOTS: usize = 8;
const MAX_RECORDS: usize = 16;

thread_local! {
    /// Allocated once: the split's output buffer and the coalescer (whose slots are
    /// 64 KiB each). The coalescer is always flushed to the end of its round, which
    /// makes it as good as new.
    static STATE: RefCell<(Vec<u8>, Coalescer)> = RefCell::new((
        vec![0u8; MAX_FRAME + SCRATCH_EXTRA],
        Coalescer::new(GRO_FLOWS, GRO_SLOTS),
    ));
}

/// Input: the 10 header bytes, the egress's `max_frame` (u16), the VXLAN prefix (u8),
/// the output buffer's size (u16, 0 = the worker's full scratch size), then records:
/// the first is split, all are offered to the coalescer.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let raw: [u8; VNET_HDR_LEN] = input.array();
    let max_frame = usize::from(input.u16());
    let prefix = usize::from(input.u8() % 32);
    let out_len = usize::from(input.u16());
    let mut frames = Vec::new();
    while !input.is_empty() && frames.len() < MAX_RECORDS {
        frames.push(input.record());
    }

    let hdr = VnetHdr::parse(&raw);
    assert_eq!(hdr.to_bytes(), raw, "virtio_net_hdr does not round-trip");

    STATE.with(|s| {
        let (out, gro) = &mut *s.borrow_mut();
        let out_len = if out_len == 0 {
            out.len()
        } else {
            out_len.min(out.len())
        };
        let frame = frames.first().copied().unwrap_or_default();
        let spec = SegmentSpec { prefix, max_frame };
        let mut segments = Vec::new();
        let mislabelled = offload::gso_mislabelled(frame, &hdr);
        if let Ok(lay) = split_checked(frame, &hdr, spec, &mut out[..out_len]) {
            // The split checks the same headers: a frame it cuts is never mislabelled.
            assert!(
                !mislabelled,
                "gso_mislabelled refused a frame split accepts"
            );
            segments = (0..lay.count).map(|i| out[lay.frame(i)].to_vec()).collect();
        }
        complete_checked(frame, &hdr);
        for f in &frames {
            partial_checked(f);
        }
        let mut feed: Vec<&[u8]> = frames.clone();
        feed.extend(segments.iter().map(Vec::as_slice));
        coalesce_checked(gro, &feed);
    });
}

fn split_checked(
    frame: &[u8],
    hdr: &VnetHdr,
    spec: SegmentSpec,
    out: &mut [u8],
) -> Result<SplitLayout, OffloadError> {
    let lay = offload::split(frame, hdr, spec, out)?;
    assert!(lay.count >= 1 && lay.last_len <= lay.stride && lay.prefix == spec.prefix);
    assert!(
        lay.total_len() <= out.len(),
        "layout past the buffer: {lay:?}"
    );
    let mut next = 0;
    for r in lay.batches(65_000, 64) {
        assert_eq!(r.start, next, "batches leave a gap");
        assert!(r.len() <= 65_000.max(lay.stride) && r.len() <= 64 * lay.stride);
        next = r.end;
    }
    assert_eq!(next, lay.total_len(), "batches do not cover the layout");
    for i in 0..lay.count {
        assert!(
            lay.frame(i).len() <= spec.max_frame,
            "segment over max_frame"
        );
    }
    match hdr.gso_type {
        GsoType::None => {
            let seg = &out[lay.frame(0)];
            assert_eq!(lay.count, 1);
            let changed = check::diff(frame, seg);
            let field = usize::from(hdr.csum_start) + usize::from(hdr.csum_offset);
            assert!(
                changed
                    .iter()
                    .all(|&at| hdr.needs_csum() && (at == field || at == field + 1)),
                "a non-GSO frame changed beyond its checksum field"
            );
        }
        _ => segments_checked(frame, hdr, &lay, out),
    }
    Ok(lay)
}

/// The segments of a GSO split: right checksums, payload conserved and cut at gso_size.
fn segments_checked(frame: &[u8], hdr: &VnetHdr, lay: &SplitLayout, out: &[u8]) {
    let (l3, _) = check::l3_of(frame).expect("split a frame without an IP header");
    let (hdrs, end) = headers_and_end(frame).expect("split a frame it cannot lay out");
    let payload = &frame[hdrs..end];
    let gso = usize::from(hdr.gso_size);
    let mut at = 0;
    for i in 0..lay.count {
        let seg = &out[lay.frame(i)];
        assert_eq!(&seg[..l3], &frame[..l3], "segment {i}: link header changed");
        if frame[l3] >> 4 == 4 {
            assert!(
                check::ipv4_header_ok(&seg[l3..]),
                "segment {i}: bad IPv4 checksum"
            );
        }
        assert_eq!(
            check::frame_l4_ok(seg),
            Some(true),
            "segment {i}: bad L4 checksum"
        );
        let (shdrs, send) = headers_and_end(seg).expect("segment without headers");
        assert_eq!(
            (shdrs, send),
            (hdrs, seg.len()),
            "segment {i}: lengths disagree"
        );
        let piece = &seg[shdrs..];
        assert!(piece.len() <= gso && (piece.len() == gso || i + 1 == lay.count));
        assert_eq!(
            piece,
            &payload[at..at + piece.len()],
            "segment {i}: payload moved"
        );
        at += piece.len();
    }
    assert_eq!(at, payload.len(), "segments lost payload");
}

/// The end of the L4 header and of the IP packet of a TCP or UDP frame.
fn headers_and_end(frame: &[u8]) -> Option<(usize, usize)> {
    let (l3, t) = check::l3_of(frame)?;
    let p = frame.get(l3..)?;
    let (l4, proto, end) = match t {
        0x0800 => {
            let ip = check::ipv4(p)?;
            (l3 + ip.ihl, ip.proto, l3 + ip.total)
        }
        0x86dd => (
            l3 + 40,
            *p.get(6)?,
            l3 + 40 + usize::from(check::be16(p, 4)?),
        ),
        _ => return None,
    };
    let l4_hlen = match proto {
        6 => usize::from(frame.get(l4 + 12)? >> 4) * 4,
        17 => 8,
        _ => return None,
    };
    (l4 + l4_hlen <= end && end <= frame.len()).then_some((l4 + l4_hlen, end))
}

fn complete_checked(frame: &[u8], hdr: &VnetHdr) {
    let mut copy = frame.to_vec();
    if offload::complete_checksum(&mut copy, hdr).is_ok() {
        let field = usize::from(hdr.csum_start) + usize::from(hdr.csum_offset);
        for at in check::diff(frame, &copy) {
            assert!(
                at == field || at == field + 1,
                "complete_checksum wrote at {at}"
            );
        }
    } else {
        assert_eq!(copy, frame, "a refused completion changed the frame");
    }
}

fn partial_checked(frame: &[u8]) {
    super::vxlan_decap::inner_frame(frame);
}

/// Pushes every frame, then flushes; checks what comes out against what went in.
fn coalesce_checked(gro: &mut Coalescer, frames: &[&[u8]]) {
    // Per slot: the payload of every segment it holds, in order.
    let mut held: Vec<Vec<u8>> = vec![Vec::new(); GRO_SLOTS];
    for f in frames {
        let push = gro.push(f);
        // Held first: the ready slot may be the one this segment joined and closed.
        if let Fate::Held(slot) = push.frame {
            let (hdrs, end) = headers_and_end(f).expect("held a frame that is not TCP");
            held[slot].extend_from_slice(&f[hdrs..end]);
        }
        if let Some(slot) = push.ready {
            finished(gro, slot, &mut held);
        }
    }
    while let Some(slot) = gro.flush() {
        finished(gro, slot, &mut held);
    }
    assert!(
        held.iter().all(Vec::is_empty),
        "a held segment never came out"
    );
}

/// Checks a finished super-frame of `slot`.
fn finished(gro: &Coalescer, slot: usize, held: &mut [Vec<u8>]) {
    let buf = &gro.slots()[slot];
    let f = buf.frame();
    let hdr = VnetHdr::parse(&buf.vnet);
    let (hdrs, end) = headers_and_end(f).expect("a super-frame without headers");
    assert_eq!(end, f.len(), "super-frame longer than its IP packet");
    assert_eq!(
        &f[hdrs..],
        &held[slot][..],
        "coalesced payload differs from the segments'"
    );
    held[slot].clear();
    if !hdr.is_gso() {
        assert_eq!(hdr, VnetHdr::NONE, "a lone segment needs no header");
        return;
    }
    // What the kernel's virtio_net_hdr_to_skb requires (see gro.rs).
    let (l3, t) = check::l3_of(f).expect("checked above");
    let v6 = t == 0x86dd;
    assert_eq!(
        hdr.gso_type,
        if v6 { GsoType::TcpV6 } else { GsoType::TcpV4 }
    );
    assert!(
        hdr.needs_csum() && hdr.csum_offset == 16 && hdr.gso_size > 0 && hdr.gso_size < u16::MAX
    );
    assert!(usize::from(hdr.hdr_len) <= f.len() && usize::from(hdr.hdr_len) == hdrs);
    assert!(
        f.len() - hdrs > usize::from(hdr.gso_size),
        "a GSO frame of one segment"
    );
    if !v6 {
        assert!(check::ipv4_header_ok(&f[l3..]), "super-frame IPv4 checksum");
    }
    // Finished by the kernel from the pseudo-header sum: finish it the same way.
    let mut copy = f.to_vec();
    let mut whole = hdr;
    whole.gso_type = GsoType::None;
    offload::complete_checksum(&mut copy, &whole).expect("its own header");
    assert_eq!(
        check::frame_l4_ok(&copy),
        Some(true),
        "super-frame partial checksum wrong"
    );
    // And a split at its own size gives the segments back.
    let spec = SegmentSpec {
        prefix: 0,
        max_frame: usize::MAX,
    };
    let gso = usize::from(hdr.gso_size);
    let count = (f.len() - hdrs).div_ceil(gso);
    let mut out = vec![0u8; count * (hdrs + gso)];
    let lay = offload::split(f, &hdr, spec, &mut out).expect("split refused a coalesced frame");
    segments_checked(f, &hdr, &lay, &out);
}
