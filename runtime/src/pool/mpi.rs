//! The MPI backend of `Pool` (cargo feature `mpi`): the other ranks of an MPI
//! job are the workers. `Pool::mpi()` and `Pool::auto()` make one.
//!
//! Tasks are found by their registered name, as in a spawned child, so every
//! rank runs the same build; rank 0 runs `main` and the pool uses every other
//! rank. Several pools may exist at once (each has its own MPI tag); they share
//! the worker ranks. Arguments and results travel through the same codec as
//! locally, but handles that hold a file descriptor cannot cross MPI: sending
//! one fails that call with [`Error::InvalidArgument`].
//!
//! Rank 0 cuts the input by the pool's one rule (`chunk.rs`) and queues the
//! chunks; they go to the worker ranks with non-blocking sends, several in
//! flight per worker (up to [`MAX_CHUNKS`] and, past the first [`MIN_CHUNKS`],
//! [`MAX_ITEMS`] items), so a worker always has the next chunk when it finishes
//! one. Every `*_async` call returns once its chunks are queued. There is no
//! background thread: whichever thread waits on the pool (`map`, an iterator's
//! `next`, `get`, `join`, a poll of the future) drives it — sends, polls for
//! results, delivers them to their job (running callbacks) — under one lock,
//! which is also what MPI_THREAD_SERIALIZED asks for (`mpi/world.rs`).
//!
//! # Failure
//! A task that panics is that item's [`Error::TaskPanicked`]; the pool and the
//! rank go on. A rank that dies takes the job with it: Open MPI's `mpirun` (and
//! MPICH's Hydra) terminate every rank when one exits abnormally, so the
//! program ends with a non-zero status and a message naming the rank, never a
//! hang. A rank that stops answering (stopped, frozen, cut off) while it holds
//! chunks — no result and no heartbeat (`mpi/world.rs`) for
//! `MULTIPROC_MPI_TIMEOUT` seconds, [`DEFAULT_TIMEOUT`] if unset — is lost:
//! its chunks are sent to the other ranks (a call may then run twice; the lost
//! rank's late results are dropped), and once every rank is lost each pending
//! call fails with [`Error::RankLost`]. A task that runs long keeps its rank's
//! heartbeat going and is never taken for a lost rank.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ::mpi::Tag;
use ::mpi::topology::SimpleCommunicator;
use ::mpi::traits::*;
use serde::Serialize;

use super::chunk::Feed;
use super::job::{ChunkResult, Deferred, Driver, JobInner, JobShared, Outcome, run_deferred};
use super::state::{RunState, Stopped};
use crate::codec::Payload;
use crate::error::{Error, Result};
use crate::mpi::wire::{FAILED, OK, PANICKED, Reader, Writer};
use crate::mpi::world::{self, FIRST_POOL_TAG, Idle, Ranks};
use crate::sys::mpi::{OwnedSend, isend};
use crate::task::Task;

/// Chunks in flight per worker always allowed (one running, one waiting).
const MIN_CHUNKS: usize = 2;
/// Most chunks in flight per worker.
const MAX_CHUNKS: usize = 32;
/// Past [`MIN_CHUNKS`], add chunks to a worker while it holds fewer items than this.
const MAX_ITEMS: usize = 256;
/// A chunk is closed once its arguments reach this many bytes.
const CHUNK_BYTES: usize = 4 << 20;

/// The environment variable that sets the MPI pool's no-answer timeout.
const TIMEOUT_VAR: &str = "MULTIPROC_MPI_TIMEOUT";
/// How long a rank that holds chunks may say nothing before it is lost.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// [`TIMEOUT_VAR`]'s value: unset is `None` (the default applies); else a
/// finite number of seconds, at least 1 (five heartbeats), or
/// [`Error::InvalidArgument`] naming the variable, the value and what is allowed.
fn timeout_from_env(value: Option<&std::ffi::OsStr>) -> Result<Option<Duration>> {
    let Some(value) = value else { return Ok(None) };
    let text = value.to_string_lossy();
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && (1.0..1e12).contains(&s) => Ok(Some(Duration::from_secs_f64(s))),
        _ => Err(Error::InvalidArgument(format!(
            "{TIMEOUT_VAR}={text:?} is not a timeout; expected a number of seconds, at least 1 (e.g. 30 or 2.5)"
        ))),
    }
}

