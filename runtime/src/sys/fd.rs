//! File descriptors: socket pairs, duplication, closing, polling.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::{cvt, cvt_retry};

/// A connected pair of Unix stream sockets, both `CLOEXEC`.
pub(crate) fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` is a writable array of two c_int, as socketpair(2) requires.
    cvt(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) })?;
    // SAFETY: socketpair succeeded, so both fds are open and owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Shuts down one direction of a socket (`libc::SHUT_RD` or `libc::SHUT_WR`).
pub(crate) fn shutdown(fd: BorrowedFd<'_>, how: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall on a valid fd.
    cvt(unsafe { libc::shutdown(fd.as_raw_fd(), how) }).map(drop)
}

/// Sets a socket's send and receive buffer sizes (best effort, as root past the sysctl cap).
pub(crate) fn set_socket_buffers(fd: BorrowedFd<'_>, bytes: libc::c_int) {
    for opt in [libc::SO_SNDBUFFORCE, libc::SO_RCVBUFFORCE, libc::SO_SNDBUF, libc::SO_RCVBUF] {
        // SAFETY: `bytes` is a valid c_int and its size is passed; failure is harmless.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&raw const bytes).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// Duplicates `fd` to a new `CLOEXEC` descriptor.
pub(crate) fn dup(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    fd.try_clone_to_owned()
}

/// Takes ownership of a raw fd number.
///
/// Only for fds this process owns and nothing else will close, e.g. the
/// numbers a forked child kept on purpose or one named in the role variable.
pub(crate) fn adopt(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only reads the fd's flags; it fails with EBADF if fd is not open.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: the fd is open (checked above) and the caller guarantees no other owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Clears `FD_CLOEXEC`, so the fd survives `execve`. Async-signal-safe.
pub(crate) fn clear_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain fcntl on an fd number; fails harmlessly if it is not open.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
}

/// Closes every fd ≥ 3 except those in `keep` (sorted ascending). Async-signal-safe.
pub(crate) fn close_all_except(keep: &[RawFd]) {
    let mut next: libc::c_uint = 3;
    for &k in keep {
        let k = k as libc::c_uint;
        if k >= next {
            if k > next {
                close_range(next, k - 1);
            }
            next = k + 1;
        }
    }
    close_range(next, libc::c_uint::MAX);
}

fn close_range(first: libc::c_uint, last: libc::c_uint) {
    // SAFETY: close_range(2) only closes fds of this process; in a fresh child the
    // closed fds are copies nobody else here owns (the caller's contract).
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0 as libc::c_uint) };
    if r != 0 {
        // Kernel without close_range: close one by one up to the fd limit.
        let max = 65_536.min(last);
        for fd in first..=max {
            // SAFETY: as above; EBADF on fds that are not open is ignored.
            unsafe { libc::close(fd as RawFd) };
        }
    }
}

/// Waits until any of `fds` is readable (or hung up), for at most `timeout`
/// (`None`: forever). Returns one flag per fd.
pub(crate) fn poll_readable(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> =
        fds.iter().map(|fd| libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
    // A timeout past what `Instant` can hold is no deadline at all.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let ms = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                // Round up so a short timeout does not become a busy zero-timeout poll.
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int
            }
        };
        // SAFETY: `pfds` is a valid array of `pfds.len()` pollfd structs.
        let r = cvt_retry(|| unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) })?;
        if r > 0 || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(pfds.iter().map(|p| p.revents != 0).collect());
        }
    }
}

/// A set of fds, each with a token, watched by one fd of its own (an epoll
/// instance): that fd is readable while any member is, and [`ReadySet::ready`]
/// says which. A `poll` of many fds costs each of them a wait-queue entry and
/// exit on every call; a long-lived set pays for a member once, when added.
#[derive(Debug)]
pub(crate) struct ReadySet(nix::sys::epoll::Epoll);

impl ReadySet {
    /// An empty set (`CLOEXEC`).
    pub(crate) fn new() -> io::Result<Self> {
        use nix::sys::epoll::{Epoll, EpollCreateFlags};
        Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map(ReadySet).map_err(io::Error::from)
    }

    /// Watches `fd` for readability (level-triggered), reported as `token`.
    pub(crate) fn add(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        use nix::sys::epoll::{EpollEvent, EpollFlags};
        self.0.add(fd, EpollEvent::new(EpollFlags::EPOLLIN, token)).map_err(io::Error::from)
    }

    /// Stops watching `fd` (closing every copy of it does too).
    pub(crate) fn remove(&self, fd: BorrowedFd<'_>) {
        // ENOENT (never added, or already gone) leaves nothing to undo.
        let _ = self.0.delete(fd);
    }

    /// The tokens of members readable now, without waiting (up to 64 per
    /// call: the set stays readable while more are).
    pub(crate) fn ready(&self) -> Vec<u64> {
        use nix::sys::epoll::{EpollEvent, EpollTimeout};
        let mut events = [EpollEvent::empty(); 64];
        loop {
            match self.0.wait(&mut events, EpollTimeout::ZERO) {
                Ok(n) => return events[..n].iter().map(|e| e.data()).collect(),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return Vec::new(),
            }
        }
    }

    /// The fd to `poll` for the set: readable while any member is.
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.0.0.as_fd()
    }
}

/// Whether `fd` is readable right now.
pub(crate) fn readable_now(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // One look, no allocation and no clock: the wait policy may call this in a loop.
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: `p` is one valid pollfd, and poll(2) writes only its `revents`.
    let r = cvt_retry(|| unsafe { libc::poll(&mut p, 1, 0) })?;
    Ok(r > 0 && p.revents != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_ready_set_names_its_readable_members_until_they_are_removed() {
        let set = ReadySet::new().expect("epoll");
        let (a_rx, a_tx) = socketpair().expect("socketpair");
        let (b_rx, _b_tx) = socketpair().expect("socketpair");
        set.add(a_rx.as_fd(), 7).expect("add");
        set.add(b_rx.as_fd(), 9).expect("add");
        assert!(set.ready().is_empty(), "nothing written yet");
        assert!(!readable_now(set.as_fd()).expect("poll"));
        drop(a_tx); // end of stream: readable
        assert!(readable_now(set.as_fd()).expect("poll"), "the set's own fd reports a member");
        assert_eq!(set.ready(), vec![7]);
        assert_eq!(set.ready(), vec![7], "level-triggered: still readable");
        set.remove(a_rx.as_fd());
        assert!(set.ready().is_empty());
        assert!(!readable_now(set.as_fd()).expect("poll"));
        set.remove(a_rx.as_fd()); // removing twice is harmless
    }
}
