//! The local backend of `Pool`: worker processes on this machine (the façade is `pool/mod.rs`).
//!
//! One lock (`Core`) guards the workers, the queue of encoded chunks and every
//! link's receive buffer. Whoever holds it may *pump*: read what the workers
//! sent (never blocking), hand results to their jobs, and send queued chunks to
//! workers with room. Three kinds of thread pump:
//!
//! 1. a submitting thread, right after queueing (so `apply_async` goes out at once);
//! 2. a thread waiting for a result, which spins and pumps for a short while
//!    (DESIGN.md, Latency) before it parks;
//! 3. the pool's background thread, which sleeps in `poll` on the links (while no
//!    waiter is spinning), the workers' pidfds and a wake-up socket, and which
//!    alone blocks: it reaps lost workers, fails or retries their chunks, and
//!    starts replacements.
//!
//! Writes never block while the lock is held, except for a chunk sent to a worker
//! with nothing in flight (which is then only reading): a worker with chunks in
//! flight only gets more while they fit in its socket buffer. So a worker blocked
//! writing a large reply and the parent writing a large request never wait on
//! each other.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::job::{ChunkResult, Deferred, JobInner, JobShared, ewma, run_deferred};
use super::wire::{self, Link, RecvBuf, WireError};
use super::worker::{WorkerConfig, pool_worker};
use crate::backoff::Backoff;
use crate::codec;
use crate::context::StartMethod;
use crate::error::{Error, ExitStatus, IoContext, Result};
use crate::process::Process;
use crate::sys;

/// Bytes of requests a worker may have in flight (well under its 4 MiB socket buffer).
const MAX_INFLIGHT_BYTES: usize = 1 << 20;
/// Chunks in flight per worker before anything is measured.
const INITIAL_DEPTH: usize = 4;
/// Most chunks in flight per worker.
const MAX_DEPTH: usize = 256;
/// How much work (ns) to keep queued in each worker: covers a dispatch round trip.
const LOOKAHEAD_NS: f64 = 500_000.0;
/// How much work (ns) consecutive lone calls of one job sent to one worker may
/// share a frame for: small enough that holding them together costs no balance
/// or latency worth measuring, large enough to amortise a frame per call.
const MERGE_NS: f64 = 50_000.0;
/// Most lone calls merged into one frame.
const MAX_MERGE: usize = 256;
/// Bound on each park, so a lost wake-up only costs time.
const PARK: Duration = Duration::from_millis(50);
/// How long a worker that should exit gets before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);

/// How a pool is configured.
pub(crate) struct Config {
    pub(crate) processes: usize,
    pub(crate) method: StartMethod,
    pub(crate) initializer: Option<(String, Vec<u8>)>,
    pub(crate) init_fds: Vec<OwnedFd>,
    pub(crate) max_tasks: Option<usize>,
    pub(crate) retries: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunState {
    Running,
    Closed,
    Terminated,
}

/// One encoded chunk of calls on its way to a worker.
pub(crate) struct Chunk {
    job: Arc<JobShared>,
    first: usize,
    count: usize,
    frame: Vec<u8>,
    fds: Vec<OwnedFd>,
    attempts: u32,
    /// Was in flight with others on a worker that died: runs alone from now on,
    /// so that if it is the cause, it is known.
    suspect: bool,
    sent: Option<Instant>,
    /// Lone calls merged into this one `RUN_SEQ` frame (see [`Chunk::absorb`]):
    /// where each call's arguments start in `frame`. Empty otherwise.
    parts: Vec<u32>,
}

impl Chunk {
    /// The frame's kind byte and task name, and a cursor just past the name.
    fn header(&self) -> Option<(u8, &[u8], wire::Cursor<'_>)> {
        let mut c = wire::Cursor::new(self.frame.get(wire::HEAD..)?);
        let kind = c.u8().ok()?;
        let name_len = c.u16().ok()? as usize;
        let name = c.bytes(name_len).ok()?;
        Some((kind, name, c))
    }

    /// The task name and argument bytes of a lone call without handles (a
    /// per-call frame of one call, as `chunksize=1` makes); `None` otherwise.
    fn lone_call(&self) -> Option<(&[u8], &[u8])> {
        if self.count != 1 || !self.fds.is_empty() || self.suspect || !self.parts.is_empty() {
            return None;
        }
        let (kind, name, mut c) = self.header()?;
        if kind != wire::RUN {
            return None;
        }
        let _count = c.u32().ok()?;
        let _item_header = c.bytes(wire::HEAD).ok()?;
        Some((name, c.rest()))
    }

