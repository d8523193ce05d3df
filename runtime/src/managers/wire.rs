//! Frame reading for manager calls: the codec's buffered reader
//! ([`RecvBuf`]) over the one [frame](crate::codec::frame) layout.
//!
//! Manager frames never carry file descriptors, and a call's reply is
//! usually one small frame: the buffered reader pulls header and body in one
//! `recv`, and waits on the `recv` itself as the one policy says (spin or
//! yield while that pays, then park in `poll`), so a prompt reply costs one
//! system call instead of three.

use std::os::fd::BorrowedFd;

use crate::codec::frame::{DEFAULT_MAX_MESSAGE, RecvBuf};
use crate::error::{Error, Result};

/// Reads frames from one connection, keeping bytes that arrived early.
pub(crate) struct Reader {
    rx: RecvBuf,
}

impl Default for Reader {
    fn default() -> Self {
        Reader { rx: RecvBuf::bounded(DEFAULT_MAX_MESSAGE) }
    }
}

impl Reader {
    /// Reads one frame's body; rejects a length over `max` before reading it.
    pub(crate) fn read(&mut self, fd: BorrowedFd<'_>, max: usize) -> Result<Vec<u8>> {
        self.rx.set_max(max);
        let frame = self.rx.read(fd, None);
        // File descriptors have no place in a manager call: close them at once.
        self.rx.discard_fds();
        let frame = frame?;
        if !frame.fds.is_empty() {
            return Err(Error::Decode { what: "manager frame", reason: "unexpected file descriptors".into() });
        }
        Ok(frame.body)
    }
}
