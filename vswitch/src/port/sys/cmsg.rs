//! Ancillary data (control messages) of the two kinds the underlay exchanges with the
//! kernel: `(SOL_UDP, UDP_SEGMENT)` on send, whose payload is the GSO segment size as a
//! `u16`, and `(SOL_UDP, UDP_GRO)` on receive, whose payload is the size of the
//! datagrams coalesced into one read, as an `int`.
//!
//! Buffers are plain fixed-size arrays, one per message of a batch, allocated once.

use std::mem::size_of;

/// Bytes of control space per message: one `cmsghdr` (16 bytes on 64-bit Linux) and a
/// payload of up to 8 bytes take 24; the rest is room for a control message we did not
/// ask for, so that one never truncates the one we want.
pub const CMSG_BUF_LEN: usize = 64;

// SAFETY: CMSG_SPACE only does arithmetic on its argument.
const _: () =
    assert!(unsafe { libc::CMSG_SPACE(size_of::<libc::c_int>() as u32) } as usize <= CMSG_BUF_LEN);

/// Control space for one message, aligned as a `cmsghdr` must be.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub struct CmsgBuf(pub [u8; CMSG_BUF_LEN]);

impl CmsgBuf {
    pub const fn new() -> CmsgBuf {
        CmsgBuf([0; CMSG_BUF_LEN])
    }
}

impl Default for CmsgBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for CmsgBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CmsgBuf")
    }
}

/// Writes one control message `(level, ty)` with payload `value` at the start of `buf`
/// and returns the `msg_controllen` that covers it.
pub fn write_u16(buf: &mut CmsgBuf, level: libc::c_int, ty: libc::c_int, value: u16) -> usize {
    write(buf, level, ty, value)
}

fn write<T: Copy>(buf: &mut CmsgBuf, level: libc::c_int, ty: libc::c_int, value: T) -> usize {
    const { assert!(size_of::<T>() <= size_of::<libc::c_int>()) };
    buf.0.fill(0);
    let hdr = buf.0.as_mut_ptr().cast::<libc::cmsghdr>();
    // SAFETY: `buf` is aligned for `cmsghdr` and longer than CMSG_SPACE of an int (checked
    // at compile time above), and `T` is no larger, so the header and the payload after
    // it (at CMSG_DATA) lie inside it; we write through a pointer derived from an
    // exclusive borrow, the payload unaligned.
    unsafe {
        (*hdr).cmsg_len = libc::CMSG_LEN(size_of::<T>() as u32) as _;
        (*hdr).cmsg_level = level;
        (*hdr).cmsg_type = ty;
        libc::CMSG_DATA(hdr).cast::<T>().write_unaligned(value);
        libc::CMSG_SPACE(size_of::<T>() as u32) as usize
    }
}

/// The `int` payload of the first control message `(level, ty)` that `hdr` describes.
///
/// # Safety
/// `hdr.msg_control` must point to `hdr.msg_controllen` readable bytes, as the kernel
/// leaves them after `recvmsg` (or be null with a length of 0).
pub unsafe fn find_int(
    hdr: &libc::msghdr,
    level: libc::c_int,
    ty: libc::c_int,
) -> Option<libc::c_int> {
    // SAFETY: the caller vouches for the control buffer; CMSG_FIRSTHDR / CMSG_NXTHDR
    // return only headers that lie wholly inside it, or null.
    unsafe {
        let mut cur = libc::CMSG_FIRSTHDR(hdr);
        while !cur.is_null() {
            let c = &*cur;
            let want = libc::CMSG_LEN(size_of::<libc::c_int>() as u32) as usize;
            if c.cmsg_level == level && c.cmsg_type == ty && c.cmsg_len as usize >= want {
                return Some(libc::CMSG_DATA(cur).cast::<libc::c_int>().read_unaligned());
            }
            cur = libc::CMSG_NXTHDR(hdr, cur);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msghdr_over(buf: &mut CmsgBuf, len: usize) -> libc::msghdr {
        // SAFETY: an all-zero msghdr is a valid value.
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_control = buf.0.as_mut_ptr().cast();
        hdr.msg_controllen = len as _;
        hdr
    }

    #[test]
    fn an_int_message_is_found_and_others_are_not() {
        let mut buf = CmsgBuf::new();
        let len = write::<libc::c_int>(&mut buf, libc::SOL_UDP, libc::UDP_GRO, 1400);
        let hdr = msghdr_over(&mut buf, len);
        // SAFETY: `hdr` points at `buf`, `len` bytes of which were written above.
        unsafe {
            assert_eq!(find_int(&hdr, libc::SOL_UDP, libc::UDP_GRO), Some(1400));
            assert_eq!(find_int(&hdr, libc::SOL_UDP, libc::UDP_SEGMENT), None);
            assert_eq!(find_int(&hdr, libc::SOL_SOCKET, libc::UDP_GRO), None);
        }
    }

    #[test]
    fn a_payload_shorter_than_an_int_is_not_read_as_one() {
        let mut buf = CmsgBuf::new();
        let len = write_u16(&mut buf, libc::SOL_UDP, libc::UDP_GRO, 1400);
        // SAFETY: CMSG_SPACE only does arithmetic.
        assert_eq!(len, unsafe { libc::CMSG_SPACE(2) } as usize);
        let hdr = msghdr_over(&mut buf, len);
        // SAFETY: `hdr` points at `buf`, `len` bytes of which were written above.
        let found = unsafe { find_int(&hdr, libc::SOL_UDP, libc::UDP_GRO) };
        assert_eq!(found, None);
        let empty = msghdr_over(&mut buf, 0);
        // SAFETY: an empty control buffer.
        let found = unsafe { find_int(&empty, libc::SOL_UDP, libc::UDP_GRO) };
        assert_eq!(found, None);
    }
}
