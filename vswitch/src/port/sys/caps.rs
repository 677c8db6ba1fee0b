//! Dropping Linux capabilities the daemon does not need once its ports are open.
//!
//! Kept: CAP_NET_ADMIN (veth pairs, links, addresses, routes), CAP_NET_RAW (AF_PACKET
//! sockets for new endpoints), CAP_SYS_ADMIN (setns into a container's namespace to
//! configure its end), CAP_NET_BIND_SERVICE (a metrics port below 1024), CAP_DAC_OVERRIDE
//! and CAP_FOWNER (state and socket files whatever their owner), CAP_CHOWN (the socket's
//! group). Everything else goes from the bounding, permitted and effective sets, so the
//! daemon cannot load modules, trace processes, reboot, change its uid and the like.

use std::io;

/// Capability numbers (linux/capability.h).
pub const CAP_CHOWN: u32 = 0;
pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_FOWNER: u32 = 3;
pub const CAP_NET_BIND_SERVICE: u32 = 10;
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_NET_RAW: u32 = 13;
pub const CAP_SYS_ADMIN: u32 = 21;

/// What the daemon keeps.
pub const KEEP: [u32; 7] = [
    CAP_CHOWN,
    CAP_DAC_OVERRIDE,
    CAP_FOWNER,
    CAP_NET_BIND_SERVICE,
    CAP_NET_ADMIN,
    CAP_NET_RAW,
    CAP_SYS_ADMIN,
];

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The highest capability number this kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Drops every capability but `keep` from the bounding set, and from the permitted and
/// effective sets of the whole process (all its threads: capset applies to the calling
/// thread, so call it before starting threads that should lose them too — or accept that
/// threads started earlier keep theirs). Returns the effective mask left.
pub fn drop_all_but(keep: &[u32]) -> io::Result<u64> {
    for cap in 0..=last_cap() {
        if keep.contains(&cap) {
            continue;
        }
        // SAFETY: prctl with PR_CAPBSET_DROP takes a capability number; no pointers.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            // EINVAL: a number this kernel does not know; nothing to drop.
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(e);
            }
        }
    }
    let mask: u64 = keep.iter().fold(0u64, |m, c| m | (1u64 << c));
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and a two-element data array as capget(2) version 3 requires, both
    // valid and writable for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    for (i, d) in data.iter_mut().enumerate() {
        let part = (mask >> (32 * i)) as u32;
        d.effective &= part;
        d.permitted &= part;
        d.inheritable &= part;
    }
    // SAFETY: as for capget; capset only reads the structures.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from(data[0].effective) | (u64::from(data[1].effective) << 32))
}