static NEXT_TAG: AtomicI32 = AtomicI32::new(FIRST_POOL_TAG);

/// The owning handle: dropping it terminates the pool (its worker ranks stay
/// up for other pools until `main` returns).
pub(crate) struct MpiPool {
    pub(crate) shared: Arc<MpiShared>,
}

impl Drop for MpiPool {
    fn drop(&mut self) {
        self.shared.terminate();
    }
}

/// State shared by the pool handle and its results.
pub(crate) struct MpiShared {
    tag: Tag,
    workers: usize,
    timeout: Option<Duration>,
    state: Mutex<State>,
}

struct State {
    run: RunState,
    joined: bool,
    next_chunk: u64,
    /// Encoded chunks waiting for a worker with room.
    queue: VecDeque<Queued>,
    /// The chunks each worker (rank `i + 1`) holds, oldest first.
    in_flight: Vec<VecDeque<Held>>,
    /// When each worker last answered (or was given work while it held none).
    heard: Vec<Instant>,
    /// Why MPI itself failed; every call fails with it from then on.
    failed: Option<String>,
}

/// A chunk on its way: where its results go (`None`: discard them, the pool
/// was terminated).
struct Sent {
    id: u64,
    job: Option<Arc<JobShared>>,
    first: usize,
    count: usize,
    task: &'static str,
}

struct Queued {
    sent: Sent,
    bytes: Vec<u8>,
}

/// A chunk a worker holds, with its bytes (kept to send again if the rank is lost).
struct Held {
    sent: Sent,
    wire: Wire,
}

enum Wire {
    /// MPI is still sending it.
    Sending(OwnedSend),
    /// Sent: the bytes are ours again.
    Sent(Vec<u8>),
}

impl Wire {
    /// Takes the buffer back once MPI has sent it.
    fn complete(&mut self) {
        if let Wire::Sending(s) = self
            && s.test()
        {
            let bytes = s.take_buf();
            *self = Wire::Sent(bytes);
        }
    }

    fn into_bytes(self) -> Vec<u8> {
        match self {
            Wire::Sending(mut s) => s.take_buf(),
            Wire::Sent(bytes) => bytes,
        }
    }
}

fn no_fds(p: Payload) -> Result<Vec<u8>> {
    if p.fds.is_empty() {
        Ok(p.bytes)
    } else {
        Err(Error::InvalidArgument(
            "a handle that holds a file descriptor (Connection, Queue, Lock, Value...) cannot be sent to an MPI \
             rank, which may run on another machine"
                .into(),
        ))
    }
}

/// Builds a chunk message (`mpi/wire.rs`): header, then `(len, bytes)` per call.
struct ChunkBuilder {
    w: Writer,
    count_at: usize,
    first: usize,
    count: usize,
}

impl ChunkBuilder {
    fn new(task: &str, first: usize) -> Result<Self> {
        let mut w = Writer::default();
        w.u64(0); // the chunk's id, set when it is queued
        w.u64(first as u64);
        w.bytes(task.as_bytes())?;
        let count_at = w.buf.len();
        w.u32(0);
        Ok(ChunkBuilder { w, count_at, first, count: 0 })
    }

    fn push(&mut self, args: &[u8]) -> Result<()> {
        self.w.bytes(args)?;
        self.count += 1;
        Ok(())
    }

    fn finish(mut self, id: u64) -> Result<Vec<u8>> {
        self.w.patch_u32(self.count_at, self.count as u32);
        if let Some(slot) = self.w.buf.get_mut(..8) {
            slot.copy_from_slice(&id.to_le_bytes());
        }
        if self.w.buf.len() > i32::MAX as usize {
            return Err(Error::MessageTooLarge { size: self.w.buf.len(), limit: i32::MAX as usize });
        }
        Ok(self.w.buf)
    }
}