    /// Appends `next` to this chunk's frame when both are lone calls of the same
    /// job (this one possibly merged already), `next` comes right after it, and
    /// the frame holds less than [`MERGE_NS`] of work as measured on this job's
    /// own replies (no merging before the first: another job's calls say
    /// nothing about these). The worker then runs them in one batch pass and
    /// answers once; `chunksize=1` keeps its meaning (calls are given to workers
    /// one by one, as they have room), without a frame per call.
    fn absorb(&mut self, next: &Chunk) -> bool {
        if next.first != self.first + self.count || !Arc::ptr_eq(&self.job, &next.job) {
            return false;
        }
        let item_ns = self.job.item_ns();
        if item_ns <= 0.0 || self.count >= ((MERGE_NS / item_ns) as usize).clamp(1, MAX_MERGE) {
            return false;
        }
        let Some((_, args)) = next.lone_call() else { return false };
        if self.frame.len() + 2 * args.len() + 64 > u32::MAX as usize {
            return false;
        }
        if self.parts.is_empty() {
            let Some((name, own)) = self.lone_call() else { return false };
            let mut frame = Vec::with_capacity(64 + 2 * (own.len() + args.len()));
            let at = wire::begin_frame(&mut frame);
            frame.push(wire::RUN_SEQ);
            wire::put_u16(&mut frame, name.len() as u16);
            frame.extend_from_slice(name);
            wire::put_u32(&mut frame, 1);
            let start = frame.len() as u32;
            frame.extend_from_slice(own);
            debug_assert_eq!(at, 0);
            self.frame = frame;
            self.parts = vec![start];
        }
        // Checked above: every offset and the frame's length fit in a u32.
        self.parts.push(self.frame.len() as u32);
        self.frame.extend_from_slice(args);
        self.count += 1;
        let count_at = self.parts[0] as usize - 4;
        self.frame[count_at..count_at + 4].copy_from_slice(&(self.count as u32).to_le_bytes());
        // `next` is in the frame now, so the answer is yes whatever this says; it
        // cannot fail, since the length was checked above and there are no fds.
        let header = wire::end_frame(&mut self.frame, 0, 0);
        debug_assert!(header.is_ok(), "merged frame header: {header:?}");
        true
    }

    /// Undoes [`Chunk::absorb`]: the lone calls again, each in its own frame.
    fn split(self) -> Result<Vec<Chunk>> {
        if self.parts.is_empty() {
            return Ok(vec![self]);
        }
        let name = self
            .header()
            .and_then(|(_, name, _)| std::str::from_utf8(name).ok())
            .ok_or_else(|| Error::Decode { what: "pool frame", reason: "a merged frame without a task name".into() })?;
        let mut out = Vec::with_capacity(self.parts.len());
        for (k, &start) in self.parts.iter().enumerate() {
            let end = self.parts.get(k + 1).map_or(self.frame.len(), |&e| e as usize);
            let args = &self.frame[start as usize..end];
            let mut b = ChunkBuilder::new_per_call(name, self.first + k)?;
            b.push(|buf| {
                buf.extend_from_slice(args);
                Ok(Vec::new())
            })?;
            let mut c = b.finish(&self.job)?;
            c.attempts = self.attempts;
            c.suspect = self.suspect;
            out.push(c);
        }
        Ok(out)
    }
}

/// Encodes one chunk: a `RUN` frame naming the task, then each call's arguments.
pub(crate) struct ChunkBuilder {
    frame: Vec<u8>,
    fds: Vec<OwnedFd>,
    count: usize,
    count_at: usize,
    frame_at: usize,
    first: usize,
    /// Where the kind byte is (`RUN_SEQ` until an item carries handles, then `RUN`).
    kind_at: usize,
    /// While `RUN_SEQ`: where each item's bytes start in `frame`.
    starts: Option<Vec<usize>>,
}

impl ChunkBuilder {
    pub(crate) fn new(name: &str, first: usize) -> Result<Self> {
        let name_len =
            u16::try_from(name.len()).map_err(|_| Error::InvalidArgument(format!("task name `{name}` is too long")))?;
        let mut frame = Vec::with_capacity(64);
        let frame_at = wire::begin_frame(&mut frame);
        let kind_at = frame.len();
        frame.push(wire::RUN_SEQ);
        wire::put_u16(&mut frame, name_len);
        frame.extend_from_slice(name.as_bytes());
        let count_at = frame.len();
        wire::put_u32(&mut frame, 0);
        Ok(ChunkBuilder {
            frame,
            fds: Vec::new(),
            count: 0,
            count_at,
            frame_at,
            first,
            kind_at,
            starts: Some(Vec::new()),
        })
    }

    /// A chunk in the per-call layout (`RUN`) from the start: for single calls.
    pub(crate) fn new_per_call(name: &str, first: usize) -> Result<Self> {
        let mut b = ChunkBuilder::new(name, first)?;
        b.frame[b.kind_at] = wire::RUN;
        b.starts = None;
        Ok(b)
    }

    /// A whole chunk of `count` calls encoded in one pass by `encode` (calls laid
    /// end to end). `None` if the calls carry handles: the caller then pushes them
    /// one by one.
    pub(crate) fn batch(
        name: &str,
        first: usize,
        count: usize,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<Vec<OwnedFd>>,
    ) -> Result<Option<Self>> {
        let mut b = ChunkBuilder::new(name, first)?;
        match encode(&mut b.frame) {
            Ok(fds) if fds.is_empty() => {
                b.count = count;
                // Finished as it is: never rewritten to per-call frames.
                b.starts = Some(Vec::new());
                Ok(Some(b))
            }
            Ok(_) | Err(_) => Ok(None),
        }
    }

