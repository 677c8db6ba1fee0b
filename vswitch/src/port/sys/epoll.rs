//! epoll, level-triggered, with a caller-chosen `u64` token per descriptor.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::cvt;

/// What to wait for. Errors and hang-ups are always reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    pub readable: bool,
    pub writable: bool,
}

impl Interest {
    pub const READABLE: Interest = Interest {
        readable: true,
        writable: false,
    };
    pub const WRITABLE: Interest = Interest {
        readable: false,
        writable: true,
    };
    pub const BOTH: Interest = Interest {
        readable: true,
        writable: true,
    };

    fn bits(self) -> u32 {
        let mut bits = 0;
        if self.readable {
            bits |= libc::EPOLLIN as u32;
        }
        if self.writable {
            bits |= libc::EPOLLOUT as u32;
        }
        bits
    }
}

/// An epoll instance (close-on-exec).
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1() takes no pointers; the result is checked before use.
        let raw = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `raw` is a descriptor we just opened and own exclusively.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Epoll { fd })
    }

    /// Watches `fd` for readability (and errors); its events will carry `token`. `fd`
    /// must stay open while watched (closing it removes it from the set).
    pub fn add(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        self.add_with(fd, token, Interest::READABLE)
    }

    /// Watches `fd` for `interest`; its events will carry `token`.
    pub fn add_with(&self, fd: BorrowedFd<'_>, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, interest)
    }

    /// Changes what `fd` is watched for, or its token.
    pub fn modify(&self, fd: BorrowedFd<'_>, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, interest)
    }

    /// Stops watching `fd`.
    pub fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, Interest::READABLE)
    }

    /// Waits up to `timeout` (`None`: forever, zero: poll) for events and stores them in
    /// `events`; returns how many. A signal interrupting the wait returns `Ok(0)`.
    pub fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        let timeout_ms = match timeout {
            None => -1,
            // Round up so a 100 us timeout does not become a busy poll.
            Some(t) => {
                libc::c_int::try_from(t.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX)
            }
        };
        let max = libc::c_int::try_from(events.buf.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `events.buf` has room for `max` epoll_events, exclusively borrowed for
        // the call; the kernel writes at most `max` of them.
        let ret = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                events.buf.as_mut_ptr(),
                max,
                timeout_ms,
            )
        };
        match cvt(ret) {
            Ok(n) => {
                events.len = n as usize;
                Ok(events.len)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                events.len = 0;
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    fn ctl(
        &self,
        op: libc::c_int,
        fd: BorrowedFd<'_>,
        token: u64,
        interest: Interest,
    ) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: interest.bits(),
            u64: token,
        };
        // SAFETY: `event` is a valid epoll_event, alive for the call (the kernel copies
        // it); both descriptors are open for the duration of their borrows.
        cvt(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd.as_raw_fd(), &raw mut event) })
            .map(drop)
    }
}

/// A preallocated array that `Epoll::wait` fills.
pub struct Events {
    buf: Box<[libc::epoll_event]>,
    len: usize,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Events {
    pub fn with_capacity(capacity: usize) -> Events {
        let empty = libc::epoll_event { events: 0, u64: 0 };
        Events {
            buf: vec![empty; capacity.max(1)].into_boxed_slice(),
            len: 0,
        }
    }

    /// The events of the last `wait`.
    pub fn iter(&self) -> impl Iterator<Item = Event> + '_ {
        self.buf[..self.len].iter().map(|e| {
            // Copy out of the (packed, on x86_64) struct before reading the fields.
            let (bits, token) = (e.events, e.u64);
            Event {
                token,
                readable: bits & libc::EPOLLIN as u32 != 0,
                writable: bits & libc::EPOLLOUT as u32 != 0,
                error: bits & libc::EPOLLERR as u32 != 0,
                hangup: bits & libc::EPOLLHUP as u32 != 0,
            }
        })
    }
}

/// One readiness report. `error` / `hangup` come without being asked for: a port that
/// reports them must be read (or written) to learn what happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub token: u64,
    pub readable: bool,
    pub writable: bool,
    pub error: bool,
    pub hangup: bool,
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::super::eventfd::EventFd;
    use super::*;

    #[test]
    fn level_triggered_until_drained() {
        let ep = Epoll::new().unwrap();
        let efd = EventFd::new().unwrap();
        ep.add(efd.as_fd(), 7).unwrap();
        let mut events = Events::with_capacity(4);
        assert_eq!(ep.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
        efd.signal().unwrap();
        for _ in 0..2 {
            assert_eq!(
                ep.wait(&mut events, Some(Duration::from_millis(100)))
                    .unwrap(),
                1
            );
            let ev = events.iter().next().unwrap();
            assert_eq!((ev.token, ev.readable), (7, true));
        }
        efd.drain().unwrap();
        assert_eq!(ep.wait(&mut events, Some(Duration::ZERO)).unwrap(), 0);
        ep.delete(efd.as_fd()).unwrap();
    }
}
