//! Frames: the one layout, writer and readers of every socket in the runtime
//! (connections and their handshake, a child's start-up, the pool's links,
//! managers).
//!
//! A frame is a header — `len: u32 LE` (the body's length), `nfds: u16 LE`
//! (how many fds are attached) — then `len` bytes of body. The fds travel as
//! `SCM_RIGHTS` with the frame's first byte, so once a frame is complete its
//! fds have arrived. A body that holds several items (a pool chunk) gives each
//! item the same header ([`begin`], [`end`], [`parse_header`]).
//!
//! Two readers share the header and the wait policy ([`crate::backoff`]):
//! - [`read_frame`] ([`read_frame_with`]): one frame at a time, the body
//!   received straight into its own `Vec`, so a large message is copied once;
//! - [`RecvBuf`]: a buffer one `recv` fills with many small frames (the
//!   pool's links), the caller waiting with [`wait_until_readable`].
//!
//! Both retry on EINTR; [`read_frame`] refuses a frame longer than its limit
//! before allocating it. On a miss every reader waits as the policy says:
//! yield while that pays, then park in `poll` until the writer's bytes wake it.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use crate::backoff::{self, Backoff};
use crate::error::{Error, Result};
use crate::sys;

/// Header length: `len: u32 LE`, `nfds: u16 LE`.
pub(crate) const HEAD: usize = 6;
/// Longest body a header can announce.
pub(crate) const MAX_LEN: usize = u32::MAX as usize;
/// Most fds one frame may carry.
pub(crate) const MAX_FDS: usize = sys::socket::MAX_FDS;
/// Default largest message a connection accepts (bytes).
pub(crate) const DEFAULT_MAX_MESSAGE: usize = 1 << 30;

/// Who is at the other end of a connection, for [`Error::Closed`].
const PEER: &str = "the connection's peer";

fn cut() -> Error {
    Error::Decode { what: "frame", reason: "peer closed in the middle of a message".into() }
}

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { op, source }
}

/// The header of a frame (or item) with a `len`-byte body and `nfds` fds.
pub(crate) fn header(len: usize, nfds: usize) -> Result<[u8; HEAD]> {
    let len32 = u32::try_from(len).map_err(|_| Error::MessageTooLarge { size: len, limit: MAX_LEN })?;
    if nfds > MAX_FDS {
        return Err(Error::InvalidArgument(format!("{nfds} handles in one message (at most {MAX_FDS})")));
    }
    let mut h = [0u8; HEAD];
    h[..4].copy_from_slice(&len32.to_le_bytes());
    h[4..].copy_from_slice(&(nfds as u16).to_le_bytes());
    Ok(h)
}

/// The `(len, nfds)` the header at the front of `h` announces; `None` if `h`
/// is shorter than [`HEAD`].
pub(crate) fn parse_header(h: &[u8]) -> Option<(usize, usize)> {
    let h = h.get(..HEAD)?;
    Some((u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize, u16::from_le_bytes([h[4], h[5]]) as usize))
}

/// Reserves a header at the end of `buf` for a body appended after it;
/// returns where it is, for [`end`].
pub(crate) fn begin(buf: &mut Vec<u8>) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&[0; HEAD]);
    at
}

/// Fills in the header reserved at `at` by [`begin`]: the length of all that
/// follows it in `buf`, and `nfds`.
pub(crate) fn end(buf: &mut [u8], at: usize, nfds: usize) -> Result<()> {
    let len = buf.len().checked_sub(at + HEAD);
    let slot = buf.get_mut(at..at + HEAD);
    let (Some(len), Some(slot)) = (len, slot) else {
        return Err(Error::InvalidState(format!("no frame header at {at}")));
    };
    slot.copy_from_slice(&header(len, nfds)?);
    Ok(())
}

/// Sends `head` then `body` (whole frames) with `fds` attached to the first
/// byte; blocks while the peer's buffer is full. A peer that has gone is
/// [`Error::Closed`]`(peer)`.
pub(crate) fn send(fd: BorrowedFd<'_>, head: &[u8], body: &[u8], fds: &[RawFd], peer: &'static str) -> Result<()> {
    sys::socket::send_all(fd, head, body, fds).map_err(|e| match e.raw_os_error() {
        Some(libc::EPIPE) | Some(libc::ECONNRESET) => Error::Closed(peer),
        _ => Error::Io { op: "send", source: e },
    })
}