    /// Items in the chunk so far.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Bytes in the chunk so far.
    pub(crate) fn bytes(&self) -> usize {
        self.frame.len()
    }

    /// Handles in the chunk so far.
    pub(crate) fn nfds(&self) -> usize {
        self.fds.len()
    }

    /// Appends one call, encoded by `encode` (which appends to the buffer and
    /// returns the handles it found). On error the chunk is left unchanged.
    ///
    /// Calls travel end to end (`RUN_SEQ`, one batch pass in the worker) until
    /// one carries handles; then the chunk switches to one header per call (`RUN`).
    pub(crate) fn push(&mut self, encode: impl FnOnce(&mut Vec<u8>) -> Result<Vec<OwnedFd>>) -> Result<()> {
        if self.starts.is_some() {
            let at = self.frame.len();
            return match encode(&mut self.frame) {
                Ok(fds) if fds.is_empty() => {
                    if let Some(starts) = &mut self.starts {
                        starts.push(at);
                    }
                    self.count += 1;
                    Ok(())
                }
                Ok(fds) => {
                    let item = self.frame.split_off(at);
                    self.switch_to_items()?;
                    self.push_item(&item, fds)
                }
                Err(e) => {
                    self.frame.truncate(at);
                    Err(e)
                }
            };
        }
        let at = wire::begin_item(&mut self.frame);
        match encode(&mut self.frame).and_then(|fds| {
            wire::end_item(&mut self.frame, at, fds.len())?;
            Ok(fds)
        }) {
            Ok(fds) => {
                self.fds.extend(fds);
                self.count += 1;
                Ok(())
            }
            Err(e) => {
                self.frame.truncate(at);
                Err(e)
            }
        }
    }

    /// Appends one already encoded call with a header (`RUN` layout).
    fn push_item(&mut self, item: &[u8], fds: Vec<OwnedFd>) -> Result<()> {
        let at = wire::begin_item(&mut self.frame);
        self.frame.extend_from_slice(item);
        wire::end_item(&mut self.frame, at, fds.len())?;
        self.fds.extend(fds);
        self.count += 1;
        Ok(())
    }

    /// Rewrites the calls so far from the `RUN_SEQ` layout to `RUN`'s.
    fn switch_to_items(&mut self) -> Result<()> {
        let Some(starts) = self.starts.take() else { return Ok(()) };
        let body = self.count_at + 4;
        let blob = self.frame.split_off(body);
        let count = self.count;
        self.count = 0;
        for (i, &start) in starts.iter().enumerate() {
            let end = starts.get(i + 1).map_or(blob.len(), |&next| next - body);
            self.push_item(&blob[start - body..end], Vec::new())?;
        }
        debug_assert_eq!(self.count, count);
        self.frame[self.kind_at] = wire::RUN;
        Ok(())
    }

