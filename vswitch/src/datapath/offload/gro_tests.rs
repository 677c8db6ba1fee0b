//! The coalescer's rules on real frames: what merges, what closes a super-frame, what
//! passes through, and in which order frames leave.

use super::fixtures::{Checked, Tcp, check_tcp, coalesce, payload};
use super::*;

/// Segments of one flow, `n` of `mss` bytes then one of `last`.
fn flow(tcp: Tcp, n: usize, mss: usize, last: usize) -> Vec<Vec<u8>> {
    let mut segs = Vec::new();
    let mut seq = tcp.seq;
    for i in 0..=n {
        let len = if i == n { last } else { mss };
        if len == 0 {
            break;
        }
        let t = Tcp {
            seq,
            ip_id: tcp.ip_id.wrapping_add(i as u16),
            psh: tcp.psh && i == n,
            ..tcp
        };
        segs.push(t.frame(&payload(len, i as u8)));
        seq = seq.wrapping_add(len as u32);
    }
    segs
}

fn payloads(sent: &[(Vec<u8>, Option<VnetHdr>)]) -> Vec<Checked> {
    sent.iter()
        .map(|(f, h)| {
            let mut f = f.clone();
            if let Some(h) = h.filter(|h| h.is_gso()) {
                // Complete the partial checksum so that etherparse can check the rest.
                let flat = VnetHdr {
                    gso_type: GsoType::None,
                    ..h
                };
                complete_checksum(&mut f, &flat).unwrap();
            }
            check_tcp(&f)
        })
        .collect()
}

#[test]
fn coalesce_stops_at_a_short_segment_and_at_psh() {
    let tcp = Tcp::v4();
    let mut segs = flow(tcp, 3, 1000, 500);
    // A second burst right after: its first segment would follow the short one.
    let next = Tcp {
        seq: tcp.seq.wrapping_add(3500),
        ip_id: tcp.ip_id.wrapping_add(4),
        psh: true,
        ..tcp
    };
    segs.extend(flow(next, 2, 1000, 1000));
    let mut c = Coalescer::new(4, 4);
    let sent = coalesce(&mut c, &segs);
    let got = payloads(&sent);
    assert_eq!(
        got.iter().map(|c| c.payload.len()).collect::<Vec<_>>(),
        vec![3500, 3000]
    );
    assert!(!got[0].psh && got[1].psh);
    assert_eq!(got[1].seq, tcp.seq.wrapping_add(3500));
}

#[test]
fn coalesce_never_merges_a_bad_checksum_and_keeps_order() {
    let tcp = Tcp::v6();
    let mut segs = flow(tcp, 4, 1000, 0);
    let n = segs[2].len();
    segs[2][n - 1] ^= 0x55;
    let mut c = Coalescer::new(4, 4);
    let sent = coalesce(&mut c, &segs);
    assert_eq!(sent.len(), 3);
    assert_eq!(
        sent[1],
        (segs[2].clone(), None),
        "passed through untouched, after the first two"
    );
    let mut out = Vec::new();
    for (f, h) in [&sent[0], &sent[2]] {
        out.push((f.clone(), *h));
    }
    let got = payloads(&out);
    assert_eq!(got[0].payload.len(), 2000);
    assert_eq!(
        got[1].payload.len(),
        1000,
        "the segment after the hole starts anew"
    );
}

#[test]
fn trusted_frames_merge_without_their_checksums_being_summed() {
    let tcp = Tcp::v4();
    let segs = flow(tcp, 3, 1000, 0);
    // Checked pushes and trusted pushes of good segments build the same super-frame.
    let mut checked = Coalescer::new(4, 4);
    let want = coalesce(&mut checked, &segs);
    let mut trusted = Coalescer::new(4, 4);
    for s in &segs {
        let r = trusted.push_trusted(s);
        assert!(matches!(r.frame, Fate::Held(_)) && r.ready.is_none());
    }
    let slot = trusted.flush().expect("one super-frame");
    let p = &trusted.slots()[slot];
    assert_eq!(
        want,
        vec![(p.frame().to_vec(), Some(VnetHdr::parse(&p.vnet)))]
    );
    assert_eq!(trusted.flush(), None);
    // What the trust means: a segment whose TCP checksum is wrong is not looked at (the
    // outer UDP checksum the kernel checked vouches for the bytes instead).
    let mut bad = segs.clone();
    let n = bad[1].len();
    bad[1][n - 1] ^= 0x55;
    let mut c = Coalescer::new(4, 4);
    assert_eq!(c.push(&bad[0]).frame, Fate::Held(0));
    assert_eq!(c.push(&bad[1]).frame, Fate::Pass(PassReason::BadChecksum));
    let mut c = Coalescer::new(4, 4);
    assert_eq!(c.push_trusted(&bad[0]).frame, Fate::Held(0));
    assert_eq!(c.push_trusted(&bad[1]).frame, Fate::Held(0));
}

