//! Unix socket I/O with file descriptors passed as `SCM_RIGHTS`.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::cmsg_space;
use nix::errno::Errno;
use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// Most fds one message may carry (one `SCM_RIGHTS` per message).
pub(crate) const MAX_FDS: usize = 64;

/// Sends all of `head` then `body`, with `fds` attached to the first byte.
/// Blocks while the peer's buffer is full. `EPIPE` is returned, never raised as `SIGPIPE`.
pub(crate) fn send_all(fd: BorrowedFd<'_>, head: &[u8], body: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let total = head.len() + body.len();
    let mut sent = 0usize;
    while sent < total {
        let iov: [IoSlice<'_>; 2] = if sent < head.len() {
            [IoSlice::new(&head[sent..]), IoSlice::new(body)]
        } else {
            [IoSlice::new(&body[sent - head.len()..]), IoSlice::new(&[])]
        };
        let rights = [ControlMessage::ScmRights(fds)];
        let cmsgs: &[ControlMessage<'_>] = if sent == 0 && !fds.is_empty() { &rights } else { &[] };
        match sendmsg::<()>(fd.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) => sent += n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// One `recvmsg` into `buf`: `Ok(None)` when it would block (`nonblocking`),
/// `Ok(Some(0))` at end of stream. Received fds (`CLOEXEC`) are appended to `fds`.
pub(crate) fn recv_some(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
    nonblocking: bool,
) -> io::Result<Option<usize>> {
    let mut space = cmsg_space!([RawFd; MAX_FDS]);
    let mut flags = MsgFlags::MSG_CMSG_CLOEXEC;
    if nonblocking {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    loop {
        let mut iov = [IoSliceMut::new(buf)];
        match recvmsg::<()>(fd.as_raw_fd(), &mut iov, Some(&mut space), flags) {
            Ok(msg) => {
                for c in msg.cmsgs()? {
                    if let ControlMessageOwned::ScmRights(raw) = c {
                        for r in raw {
                            // SAFETY: the kernel just installed `r` in this process for us alone.
                            fds.push(unsafe { OwnedFd::from_raw_fd(r) });
                        }
                    }
                }
                if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "too many file descriptors in one message"));
                }
                return Ok(Some(msg.bytes));
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::EAGAIN) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reads into the spare capacity of `buf` (at most `max` bytes) without
/// zeroing it first: `Ok(None)` when it would block, `Ok(Some(0))` at end of stream.
pub(crate) fn recv_into_spare(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    max: usize,
    nonblocking: bool,
) -> io::Result<Option<usize>> {
    let spare = buf.spare_capacity_mut();
    let want = spare.len().min(max);
    let flags = if nonblocking { libc::MSG_DONTWAIT } else { 0 };
    loop {
        // SAFETY: `spare` is writable memory of at least `want` bytes owned by `buf`;
        // recv(2) writes at most `want` bytes there.
        let r = unsafe { libc::recv(fd.as_raw_fd(), spare.as_mut_ptr().cast(), want, flags) };
        if r >= 0 {
            let n = r as usize;
            // SAFETY: recv initialised the first `n` bytes of the spare capacity.
            unsafe { buf.set_len(buf.len() + n) };
            return Ok(Some(n));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => return Ok(None),
            _ => return Err(e),
        }
    }
}