    /// Finishes the chunk for `job`.
    pub(crate) fn finish(mut self, job: &Arc<JobShared>) -> Result<Chunk> {
        if self.count == 1 {
            // A lone call is cheaper in the per-call layout (no batch vectors).
            self.switch_to_items()?;
        }
        let count = self.count as u32;
        self.frame[self.count_at..self.count_at + 4].copy_from_slice(&count.to_le_bytes());
        wire::end_frame(&mut self.frame, self.frame_at, self.fds.len())?;
        Ok(Chunk {
            job: job.clone(),
            first: self.first,
            count: self.count,
            frame: self.frame,
            fds: self.fds,
            attempts: 0,
            suspect: false,
            sent: None,
            parts: Vec::new(),
        })
    }
}

struct Worker {
    proc: Option<Process>,
    pid: u32,
    link: Option<Arc<OwnedFd>>,
    pidfd: Arc<OwnedFd>,
    rx: RecvBuf,
    inflight: VecDeque<Chunk>,
    inflight_bytes: usize,
    sent_items: usize,
    ready: bool,
    /// Gone or going: to be reaped by the background thread.
    lost: bool,
    last_reply: Instant,
}

struct Core {
    state: RunState,
    joined: bool,
    workers: Vec<Worker>,
    queue: VecDeque<Chunk>,
    /// Chunks queued or in flight.
    outstanding: usize,
    /// Workers being started by the background thread.
    spawning: usize,
    /// Why no more work can run (initializer or start-up failure).
    broken: Option<String>,
    /// The first start-up error, for the constructor.
    start_error: Option<Error>,
    /// Workers in a row that died before they reported ready.
    early_deaths: usize,
    /// Exponential average of a chunk's service time, in ns.
    chunk_ns: f64,
    send_buf: Vec<u8>,
    next_id: usize,
}

/// State shared by the pool handle, its results and its background thread.
pub(crate) struct Shared {
    core: Mutex<Core>,
    core_cv: Condvar,
    wake_rx: OwnedFd,
    wake_tx: OwnedFd,
    wake_pending: AtomicBool,
    pumpers: AtomicUsize,
    cfg: Config,
    bg: Mutex<Option<JoinHandle<()>>>,
}

/// The owning handle: dropping it terminates the pool.
pub(crate) struct LocalPool {
    pub(crate) shared: Arc<Shared>,
}

impl LocalPool {
    /// Starts the workers and waits until each has run its initializer.
    pub(crate) fn start(cfg: Config) -> Result<LocalPool> {
        let (wake_rx, wake_tx) = sys::fd::socketpair().ctx("socketpair")?;
        let processes = cfg.processes;
        let shared = Arc::new(Shared {
            core: Mutex::new(Core {
                state: RunState::Running,
                joined: false,
                workers: Vec::new(),
                queue: VecDeque::new(),
                outstanding: 0,
                spawning: 0,
                broken: None,
                start_error: None,
                early_deaths: 0,
                chunk_ns: 0.0,
                send_buf: Vec::new(),
                next_id: 1,
            }),
            core_cv: Condvar::new(),
            wake_rx,
            wake_tx,
            wake_pending: AtomicBool::new(false),
            pumpers: AtomicUsize::new(0),
            cfg,
            bg: Mutex::new(None),
        });
        let pool = LocalPool { shared: shared.clone() };
        let bg = std::thread::Builder::new()
            .name("multiproc-pool".into())
            .spawn(move || background(shared))
            .ctx("spawn the pool's thread")?;
        *pool.shared.bg.lock().unwrap_or_else(|p| p.into_inner()) = Some(bg);
        let deadline = Instant::now() + crate::role::HANDSHAKE_TIMEOUT + Duration::from_secs(processes as u64);
        let failure = {
            let mut c = pool.shared.lock();
            loop {
                if let Some(e) = c.start_error.take() {
                    break Some(e);
                }
                if c.workers.iter().filter(|w| w.ready).count() >= processes {
                    break None;
                }
                if Instant::now() >= deadline {
                    break Some(Error::Handshake {
                        pid: 0,
                        reason: "the pool's workers did not report ready in time".into(),
                    });
                }
                c = pool.shared.core_cv.wait_timeout(c, PARK).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0);
            }
        };
        match failure {
            None => Ok(pool),
            Some(e) => {
                pool.shared.terminate();
                Err(e)
            }
        }
    }
}

impl Drop for LocalPool {
    fn drop(&mut self) {
        self.shared.terminate();
    }
}

