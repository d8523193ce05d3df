//! The worker side of a process pool: a registered task that runs chunks of
//! calls sent over its link until the link closes.
//!
//! Each call is looked up by name in this binary's registry and run under
//! [`unwind::catch`](crate::unwind), the one panic capture, so the parent gets
//! [`Error::TaskPanicked`] with the panic's message and location.
//! Replies are batched: the worker answers every chunk it has buffered, then
//! flushes, and never holds a finished reply longer than [`FLUSH_AFTER`].

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::wire::{self, Cursor, Link, RecvBuf, Window, WireError};
use crate::callmark::{self, Step, WorkerBoard};
use crate::codec;
use crate::error::{Error, Result};
use crate::registry::{self, TaskEntry};
use crate::unwind;

/// Longest a finished reply waits for more to batch with.
const FLUSH_AFTER: Duration = Duration::from_micros(50);
/// Flush once this many replies are waiting, so the parent can refill early.
const FLUSH_FRAMES: usize = 16;
/// Flush once this many reply bytes are waiting.
const FLUSH_BYTES: usize = 256 << 10;

/// What a worker runs once before its first task.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct WorkerConfig {
    /// The initializer's task name and encoded arguments.
    pub(crate) initializer: Option<(String, Vec<u8>)>,
    /// The handles inside the initializer's arguments.
    pub(crate) init_fds: Vec<Link>,
    /// The worker's mark and the pool's cancel table (see `callmark`).
    pub(crate) board: Option<WorkerBoard>,
}

/// The pool worker task. Not for users: the pool starts it.
#[crate::task]
pub(crate) fn pool_worker(link: Link, config: WorkerConfig) {
    run(link.0, config);
}

/// Runs one call of `entry`, appending its encoded result to `out`, and turns a
/// panic or a failure into a [`WireError`] (leaving `out` for the caller to truncate).
fn call(
    entry: Result<&'static TaskEntry>,
    name: &str,
    args: &[u8],
    fds: Vec<OwnedFd>,
    out: &mut Vec<u8>,
) -> Result<Vec<OwnedFd>, WireError> {
    let entry = entry.map_err(|e| WireError::Failed { task: name.to_string(), message: e.to_string() })?;
    match unwind::catch(|| entry.invoke_into(args, fds, out)) {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) => Err(WireError::Failed { task: name.to_string(), message: e.to_string() }),
        Err(unwind::Panic { message, location }) => {
            Err(WireError::Panicked { task: name.to_string(), message, location })
        }
    }
}

fn send_frame(link: BorrowedFd<'_>, kind: u8, body: &[u8]) -> Result<()> {
    let mut buf = Vec::with_capacity(body.len() + wire::HEAD + 1);
    let at = wire::begin_frame(&mut buf);
    buf.push(kind);
    buf.extend_from_slice(body);
    wire::end_frame(&mut buf, at, 0)?;
    wire::send(link, &buf, &[])
}

fn run(link: OwnedFd, config: WorkerConfig) {
    let link = link.as_fd();
    if let Some(board) = config.board {
        callmark::install(board);
    }
    if let Some((name, args)) = &config.initializer {
        let fds = config.init_fds.into_iter().map(|l| l.0).collect();
        if let Err(w) = call(registry::lookup(name), name, args, fds, &mut Vec::new()) {
            let body = codec::encode(&w, "initializer error").map(|p| p.bytes).unwrap_or_default();
            let _ = send_frame(link, wire::INIT_FAILED, &body);
            return;
        }
    }
    if send_frame(link, wire::READY, &[]).is_err() {
        return;
    }
    let _ = serve(link);
}

