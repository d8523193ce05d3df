//! Frame reading tuned for manager calls.
//!
//! Manager frames have the same layout as [`codec`](crate::codec) frames
//! (`len: u32 LE`, `nfds: u32 LE`, body) but never carry file descriptors, so
//! a reader can pull header and body in one `recv`, and spin on the `recv`
//! itself rather than on `poll` followed by two reads: a prompt reply costs
//! one system call instead of three. The spin is bounded as in the codec, and
//! yields the CPU between attempts, so a peer waiting for the same CPU is not
//! starved by it.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use crate::error::{Error, IoContext, Result};
use crate::sys;

const HEADER: usize = 8;

/// How long a reader retries a non-blocking `recv` before sleeping in `poll`
/// (the codec's figure: about one cross-CPU wake-up on the target machines).
const SPIN: Duration = Duration::from_micros(40);

/// Reads frames from one connection, keeping bytes that arrived early.
#[derive(Default)]
pub(crate) struct Reader {
    buf: Vec<u8>,
}

impl Reader {
    /// Reads one frame's body; rejects a length over `max` before reading it.
    pub(crate) fn read(&mut self, fd: BorrowedFd<'_>, max: usize) -> Result<Vec<u8>> {
        let mut spin_until: Option<Instant> = None;
        loop {
            let mut want = HEADER;
            if self.buf.len() >= HEADER {
                let len = u32::from_le_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
                let nfds = u32::from_le_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]);
                if len > max {
                    return Err(Error::MessageTooLarge { size: len, limit: max });
                }
                if nfds != 0 {
                    return Err(Error::Decode { what: "manager frame", reason: "unexpected file descriptors".into() });
                }
                if self.buf.len() >= HEADER + len {
                    let body = self.buf[HEADER..HEADER + len].to_vec();
                    self.buf.drain(..HEADER + len);
                    return Ok(body);
                }
                want = HEADER + len;
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
                Some(_) => spin_until = None,
                None => {
                    let until = *spin_until.get_or_insert_with(|| Instant::now() + SPIN);
                    if Instant::now() < until {
                        // Yield rather than spin: if the peer shares this CPU (a
                        // loaded 2-core machine), it runs now instead of after our
                        // spin; if it does not, the yield returns at once.
                        std::thread::yield_now();
                    } else {
                        sys::fd::poll_readable(&[fd], None).ctx("poll")?;
                    }
                }
            }
        }
    }
}