fn fail_chunk(chunk: Chunk, deferred: &mut Vec<Deferred>, err: impl Fn() -> Error) {
    chunk.job.deliver(ChunkResult::failed(chunk.first, chunk.count, err), deferred);
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the background thread.
    fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            let _ = wire::send(self.wake_tx.as_fd(), &[1], &[]);
        }
    }

    /// The pids of the current workers.
    pub(crate) fn worker_pids(&self) -> Vec<u32> {
        self.lock().workers.iter().filter(|w| !w.lost).map(|w| w.pid).collect()
    }

    /// The configured number of workers.
    pub(crate) fn processes(&self) -> usize {
        self.cfg.processes
    }

    /// Queues chunks and sends what fits. `continuing`: more chunks of a job that
    /// began before `close` (an `imap` still pulling its input).
    pub(crate) fn submit(&self, chunks: Vec<Chunk>, continuing: bool) -> Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let mut c = self.lock();
        match c.state {
            RunState::Running => {}
            RunState::Closed if continuing && !c.joined => {}
            RunState::Closed => return Err(Error::InvalidState("the pool is closed".into())),
            RunState::Terminated => return Err(Error::InvalidState("the pool was terminated".into())),
        }
        if let Some(b) = &c.broken {
            return Err(Error::InvalidState(b.clone()));
        }
        c.outstanding += chunks.len();
        c.queue.extend(chunks);
        self.dispatch(&mut c);
        Ok(())
    }

    /// Sends queued chunks to workers with room, spread evenly.
    fn dispatch(&self, c: &mut Core) {
        let depth = if c.chunk_ns <= 0.0 {
            INITIAL_DEPTH
        } else {
            ((LOOKAHEAD_NS / c.chunk_ns).ceil() as usize).clamp(2, MAX_DEPTH)
        };
        let max_tasks = self.cfg.max_tasks;
        let fits = |w: &Worker, n: usize, items: usize, bytes: usize, next: &Chunk| {
            w.ready
                && !w.lost
                && w.link.is_some()
                && max_tasks.is_none_or(|m| w.sent_items + items < m)
                && w.inflight.len() + n < depth
                && !w.inflight.front().is_some_and(|c| c.suspect)
                && (!next.suspect || (w.inflight.is_empty() && n == 0))
                && ((w.inflight.is_empty() && n == 0)
                    || w.inflight_bytes + bytes + next.frame.len() <= MAX_INFLIGHT_BYTES)
        };
        let mut any_lost = false;
        loop {
            let Core { workers, queue, send_buf, outstanding, .. } = &mut *c;
            let Some(front) = queue.front() else { break };
            let eligible = workers.iter().filter(|w| fits(w, 0, 0, 0, front)).count();
            if eligible == 0 {
                break;
            }
            let share = queue.len().div_ceil(eligible).max(1);
            let mut sent_any = false;
            // The least loaded first, so that lone calls spread over the workers.
            let mut order: Vec<usize> = (0..workers.len()).collect();
            order.sort_by_key(|&i| workers[i].inflight.len());
            for i in order {
                let w = &mut workers[i];
                let mut batch: Vec<Chunk> = Vec::new();
                let (mut taken, mut items, mut bytes) = (0, 0, 0);
                while taken < share {
                    let Some(next) = queue.front() else { break };
                    if let Some(last) = batch.last_mut()
                        && max_tasks.is_none_or(|m| w.sent_items + items + 1 < m)
                        && w.inflight_bytes + bytes + next.frame.len() <= MAX_INFLIGHT_BYTES
                    {
                        let before = last.frame.len();
                        if last.absorb(next) {
                            bytes = bytes + last.frame.len() - before; // `bytes` counts `before`
                            queue.pop_front();
                            *outstanding -= 1;
                            taken += 1;
                            items += 1;
                            continue;
                        }
                    }
                    if !fits(w, batch.len(), items, bytes, next) || (!batch.is_empty() && !next.fds.is_empty()) {
                        break;
                    }
                    let Some(chunk) = queue.pop_front() else { break };
                    taken += 1;
                    items += chunk.count;
                    bytes += chunk.frame.len();
                    let alone = !chunk.fds.is_empty() || chunk.suspect;
                    batch.push(chunk);
                    if alone {
                        break;
                    }
                }
                if batch.is_empty() {
                    continue;
                }
                let Some(link) = w.link.clone() else { continue };
                let sent = if batch.len() == 1 {
                    wire::send(link.as_fd(), &batch[0].frame, &batch[0].fds)
                } else {
                    send_buf.clear();
                    for ch in &batch {
                        send_buf.extend_from_slice(&ch.frame);
                    }
                    wire::send(link.as_fd(), send_buf, &[])
                };
                if sent.is_err() {
                    w.lost = true;
                    any_lost = true;
                }
                let now = Instant::now();
                for mut ch in batch {
                    ch.sent = Some(now);
                    w.inflight_bytes += ch.frame.len();
                    w.sent_items += ch.count;
                    w.inflight.push_back(ch);
                }
                sent_any = true;
            }
            if !sent_any {
                break;
            }
        }
        if any_lost {
            self.wake();
        }
    }

    /// Reads whatever the workers sent, hands results over, sends more work.
    /// Never blocks on a read. Returns whether anything arrived.
    fn pump(&self, c: &mut Core, deferred: &mut Vec<Deferred>) -> bool {
        let mut progress = false;
        let mut any_lost = false;
        for i in 0..c.workers.len() {
            if c.workers[i].lost {
                continue;
            }
            let Some(link) = c.workers[i].link.clone() else { continue };
            for _ in 0..64 {
                match c.workers[i].rx.fill(link.as_fd()) {
                    Ok(true) => progress = true,
                    Ok(false) => break,
                    Err(_) => {
                        c.workers[i].lost = true;
                        break;
                    }
                }
            }
            loop {
                match c.workers[i].rx.next_frame() {
                    Ok(Some(frame)) => self.handle_frame(c, i, frame, deferred),
                    Ok(None) => break,
                    Err(_) => {
                        c.workers[i].lost = true;
                        break;
                    }
                }
            }
            if c.workers[i].rx.eof {
                c.workers[i].lost = true;
            }
            any_lost |= c.workers[i].lost;
        }
        if any_lost {
            self.wake();
        }
        self.dispatch(c);
        progress
    }

    fn handle_frame(&self, c: &mut Core, i: usize, frame: wire::Frame, deferred: &mut Vec<Deferred>) {
        match frame.body.first().copied() {
            Some(wire::READY) => {
                c.workers[i].ready = true;
                self.core_cv.notify_all();
            }
            Some(wire::INIT_FAILED) => {
                let err: Error = match codec::decode::<WireError>(&frame.body[1..], Vec::new(), "initializer error") {
                    Ok(w) => w.into(),
                    Err(e) => e,
                };
                let msg = format!("the pool's initializer failed: {err}");
                c.workers[i].lost = true;
                if c.start_error.is_none() && c.broken.is_none() {
                    c.start_error = Some(err);
                }
                c.broken = Some(msg.clone());
                self.fail_queue(c, deferred, &msg);
                self.core_cv.notify_all();
            }
            Some(wire::DONE | wire::DONE_SEQ | wire::DONE_VALUES) => {
                let w = &mut c.workers[i];
                let Some(chunk) = w.inflight.pop_front() else {
                    w.lost = true;
                    return;
                };
                w.inflight_bytes -= chunk.frame.len();
                let now = Instant::now();
                let since = chunk.sent.map_or(w.last_reply, |s| s.max(w.last_reply));
                let dt = now.saturating_duration_since(since).as_nanos() as f64;
                w.last_reply = now;
                let retire = self.cfg.max_tasks.is_some_and(|m| w.sent_items >= m) && w.inflight.is_empty();
                if retire {
                    // Closing the link tells the worker to exit; the background thread reaps it.
                    w.link = None;
                    w.lost = true;
                    self.wake();
                }
                let per_item = dt.max(1.0) / chunk.count.max(1) as f64;
                c.chunk_ns = ewma(c.chunk_ns, dt.max(1.0));
                chunk.job.record_item_ns(per_item);
                let (first, count) = (chunk.first, chunk.count);
                match ChunkResult::parse(first, count, frame.body, frame.fds) {
                    Ok(r) => chunk.job.deliver(r, deferred),
                    Err(e) => {
                        let msg = e.to_string();
                        fail_chunk(chunk, deferred, || Error::Decode { what: "task result", reason: msg.clone() });
                    }
                }
                c.outstanding -= 1;
                if c.outstanding == 0 {
                    self.core_cv.notify_all();
                }
            }
            _ => c.workers[i].lost = true,
        }
    }

    /// Fails every queued chunk (the pool cannot run them).
    fn fail_queue(&self, c: &mut Core, deferred: &mut Vec<Deferred>, msg: &str) {
        for chunk in c.queue.drain(..) {
            c.outstanding -= 1;
            fail_chunk(chunk, deferred, || Error::InvalidState(msg.to_string()));
        }
        if c.outstanding == 0 {
            self.core_cv.notify_all();
        }
    }

    /// Pumps once from a waiting thread; returns whether anything arrived.
    fn pump_once(&self) -> bool {
        let mut deferred = Vec::new();
        let progressed = {
            let mut c = self.lock();
            self.pump(&mut c, &mut deferred)
        };
        run_deferred(deferred);
        progressed
    }

    /// Waits until `cond` holds for `job` or `deadline` passes: spins (pumping the
    /// links itself, DESIGN.md Latency) while results keep coming, then parks.
    pub(crate) fn wait_job(
        &self,
        job: &JobShared,
        deadline: Option<Instant>,
        cond: &dyn Fn(&JobInner) -> bool,
    ) -> bool {
        if cond(&job.lock()) {
            return true;
        }
        self.pumpers.fetch_add(1, Ordering::AcqRel);
        let mut backoff = Backoff::new();
        let outcome = loop {
            let progressed = self.pump_once();
            if cond(&job.lock()) {
                break Some(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break Some(false);
            }
            if progressed {
                backoff.reset();
            } else if !backoff.snooze() {
                break None;
            }
        };
        if self.pumpers.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The background thread stops watching the links while someone spins.
            self.wake();
        }
        if let Some(r) = outcome {
            return r;
        }
        let mut g = job.lock();
        loop {
            if cond(&g) {
                return true;
            }
            let max = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    left.min(PARK)
                }
                None => PARK,
            };
            g = job.park(g, max);
            if !cond(&g) {
                // Nothing for a while: help once more, in case the pool's thread
                // is busy (starting a worker) or gone.
                drop(g);
                self.pump_once();
                g = job.lock();
            }
        }
    }

    /// Stops taking work; work already submitted still runs.
    pub(crate) fn close(&self) {
        let mut c = self.lock();
        if c.state == RunState::Running {
            c.state = RunState::Closed;
        }
    }

    /// Kills the workers at once; unfinished calls fail. Idempotent.
    pub(crate) fn terminate(&self) {
        let (workers, queue) = {
            let mut c = self.lock();
            c.state = RunState::Terminated;
            c.outstanding = 0;
            (std::mem::take(&mut c.workers), std::mem::take(&mut c.queue))
        };
        let mut deferred = Vec::new();
        let terminated = || Error::InvalidState("the pool was terminated".into());
        for w in &workers {
            if let Some(p) = &w.proc {
                let _ = p.terminate();
            }
        }
        for chunk in queue {
            fail_chunk(chunk, &mut deferred, terminated);
        }
        for mut w in workers {
            for chunk in w.inflight.drain(..) {
                fail_chunk(chunk, &mut deferred, terminated);
            }
            reap(&mut w);
        }
        self.core_cv.notify_all();
        run_deferred(deferred);
        self.stop_background();
    }

    fn stop_background(&self) {
        self.wake();
        let handle = self.bg.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            if h.thread().id() == std::thread::current().id() {
                return; // a callback on the pool's own thread ended the pool
            }
            let _ = h.join();
        }
    }

    /// Waits for all submitted work, then lets the workers exit and reaps them.
    pub(crate) fn join(&self) -> Result<()> {
        let mut c = self.lock();
        if c.state == RunState::Running {
            return Err(Error::InvalidState(
                "the pool is still running; call close() or terminate() before join()".into(),
            ));
        }
        while c.state == RunState::Closed && c.outstanding > 0 {
            c = self.core_cv.wait_timeout(c, PARK).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0);
        }
        c.joined = true;
        let mut workers = std::mem::take(&mut c.workers);
        drop(c);
        // The pool's thread may hold the links (polling them): stop it first.
        self.stop_background();
        for w in &mut workers {
            w.link = None; // the worker sees the end of its link and exits
        }
        for mut w in workers {
            reap(&mut w);
        }
        Ok(())
    }
}