#[test]
fn coalesce_passes_what_it_must_not_merge() {
    let tcp = Tcp::v4();
    let segs = flow(tcp, 2, 1000, 0);
    let fin = Tcp {
        seq: tcp.seq.wrapping_add(2000),
        ip_id: tcp.ip_id.wrapping_add(2),
        fin: true,
        ..tcp
    }
    .frame(&payload(10, 0));
    let syn = Tcp {
        syn: true,
        sport: 1,
        ..tcp
    }
    .frame(&[]);
    let ack = Tcp { sport: 2, ..tcp }.frame(&[]);
    let mut c = Coalescer::new(4, 4);
    assert_eq!(
        c.push(&segs[0]),
        Push {
            ready: None,
            frame: Fate::Held(0)
        }
    );
    assert_eq!(
        c.push(&segs[1]),
        Push {
            ready: None,
            frame: Fate::Held(0)
        }
    );
    assert_eq!(
        c.push(&syn),
        Push {
            ready: None,
            frame: Fate::Pass(PassReason::Ineligible)
        }
    );
    assert_eq!(
        c.push(&ack),
        Push {
            ready: None,
            frame: Fate::Pass(PassReason::Ineligible)
        }
    );
    assert_eq!(
        c.push(&[0u8; 60]),
        Push {
            ready: None,
            frame: Fate::Pass(PassReason::NotTcp)
        }
    );
    // The FIN closes the flow's open super-frame first, then goes out itself.
    assert_eq!(
        c.push(&fin),
        Push {
            ready: Some(0),
            frame: Fate::Pass(PassReason::Ineligible)
        }
    );
    assert_eq!(
        payloads(&[(
            c.slots()[0].frame().to_vec(),
            Some(VnetHdr::parse(&c.slots()[0].vnet))
        )])[0]
            .payload
            .len(),
        2000
    );
    assert_eq!(c.flush(), None);
}

#[test]
fn coalesce_keeps_flows_apart_and_evicts_the_oldest() {
    let a = flow(
        Tcp {
            sport: 1,
            ..Tcp::v4()
        },
        2,
        1000,
        0,
    );
    let b = flow(
        Tcp {
            sport: 2,
            ..Tcp::v4()
        },
        2,
        1000,
        0,
    );
    let x = flow(
        Tcp {
            sport: 3,
            ..Tcp::v6()
        },
        2,
        1000,
        0,
    );
    let mut c = Coalescer::new(2, 8);
    assert_eq!(c.push(&a[0]).frame, Fate::Held(0));
    assert_eq!(c.push(&b[0]).frame, Fate::Held(1));
    assert_eq!(c.push(&a[1]).frame, Fate::Held(0));
    assert_eq!(c.push(&b[1]).frame, Fate::Held(1));
    // A third flow with room for two: the oldest (a) is finished to make room.
    assert_eq!(
        c.push(&x[0]),
        Push {
            ready: Some(0),
            frame: Fate::Held(2)
        }
    );
    assert_eq!(c.push(&x[1]).frame, Fate::Held(2));
    assert_eq!(c.flush(), Some(1));
    assert_eq!(c.flush(), Some(2));
    assert_eq!(c.flush(), None);
    // Next round: slots are reused from 0.
    assert_eq!(c.push(&a[0]).frame, Fate::Held(0));
    let mut tiny = Coalescer::new(1, 1);
    assert_eq!(tiny.push(&a[0]).frame, Fate::Held(0));
    assert_eq!(
        tiny.push(&b[0]),
        Push {
            ready: None,
            frame: Fate::Pass(PassReason::NoSlot)
        }
    );
    let mut none = Coalescer::new(0, 0);
    assert_eq!(none.push(&a[0]).frame, Fate::Pass(PassReason::NoSlot));
}

#[test]
fn coalesce_of_one_segment_sends_it_as_it_came() {
    let segs = flow(Tcp::v4(), 0, 0, 700);
    let mut c = Coalescer::new(2, 2);
    let sent = coalesce(&mut c, &segs);
    assert_eq!(sent, vec![(segs[0].clone(), Some(VnetHdr::NONE))]);
}

#[test]
fn coalesce_refuses_a_changed_ack_or_ip_id_gap() {
    let tcp = Tcp::v4();
    let mut segs = flow(tcp, 4, 1000, 0);
    segs[1] = Tcp {
        seq: tcp.seq.wrapping_add(1000),
        ip_id: tcp.ip_id.wrapping_add(1),
        ack: 78,
        ..tcp
    }
    .frame(&payload(1000, 1));
    segs[2] = Tcp {
        seq: tcp.seq.wrapping_add(2000),
        ip_id: tcp.ip_id.wrapping_add(2),
        ack: 78,
        ..tcp
    }
    .frame(&payload(1000, 2));
    segs[3] = Tcp {
        seq: tcp.seq.wrapping_add(3000),
        ip_id: tcp.ip_id.wrapping_add(9),
        ack: 78,
        ..tcp
    }
    .frame(&payload(1000, 3));
    let mut c = Coalescer::new(4, 4);
    let sent = coalesce(&mut c, &segs);
    let lens: Vec<_> = payloads(&sent).iter().map(|c| c.payload.len()).collect();
    assert_eq!(lens, vec![1000, 2000, 1000]);
}