/// Answers `RUN` frames until the parent closes the link.
fn serve(link: BorrowedFd<'_>) -> Result<()> {
    let mut rx = RecvBuf::new();
    let mut out: Vec<u8> = Vec::with_capacity(64 << 10);
    let mut out_fds: Vec<OwnedFd> = Vec::new();
    let mut oldest: Option<Instant> = None;
    let mut cached: Option<(String, Result<&'static TaskEntry>)> = None;
    let mut pending = 0usize;
    loop {
        if let Some(frame) = rx.next_frame()? {
            let fds_before = out_fds.len();
            run_chunk(&frame.body, frame.fds, &mut cached, &mut out, &mut out_fds)?;
            pending += 1;
            let now = Instant::now();
            let due = pending >= FLUSH_FRAMES || now.duration_since(*oldest.get_or_insert(now)) >= FLUSH_AFTER;
            if callmark::over_memory() {
                // Above `max_memory_per_child`: answer what ran, then exit; the
                // pool re-queues what this worker held and starts another.
                return flush(link, &mut out, &mut out_fds, &mut oldest);
            }
            if out_fds.len() > fds_before || out.len() >= FLUSH_BYTES || due {
                flush(link, &mut out, &mut out_fds, &mut oldest)?;
                pending = 0;
            }
            continue;
        }
        // Nothing complete buffered: take what has arrived, else flush and wait.
        if rx.fill(link)? {
            continue;
        }
        flush(link, &mut out, &mut out_fds, &mut oldest)?;
        pending = 0;
        if rx.eof {
            return Ok(());
        }
        wire::wait_readable(link)?;
        rx.fill(link)?;
    }
}

fn flush(link: BorrowedFd<'_>, out: &mut Vec<u8>, fds: &mut Vec<OwnedFd>, oldest: &mut Option<Instant>) -> Result<()> {
    if !out.is_empty() {
        wire::send(link, out, fds)?;
        out.clear();
        fds.clear();
    }
    *oldest = None;
    Ok(())
}

/// Appends a `DONE` frame in which every one of `count` calls failed with `message`.
fn failed_done(out: &mut Vec<u8>, count: usize, name: &str, message: &str) -> Result<()> {
    let frame_at = wire::begin_frame(out);
    out.push(wire::DONE);
    wire::put_u32(out, count as u32);
    for _ in 0..count {
        out.push(1);
        let at = wire::begin_item(out);
        let w = WireError::Failed { task: name.to_string(), message: message.to_string() };
        codec::encode_into(&w, out, "task error")?;
        wire::end_item(out, at, 0)?;
    }
    wire::end_frame(out, frame_at, 0)
}

/// Runs every call of one `RUN` or `RUN_SEQ` frame and appends its `DONE` or
/// `DONE_SEQ` frame to `out`.
fn run_chunk(
    body: &[u8],
    fds: Vec<OwnedFd>,
    cached: &mut Option<(String, Result<&'static TaskEntry>)>,
    out: &mut Vec<u8>,
    out_fds: &mut Vec<OwnedFd>,
) -> Result<()> {
    let mut c = Cursor::new(body);
    let kind = c.u8()?;
    if kind != wire::RUN && kind != wire::RUN_SEQ {
        return Err(Error::Decode { what: "pool frame", reason: "expected a chunk of calls".into() });
    }
    let window = Window::read(&mut c)?;
    let name_len = c.u16()? as usize;
    let name = std::str::from_utf8(c.bytes(name_len)?)
        .map_err(|_| Error::Decode { what: "pool frame", reason: "task name is not UTF-8".into() })?;
    if cached.as_ref().is_none_or(|(n, _)| n != name) {
        *cached = Some((name.to_string(), registry::lookup(name)));
    }
    let entry = match cached {
        Some((_, Ok(e))) => Ok(*e),
        _ => registry::lookup(name),
    };
    let count = c.u32()? as usize;
    callmark::begin(window.tag, window.job, window.skip, window.end.min(count as u32));
    let r = if kind == wire::RUN_SEQ {
        if !fds.is_empty() {
            return Err(Error::Decode { what: "pool frame", reason: "a batch of calls carries handles".into() });
        }
        run_seq(entry, name, c.rest(), count, out, out_fds)
    } else {
        run_items(entry, name, c, count, fds, out, out_fds)
    };
    callmark::end();
    r
}

/// Runs the calls of a `RUN` frame (one header per call, `c` just before the
/// first) and appends its `DONE` frame to `out`.
fn run_items(
    entry: Result<&'static TaskEntry>,
    name: &str,
    mut c: Cursor<'_>,
    count: usize,
    mut fds: Vec<OwnedFd>,
    out: &mut Vec<u8>,
    out_fds: &mut Vec<OwnedFd>,
) -> Result<()> {
    let frame_at = wire::begin_frame(out);
    out.push(wire::DONE);
    let count_at = out.len();
    wire::put_u32(out, 0);
    let mut ran = 0u32;
    let mut walk = callmark::walk();
    let mut fds_in_frame = 0usize;
    fds.reverse(); // pop from the back in order
    for i in 0..count {
        let len = c.u32()? as usize;
        let nfds = c.u16()? as usize;
        let args = c.bytes(len)?;
        if nfds > fds.len() {
            return Err(Error::Decode {
                what: "pool frame",
                reason: "an item announced more handles than arrived".into(),
            });
        }
        let item_fds: Vec<OwnedFd> = (0..nfds).filter_map(|_| fds.pop()).collect();
        match walk.next(i) {
            Step::Skip => continue,
            Step::Stop => break,
            Step::Run => ran += 1,
        }
        let entry = entry.as_ref().map(|e| *e).map_err(clone_lookup_error);
        let item_at = out.len();
        out.push(0);
        let at = wire::begin_item(out);
        let called = call(entry, name, args, item_fds, out);
        let result = match called {
            Ok(fds) if fds.len() + fds_in_frame + out_fds.len() > wire::MAX_FDS => Err(WireError::Failed {
                task: name.to_string(),
                message: format!(
                    "the results of one chunk carry more than {} handles; use a chunk size of 1",
                    wire::MAX_FDS
                ),
            }),
            other => other,
        };
        match result {
            Ok(fds) => {
                wire::end_item(out, at, fds.len())?;
                fds_in_frame += fds.len();
                out_fds.extend(fds);
            }
            Err(w) => {
                // Drop whatever the failed call wrote; record the error instead.
                out.truncate(item_at);
                out.push(1);
                let at = wire::begin_item(out);
                codec::encode_into(&w, out, "task error")?;
                wire::end_item(out, at, 0)?;
            }
        }
    }
    out[count_at..count_at + 4].copy_from_slice(&ran.to_le_bytes());
    wire::end_frame(out, frame_at, fds_in_frame)
}

/// Runs a `RUN_SEQ` frame's calls (arguments end to end, one decoder pass)
/// and appends its `DONE_SEQ` (or `DONE_VALUES`) frame to `out`.
fn run_seq(
    entry: Result<&'static TaskEntry>,
    name: &str,
    args: &[u8],
    count: usize,
    out: &mut Vec<u8>,
    out_fds: &mut Vec<OwnedFd>,
) -> Result<()> {
    let frame_at = wire::begin_frame(out);
    let kind_at = out.len();
    out.push(wire::DONE_SEQ);
    let count_at = out.len();
    wire::put_u32(out, count as u32);
    wire::put_u16(out, name.len() as u16);
    out.extend_from_slice(name.as_bytes());
    let res = match entry {
        Ok(e) => unwind::capturing(|| e.invoke_seq(args, count, out, unwind::take)).unwrap_or_else(|| {
            Err(Error::TaskFailed { task: name.to_string(), message: "the task has no batch invoker".into() })
        }),
        Err(e) => Err(e),
    };
    // The reply holds the calls that ran (fewer than the frame's when it had
    // a window, or stopped early); a failure fails the whole window.
    let (ran, window) = callmark::progress();
    let failed = if ran > 0 { ran as usize } else { window as usize };
    match res {
        Ok(reply) if reply.fds.len() + out_fds.len() <= wire::MAX_FDS => {
            out[count_at..count_at + 4].copy_from_slice(&ran.to_le_bytes());
            if reply.all_returned {
                out[kind_at] = wire::DONE_VALUES;
            }
            wire::end_frame(out, frame_at, reply.fds.len())?;
            out_fds.extend(reply.fds);
            Ok(())
        }
        Ok(_) => {
            out.truncate(frame_at);
            let msg =
                format!("the results of one chunk carry more than {} handles; use a chunk size of 1", wire::MAX_FDS);
            failed_done(out, failed, name, &msg)
        }
        Err(e) => {
            out.truncate(frame_at);
            failed_done(out, failed, name, &e.to_string())
        }
    }
}

fn clone_lookup_error(e: &Error) -> Error {
    match e {
        Error::UnknownTask { name } => Error::UnknownTask { name: name.clone() },
        other => Error::TaskFailed { task: String::new(), message: other.to_string() },
    }
}