/// Waits for a worker to exit (killing it after a grace period); its status.
fn reap(w: &mut Worker) -> ExitStatus {
    w.link = None;
    let Some(mut p) = w.proc.take() else { return ExitStatus::Code(0) };
    match p.join_timeout(EXIT_GRACE) {
        Ok(Some(s)) => s,
        _ => {
            let _ = p.kill();
            let _ = p.join();
            p.exitcode().unwrap_or(ExitStatus::Signal(libc::SIGKILL))
        }
    }
}

/// Starts one worker process.
fn spawn_worker(sh: &Shared, id: usize) -> Result<Worker> {
    let (mine, theirs) = sys::fd::socketpair().ctx("socketpair")?;
    sys::fd::set_socket_buffers(mine.as_fd(), 4 << 20);
    sys::fd::set_socket_buffers(theirs.as_fd(), 4 << 20);
    let mut init_fds = Vec::new();
    for f in &sh.cfg.init_fds {
        init_fds.push(Link(sys::fd::dup(f.as_fd()).ctx("dup")?));
    }
    let config = WorkerConfig { initializer: sh.cfg.initializer.clone(), init_fds };
    let mut p = Process::builder(pool_worker, (Link(theirs), config))
        .name(format!("PoolWorker-{id}"))
        .daemon(true)
        .start_method(sh.cfg.method)
        .build()?;
    p.start()?;
    let pid = p.pid().unwrap_or(0);
    let pidfd = sys::fd::dup(p.sentinel()?).ctx("dup")?;
    Ok(Worker {
        proc: Some(p),
        pid,
        link: Some(Arc::new(mine)),
        pidfd: Arc::new(pidfd),
        rx: RecvBuf::new(),
        inflight: VecDeque::new(),
        inflight_bytes: 0,
        sent_items: 0,
        ready: false,
        lost: false,
        last_reply: Instant::now(),
    })
}

