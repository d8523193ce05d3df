//! Frame reading tuned for manager calls.
//!
//! Manager frames are the one [frame](crate::codec::frame) layout but never
//! carry file descriptors, and a call's reply is usually one small frame: this
//! reader pulls header and body in one plain `recv` and waits on the `recv`
//! itself as the one policy says ([`frame::wait_readable`]: spin or yield
//! while that pays, then park in `poll`), so a prompt reply costs one system
//! call instead of three.

use std::os::fd::BorrowedFd;

use crate::backoff::Backoff;
use crate::codec::frame::{self, HEAD};
use crate::error::{Error, IoContext, Result};
use crate::sys;

/// Reads frames from one connection, keeping bytes that arrived early.
#[derive(Default)]
pub(crate) struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    /// Reads one frame's body; rejects a length over `max` before reading it.
    pub(crate) fn read(&mut self, fd: BorrowedFd<'_>, max: usize) -> Result<Vec<u8>> {
        let mut backoff = Backoff::yielding();
        loop {
            let mut want = HEAD;
            if let Some((len, nfds)) = frame::parse_header(&self.buf) {
                if len > max {
                    return Err(Error::MessageTooLarge { size: len, limit: max });
                }
                if nfds != 0 {
                    return Err(Error::Decode { what: "manager frame", reason: "unexpected file descriptors".into() });
                }
                if self.buf.len() >= HEAD + len {
                    let body = self.buf[HEAD..HEAD + len].to_vec();
                    self.buf.drain(..HEAD + len);
                    return Ok(body);
                }
                want = HEAD + len;
            }
            // Room for the rest of this frame (grown at most 1 MiB at a time, so a
            // lying length costs no more than the bytes actually sent), or 4 KiB.
            let missing = (want - self.buf.len()).clamp(1, 1 << 20);
            self.buf.reserve(missing.max(4096));
            let room = self.buf.capacity() - self.buf.len();
            match sys::socket::recv_into_spare(fd, &mut self.buf, room, true).ctx("recv")? {
                Some(0) if self.buf.is_empty() => return Err(Error::Closed("the connection's peer")),
                Some(0) => {
                    return Err(Error::Decode {
                        what: "manager frame",
                        reason: "peer closed in the middle of a message".into(),
                    });
                }
                Some(_) => backoff.reset(),
                None => frame::wait_readable(fd, &mut backoff, None)?,
            }
        }
    }
}