/// Reads a worker's reply to `sent` (`mpi/wire.rs`) as the chunk's results.
fn parse_reply(bytes: Vec<u8>, items_at: usize, count: usize, sent: &Sent) -> Result<ChunkResult> {
    let what = "task results";
    if count != sent.count {
        return Err(Error::Decode { what, reason: format!("{count} results for a chunk of {} calls", sent.count) });
    }
    let mut items = VecDeque::with_capacity(count);
    let mut r = Reader::new(&bytes, items_at);
    for _ in 0..count {
        let task = || sent.task.to_string();
        items.push_back(match r.u8(what)? {
            OK => {
                let len = r.bytes(what)?.len();
                // The message is under 2 GiB (MPI's limit), so offsets fit in u32.
                Outcome::Ok { start: (r.pos() - len) as u32, len: len as u32, nfds: 0 }
            }
            PANICKED => {
                let message = r.str(what)?.to_string();
                let location = r.str(what)?.to_string();
                Outcome::Err(Box::new(Error::TaskPanicked { task: task(), message, location }))
            }
            FAILED => Outcome::Err(Box::new(Error::TaskFailed { task: task(), message: r.str(what)?.to_string() })),
            other => return Err(Error::Decode { what, reason: format!("unknown outcome {other}") }),
        });
    }
    if !r.is_empty() {
        return Err(Error::Decode { what, reason: "trailing bytes".into() });
    }
    Ok(ChunkResult::from_outcomes(sent.first, bytes, items))
}

/// Fails every call of `sent` with `err()` (if its results are still wanted).
fn fail_sent(sent: Sent, deferred: &mut Vec<Deferred>, err: &dyn Fn() -> Error) {
    if let Some(job) = sent.job {
        job.deliver(ChunkResult::failed(sent.first, sent.count, err), deferred);
    }
}

impl MpiPool {
    /// A pool over every rank but this one (rank 0).
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the program was not launched under MPI with
    /// `#[multiproc::main]` (or is not rank 0), or if the job has a single rank.
    pub(crate) fn new() -> Result<MpiPool> {
        let info = world::info()?;
        if info.size < 2 {
            return Err(Error::InvalidState(
                "the MPI job has one rank, so the pool would have no workers; start at least two (mpirun -n 2)".into(),
            ));
        }
        let workers = (info.size - 1) as usize;
        // Without MPI_THREAD_SERIALIZED workers send no heartbeats: a long task
        // would look like a lost rank, so only a timeout the user set applies.
        let timeout = timeout_from_env(std::env::var_os(TIMEOUT_VAR).as_deref())?
            .or(info.serialized().then_some(DEFAULT_TIMEOUT));
        let tag = NEXT_TAG.fetch_add(1, Ordering::Relaxed);
        let tag = FIRST_POOL_TAG + (tag - FIRST_POOL_TAG).rem_euclid(32_000);
        let state = State {
            run: RunState::Running,
            joined: false,
            next_chunk: 0,
            queue: VecDeque::new(),
            in_flight: (0..workers).map(|_| VecDeque::new()).collect(),
            heard: vec![Instant::now(); workers],
            failed: None,
        };
        Ok(MpiPool { shared: Arc::new(MpiShared { tag, workers, timeout, state: Mutex::new(state) }) })
    }
}