/// The pool's background thread: reaps lost workers, starts replacements, and
/// pumps while nobody else does.
fn background(sh: Arc<Shared>) {
    loop {
        // Take lost workers out and decide how many to start.
        let (lost, to_spawn) = {
            let mut c = sh.lock();
            if c.state == RunState::Terminated || c.joined {
                return;
            }
            let mut lost = Vec::new();
            let mut i = 0;
            while i < c.workers.len() {
                if c.workers[i].lost {
                    lost.push(c.workers.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            let have = c.workers.len() + c.spawning;
            let want = if c.broken.is_some() { 0 } else { sh.cfg.processes.saturating_sub(have) };
            c.spawning += want;
            (lost, want)
        };
        for mut w in lost {
            let status = reap(&mut w);
            let mut deferred = Vec::new();
            {
                let mut c = sh.lock();
                // A worker that keeps dying before it is ready (a broken binary, a
                // crash in start-up code) would otherwise be replaced for ever.
                if w.ready {
                    c.early_deaths = 0;
                } else {
                    c.early_deaths += 1;
                    if c.early_deaths >= 3 * sh.cfg.processes.max(1) && c.broken.is_none() {
                        let msg = format!(
                            "pool workers keep dying before they start ({} in a row; the last: {status})",
                            c.early_deaths
                        );
                        if c.start_error.is_none() {
                            c.start_error = Some(Error::Handshake { pid: w.pid, reason: msg.clone() });
                        }
                        sh.fail_queue(&mut c, &mut deferred, &msg);
                        c.broken = Some(msg);
                        sh.core_cv.notify_all();
                    }
                }
                // Without retries, every call the worker held fails (at most once).
                // With retries, calls that were in flight together are run again,
                // each alone, so that only the one that kills a worker by itself is
                // charged an attempt.
                let mut requeue = Vec::new();
                let running = c.state != RunState::Terminated && sh.cfg.retries > 0;
                let mut held_chunks: Vec<Chunk> = Vec::new();
                for chunk in w.inflight.drain(..) {
                    if !running || chunk.parts.is_empty() {
                        held_chunks.push(chunk);
                        continue;
                    }
                    // Merged lone calls are retried as the separate calls they are.
                    let parts = chunk.parts.len();
                    let job = chunk.job.clone();
                    let (first, count) = (chunk.first, chunk.count);
                    match chunk.split() {
                        Ok(singles) => {
                            c.outstanding += parts - 1;
                            held_chunks.extend(singles);
                        }
                        Err(e) => {
                            let msg = e.to_string();
                            c.outstanding = c.outstanding.saturating_sub(1);
                            job.deliver(
                                ChunkResult::failed(first, count, || Error::InvalidState(msg.clone())),
                                &mut deferred,
                            );
                        }
                    }
                }
                let held = held_chunks.len();
                for mut chunk in held_chunks {
                    if running && held > 1 && !chunk.suspect {
                        chunk.suspect = true;
                        chunk.sent = None;
                        requeue.push(chunk);
                    } else if running && chunk.attempts < sh.cfg.retries {
                        chunk.attempts += 1;
                        chunk.suspect = true;
                        chunk.sent = None;
                        requeue.push(chunk);
                    } else {
                        c.outstanding = c.outstanding.saturating_sub(1);
                        let pid = w.pid;
                        fail_chunk(chunk, &mut deferred, || Error::WorkerLost { pid, status });
                    }
                }
                for chunk in requeue.into_iter().rev() {
                    c.queue.push_front(chunk);
                }
                if c.outstanding == 0 {
                    sh.core_cv.notify_all();
                }
                sh.dispatch(&mut c);
            }
            run_deferred(deferred);
        }
        for _ in 0..to_spawn {
            let id = {
                let mut c = sh.lock();
                c.next_id += 1;
                c.next_id - 1
            };
            let started = spawn_worker(&sh, id);
            let mut deferred = Vec::new();
            let mut extra = None;
            {
                let mut c = sh.lock();
                c.spawning -= 1;
                match started {
                    Ok(w) if c.state == RunState::Terminated || c.joined => extra = Some(w),
                    Ok(w) => c.workers.push(w),
                    Err(e) => {
                        let msg = format!("cannot start a pool worker: {e}");
                        if c.start_error.is_none() {
                            c.start_error = Some(e);
                        }
                        if c.workers.iter().all(|w| w.lost) && c.spawning == 0 {
                            c.broken = Some(msg.clone());
                            sh.fail_queue(&mut c, &mut deferred, &msg);
                        }
                        sh.core_cv.notify_all();
                    }
                }
            }
            if let Some(mut w) = extra {
                reap(&mut w);
            }
            run_deferred(deferred);
        }
        // Sleep until a link, a worker's end or a wake-up needs attention.
        let (links, pidfds): (Vec<Arc<OwnedFd>>, Vec<Arc<OwnedFd>>) = {
            let c = sh.lock();
            if c.workers.iter().any(|w| w.lost) {
                continue;
            }
            let watch_links = sh.pumpers.load(Ordering::Acquire) == 0;
            (
                c.workers.iter().filter(|_| watch_links).filter_map(|w| w.link.clone()).collect(),
                c.workers.iter().map(|w| w.pidfd.clone()).collect(),
            )
        };
        let mut fds: Vec<BorrowedFd<'_>> = vec![sh.wake_rx.as_fd()];
        fds.extend(pidfds.iter().map(|f| f.as_fd()));
        fds.extend(links.iter().map(|f| f.as_fd()));
        let ready = sys::fd::poll_readable(&fds, Some(Duration::from_secs(1))).unwrap_or_default();
        if ready.first().copied().unwrap_or(false) {
            // Drain first, then clear the flag: a wake-up that comes in between
            // finds the flag still set and writes nothing, but this iteration has
            // not looked at the pool yet, so it is not lost.
            let mut scratch = [0u8; 64];
            let mut fds = Vec::new();
            while let Ok(Some(n)) = sys::socket::recv_some(sh.wake_rx.as_fd(), &mut scratch, &mut fds, true) {
                if n == 0 {
                    break;
                }
            }
            sh.wake_pending.store(false, Ordering::Release);
        }
        let mut deferred = Vec::new();
        {
            let mut c = sh.lock();
            for (k, pidfd) in pidfds.iter().enumerate() {
                let ended = ready.get(1 + k).copied().unwrap_or(false);
                if let Some(w) = c.workers.iter_mut().find(|w| ended && Arc::ptr_eq(&w.pidfd, pidfd)) {
                    // It ended: read what it sent before, then reap it.
                    w.lost = true;
                }
            }
            // Drain final replies of ended workers before they are reaped.
            for w in c.workers.iter_mut().filter(|w| w.lost) {
                if let Some(link) = w.link.clone() {
                    while let Ok(true) = w.rx.fill(link.as_fd()) {}
                }
            }
            let lost_idx: Vec<usize> = (0..c.workers.len()).filter(|&i| c.workers[i].lost).collect();
            for i in lost_idx {
                while let Ok(Some(frame)) = c.workers[i].rx.next_frame() {
                    sh.handle_frame(&mut c, i, frame, &mut deferred);
                }
                c.workers[i].lost = true;
            }
            sh.pump(&mut c, &mut deferred);
        }
        run_deferred(deferred);
    }
}
