//! The pool's link between the parent and one worker: a socket carrying
//! length-prefixed frames, read through a buffer so that one `recv` can bring
//! in many small frames (and one `send` can carry many).
//!
//! Frame: `len: u32 LE` (bytes after this field), `nfds: u16 LE`, then the
//! body. The fds of a frame arrive with its first byte (`SCM_RIGHTS`), so by
//! the time a frame is complete its fds are at the front of the fd queue.
//!
//! Bodies (first byte is the kind):
//! - parent → worker `RUN`: `name_len: u16`, name, `count: u32`, then per item
//!   `len: u32`, `nfds: u16`, the encoded arguments.
//! - worker → parent `READY`: nothing more. `INIT_FAILED`: an encoded [`WireError`].
//!   `DONE`: `count: u32`, then per item `status: u8` (0 ok, 1 error), `len: u32`,
//!   `nfds: u16`, the encoded result or [`WireError`].

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sys;

pub(crate) const RUN: u8 = 1;
pub(crate) const READY: u8 = 2;
pub(crate) const INIT_FAILED: u8 = 3;
pub(crate) const DONE: u8 = 4;
/// A chunk of calls without handles: `name_len: u16`, name, `count: u32`, then
/// the encoded argument tuples laid end to end (no per-item headers), run by
/// the task's batch invoker in one pass.
pub(crate) const RUN_SEQ: u8 = 5;
/// The reply to `RUN_SEQ`: `count: u32`, `name_len: u16`, name, then `count`
/// encoded `Result<R, (message, location)>` laid end to end.
pub(crate) const DONE_SEQ: u8 = 6;
/// `DONE_SEQ` when every call returned: the same header, then `count` encoded
/// `R` laid end to end (no `Result` around each: the common case decodes
/// straight into the caller's vector).
pub(crate) const DONE_VALUES: u8 = 7;

/// Frame header: body length and fd count.
pub(crate) const HEAD: usize = 6;
/// Largest frame a link accepts.
pub(crate) const MAX_FRAME: usize = u32::MAX as usize;
/// Most fds one frame may carry.
pub(crate) const MAX_FDS: usize = sys::socket::MAX_FDS;

/// A failure inside a worker, as it travels to the parent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WireError {
    /// The task panicked.
    Panicked { task: String, message: String, location: String },
    /// The task could not run or its result could not be sent.
    Failed { task: String, message: String },
}

impl From<WireError> for Error {
    fn from(w: WireError) -> Error {
        match w {
            WireError::Panicked { task, message, location } => Error::TaskPanicked { task, message, location },
            WireError::Failed { task, message } => Error::TaskFailed { task, message },
        }
    }
}

pub(crate) fn put_u16(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

fn bad(reason: &str) -> Error {
    Error::Decode { what: "pool frame", reason: reason.to_string() }
}

/// A bounds-checked reader over a frame body: every read from another process
/// that falls short is an [`Error::Decode`], never a panic.
pub(crate) struct Cursor<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or_else(|| bad("truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let r = &self.buf[self.pos.min(self.buf.len())..];
        self.pos = self.buf.len();
        r
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// Reserves a `len: u32`, `nfds: u16` header at the end of `buf`; returns where it is.
fn begin_header(buf: &mut Vec<u8>) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&[0; HEAD]);
    at
}

/// Fills in the header reserved at `at`: the length of what follows it and `nfds`.
fn end_header(buf: &mut [u8], at: usize, nfds: usize) -> Result<()> {
    let len = buf.len() - at - HEAD;
    let len32 = u32::try_from(len).map_err(|_| Error::MessageTooLarge { size: len, limit: MAX_FRAME })?;
    let n16 = u16::try_from(nfds).map_err(|_| Error::InvalidArgument(format!("{nfds} handles in one message")))?;
    buf[at..at + 4].copy_from_slice(&len32.to_le_bytes());
    buf[at + 4..at + 6].copy_from_slice(&n16.to_le_bytes());
    Ok(())
}

/// Starts a frame in `buf`; returns where its header is, for [`end_frame`].
pub(crate) fn begin_frame(buf: &mut Vec<u8>) -> usize {
    begin_header(buf)
}

/// Fills in the header of the frame begun at `at`.
pub(crate) fn end_frame(buf: &mut [u8], at: usize, nfds: usize) -> Result<()> {
    end_header(buf, at, nfds)
}

/// Starts an item (`len`, `nfds`) in `buf`; returns where its header is.
pub(crate) fn begin_item(buf: &mut Vec<u8>) -> usize {
    begin_header(buf)
}

/// Fills in the header of the item begun at `at`.
pub(crate) fn end_item(buf: &mut [u8], at: usize, nfds: usize) -> Result<()> {
    end_header(buf, at, nfds)
}

/// Sends `bytes` (whole frames) with `fds` attached. Blocks while the peer's buffer is full.
pub(crate) fn send(fd: BorrowedFd<'_>, bytes: &[u8], fds: &[OwnedFd]) -> Result<()> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    sys::socket::send_all(fd, &[], bytes, &raw).map_err(|e| match e.raw_os_error() {
        Some(libc::EPIPE) | Some(libc::ECONNRESET) => Error::Closed("the pool worker's link"),
        _ => Error::Io { op: "send", source: e },
    })
}