impl MpiShared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The number of worker ranks.
    pub(crate) fn processes(&self) -> usize {
        self.workers
    }

    /// Worker ranks may live on other hosts: no pids to give.
    pub(crate) fn worker_pids(&self) -> Vec<u32> {
        Vec::new()
    }

    /// Whether work may be submitted (`continuing`: more of a job begun before `close`).
    fn check_open(&self, continuing: bool) -> Result<()> {
        let st = self.state();
        if let Some(msg) = &st.failed {
            return Err(Error::InvalidState(msg.clone()));
        }
        match st.run {
            RunState::Closed if continuing && !st.joined => Ok(()),
            run => Ok(run.check()?),
        }
    }

    /// Encodes calls from `items` into chunks of `feed.chunk_len()` and queues
    /// them, at most `limit` calls; returns whether `items` ran out. A call
    /// that cannot be encoded (or holds a handle) fails on its own.
    pub(crate) fn submit_items<F, A>(
        &self,
        feed: &mut Feed<F>,
        items: &mut dyn Iterator<Item = A>,
        limit: usize,
    ) -> Result<bool>
    where
        F: Task<A>,
        A: Serialize,
    {
        self.check_open(feed.continuing)?;
        let mut deferred = Vec::new();
        let exhausted = feed.cut(items, limit, |feed, first, batch| {
            feed.job.add_submitted(batch.len());
            feed.continuing = true;
            self.encode_batch(feed, first, &batch, &mut deferred)
        })?;
        self.progress_with(&mut deferred, Some(&feed.job));
        run_deferred(deferred);
        Ok(exhausted)
    }

    /// Encodes and queues one batch of calls (one chunk, more if it is large).
    fn encode_batch<F, A>(&self, feed: &Feed<F>, first: usize, batch: &[A], deferred: &mut Vec<Deferred>) -> Result<()>
    where
        F: Task<A>,
        A: Serialize,
    {
        let mut chunk: Option<ChunkBuilder> = None;
        for (k, args) in batch.iter().enumerate() {
            let index = first + k;
            let pushed = feed.task.encode_args(args).and_then(no_fds).and_then(|bytes| {
                let c = match &mut chunk {
                    Some(c) => c,
                    None => chunk.insert(ChunkBuilder::new(feed.name, index)?),
                };
                c.push(&bytes)
            });
            if let Err(e) = pushed {
                if feed.strict {
                    return Err(e);
                }
                if let Some(c) = chunk.take() {
                    self.queue_chunk(feed, c, deferred);
                }
                feed.job.deliver(ChunkResult::one_error(index, e), deferred);
                continue;
            }
            if chunk.as_ref().is_some_and(|c| c.w.buf.len() >= CHUNK_BYTES)
                && let Some(c) = chunk.take()
            {
                self.queue_chunk(feed, c, deferred);
            }
        }
        if let Some(c) = chunk.take() {
            self.queue_chunk(feed, c, deferred);
        }
        Ok(())
    }

    /// Queues a finished chunk (or fails its calls, if it cannot go).
    fn queue_chunk<F>(&self, feed: &Feed<F>, c: ChunkBuilder, deferred: &mut Vec<Deferred>) {
        let mut st = self.state();
        let id = st.next_chunk;
        st.next_chunk += 1;
        let sent = Sent { id, job: Some(feed.job.clone()), first: c.first, count: c.count, task: feed.name };
        match c.finish(id) {
            Ok(_) if st.run == RunState::Terminated => fail_sent(sent, deferred, &|| Stopped::Terminated.into()),
            Ok(bytes) => st.queue.push_back(Queued { sent, bytes }),
            Err(e) => {
                let msg = e.to_string();
                fail_sent(sent, deferred, &|| Error::InvalidArgument(msg.clone()));
            }
        }
    }

    /// Sends queued chunks to live workers with room (the least loaded first).
    fn send_queued(&self, st: &mut State, world: &SimpleCommunicator, ranks: &Ranks) {
        let load = |q: &VecDeque<Held>| q.iter().map(|h| h.sent.count).sum::<usize>();
        while !st.queue.is_empty() {
            let best = st
                .in_flight
                .iter()
                .enumerate()
                .filter(|(i, _)| !ranks.is_lost(i + 1))
                .filter(|(_, q)| q.len() < MIN_CHUNKS || (q.len() < MAX_CHUNKS && load(q) < MAX_ITEMS))
                .min_by_key(|(_, q)| load(q))
                .map(|(i, _)| i);
            let Some(w) = best else { break };
            let Some(Queued { sent, bytes }) = st.queue.pop_front() else { break };
            if st.in_flight[w].is_empty() {
                st.heard[w] = Instant::now();
            }
            let wire = Wire::Sending(isend(world, (w + 1) as i32, self.tag, bytes));
            st.in_flight[w].push_back(Held { sent, wire });
        }
        st.in_flight.iter_mut().flatten().for_each(|h| h.wire.complete());
    }

    /// Gives up the workers that hold chunks and have said nothing (no result,
    /// no heartbeat) for the timeout: their chunks go back to the front of the
    /// queue for the others. Once every worker is lost, every call fails.
    fn drop_silent(&self, st: &mut State, ranks: &mut Ranks, deferred: &mut Vec<Deferred>) {
        let Some(t) = self.timeout else { return };
        for w in 0..self.workers {
            let last = ranks.heard(w + 1).map_or(st.heard[w], |h| h.max(st.heard[w]));
            if st.in_flight[w].is_empty() || ranks.is_lost(w + 1) || last.elapsed() <= t {
                continue;
            }
            ranks.mark_lost(w + 1);
            let held = std::mem::take(&mut st.in_flight[w]);
            let live = (1..=self.workers).filter(|&r| !ranks.is_lost(r)).count();
            log::warn!(
                target: "multiproc",
                "pool (MPI): rank {} said nothing for {t:?} while it held {} chunk(s); it is lost, {live} rank(s) \
                 go on with its work",
                w + 1,
                held.len()
            );
            for h in held.into_iter().rev().filter(|h| h.sent.job.is_some()) {
                st.queue.push_front(Queued { bytes: h.wire.into_bytes(), sent: h.sent });
            }
            if live == 0 {
                let err = || Error::RankLost { rank: (w + 1) as u32, silent_for: t };
                st.failed = Some(err().to_string());
                Self::fail_all(st, deferred, &err);
            }
        }
    }

    /// Sends queued chunks, completes sends, delivers every result that has
    /// arrived to its job. Returns whether anything arrived.
    fn pump(&self, st: &mut State, deferred: &mut Vec<Deferred>) -> Result<bool> {
        let mut ranks = world::lock()?;
        let world = SimpleCommunicator::world();
        self.send_queued(st, &world, &ranks);
        let mut any = false;
        while let Some(probed) = world.any_process().immediate_matched_probe_with_tag(self.tag) {
            let (bytes, status) = probed.matched_receive_vec::<u8>();
            any = true;
            let mut r = Reader::new(&bytes, 0);
            let id = r.u64("task results")?;
            let _first = r.u64("task results")?;
            let count = r.u32("task results")? as usize;
            let items_at = r.pos();
            let Some(w) = (status.source_rank() as usize).checked_sub(1).filter(|&w| w < self.workers) else {
                continue;
            };
            st.heard[w] = Instant::now();
            let q = &mut st.in_flight[w];
            let Some(Held { sent, .. }) = q.iter().position(|h| h.sent.id == id).and_then(|at| q.remove(at)) else {
                continue; // a lost rank's late reply, or a terminated pool's
            };
            let Some(job) = sent.job.clone() else { continue };
            match parse_reply(bytes, items_at, count, &sent) {
                Ok(chunk) => job.deliver(chunk, deferred),
                Err(e) => {
                    let msg = e.to_string();
                    fail_sent(sent, deferred, &|| Error::Decode { what: "task results", reason: msg.clone() });
                }
            }
        }
        ranks.drain_heartbeats(&world);
        if !any {
            self.drop_silent(st, &mut ranks, deferred);
        }
        self.send_queued(st, &world, &ranks);
        Ok(any)
    }

    /// Fails every queued and in-flight call with `err()`; results of chunks
    /// still on a worker are discarded when they arrive.
    fn fail_all(st: &mut State, deferred: &mut Vec<Deferred>, err: &dyn Fn() -> Error) {
        for q in st.queue.drain(..) {
            fail_sent(q.sent, deferred, err);
        }
        for s in st.in_flight.iter_mut().flatten().map(|h| &mut h.sent) {
            if let Some(job) = s.job.take() {
                job.deliver(ChunkResult::failed(s.first, s.count, err), deferred);
            }
        }
    }

    /// Fails the queued and in-flight calls of `job` alone with `err()`.
    fn fail_job(st: &mut State, job: &JobShared, deferred: &mut Vec<Deferred>, err: &dyn Fn() -> Error) {
        let mine = |s: &Sent| s.job.as_ref().is_some_and(|j| std::ptr::eq(Arc::as_ptr(j), job));
        let (failed, kept): (Vec<Queued>, Vec<Queued>) = st.queue.drain(..).partition(|q| mine(&q.sent));
        st.queue.extend(kept);
        for q in failed {
            fail_sent(q.sent, deferred, err);
        }
        for s in st.in_flight.iter_mut().flatten().map(|h| &mut h.sent).filter(|s| mine(s)) {
            if let Some(j) = s.job.take() {
                j.deliver(ChunkResult::failed(s.first, s.count, err), deferred);
            }
        }
    }

    /// Pumps once. If MPI is down, every outstanding call fails with the error;
    /// if only this thread may not call MPI (no MPI_THREAD_SERIALIZED), the
    /// calls of `waiting` (the job this thread waits for) fail, not the others'.
    fn progress_with(&self, deferred: &mut Vec<Deferred>, waiting: Option<&JobShared>) -> bool {
        let mut st = self.state();
        match self.pump(&mut st, deferred) {
            Ok(any) => any,
            Err(e) if world::info().is_ok() => {
                let msg = e.to_string();
                if let Some(job) = waiting {
                    Self::fail_job(&mut st, job, deferred, &|| Error::InvalidState(msg.clone()));
                }
                waiting.is_some()
            }
            Err(e) => {
                let msg = e.to_string();
                Self::fail_all(&mut st, deferred, &|| Error::InvalidState(msg.clone()));
                st.failed = Some(msg);
                true
            }
        }
    }

    fn progress_once(&self, waiting: Option<&JobShared>) -> bool {
        let mut deferred = Vec::new();
        let any = self.progress_with(&mut deferred, waiting);
        run_deferred(deferred);
        any
    }

    /// Accepts no more work; submitted work still completes.
    pub(crate) fn close(&self) {
        let mut st = self.state();
        if st.run == RunState::Running {
            st.run = RunState::Closed;
            log::info!(target: "multiproc", "pool (MPI): closed");
        }
    }

    /// Stops the pool's work: drops the chunks not yet sent and fails every
    /// pending call. MPI cannot interrupt a task that a worker rank is running;
    /// its results are discarded when they arrive.
    pub(crate) fn terminate(&self) {
        let mut deferred = Vec::new();
        {
            let mut st = self.state();
            if st.run != RunState::Terminated {
                log::info!(target: "multiproc", "pool (MPI): terminating");
            }
            st.run = RunState::Terminated;
            Self::fail_all(&mut st, &mut deferred, &|| Stopped::Terminated.into());
        }
        run_deferred(deferred);
    }

    /// Waits until every submitted chunk's results are back (driving the pool).
    pub(crate) fn join(&self) -> Result<()> {
        if self.state().run == RunState::Running {
            return Err(Error::InvalidState(
                "the pool is still running; call close() or terminate() before join()".into(),
            ));
        }
        // This thread must be allowed to drive MPI (and MPI must be up).
        drop(world::lock()?);
        let mut idle = Idle::default();
        loop {
            {
                let st = self.state();
                let out = !st.queue.is_empty() || st.in_flight.iter().flatten().any(|h| h.sent.job.is_some());
                if !out || st.failed.is_some() {
                    break;
                }
            }
            if self.progress_once(None) { idle.reset() } else { idle.pause() }
        }
        self.state().joined = true;
        Ok(())
    }
}