/// Writes one frame: header, `bytes`, and `fds` attached.
pub(crate) fn write_frame(fd: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> Result<()> {
    let head = header(bytes.len(), fds.len())?;
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    send(fd, &head, bytes, &raw, PEER)
}

/// The wait after a look at `fd` found nothing: a spin or a yield while
/// `backoff` says that pays, else a park in `poll` until `fd` is readable
/// (then `backoff` starts afresh). `Ok` means look again;
/// [`Error::Timeout`] once `deadline` has passed.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, backoff: &mut Backoff, deadline: Option<Instant>) -> Result<()> {
    if backoff.snooze_until(deadline) {
        return Ok(());
    }
    let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    let ready = sys::fd::poll_readable(&[fd], timeout).map_err(io("poll"))?;
    backoff.reset();
    if ready.first().copied().unwrap_or(false) { Ok(()) } else { Err(Error::Timeout(timeout.unwrap_or_default())) }
}

/// Blocks until `fd` is readable (or hung up), waiting as the policy says.
pub(crate) fn wait_until_readable(fd: BorrowedFd<'_>) -> Result<()> {
    let mut backoff = Backoff::yielding();
    while !sys::fd::readable_now(fd).map_err(io("poll"))? {
        wait_readable(fd, &mut backoff, None)?;
    }
    Ok(())
}

/// What bounds one [`read_frame_with`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// The longest body accepted.
    pub(crate) max: usize,
    /// When waiting for a frame's first byte gives up ([`Error::Timeout`]).
    pub(crate) first_byte: Option<Instant>,
    /// When waiting for any later byte gives up (`None`: a frame that has
    /// started is read to its end).
    pub(crate) rest: Option<Instant>,
    /// A frame over `max`: its body is read and dropped, so that the next read
    /// starts at the next frame (`true`), or it is refused at once (`false`,
    /// for a peer that may be lying).
    pub(crate) skip_oversized: bool,
}

impl Limits {
    /// A trusted peer's frame of at most `max` bytes: `timeout` bounds the wait
    /// for its first byte only, and an oversized one is skipped.
    fn first_byte_within(max: usize, timeout: Option<Duration>) -> Limits {
        Limits { max, first_byte: backoff::deadline(timeout), rest: None, skip_oversized: true }
    }
}

/// One frame reader's state: the socket and its wait.
struct Rx<'a> {
    fd: BorrowedFd<'a>,
    backoff: Backoff,
    fds: Vec<OwnedFd>,
}

impl Rx<'_> {
    /// One non-blocking receive into `buf`; on a miss, waits until `deadline`.
    /// `Ok(0)` at end of stream.
    fn recv(&mut self, buf: &mut [u8], deadline: Option<Instant>) -> Result<Option<usize>> {
        match sys::socket::recv_some(self.fd, buf, &mut self.fds, true).map_err(io("recv"))? {
            Some(n) => {
                self.backoff.reset();
                Ok(Some(n))
            }
            None => wait_readable(self.fd, &mut self.backoff, deadline).map(|()| None),
        }
    }

    /// Fills `buf` exactly, waiting until `first` for its first byte and until
    /// `rest` for the others; `Ok(false)` at end of stream before any byte.
    fn exact(&mut self, buf: &mut [u8], first: Option<Instant>, rest: Option<Instant>) -> Result<bool> {
        let mut got = 0;
        while got < buf.len() {
            match self.recv(&mut buf[got..], if got == 0 { first } else { rest })? {
                Some(0) if got == 0 => return Ok(false),
                Some(0) => return Err(cut()),
                Some(n) => got += n,
                None => {}
            }
        }
        Ok(true)
    }

    /// Reads and drops `len` bytes (and any fds sent with them).
    fn skip(&mut self, mut len: usize, deadline: Option<Instant>) -> Result<()> {
        let mut scratch = vec![0u8; len.min(64 << 10)];
        while len > 0 {
            let want = len.min(scratch.len());
            match self.recv(&mut scratch[..want], deadline)? {
                Some(0) => return Err(cut()),
                Some(n) => len -= n,
                None => {}
            }
            self.fds.clear();
        }
        Ok(())
    }

    /// Reads a `len`-byte body. Reserves what was announced up to 16 MiB, then
    /// grows as bytes arrive, so a lying length costs no more memory than the
    /// bytes actually sent.
    fn body(&mut self, len: usize, deadline: Option<Instant>) -> Result<Vec<u8>> {
        let mut body = Vec::with_capacity(len.min(16 << 20));
        while body.len() < len {
            if body.capacity() == body.len() {
                body.reserve((len - body.len()).min(body.len().max(1 << 20)));
            }
            let want = len - body.len();
            match sys::socket::recv_into_spare(self.fd, &mut body, want, true).map_err(io("recv"))? {
                Some(0) => return Err(cut()),
                Some(_) => self.backoff.reset(),
                None => wait_readable(self.fd, &mut self.backoff, deadline)?,
            }
        }
        Ok(body)
    }
}

