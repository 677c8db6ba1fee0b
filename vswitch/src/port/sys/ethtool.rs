//! Device features (what `ethtool -k` lists and `ethtool -K` changes) through the
//! `SIOCETHTOOL` ioctl, by name: the feature names are the kernel's `ETH_SS_FEATURES`
//! string set, and a feature's bit is its index in that set.
//!
//! The ioctl acts on the interface of that name in the calling thread's network
//! namespace, through a throwaway `AF_INET` datagram socket.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::cvt;
use super::ifname::to_ifr_name;

const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETHTOOL_GFEATURES: u32 = 0x3a;
const ETHTOOL_SFEATURES: u32 = 0x3b;
const ETH_SS_FEATURES: u32 = 4;
const ETH_GSTRING_LEN: usize = 32;
/// `struct ethtool_gstrings` / `ethtool_gfeatures` / `ethtool_sfeatures` headers, in u32s.
const GSTRINGS_HDR: usize = 3;
const FEATURES_HDR: usize = 2;
/// u32s per `ethtool_get_features_block` (available, requested, active, never_changed)
/// and per `ethtool_set_features_block` (valid, requested).
const GET_BLOCK: usize = 4;
const SET_BLOCK: usize = 2;

/// `struct ethtool_sset_info` asking for one string set.
#[repr(C)]
struct SsetInfo {
    cmd: u32,
    reserved: u32,
    sset_mask: u64,
    len: u32,
}

/// The features of one interface: their names, and which are on.
#[derive(Debug)]
pub struct Features {
    ifname: String,
    names: Vec<String>,
    active: Vec<u32>,
    never_changed: Vec<u32>,
}

impl Features {
    /// Reads the feature names and states of `ifname`.
    pub fn of(ifname: &str) -> io::Result<Features> {
        let sock = socket()?;
        let count = string_count(&sock, ifname)?;
        let names = strings(&sock, ifname, count)?;
        let blocks = count.div_ceil(32);
        let mut buf = vec![0u32; FEATURES_HDR + GET_BLOCK * blocks];
        buf[0] = ETHTOOL_GFEATURES;
        buf[1] = blocks as u32;
        ethtool(&sock, ifname, &mut buf)?;
        // The kernel answers with its own word count (it fills at most ours) and takes
        // nothing else in a set: keep exactly that many.
        let words = buf[1] as usize;
        let block = |i: usize, field: usize| {
            let at = FEATURES_HDR + GET_BLOCK * i + field;
            if i < blocks { buf[at] } else { 0 }
        };
        Ok(Features {
            ifname: ifname.to_string(),
            names,
            active: (0..words).map(|i| block(i, 2)).collect(),
            never_changed: (0..words).map(|i| block(i, 3)).collect(),
        })
    }