/// One complete frame taken from a [`RecvBuf`].
pub(crate) struct Frame {
    pub(crate) body: Vec<u8>,
    pub(crate) fds: Vec<OwnedFd>,
}

/// Buffered, non-blocking frame reader.
pub(crate) struct RecvBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    fds: VecDeque<OwnedFd>,
    /// The peer closed its end.
    pub(crate) eof: bool,
}

const RECV_CHUNK: usize = 256 << 10;

impl RecvBuf {
    pub(crate) fn new() -> Self {
        RecvBuf { buf: vec![0; RECV_CHUNK], start: 0, end: 0, fds: VecDeque::new(), eof: false }
    }

    /// Reads what is available without blocking; returns whether any byte arrived.
    pub(crate) fn fill(&mut self, fd: BorrowedFd<'_>) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        // Make room: move unread bytes to the front, grow for a large frame.
        if self.start > 0 && (self.start == self.end || self.buf.len() - self.end < RECV_CHUNK / 4) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let want = self.pending_frame_len().map_or(0, |n| n + HEAD);
        if want > self.buf.len() {
            self.buf.resize(want.next_power_of_two().min(MAX_FRAME + HEAD), 0);
        } else if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let mut got = false;
        let mut fds = Vec::new();
        let r = sys::socket::recv_some(fd, &mut self.buf[self.end..], &mut fds, true);
        self.fds.extend(fds);
        match r {
            Ok(Some(0)) => self.eof = true,
            Ok(Some(n)) => {
                self.end += n;
                got = true;
            }
            Ok(None) => {}
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => self.eof = true,
            Err(e) => return Err(Error::Io { op: "recv", source: e }),
        }
        Ok(got)
    }

    fn pending_frame_len(&self) -> Option<usize> {
        if self.end - self.start < HEAD {
            return None;
        }
        let b = &self.buf[self.start..self.start + 4];
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    /// The next complete frame, if one is buffered.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>> {
        let Some(len) = self.pending_frame_len() else { return Ok(None) };
        if self.end - self.start < HEAD + len {
            return Ok(None);
        }
        let h = &self.buf[self.start + 4..self.start + 6];
        let nfds = u16::from_le_bytes([h[0], h[1]]) as usize;
        if nfds > self.fds.len() {
            return Err(bad("a frame announced more handles than arrived"));
        }
        let body = self.buf[self.start + HEAD..self.start + HEAD + len].to_vec();
        self.start += HEAD + len;
        let fds = self.fds.drain(..nfds).collect();
        Ok(Some(Frame { body, fds }))
    }
}

/// How long a blocked reader spins before sleeping in the kernel (DESIGN.md, Latency).
pub(crate) const SPIN: Duration = Duration::from_micros(50);

/// Blocks until `fd` is readable: spins for [`SPIN`], then polls.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>) -> Result<()> {
    let until = Instant::now() + SPIN;
    while Instant::now() < until {
        if sys::fd::readable_now(fd).map_err(|e| Error::Io { op: "poll", source: e })? {
            return Ok(());
        }
        std::hint::spin_loop();
    }
    sys::fd::poll_readable(&[fd], None).map_err(|e| Error::Io { op: "poll", source: e })?;
    Ok(())
}

/// The socket of a pool link, as a task argument (its fd travels out of band).
#[derive(Debug)]
pub(crate) struct Link(pub(crate) OwnedFd);

impl Serialize for Link {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        crate::codec::share_fd(self.0.as_fd()).map_err(serde::ser::Error::custom)?.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Link {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let i = u32::deserialize(d)?;
        crate::codec::take_fd(i).map(Link).map_err(serde::de::Error::custom)
    }
}