/// Reads one frame. `timeout: None` blocks; a timeout applies to the first byte
/// only (a frame that has started is read to its end). A frame longer than
/// `max` is never allocated: its body is read and dropped, then rejected.
pub(crate) fn read_frame(fd: BorrowedFd<'_>, max: usize, timeout: Option<Duration>) -> Result<(Vec<u8>, Vec<OwnedFd>)> {
    read_frame_with(fd, Limits::first_byte_within(max, timeout))
}

/// Reads one frame within `limits`: its body and the fds it announced.
/// End of stream before the first byte is [`Error::Closed`]; inside a frame,
/// [`Error::Decode`].
pub(crate) fn read_frame_with(fd: BorrowedFd<'_>, limits: Limits) -> Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut rx = Rx { fd, backoff: Backoff::yielding(), fds: Vec::new() };
    let len = read_header(&mut rx, limits)?;
    let body = rx.body(len, limits.rest)?;
    Ok((body, rx.fds))
}

/// A frame read by [`read_frame_headed`]: the body's first 8 bytes (if it has
/// that many), the rest of the body, and the fds.
pub(crate) type HeadedFrame = (Option<[u8; 8]>, Vec<u8>, Vec<OwnedFd>);

/// As [`read_frame`], with the body's first 8 bytes (a byte string's length)
/// read apart from the rest, so that the string can be made in the rest's
/// buffer without moving it down; `None` for a body shorter than 8 bytes.
pub(crate) fn read_frame_headed(fd: BorrowedFd<'_>, max: usize, timeout: Option<Duration>) -> Result<HeadedFrame> {
    let limits = Limits::first_byte_within(max, timeout);
    let mut rx = Rx { fd, backoff: Backoff::yielding(), fds: Vec::new() };
    let len = read_header(&mut rx, limits)?;
    if len < 8 {
        return Ok((None, rx.body(len, limits.rest)?, rx.fds));
    }
    let mut head = [0u8; 8];
    if !rx.exact(&mut head, limits.rest, limits.rest)? {
        return Err(cut());
    }
    let body = rx.body(len - 8, limits.rest)?;
    Ok((Some(head), body, rx.fds))
}

/// Reads a frame's header within `limits` and checks it: the body's length.
fn read_header(rx: &mut Rx<'_>, limits: Limits) -> Result<usize> {
    let mut head = [0u8; HEAD];
    if !rx.exact(&mut head, limits.first_byte, limits.rest)? {
        return Err(Error::Closed(PEER));
    }
    let (len, nfds) = parse_header(&head).unwrap_or_default();
    if len > limits.max {
        if limits.skip_oversized {
            rx.skip(len, limits.rest)?;
        }
        return Err(Error::MessageTooLarge { size: len, limit: limits.max });
    }
    if nfds != rx.fds.len() {
        return Err(Error::Decode { what: "frame", reason: format!("expected {nfds} fds, received {}", rx.fds.len()) });
    }
    Ok(len)
}

/// One complete frame taken from a [`RecvBuf`].
#[derive(Debug)]
pub(crate) struct Frame {
    /// The body (after the header).
    pub(crate) body: Vec<u8>,
    /// The fds the header announced.
    pub(crate) fds: Vec<OwnedFd>,
}

/// The initial (and compaction) size of a trusted peer's [`RecvBuf`].
const RECV_CHUNK: usize = 256 << 10;

/// Buffered frame reader for a trusted peer (a pool link): one `recv` takes in
/// as many frames as have arrived, and the buffer grows at once to a long
/// frame's announced length.
pub(crate) struct RecvBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    fds: VecDeque<OwnedFd>,
    /// A long frame being received straight into its own body (see [`Long`]).
    long: Option<Long>,
    /// The peer closed its end.
    pub(crate) eof: bool,
}

/// A frame of at least [`LONG_FRAME`] bytes, read past the buffer: its body
/// is received in place, so it is handed over without a copy, and the buffer
/// neither grows nor is zeroed for it.
struct Long {
    body: Vec<u8>,
    len: usize,
    fds: Vec<OwnedFd>,
}

/// Frames this long skip the buffer (see [`Long`]).
const LONG_FRAME: usize = RECV_CHUNK / 2;

