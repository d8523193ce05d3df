//! The pool's link between the parent and one worker: a socket carrying
//! [frames](crate::codec::frame), read through a [`RecvBuf`] so that one
//! `recv` can bring in many small frames (and one `send` can carry many).
//! This file names the pool's frame kinds and body layouts; the header, the
//! writer, the buffered reader and the wait are the codec's.
//!
//! Bodies (first byte is the kind):
//! - parent → worker `RUN`: the [window](Window) (`tag: u32`, `skip: u32`,
//!   `end: u32`, `job: u64`), `name_len: u16`, name, `count: u32`, then per item
//!   `len: u32`, `nfds: u16`, the encoded arguments. The worker runs calls
//!   `skip .. end` of the frame (the rest of a chunk that was cut short).
//! - worker → parent `READY`: nothing more. `INIT_FAILED`: an encoded [`WireError`].
//!   `DONE`: `count: u32`, then per item `status: u8` (0 ok, 1 error), `len: u32`,
//!   `nfds: u16`, the encoded result or [`WireError`].

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

pub(crate) use crate::codec::fields::{Cursor, put_u16, put_u32, put_u64};
use crate::codec::frame;
pub(crate) use crate::codec::frame::{Frame, RecvBuf};
use crate::error::{Error, Result};

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

/// Where a `RUN`/`RUN_SEQ` frame's [`Window`] starts: right after its kind byte.
pub(crate) const WINDOW_AT: usize = HEAD + 1;
/// Bytes of a [`Window`].
const WINDOW_LEN: usize = 20;

/// Which calls of a `RUN`/`RUN_SEQ` frame a worker runs, and what it tells
/// the pool about them (see `callmark`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    /// The chunk's tag for this sending (the worker's mark names it).
    pub(crate) tag: u32,
    /// The first call to run.
    pub(crate) skip: u32,
    /// One past the last call to run.
    pub(crate) end: u32,
    /// The job's id (its entry in the pool's cancel table).
    pub(crate) job: u64,
}

impl Window {
    /// Appends the window (a frame's, right after its kind byte).
    pub(crate) fn put(&self, buf: &mut Vec<u8>) {
        put_u32(buf, self.tag);
        put_u32(buf, self.skip);
        put_u32(buf, self.end);
        put_u64(buf, self.job);
    }

    /// Overwrites the window of `frame` (a whole `RUN`/`RUN_SEQ` frame).
    pub(crate) fn set(&self, frame: &mut [u8]) {
        let mut w = Vec::with_capacity(WINDOW_LEN);
        self.put(&mut w);
        if let Some(dst) = frame.get_mut(WINDOW_AT..WINDOW_AT + WINDOW_LEN) {
            dst.copy_from_slice(&w);
        }
    }

    /// Reads a window (a cursor just past the kind byte).
    pub(crate) fn read(c: &mut Cursor<'_>) -> Result<Window> {
        let (tag, skip, end) = (c.u32()?, c.u32()?, c.u32()?);
        let job = c.u64()?;
        Ok(Window { tag, skip, end, job })
    }
}

/// Frame (and item) header length.
pub(crate) const HEAD: usize = frame::HEAD;
/// Most fds one frame may carry.
pub(crate) const MAX_FDS: usize = frame::MAX_FDS;

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

/// Starts a frame in `buf`; returns where its header is, for [`end_frame`].
pub(crate) fn begin_frame(buf: &mut Vec<u8>) -> usize {
    frame::begin(buf)
}

/// Fills in the header of the frame begun at `at`.
pub(crate) fn end_frame(buf: &mut [u8], at: usize, nfds: usize) -> Result<()> {
    frame::end(buf, at, nfds)
}

/// Starts an item (`len`, `nfds`: the frame header's layout) in `buf`;
/// returns where its header is.
pub(crate) fn begin_item(buf: &mut Vec<u8>) -> usize {
    frame::begin(buf)
}

/// Fills in the header of the item begun at `at`.
pub(crate) fn end_item(buf: &mut [u8], at: usize, nfds: usize) -> Result<()> {
    frame::end(buf, at, nfds)
}

/// Sends `bytes` (whole frames) with `fds` attached. Blocks while the peer's buffer is full.
pub(crate) fn send(fd: BorrowedFd<'_>, bytes: &[u8], fds: &[OwnedFd]) -> Result<()> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    frame::send(fd, &[], bytes, &raw, "the pool worker's link")
}

/// Blocks until `fd` is readable, waiting as the one policy says.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>) -> Result<()> {
    frame::wait_until_readable(fd)
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