    fn bit(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Whether the interface has a feature of that name and it is on.
    pub fn is_on(&self, name: &str) -> bool {
        self.bit(name).is_some_and(|b| {
            self.active
                .get(b / 32)
                .is_some_and(|w| w & (1 << (b % 32)) != 0)
        })
    }

    /// Turns off every feature in `names` that is on and may be changed; names this
    /// kernel does not know are skipped. Returns the features still on afterwards (the
    /// kernel kept them: fixed, or needed by another feature), re-read from the device.
    pub fn turn_off(&self, names: &[&str]) -> io::Result<Vec<String>> {
        let blocks = self.active.len();
        let mut buf = vec![0u32; FEATURES_HDR + SET_BLOCK * blocks];
        buf[0] = ETHTOOL_SFEATURES;
        buf[1] = blocks as u32;
        let mut any = false;
        for b in names
            .iter()
            .filter(|n| self.is_on(n))
            .filter_map(|n| self.bit(n))
        {
            let mask = 1u32 << (b % 32);
            if self.never_changed[b / 32] & mask == 0 {
                // `valid` set, `requested` clear: off.
                buf[FEATURES_HDR + SET_BLOCK * (b / 32)] |= mask;
                any = true;
            }
        }
        if any {
            // A positive answer only says some wish was not granted; the re-read below
            // tells which.
            ethtool(&socket()?, &self.ifname, &mut buf)?;
        }
        let now = Features::of(&self.ifname)?;
        Ok(names
            .iter()
            .filter(|n| now.is_on(n))
            .map(|n| n.to_string())
            .collect())
    }
}

fn socket() -> io::Result<OwnedFd> {
    // SAFETY: socket() takes no pointers; a non-negative result is a new descriptor that
    // nothing else owns.
    let fd = cvt(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` was just returned by socket() and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// How many strings the feature string set has.
fn string_count(sock: &OwnedFd, ifname: &str) -> io::Result<usize> {
    let mut info = SsetInfo {
        cmd: ETHTOOL_GSSET_INFO,
        reserved: 0,
        sset_mask: 1 << ETH_SS_FEATURES,
        len: 0,
    };
    // SAFETY: `info` is a `struct ethtool_sset_info` with room for the one length the
    // single bit of `sset_mask` asks for, alive and exclusively borrowed for the call.
    unsafe { ioctl(sock, ifname, (&raw mut info).cast()) }?;
    if info.sset_mask == 0 {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the device reports no feature names",
        ));
    }
    Ok(info.len as usize)
}

/// The `count` names of the feature string set. The kernel writes as many names as the
/// set has, whatever `len` says; the feature set's size is fixed when the kernel is
/// built, so the `count` just read from it is that size.
fn strings(sock: &OwnedFd, ifname: &str, count: usize) -> io::Result<Vec<String>> {
    let mut buf = vec![0u32; GSTRINGS_HDR + count * ETH_GSTRING_LEN / 4];
    buf[0] = ETHTOOL_GSTRINGS;
    buf[1] = ETH_SS_FEATURES;
    buf[2] = count as u32;
    ethtool(sock, ifname, &mut buf)?;
    let bytes: Vec<u8> = buf[GSTRINGS_HDR..]
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .collect();
    Ok(bytes
        .chunks(ETH_GSTRING_LEN)
        .map(|s| {
            let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
            String::from_utf8_lossy(&s[..end]).into_owned()
        })
        .collect())
}

/// One ethtool command whose whole structure (header and the arrays it announces) is
/// `buf`, which the command sizes itself by its own header.
fn ethtool(sock: &OwnedFd, ifname: &str, buf: &mut [u32]) -> io::Result<libc::c_int> {
    // SAFETY: every caller builds `buf` as the complete structure its command word names
    // (`ethtool_gstrings` with `len` strings, `ethtool_gfeatures` / `ethtool_sfeatures`
    // with `size` blocks), so the kernel reads and writes within it; it is alive and
    // exclusively borrowed for the call.
    unsafe { ioctl(sock, ifname, buf.as_mut_ptr().cast()) }
}

/// `SIOCETHTOOL` on `ifname` with `data` as the ethtool structure.
///
/// # Safety
/// `data` must point to a complete ethtool structure for the command in its first word,
/// valid for reads and writes for the duration of the call.
unsafe fn ioctl(sock: &OwnedFd, ifname: &str, data: *mut libc::c_void) -> io::Result<libc::c_int> {
    // SAFETY: an all-zero ifreq is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    ifr.ifr_name = to_ifr_name(ifname)?;
    ifr.ifr_ifru.ifru_data = data.cast();
    // SAFETY: SIOCETHTOOL reads one ifreq, which `ifr` is, and the structure its data
    // pointer names, which the caller guarantees.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &raw mut ifr) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_reports_its_features_by_name() {
        // `lo` exists in every namespace and lists the same names `ethtool -k lo` does.
        let f = Features::of("lo").unwrap();
        assert!(
            f.names.iter().any(|n| n == "tx-tcp-segmentation"),
            "{:?}",
            f.names
        );
        assert!(!f.is_on("no-such-feature"));
    }

    #[test]
    fn a_missing_interface_is_an_error() {
        let err = Features::of("vsnosuchif0").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENODEV), "{err}");
    }
}