impl Default for RecvBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBuf {
    /// An empty reader with 256 KiB of room.
    pub(crate) fn new() -> Self {
        RecvBuf { buf: vec![0; RECV_CHUNK], start: 0, end: 0, fds: VecDeque::new(), long: None, eof: false }
    }

    /// Reads what is available without blocking; returns whether any byte arrived.
    pub(crate) fn fill(&mut self, fd: BorrowedFd<'_>) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        self.begin_long()?;
        let r = match &mut self.long {
            Some(long) if long.body.len() == long.len => return Ok(true),
            // At most the rest of this frame: a plain `recv` must not reach the
            // next frame, whose fds it would drop.
            Some(long) => {
                let rest = long.len - long.body.len();
                sys::socket::recv_into_spare(fd, &mut long.body, rest, true)
            }
            None => {
                self.make_room();
                let mut fds = Vec::new();
                let r = sys::socket::recv_some(fd, &mut self.buf[self.end..], &mut fds, true);
                self.fds.extend(fds);
                r
            }
        };
        match r {
            Ok(Some(n)) if self.long.is_some() => return Ok(n > 0 || self.set_eof()),
            Ok(Some(0)) => self.eof = true,
            Ok(Some(n)) => {
                self.end += n;
                return Ok(true);
            }
            Ok(None) => {}
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => self.eof = true,
            Err(e) => return Err(Error::Io { op: "recv", source: e }),
        }
        Ok(false)
    }

    /// Moves unread bytes to the front and grows the buffer for a long frame.
    fn make_room(&mut self) {
        if self.start > 0 && (self.start == self.end || self.buf.len() - self.end < RECV_CHUNK / 4) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let want = self.pending().map_or(0, |(len, _)| HEAD + len);
        if want > self.buf.len() {
            self.buf.resize(want.next_power_of_two().min(MAX_LEN + HEAD), 0);
        } else if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
    }

    /// Marks the end of stream; `false`, for [`RecvBuf::fill`]'s answer.
    fn set_eof(&mut self) -> bool {
        self.eof = true;
        false
    }

    /// Once the next frame's header is buffered and the frame is long and not
    /// all here, moves what arrived of it (and its fds, which came with its
    /// first byte) into a body of its own, and empties the buffer.
    fn begin_long(&mut self) -> Result<()> {
        let Some((len, nfds)) = self.pending().filter(|&(len, _)| self.long.is_none() && len >= LONG_FRAME) else {
            return Ok(());
        };
        let from = self.start + HEAD;
        if self.end - from >= len {
            return Ok(());
        }
        if nfds > self.fds.len() {
            return Err(Error::Decode { what: "frame", reason: "a frame announced more handles than arrived".into() });
        }
        let mut body = Vec::with_capacity(len);
        body.extend_from_slice(&self.buf[from..self.end]);
        let fds = self.fds.drain(..nfds).collect();
        (self.start, self.end) = (0, 0);
        self.long = Some(Long { body, len, fds });
        Ok(())
    }

    /// The header of the next frame, once it is buffered.
    fn pending(&self) -> Option<(usize, usize)> {
        parse_header(&self.buf[self.start..self.end])
    }

    /// The next complete frame, if one is buffered.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>> {
        if let Some(long) = self.long.take_if(|l| l.body.len() == l.len) {
            return Ok(Some(Frame { body: long.body, fds: long.fds }));
        }
        if self.long.is_some() {
            return Ok(None);
        }
        let Some((len, nfds)) = self.pending() else { return Ok(None) };
        if self.end - self.start < HEAD + len {
            return Ok(None);
        }
        if nfds > self.fds.len() {
            return Err(Error::Decode { what: "frame", reason: "a frame announced more handles than arrived".into() });
        }
        let from = self.start + HEAD;
        let body = self.buf[from..from + len].to_vec();
        self.start = from + len;
        let fds = self.fds.drain(..nfds).collect();
        Ok(Some(Frame { body, fds }))
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn frames_round_trip_with_their_fds() {
        let (a, b) = sys::fd::socketpair().unwrap();
        let (x, _y) = sys::fd::socketpair().unwrap();
        write_frame(a.as_fd(), b"hello", &[x.as_fd()]).unwrap();
        write_frame(a.as_fd(), b"", &[]).unwrap();
        let (body, fds) = read_frame(b.as_fd(), 100, None).unwrap();
        assert_eq!((body.as_slice(), fds.len()), (&b"hello"[..], 1));
        let (body, fds) = read_frame(b.as_fd(), 100, None).unwrap();
        assert!(body.is_empty() && fds.is_empty());
        drop(a);
        assert!(matches!(read_frame(b.as_fd(), 100, None), Err(Error::Closed(_))));
    }

