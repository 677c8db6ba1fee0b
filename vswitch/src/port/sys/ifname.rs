//! Interface names and indexes, as seen from the calling thread's network namespace.

use std::ffi::CString;
use std::io;

/// The kernel's limit on an interface name, including the terminating NUL.
pub const IFNAMSIZ: usize = libc::IFNAMSIZ;

/// Checks that `name` can be an interface name: 1 to 15 bytes, no NUL, `/`, `:` or
/// whitespace (the rules of the kernel's `dev_valid_name`, plus `:` which the kernel
/// treats as an alias separator). `InvalidInput` otherwise.
pub fn validate_ifname(name: &str) -> io::Result<()> {
    let bad_char = |c: char| c == '\0' || c == '/' || c == ':' || c.is_whitespace();
    if name.is_empty()
        || name.len() >= IFNAMSIZ
        || name == "."
        || name == ".."
        || name.contains(bad_char)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a valid interface name (1-15 bytes, no '/', ':' or spaces)"),
        ));
    }
    Ok(())
}

/// `name` as the fixed, NUL-terminated array an `ifreq` carries.
pub(super) fn to_ifr_name(name: &str) -> io::Result<[libc::c_char; IFNAMSIZ]> {
    validate_ifname(name)?;
    let mut out = [0 as libc::c_char; IFNAMSIZ];
    for (dst, src) in out.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(out)
}

/// The name in an `ifreq` back as a `String` (the kernel fills it in, e.g. for `tap%d`).
pub(super) fn from_ifr_name(raw: &[libc::c_char; IFNAMSIZ]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The index of interface `name` in the calling thread's network namespace.
/// `NotFound` when there is no such interface.
pub fn if_nametoindex(name: &str) -> io::Result<u32> {
    validate_ifname(name)?;
    let c_name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c_name` is a valid NUL-terminated string that lives across the call;
    // if_nametoindex only reads it.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        let err = io::Error::last_os_error();
        // glibc reports a missing interface as ENODEV; make that a NotFound so callers
        // can tell it from real failures without matching errno values.
        return Err(match err.raw_os_error() {
            Some(libc::ENODEV) | Some(libc::ENXIO) | None | Some(0) => io::Error::new(
                io::ErrorKind::NotFound,
                format!("no interface named {name}"),
            ),
            _ => err,
        });
    }
    Ok(index)
}

/// Whether an interface called `name` exists in the calling thread's network namespace.
pub fn interface_exists(name: &str) -> bool {
    if_nametoindex(name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_kernel_would_refuse_are_refused() {
        for bad in ["", "a/b", "a b", "a:b", ".", "..", "0123456789abcdef"] {
            assert!(validate_ifname(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_ifname("0123456789abcde").is_ok());
        assert!(validate_ifname("vsp12").is_ok());
    }

    #[test]
    fn ifr_name_round_trips() {
        let raw = to_ifr_name("tap%d").unwrap();
        assert_eq!(from_ifr_name(&raw), "tap%d");
    }

    #[test]
    fn loopback_exists_and_nonsense_does_not() {
        assert!(interface_exists("lo"));
        let err = if_nametoindex("vsw-nonesuch").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
