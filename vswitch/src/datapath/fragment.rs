//! Cutting an IPv4 frame into fragments, each in a scratch buffer of its own, for the
//! two places that do it: a tunnel (a packet without DF too big for the overlay) and the
//! router (one too big for the network it is routed into).

use std::ops::Range;

use super::counters::DropReason;
use super::pool::Pool;

/// The largest IPv4 header, options included: the bound on what a fragment's header takes.
const MAX_IP_HEADER: usize = 60;

/// Cuts the IPv4 frame in pool buffer `i` into fragments of at most `mtu` bytes of IP,
/// written each into a fresh scratch buffer after `prefix` free bytes (room for a
/// header the caller writes). Returns their buffers, which are consecutive. Takes no
/// buffer when the scratch left cannot hold them all (`NoBuffer`); a frame the
/// fragmenter refuses (malformed options, an MTU below the minimum) is
/// `FragmentFailed`.
pub fn cut(pool: &mut Pool, i: u32, mtu: u32, prefix: usize) -> Result<Range<u32>, DropReason> {
    let per_piece = (mtu as usize).saturating_sub(MAX_IP_HEADER) & !7;
    if per_piece == 0 {
        return Err(DropReason::FragmentFailed);
    }
    if pool.scratch_left() < pool.get(i).len().div_ceil(per_piece) {
        return Err(DropReason::NoBuffer);
    }
    let (src, mut scratch) = pool.source_and_scratch(i);
    let mut fragmenter =
        vtep::Fragmenter::new(src.frame(), mtu).map_err(|_| DropReason::FragmentFailed)?;
    let mut pieces: Option<Range<u32>> = None;
    while fragmenter.next_len().is_some() {
        let (s, buf) = scratch.take().ok_or(DropReason::NoBuffer)?;
        let space = buf
            .rx_space()
            .get_mut(prefix..)
            .ok_or(DropReason::NoBuffer)?;
        match fragmenter.next_into(space) {
            Ok(Some(n)) => buf.set_len(prefix + n),
            Ok(None) => break,
            Err(_) => return Err(DropReason::FragmentFailed),
        }
        let start = pieces.map_or(s, |r| r.start);
        pieces = Some(start..s + 1);
    }
    pieces.ok_or(DropReason::FragmentFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 (no DF) + `payload` bytes of UDP-ish payload.
    fn frame(payload: usize) -> Vec<u8> {
        let total = 20 + payload;
        let mut f = vec![0u8; 14 + total];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[16..18].copy_from_slice(&(total as u16).to_be_bytes());
        f[22] = 64;
        f[23] = 17;
        f[26..30].copy_from_slice(&[10, 0, 0, 1]);
        f[30..34].copy_from_slice(&[10, 0, 0, 2]);
        let sum = vtep::checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&sum.to_be_bytes());
        f
    }

    #[test]
    fn pieces_are_consecutive_and_leave_room_for_a_prefix() {
        let mut pool = Pool::new(1, 8);
        pool.rx()[0].set_frame(&frame(3000));
        let r = cut(&mut pool, 0, 1400, 8).unwrap();
        assert_eq!(r.len(), 3);
        for s in r {
            let b = pool.get(s);
            assert!(b.len() - 8 <= 14 + 1400);
            assert_eq!(&b.frame()[8 + 12..8 + 14], &[0x08, 0x00]);
        }
    }

    #[test]
    fn no_buffer_is_taken_when_not_all_pieces_fit() {
        let mut pool = Pool::new(1, 4);
        pool.rx()[0].set_frame(&frame(9000));
        assert_eq!(cut(&mut pool, 0, 1400, 0), Err(DropReason::NoBuffer));
        assert_eq!(pool.scratch_left(), 4);
        assert_eq!(cut(&mut pool, 0, 59, 0), Err(DropReason::FragmentFailed));
    }
}