    #[test]
    fn an_oversized_frame_is_skipped_or_refused() {
        let (a, b) = sys::fd::socketpair().unwrap();
        write_frame(a.as_fd(), &[7; 300], &[]).unwrap();
        write_frame(a.as_fd(), b"next", &[]).unwrap();
        assert!(matches!(read_frame(b.as_fd(), 100, None), Err(Error::MessageTooLarge { size: 300, .. })));
        assert_eq!(read_frame(b.as_fd(), 100, None).unwrap().0, b"next");
        // A lying length is refused at once when asked, without waiting for the body.
        sys::socket::send_all(a.as_fd(), &header(1 << 30, 0).unwrap(), &[], &[]).unwrap();
        let limits = Limits { max: 100, first_byte: None, rest: Some(Instant::now()), skip_oversized: false };
        assert!(matches!(read_frame_with(b.as_fd(), limits), Err(Error::MessageTooLarge { .. })));
    }

    #[test]
    fn a_timeout_applies_to_the_first_byte() {
        let (a, b) = sys::fd::socketpair().unwrap();
        let r = read_frame(b.as_fd(), 100, Some(Duration::from_millis(5)));
        assert!(matches!(r, Err(Error::Timeout(_))), "{r:?}");
        // A timeout too long for `Instant` arithmetic is a long wait, not a panic.
        write_frame(a.as_fd(), b"late", &[]).unwrap();
        assert_eq!(read_frame(b.as_fd(), 100, Some(Duration::MAX)).unwrap().0, b"late");
    }

    #[test]
    fn the_buffered_reader_splits_frames_and_items_share_the_header() {
        let (a, b) = sys::fd::socketpair().unwrap();
        let (x, _y) = sys::fd::socketpair().unwrap();
        let mut out = Vec::new();
        for body in [&b"one"[..], b"", b"three"] {
            let at = begin(&mut out);
            out.extend_from_slice(body);
            end(&mut out, at, usize::from(body.is_empty())).unwrap();
        }
        assert_eq!(parse_header(&out), Some((3, 0)));
        send(a.as_fd(), &[], &out, &[x.as_raw_fd()], PEER).unwrap();
        drop(a);
        let mut rx = RecvBuf::new();
        wait_until_readable(b.as_fd()).unwrap();
        assert!(rx.fill(b.as_fd()).unwrap());
        for (want, nfds) in [(&b"one"[..], 0), (b"", 1), (b"three", 0)] {
            let f = rx.next_frame().unwrap().unwrap();
            assert_eq!((f.body.as_slice(), f.fds.len()), (want, nfds));
        }
        assert!(rx.next_frame().unwrap().is_none());
        assert!(!rx.fill(b.as_fd()).unwrap() && rx.eof);
    }

    #[test]
    fn the_buffered_reader_takes_long_frames_whole_and_keeps_every_fd() {
        let (a, b) = sys::fd::socketpair().unwrap();
        let bodies: Vec<(Vec<u8>, usize)> = vec![
            (b"a".to_vec(), 1),
            (vec![1; 1 << 20], 2),
            (b"b".to_vec(), 1),
            (vec![2; LONG_FRAME], 0),
            (vec![3; LONG_FRAME - HEAD - 1], 1),
            (b"c".to_vec(), 0),
        ];
        let sent = bodies.clone();
        let writer = std::thread::spawn(move || {
            for (body, nfds) in sent {
                let fds: Vec<OwnedFd> = (0..nfds).map(|_| sys::fd::socketpair().unwrap().0).collect();
                let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
                write_frame(a.as_fd(), &body, &borrowed).unwrap();
            }
        });
        let mut rx = RecvBuf::new();
        let mut got = Vec::new();
        while got.len() < bodies.len() {
            match rx.next_frame().unwrap() {
                Some(f) => got.push((f.body, f.fds.len())),
                None if !rx.fill(b.as_fd()).unwrap() => wait_until_readable(b.as_fd()).unwrap(),
                None => {}
            }
        }
        writer.join().unwrap();
        assert!(got == bodies, "frames or their fds differ");
        assert!(!rx.fill(b.as_fd()).unwrap() && rx.eof);
    }

    #[test]
    fn headers_refuse_what_they_cannot_hold() {
        assert!(header(MAX_LEN + 1, 0).is_err() && header(0, MAX_FDS + 1).is_err());
        assert!(end(&mut [0; 3], 0, 0).is_err());
    }
}