impl Driver for MpiShared {
    fn wait_job(&self, job: &JobShared, deadline: Option<Instant>, cond: &dyn Fn(&JobInner) -> bool) -> bool {
        let mut idle = Idle::default();
        loop {
            if cond(&job.lock()) {
                return true;
            }
            let arrived = self.progress_once(Some(job));
            if cond(&job.lock()) {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            // Let the workers (and other threads using the pool) run.
            if arrived { idle.reset() } else { idle.pause() }
        }
    }

    fn delivers_alone(&self) -> bool {
        false
    }

    fn progress(&self, job: &JobShared) {
        self.progress_once(Some(job));
    }

    /// A rank cannot be stopped: the job's calls still queued never run, and
    /// those already sent are reported cancelled (their results are dropped).
    fn cancel(&self, job: &Arc<JobShared>, _running: bool) -> bool {
        let first = job.set_cancelled();
        let mut deferred = Vec::new();
        Self::fail_job(&mut self.state(), job, &mut deferred, &|| Error::Cancelled);
        run_deferred(deferred);
        first
    }
}

#[cfg(test)]
mod env_tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn the_timeout_variable_is_seconds_or_an_error_naming_it() {
        assert_eq!(timeout_from_env(None).unwrap(), None);
        assert_eq!(timeout_from_env(Some(OsStr::new(" 2.5 "))).unwrap(), Some(Duration::from_millis(2500)));
        for bad in ["", "soon", "0", "0.5", "-1", "inf", "NaN", "1e300"] {
            match timeout_from_env(Some(OsStr::new(bad))) {
                Err(Error::InvalidArgument(msg)) => {
                    assert!(msg.contains(TIMEOUT_VAR) && msg.contains(&format!("{bad:?}")), "{msg}");
                    assert!(msg.contains("number of seconds, at least 1"), "{msg}");
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }
}
