//! Property tests: split then coalesce gives back the very super-frame; coalescing keeps
//! every flow's bytes in order whatever the interleaving and corruption; nothing panics
//! on any frame or header.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use super::fixtures::{Tcp, check_tcp, payload};
use super::*;
use crate::packet::VNET_HDR_LEN;

fn tcp_spec() -> impl Strategy<Value = Tcp> {
    (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<u32>(),
        any::<u16>(),
    )
        .prop_map(|(v6, vlan, psh, ts, seq, ip_id)| Tcp {
            v6,
            vlan,
            psh,
            ts,
            seq,
            ip_id,
            ..Tcp::v4()
        })
}

const WIDE: SegmentSpec = SegmentSpec {
    prefix: 8,
    max_frame: 9018,
};

/// The TCP payload of a frame, read without judging its checksums.
fn tcp_payload(f: &[u8]) -> (u16, Vec<u8>) {
    let p = etherparse::SlicedPacket::from_ethernet(f).expect("a TCP frame");
    match p.transport {
        Some(etherparse::TransportSlice::Tcp(t)) => (t.source_port(), t.payload().to_vec()),
        _ => panic!("not TCP"),
    }
}

proptest! {
    // Failing seeds go next to this file (`proptests.proptest-regressions`), inside the
    // module directory, and are replayed first on every run.
    #![proptest_config(ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel("proptest-regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn offload_split_then_coalesce_gives_the_super_frame_back(
        tcp in tcp_spec(),
        len in 1usize..=65_000,
        mss in 1u16..=9000,
    ) {
        let data = payload(len, 9);
        let (frame, hdr) = tcp.super_frame(&data, mss);
        let mut out = vec![0u8; 40 * 65_536];
        let lay = split(&frame, &hdr, WIDE, &mut out);
        let hdrs = usize::from(hdr.hdr_len);
        if hdrs + usize::from(mss).min(len) > WIDE.max_frame {
            prop_assert_eq!(lay, Err(OffloadError::SegmentTooBig));
            return Ok(());
        }
        let lay = match lay {
            Ok(l) => l,
            // Tiny MSS values make more segments than the buffer holds.
            Err(e) => { prop_assert_eq!(e, OffloadError::OutputTooSmall); return Ok(()); }
        };
        let mut c = Coalescer::new(2, 2);
        for i in 0..lay.count {
            let seg = &out[lay.frame(i)];
            if i == 0 { check_tcp(seg); }
            let r = c.push(seg);
            if lay.count == 1 && tcp.psh {
                // A lone PSH segment has nothing to join: it goes out as it is.
                prop_assert_eq!(r, Push { ready: None, frame: Fate::Pass(PassReason::Ineligible) });
                return Ok(());
            }
            prop_assert!(matches!(r.frame, Fate::Held(0)), "segment {} {:?}", i, r);
            prop_assert_eq!(r.ready.is_some(), i + 1 == lay.count && (tcp.psh || len % usize::from(mss) != 0 || lay.count == 1) && lay.count > 1);
        }
        while c.flush().is_some() {}
        let got = c.slots()[0].frame();
        let got_hdr = VnetHdr::parse(&c.slots()[0].vnet);
        if lay.count == 1 {
            prop_assert_eq!(got, &out[lay.frame(0)]);
            prop_assert_eq!(got_hdr, VnetHdr::NONE);
        } else {
            prop_assert!(got == &frame[..], "coalesced frame differs from the original");
            prop_assert_eq!(got_hdr, hdr);
        }
    }

    #[test]
    fn offload_coalesce_keeps_each_flow_in_order(
        a in tcp_spec(),
        b in tcp_spec(),
        la in 1usize..=20_000,
        lb in 1usize..=20_000,
        mss in 100u16..=1460,
        order in proptest::collection::vec(any::<bool>(), 0..400),
        corrupt in proptest::collection::vec(any::<u16>(), 0..4),
        flows in 0usize..4,
        slots in 0usize..6,
    ) {
        let b = Tcp { sport: a.sport + 1, ..b };
        let mut segs = [Vec::new(), Vec::new()];
        for (k, (t, len)) in [(a, la), (b, lb)].into_iter().enumerate() {
            let (frame, hdr) = t.super_frame(&payload(len, k as u8), mss);
            let mut out = vec![0u8; 2 * 65_536];
            let lay = split(&frame, &hdr, WIDE, &mut out).expect("split");
            for i in 0..lay.count {
                segs[k].push(out[lay.frame(i)].to_vec());
            }
        }
        for (n, &at) in corrupt.iter().enumerate() {
            let s = &mut segs[n % 2];
            let i = usize::from(at) % s.len();
            let last = s[i].len() - 1;
            s[i][last] ^= 0x5a;
        }
        // Interleave, keeping each flow's order.
        let mut input = Vec::new();
        let (mut ia, mut ib) = (0, 0);
        let mut pick = order.into_iter();
        while ia < segs[0].len() || ib < segs[1].len() {
            let take_a = ib >= segs[1].len() || (ia < segs[0].len() && pick.next().unwrap_or(true));
            if take_a { input.push(segs[0][ia].clone()); ia += 1; } else { input.push(segs[1][ib].clone()); ib += 1; }
        }
        let mut c = Coalescer::new(flows, slots);
        let mut sent: Vec<Vec<u8>> = Vec::new();
        for f in &input {
            let r = c.push(f);
            if let Some(i) = r.ready { sent.push(c.slots()[i].frame().to_vec()); }
            if let Fate::Pass(_) = r.frame { sent.push(f.clone()); }
        }
        while let Some(i) = c.flush() { sent.push(c.slots()[i].frame().to_vec()); }
        for k in 0..2 {
            let port = [a.sport, b.sport][k];
            let want: Vec<u8> = segs[k].iter().flat_map(|s| tcp_payload(s).1).collect();
            let got: Vec<u8> = sent.iter().map(|f| tcp_payload(f)).filter(|(p, _)| *p == port).flat_map(|(_, d)| d).collect();
            prop_assert!(want == got, "flow {} bytes differ", k);
        }
    }

    #[test]
    fn offload_split_never_panics_on_mutated_frames(
        tcp in tcp_spec(),
        len in 0usize..3000,
        mss in 0u16..1600,
        pokes in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..6),
        cut in any::<u16>(),
        raw in any::<[u8; VNET_HDR_LEN]>(),
        use_raw in any::<bool>(),
        prefix in prop_oneof![0usize..16, Just(usize::MAX - 4)],
        max_frame in 0usize..2000,
        out_len in 0usize..8000,
    ) {
        let (mut frame, hdr) = tcp.super_frame(&payload(len, 3), mss);
        for (at, v) in pokes {
            let n = frame.len();
            frame[usize::from(at) % n] = v;
        }
        frame.truncate(usize::from(cut) % (frame.len() + 1));
        let hdr = if use_raw { VnetHdr::parse(&raw) } else { hdr };
        let mut out = vec![0u8; out_len];
        if let Ok(lay) = split(&frame, &hdr, SegmentSpec { prefix, max_frame }, &mut out) {
            prop_assert!(lay.count >= 1 && lay.total_len() <= out.len());
            prop_assert!(lay.last_len <= lay.stride && lay.stride - prefix <= max_frame);
        }
        let _ = complete_checksum(&mut frame, &hdr);
        let mut c = Coalescer::new(2, 2);
        let _ = c.push(&frame);
        let _ = c.push(&frame);
        while c.flush().is_some() {}
    }

    #[test]
    fn offload_nothing_panics_on_random_bytes(
        frame in proptest::collection::vec(any::<u8>(), 0..200),
        raw in any::<[u8; VNET_HDR_LEN]>(),
        out_len in 0usize..4000,
    ) {
        let hdr = VnetHdr::parse(&raw);
        let mut out = vec![0u8; out_len];
        let _ = split(&frame, &hdr, SegmentSpec { prefix: 8, max_frame: 1514 }, &mut out);
        let mut f = frame.clone();
        let _ = complete_checksum(&mut f, &hdr);
        let mut c = Coalescer::new(1, 1);
        let _ = c.push(&frame);
        while c.flush().is_some() {}
    }
}
