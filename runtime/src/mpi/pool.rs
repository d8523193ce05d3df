//! [`MpiPool`]: the pool's methods, with worker ranks instead of local processes.
//!
//! Rank 0 cuts the inputs into chunks and pushes them to the worker ranks with
//! non-blocking sends, keeping several chunks in flight per worker (up to
//! [`MAX_CHUNKS`] chunks and, past the first [`MIN_CHUNKS`], [`MAX_ITEMS`]
//! items), so a worker always has the next chunk when it finishes one and small
//! tasks do not pay a round trip each. There is no background thread: whichever
//! thread waits on the pool (in `map`, an iterator's `next`, `get`, `join`)
//! drives it — sends, polls for results, routes them to their job — under one
//! lock, which is also what MPI_THREAD_SERIALIZED asks for.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mpi::Tag;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::wire::{FAILED, OK, PANICKED, Reader, Writer};
use super::world::{self, FIRST_POOL_TAG, Idle};
use crate::codec::{self, Payload};
use crate::error::{Error, Result};
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
/// Items a lazy iterator keeps submitted ahead of its consumer, per worker.
const WINDOW_PER_WORKER: usize = 64;
/// Most items in one chunk of a lazy iterator.
const MAX_STREAM_CHUNK: usize = 64;
/// Work a lazy iterator aims to put in one chunk, once it has measured the task rate.
const STREAM_CHUNK_TIME: Duration = Duration::from_millis(1);

static NEXT_TAG: AtomicI32 = AtomicI32::new(FIRST_POOL_TAG);

/// A pool whose workers are the other ranks of an MPI job.
///
/// It has the methods of the local pool, with the same names, arguments and
/// errors; tasks are found by their registered name, as in a spawned child, so
/// every rank must run the same build. Rank 0 runs `main`; the pool uses every
/// other rank. Several pools may exist at once (each has its own MPI tag); they
/// share the worker ranks.
///
/// Arguments and results travel through the same codec as in the local pool,
/// but handles that hold a file descriptor (`Connection`, `Queue`, `Lock`…)
/// cannot cross MPI: sending one is an [`Error::InvalidArgument`].
///
/// # Failure
/// A task that panics is that item's [`Error::TaskPanicked`]; the pool and the
/// rank go on. A rank that dies takes the job with it: Open MPI's `mpirun` (and
/// MPICH's Hydra) terminate every rank when one exits abnormally, so the
/// program ends with a non-zero status and a message naming the rank, never a
/// hang. Set `MULTIPROC_MPI_TIMEOUT=<seconds>` to also abort the job (MPI_Abort)
/// when rank 0 has chunks out and hears nothing from any worker for that long.
///
/// ```no_run
/// #[multiproc::task]
/// fn square(x: u64) -> u64 { x * x }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     // mpirun -n 3 target/release/examples/prog
///     let pool = multiproc::mpi::MpiPool::new()?;
///     assert_eq!(pool.map(square, 0..4)?, vec![0, 1, 4, 9]);
///     Ok(())
/// }
/// ```
pub struct MpiPool {
    inner: Arc<Inner>,
}

struct Inner {
    tag: Tag,
    workers: usize,
    timeout: Option<Duration>,
    state: Mutex<State>,
}

struct State {
    closed: bool,
    next_job: u64,
    jobs: HashMap<u64, JobBuf>,
    /// Encoded chunks waiting for a worker with room: (item count, message).
    queue: VecDeque<(usize, Vec<u8>)>,
    /// Item counts of the chunks each worker (rank `i + 1`) holds, oldest first.
    in_flight: Vec<VecDeque<usize>>,
    sends: Vec<OwnedSend>,
    last_heard: Instant,
}

#[derive(Default)]
struct JobBuf {
    /// Chunks queued or in flight whose results have not arrived.
    expected: usize,
    arrived: VecDeque<Arrived>,
}

/// The results of one chunk, decoded item by item when consumed.
struct Arrived {
    first: u64,
    count: u32,
    bytes: Vec<u8>,
    items_at: usize,
}

impl Arrived {
    /// Decodes every outcome of the chunk, in order.
    fn decode<R: DeserializeOwned>(&self, task: &str, out: &mut impl Extend<Result<R>>) -> Result<()> {
        let mut r = Reader::new(&self.bytes, self.items_at);
        for _ in 0..self.count {
            let item = match r.u8("task results")? {
                OK => codec::decode(r.bytes("task results")?, Vec::new(), "task result"),
                PANICKED => {
                    let message = r.str("task results")?.to_string();
                    let location = r.str("task results")?.to_string();
                    Err(Error::TaskPanicked { task: task.to_string(), message, location })
                }
                FAILED => {
                    Err(Error::TaskFailed { task: task.to_string(), message: r.str("task results")?.to_string() })
                }
                other => {
                    return Err(Error::Decode { what: "task results", reason: format!("unknown outcome {other}") });
                }
            };
            out.extend(std::iter::once(item));
        }
        if r.is_empty() { Ok(()) } else { Err(Error::Decode { what: "task results", reason: "trailing bytes".into() }) }
    }
}

fn terminated() -> Error {
    Error::InvalidState("the pool was terminated".into())
}

fn closed_error() -> Error {
    Error::InvalidState("the pool is closed".into())
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

/// Python's default chunk size for `map`: about four chunks per worker.
fn default_chunksize(items: usize, workers: usize) -> usize {
    let per = workers.max(1) * 4;
    items.div_ceil(per).max(1)
}

/// Builds chunk messages: header, then `(len, bytes)` per item.
struct ChunkBuilder {
    w: Writer,
    count_at: usize,
    count: usize,
}

impl ChunkBuilder {
    fn new(job: u64, first: u64, task: &str) -> Result<Self> {
        let mut w = Writer::default();
        w.u64(job);
        w.u64(first);
        w.bytes(task.as_bytes())?;
        let count_at = w.buf.len();
        w.u32(0);
        Ok(ChunkBuilder { w, count_at, count: 0 })
    }

    fn push(&mut self, args: &[u8]) -> Result<()> {
        self.w.bytes(args)?;
        self.count += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<(usize, Vec<u8>)> {
        self.w.patch_u32(self.count_at, self.count as u32);
        if self.w.buf.len() > i32::MAX as usize {
            return Err(Error::MessageTooLarge { size: self.w.buf.len(), limit: i32::MAX as usize });
        }
        Ok((self.count, self.w.buf))
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn new_job(&self) -> u64 {
        let mut st = self.state();
        let job = st.next_job;
        st.next_job += 1;
        st.jobs.insert(job, JobBuf::default());
        job
    }

    fn forget_job(&self, job: u64) {
        self.state().jobs.remove(&job);
    }

    /// Queues a chunk of `job`; fails if the job is gone (the pool was terminated).
    fn submit(&self, st: &mut State, job: u64, chunk: (usize, Vec<u8>)) -> Result<()> {
        let j = st.jobs.get_mut(&job).ok_or_else(terminated)?;
        j.expected += 1;
        st.queue.push_back(chunk);
        Ok(())
    }

    /// Finishes `chunk` of `job`, queues it and pumps.
    fn submit_and_pump(&self, job: u64, chunk: ChunkBuilder) -> Result<()> {
        let chunk = chunk.finish()?;
        let mut st = self.state();
        self.submit(&mut st, job, chunk)?;
        self.pump(&mut st)?;
        Ok(())
    }

    /// Sends queued chunks to workers with room, completes sends, receives every
    /// result that has arrived. Returns whether anything arrived.
    fn pump(&self, st: &mut State) -> Result<bool> {
        let _mpi = world::lock()?;
        let world = SimpleCommunicator::world();
        while let Some((count, _)) = st.queue.front() {
            let count = *count;
            let best = st
                .in_flight
                .iter()
                .enumerate()
                .filter(|(_, q)| q.len() < MIN_CHUNKS || (q.len() < MAX_CHUNKS && q.iter().sum::<usize>() < MAX_ITEMS))
                .min_by_key(|(_, q)| q.iter().sum::<usize>())
                .map(|(i, _)| i);
            let Some(w) = best else { break };
            let Some((_, bytes)) = st.queue.pop_front() else { break };
            if st.in_flight.iter().all(VecDeque::is_empty) {
                st.last_heard = Instant::now();
            }
            st.in_flight[w].push_back(count);
            st.sends.push(isend(&world, (w + 1) as i32, self.tag, bytes));
        }
        st.sends.retain_mut(|s| !s.test());
        let mut any = false;
        while let Some(probed) = world.any_process().immediate_matched_probe_with_tag(self.tag) {
            let (bytes, status) = probed.matched_receive_vec::<u8>();
            any = true;
            st.last_heard = Instant::now();
            let src = status.source_rank() as usize;
            if let Some(q) = src.checked_sub(1).and_then(|i| st.in_flight.get_mut(i)) {
                q.pop_front();
            }
            let mut r = Reader::new(&bytes, 0);
            let job = r.u64("task results")?;
            let first = r.u64("task results")?;
            let count = r.u32("task results")?;
            let items_at = r.pos();
            if let Some(j) = st.jobs.get_mut(&job) {
                j.expected = j.expected.saturating_sub(1);
                j.arrived.push_back(Arrived { first, count, bytes, items_at });
            }
        }
        if !any
            && let Some(t) = self.timeout
            && st.in_flight.iter().any(|q| !q.is_empty())
            && st.last_heard.elapsed() > t
        {
            world::abort_job(
                &world,
                4,
                &format!("no result from any worker rank for {t:?} (MULTIPROC_MPI_TIMEOUT) while tasks were out"),
            );
        }
        Ok(any)
    }

    /// Drives the pool until `done` holds, or `deadline` passes (`Ok(false)`).
    fn wait_until(&self, mut done: impl FnMut(&mut State) -> bool, deadline: Option<Instant>) -> Result<bool> {
        let mut idle = Idle::default();
        loop {
            {
                let mut st = self.state();
                if done(&mut st) {
                    return Ok(true);
                }
                let nothing_out = st.queue.is_empty() && st.in_flight.iter().all(VecDeque::is_empty);
                let arrived = self.pump(&mut st)?;
                if done(&mut st) {
                    return Ok(true);
                }
                if nothing_out && !arrived {
                    return Err(Error::InvalidState("waiting for results of tasks that were never sent".into()));
                }
                if arrived {
                    idle.reset();
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            // Let the workers (and other threads using the pool) run.
            idle.pause();
        }
    }

    /// Whether results of `job` are waiting, or the job is gone (terminated).
    fn job_arrived(st: &mut State, job: u64) -> bool {
        st.jobs.get(&job).is_none_or(|j| !j.arrived.is_empty())
    }
}

/// The environment variable that sets the MPI pool's no-progress timeout.
const TIMEOUT_VAR: &str = "MULTIPROC_MPI_TIMEOUT";

/// [`TIMEOUT_VAR`]'s value: unset is no timeout; else a positive, finite
/// number of seconds, or [`Error::InvalidArgument`] naming the variable, the
/// value and what is allowed.
fn timeout_from_env(value: Option<&std::ffi::OsStr>) -> Result<Option<Duration>> {
    let Some(value) = value else { return Ok(None) };
    let text = value.to_string_lossy();
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s < 1e12 => Ok(Some(Duration::from_secs_f64(s))),
        _ => Err(Error::InvalidArgument(format!(
            "{TIMEOUT_VAR}={text:?} is not a timeout; expected a positive number of seconds (e.g. 30 or 2.5)"
        ))),
    }
}

impl MpiPool {
    /// A pool over every rank but this one (rank 0).
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the program was not launched under MPI with
    /// `#[multiproc::main]` (or is not rank 0), or if the job has a single rank;
    /// [`Error::InvalidArgument`] if `MULTIPROC_MPI_TIMEOUT` is set but is not a
    /// positive number of seconds.
    pub fn new() -> Result<MpiPool> {
        let info = world::info()?;
        if info.size < 2 {
            return Err(Error::InvalidState(
                "the MPI job has one rank, so the pool would have no workers; start at least two (mpirun -n 2)".into(),
            ));
        }
        let workers = (info.size - 1) as usize;
        let timeout = timeout_from_env(std::env::var_os(TIMEOUT_VAR).as_deref())?;
        let tag = NEXT_TAG.fetch_add(1, Ordering::Relaxed);
        let tag = FIRST_POOL_TAG + (tag - FIRST_POOL_TAG).rem_euclid(32_000);
        Ok(MpiPool {
            inner: Arc::new(Inner {
                tag,
                workers,
                timeout,
                state: Mutex::new(State {
                    closed: false,
                    next_job: 0,
                    jobs: HashMap::new(),
                    queue: VecDeque::new(),
                    in_flight: vec![VecDeque::new(); workers],
                    sends: Vec::new(),
                    last_heard: Instant::now(),
                }),
            }),
        })
    }

    /// Number of worker ranks.
    pub fn processes(&self) -> usize {
        self.inner.workers
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.state().closed { Err(closed_error()) } else { Ok(()) }
    }

    /// Runs `task` on every input and returns the results in input order (Python's `Pool.map`).
    ///
    /// The inputs are collected first (as Python does) and cut into about four
    /// chunks per worker. Blocks until every result is in.
    ///
    /// # Errors
    /// The first failed item's error in input order ([`Error::TaskPanicked`],
    /// [`Error::TaskFailed`], [`Error::Decode`]); an unregistered task; a closed pool.
    pub fn map<F, A>(&self, task: F, inputs: impl IntoIterator<Item = A>) -> Result<Vec<F::Output>>
    where
        F: Task<(A,)>,
        A: Serialize,
        F::Output: DeserializeOwned,
    {
        self.starmap(task, inputs.into_iter().map(|a| (a,)))
    }

    /// Like [`map`](Self::map) with an explicit number of items per chunk.
    ///
    /// # Errors
    /// As [`map`](Self::map); [`Error::InvalidArgument`] if `chunksize` is 0.
    pub fn map_chunked<F, A>(
        &self,
        task: F,
        inputs: impl IntoIterator<Item = A>,
        chunksize: usize,
    ) -> Result<Vec<F::Output>>
    where
        F: Task<(A,)>,
        A: Serialize,
        F::Output: DeserializeOwned,
    {
        self.starmap_chunked(task, inputs.into_iter().map(|a| (a,)), chunksize)
    }

    /// Runs `task` on every argument tuple, results in order (Python's `Pool.starmap`).
    ///
    /// # Errors
    /// As [`map`](Self::map).
    pub fn starmap<F, Args>(&self, task: F, inputs: impl IntoIterator<Item = Args>) -> Result<Vec<F::Output>>
    where
        F: Task<Args>,
        Args: Serialize,
        F::Output: DeserializeOwned,
    {
        self.starmap_async(task, inputs)?.get()
    }

    /// Like [`starmap`](Self::starmap) with an explicit number of items per chunk.
    ///
    /// # Errors
    /// As [`map_chunked`](Self::map_chunked).
    pub fn starmap_chunked<F, Args>(
        &self,
        task: F,
        inputs: impl IntoIterator<Item = Args>,
        chunksize: usize,
    ) -> Result<Vec<F::Output>>
    where
        F: Task<Args>,
        Args: Serialize,
        F::Output: DeserializeOwned,
    {
        if chunksize == 0 {
            return Err(Error::InvalidArgument("chunksize must be at least 1".into()));
        }
        self.submit_all(&task, inputs.into_iter(), chunksize)?.get()
    }

    /// Starts a [`map`](Self::map); the results come from [`MpiAsyncResult::get`] (Python's `map_async`).
    ///
    /// # Errors
    /// An unregistered task, arguments that cannot be encoded, a closed pool;
    /// the items' errors come from `get`.
    pub fn map_async<F, A>(
        &self,
        task: F,
        inputs: impl IntoIterator<Item = A>,
    ) -> Result<MpiAsyncResult<Vec<F::Output>>>
    where
        F: Task<(A,)>,
        A: Serialize,
        F::Output: DeserializeOwned,
    {
        self.starmap_async(task, inputs.into_iter().map(|a| (a,)))
    }

    /// Starts a [`starmap`](Self::starmap) (Python's `starmap_async`).
    ///
    /// # Errors
    /// As [`map_async`](Self::map_async).
    pub fn starmap_async<F, Args>(
        &self,
        task: F,
        inputs: impl IntoIterator<Item = Args>,
    ) -> Result<MpiAsyncResult<Vec<F::Output>>>
    where
        F: Task<Args>,
        Args: Serialize,
        F::Output: DeserializeOwned,
    {
        let items: Vec<Args> = inputs.into_iter().collect();
        let chunksize = default_chunksize(items.len(), self.inner.workers);
        self.submit_all(&task, items.into_iter(), chunksize)
    }

    /// Cuts `items` into chunks and queues them all; the result collects them in order.
    fn submit_all<F, Args>(
        &self,
        task: &F,
        items: impl Iterator<Item = Args>,
        chunksize: usize,
    ) -> Result<MpiAsyncResult<Vec<F::Output>>>
    where
        F: Task<Args>,
        Args: Serialize,
        F::Output: DeserializeOwned,
    {
        let (job, name, total) = self.queue_all(task, items, chunksize)?;
        Ok(MpiAsyncResult { job, finish: Box::new(move |arrived| collect_in_order(arrived, name, total)) })
    }

    /// Cuts `items` into chunks and queues them all; returns the job, the task's
    /// name and the number of items.
    fn queue_all<F, Args>(
        &self,
        task: &F,
        items: impl Iterator<Item = Args>,
        chunksize: usize,
    ) -> Result<(JobGuard, &'static str, u64)>
    where
        F: Task<Args>,
        Args: Serialize,
    {
        self.check_open()?;
        let name = task.task_name()?;
        let job = JobGuard::new(&self.inner);
        let mut total = 0u64;
        let mut chunk: Option<ChunkBuilder> = None;
        for args in items {
            let bytes = no_fds(task.encode_args(&args)?)?;
            let c = match &mut chunk {
                Some(c) => c,
                None => chunk.insert(ChunkBuilder::new(job.id, total, name)?),
            };
            c.push(&bytes)?;
            total += 1;
            if (c.count >= chunksize || c.w.buf.len() >= CHUNK_BYTES)
                && let Some(full) = chunk.take()
            {
                self.inner.submit_and_pump(job.id, full)?;
            }
        }
        if let Some(c) = chunk.take() {
            self.inner.submit_and_pump(job.id, c)?;
        }
        Ok((job, name, total))
    }

    /// A lazy iterator over `task` applied to each input, in input order (Python's `Pool.imap`).
    ///
    /// Inputs are taken from `inputs` only as results are consumed, at most
    /// a window of 64 per worker ahead; a panicking item yields its error and
    /// the iteration goes on. Items travel one per message at first, then in
    /// small chunks sized from the measured task rate (about 1 ms of work each),
    /// so long tasks spread over the workers and tiny ones share messages.
    ///
    /// # Errors
    /// An unregistered task or a closed pool, at once; per-item errors as items.
    pub fn imap<'a, F, A>(&self, task: F, inputs: impl IntoIterator<Item = A> + 'a) -> Result<MpiImap<'a, F::Output>>
    where
        F: Task<(A,)>,
        A: Serialize + 'a,
        F::Output: DeserializeOwned,
    {
        Ok(MpiImap { stream: self.stream(task, inputs)?, pending: BTreeMap::new(), ready: VecDeque::new(), next: 0 })
    }

    /// Like [`imap`](Self::imap), yielding results in the order they complete (Python's `imap_unordered`).
    ///
    /// # Errors
    /// As [`imap`](Self::imap).
    pub fn imap_unordered<'a, F, A>(
        &self,
        task: F,
        inputs: impl IntoIterator<Item = A> + 'a,
    ) -> Result<MpiImapUnordered<'a, F::Output>>
    where
        F: Task<(A,)>,
        A: Serialize + 'a,
        F::Output: DeserializeOwned,
    {
        Ok(MpiImapUnordered { stream: self.stream(task, inputs)?, ready: VecDeque::new(), taken: 0 })
    }

    fn stream<'a, F, A>(&self, task: F, inputs: impl IntoIterator<Item = A> + 'a) -> Result<Stream<'a>>
    where
        F: Task<(A,)>,
        A: Serialize + 'a,
    {
        self.check_open()?;
        let name = task.task_name()?;
        let mut inputs = inputs.into_iter();
        let source = Box::new(move || inputs.next().map(|a| task.encode_args(&(a,)).and_then(no_fds)));
        let job = JobGuard::new(&self.inner);
        Ok(Stream {
            window: self.inner.workers * WINDOW_PER_WORKER,
            job,
            name,
            source,
            fed: 0,
            started: None,
            exhausted: false,
            failed: false,
        })
    }

    /// Runs `task(args)` on a worker and waits for its result (Python's `Pool.apply`).
    ///
    /// # Errors
    /// The task's error; an unregistered task; a closed pool.
    pub fn apply<F, Args>(&self, task: F, args: Args) -> Result<F::Output>
    where
        F: Task<Args>,
        Args: Serialize,
        F::Output: DeserializeOwned,
    {
        self.apply_async(task, args)?.get()
    }

    /// Starts `task(args)` on a worker; the result is fetched with [`MpiAsyncResult::get`].
    ///
    /// # Errors
    /// An unregistered task, arguments that cannot be encoded, a closed pool.
    pub fn apply_async<F, Args>(&self, task: F, args: Args) -> Result<MpiAsyncResult<F::Output>>
    where
        F: Task<Args>,
        Args: Serialize,
        F::Output: DeserializeOwned,
    {
        let (job, name, total) = self.queue_all(&task, std::iter::once(args), 1)?;
        let finish: Finish<F::Output> = Box::new(move |arrived| {
            let mut one: Vec<F::Output> = collect_in_order(arrived, name, total)?;
            one.pop().ok_or_else(|| Error::Decode { what: "task results", reason: "no result".into() })
        });
        Ok(MpiAsyncResult { job, finish })
    }

    /// Accepts no more work (Python's `Pool.close`); submitted work still completes.
    pub fn close(&self) {
        self.inner.state().closed = true;
    }

    /// Stops the pool's work (Python's `Pool.terminate`): closes it, drops the
    /// chunks not yet sent, and fails every pending result and iterator with
    /// [`Error::InvalidState`]. MPI cannot interrupt a task that a worker rank is
    /// running; its results are discarded when they arrive. The worker ranks stay
    /// up for other pools until `main` returns.
    pub fn terminate(&self) {
        let mut st = self.inner.state();
        st.closed = true;
        st.queue.clear();
        st.jobs.clear();
    }

    /// Waits until every submitted chunk's results are back (Python's `Pool.join`).
    /// The worker ranks stay up: they serve until `main` returns on rank 0.
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the pool was not closed first (as Python's `ValueError`).
    pub fn join(&self) -> Result<()> {
        if !self.inner.state().closed {
            return Err(Error::InvalidState("join() on a pool that is not closed; call close() first".into()));
        }
        self.inner.wait_until(|st| st.queue.is_empty() && st.in_flight.iter().all(VecDeque::is_empty), None)?;
        Ok(())
    }
}

impl std::fmt::Debug for MpiPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MpiPool").field("workers", &self.inner.workers).field("tag", &self.inner.tag).finish()
    }
}

/// A job's place in the pool's routing table, removed when dropped (late results are discarded).
struct JobGuard {
    inner: Arc<Inner>,
    id: u64,
}

impl JobGuard {
    fn new(inner: &Arc<Inner>) -> Self {
        JobGuard { id: inner.new_job(), inner: inner.clone() }
    }
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        self.inner.forget_job(self.id);
    }
}

/// Decodes a job's chunks into its results, in input order; the first failed item's error.
fn collect_in_order<R: DeserializeOwned>(mut arrived: Vec<Arrived>, name: &str, total: u64) -> Result<Vec<R>> {
    arrived.sort_by_key(|a| a.first);
    let mut out: Vec<Result<R>> = Vec::with_capacity(total as usize);
    for a in &arrived {
        if a.first != out.len() as u64 {
            return Err(Error::Decode {
                what: "task results",
                reason: format!("chunk at item {} is missing", out.len()),
            });
        }
        a.decode(name, &mut out)?;
    }
    if out.len() as u64 != total {
        return Err(Error::Decode { what: "task results", reason: format!("{} of {total} results", out.len()) });
    }
    out.into_iter().collect()
}

type Finish<R> = Box<dyn FnOnce(Vec<Arrived>) -> Result<R> + Send>;

/// The result of [`MpiPool::apply_async`], [`MpiPool::map_async`] or
/// [`MpiPool::starmap_async`] (Python's `AsyncResult`), fetched with [`get`](Self::get).
///
/// Dropping it discards the result when it arrives.
pub struct MpiAsyncResult<R> {
    job: JobGuard,
    finish: Finish<R>,
}

impl<R> MpiAsyncResult<R> {
    fn all_arrived(&self) -> impl FnMut(&mut State) -> bool + use<R> {
        let job = self.job.id;
        move |st: &mut State| st.jobs.get(&job).is_none_or(|j| j.expected == 0)
    }

    /// Waits for the result (Python's `AsyncResult.get()`).
    ///
    /// # Errors
    /// The task's error ([`Error::TaskPanicked`], [`Error::TaskFailed`], [`Error::Decode`]);
    /// for a map, the first failed item's.
    pub fn get(self) -> Result<R> {
        self.job.inner.wait_until(self.all_arrived(), None)?;
        self.take()
    }

    /// Like [`get`](Self::get), giving up after `timeout` with [`Error::Timeout`].
    ///
    /// # Errors
    /// [`Error::Timeout`], or as [`get`](Self::get).
    pub fn get_timeout(self, timeout: Duration) -> Result<R> {
        if !self.wait(timeout)? {
            return Err(Error::Timeout(timeout));
        }
        self.take()
    }

    /// Waits up to `timeout` for the result; whether it is ready (Python's `AsyncResult.wait`).
    ///
    /// # Errors
    /// A failure of MPI or of the pool's messages.
    pub fn wait(&self, timeout: Duration) -> Result<bool> {
        self.job.inner.wait_until(self.all_arrived(), Some(Instant::now() + timeout))
    }

    /// Whether the result has arrived (Python's `AsyncResult.ready()`); does not block.
    pub fn ready(&self) -> bool {
        self.wait(Duration::ZERO).unwrap_or(false)
    }

    fn take(self) -> Result<R> {
        let arrived: Option<Vec<Arrived>> =
            self.job.inner.state().jobs.get_mut(&self.job.id).map(|j| j.arrived.drain(..).collect());
        let arrived = arrived.ok_or_else(terminated)?;
        (self.finish)(arrived)
    }
}

/// Inputs fed lazily into one job.
struct Stream<'a> {
    job: JobGuard,
    name: &'static str,
    source: Box<dyn FnMut() -> Option<Result<Vec<u8>>> + 'a>,
    window: usize,
    /// Items taken from the source so far.
    fed: u64,
    /// When the first input was taken (for the task rate).
    started: Option<Instant>,
    exhausted: bool,
    failed: bool,
}

impl Stream<'_> {
    /// Submits inputs while fewer than `window` items are out, once at most
    /// half the window is out (so refills come in batches); returns the items
    /// whose arguments could not be encoded, with their index.
    ///
    /// Chunks start at one item (Python's `imap` default, right for long tasks)
    /// and grow with the measured rate towards about [`STREAM_CHUNK_TIME`] of
    /// work per chunk (at most [`MAX_STREAM_CHUNK`] items, and never more than
    /// `room / (2 × workers)`, so every worker gets a couple of chunks): small
    /// tasks then share messages. The input is read at most a window ahead.
    fn fill(&mut self, consumed: u64) -> Result<Vec<(u64, Error)>> {
        let mut local = Vec::new();
        let inner = self.job.inner.clone();
        let mut st = inner.state();
        let out = (self.fed - consumed) as usize;
        let started = *self.started.get_or_insert_with(Instant::now);
        if !self.exhausted && out <= self.window / 2 {
            let room = self.window - out;
            let workers = inner.workers.max(1);
            let secs = started.elapsed().as_secs_f64();
            let by_rate = if consumed > 0 && secs > 0.0 {
                (consumed as f64 / secs / workers as f64 * STREAM_CHUNK_TIME.as_secs_f64()) as usize
            } else {
                1
            };
            let per_chunk = by_rate.min(room / (2 * workers)).clamp(1, MAX_STREAM_CHUNK);
            let mut chunk: Option<ChunkBuilder> = None;
            while !self.exhausted && ((self.fed - consumed) as usize) < self.window {
                match (self.source)() {
                    None => self.exhausted = true,
                    Some(Err(e)) => {
                        if let Some(c) = chunk.take() {
                            inner.submit(&mut st, self.job.id, c.finish()?)?;
                        }
                        local.push((self.fed, e));
                        self.fed += 1;
                    }
                    Some(Ok(bytes)) => {
                        let c = match &mut chunk {
                            Some(c) => c,
                            None => chunk.insert(ChunkBuilder::new(self.job.id, self.fed, self.name)?),
                        };
                        c.push(&bytes)?;
                        self.fed += 1;
                        if c.count >= per_chunk
                            && let Some(c) = chunk.take()
                        {
                            inner.submit(&mut st, self.job.id, c.finish()?)?;
                        }
                    }
                }
            }
            if let Some(c) = chunk.take() {
                inner.submit(&mut st, self.job.id, c.finish()?)?;
            }
        }
        inner.pump(&mut st)?;
        Ok(local)
    }

    /// Waits for at least one chunk of results and takes them all.
    fn take_arrived(&mut self) -> Result<Vec<Arrived>> {
        let job = self.job.id;
        let inner = &self.job.inner;
        inner.wait_until(|st| Inner::job_arrived(st, job), None)?;
        inner.state().jobs.get_mut(&job).map(|j| j.arrived.drain(..).collect()).ok_or_else(terminated)
    }
}

enum Slot {
    Chunk(Arrived),
    Failed(Error),
}

/// The iterator of [`MpiPool::imap`]: results in input order.
pub struct MpiImap<'a, R> {
    stream: Stream<'a>,
    pending: BTreeMap<u64, Slot>,
    ready: VecDeque<Result<R>>,
    /// Index of the next item to yield.
    next: u64,
}

impl<R: DeserializeOwned> Iterator for MpiImap<'_, R> {
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        loop {
            if let Some(r) = self.ready.pop_front() {
                return Some(r);
            }
            if self.stream.failed {
                return None;
            }
            match self.pending.remove(&self.next) {
                Some(Slot::Failed(e)) => {
                    self.next += 1;
                    return Some(Err(e));
                }
                Some(Slot::Chunk(a)) => {
                    self.next += u64::from(a.count.max(1));
                    if let Err(e) = a.decode(self.stream.name, &mut self.ready) {
                        self.stream.failed = true;
                        return Some(Err(e));
                    }
                    continue;
                }
                None => {}
            }
            if self.stream.exhausted && self.next >= self.stream.fed {
                return None;
            }
            let step = self.stream.fill(self.next).and_then(|local| {
                for (i, e) in local {
                    self.pending.insert(i, Slot::Failed(e));
                }
                if self.pending.contains_key(&self.next) || self.next >= self.stream.fed {
                    return Ok(());
                }
                for a in self.stream.take_arrived()? {
                    self.pending.insert(a.first, Slot::Chunk(a));
                }
                Ok(())
            });
            if let Err(e) = step {
                self.stream.failed = true;
                return Some(Err(e));
            }
        }
    }
}

/// The iterator of [`MpiPool::imap_unordered`]: results as they complete.
pub struct MpiImapUnordered<'a, R> {
    stream: Stream<'a>,
    ready: VecDeque<Result<R>>,
    /// Items whose results have been taken from the pool (yielded or in `ready`).
    taken: u64,
}

impl<R: DeserializeOwned> Iterator for MpiImapUnordered<'_, R> {
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        loop {
            if let Some(r) = self.ready.pop_front() {
                return Some(r);
            }
            if self.stream.failed || (self.stream.exhausted && self.taken >= self.stream.fed) {
                return None;
            }
            let step = self.stream.fill(self.taken).and_then(|local| {
                self.taken += local.len() as u64;
                self.ready.extend(local.into_iter().map(|(_, e)| Err(e)));
                if !self.ready.is_empty() || self.taken >= self.stream.fed {
                    return Ok(());
                }
                for a in self.stream.take_arrived()? {
                    self.taken += u64::from(a.count);
                    a.decode(self.stream.name, &mut self.ready)?;
                }
                Ok(())
            });
            if let Err(e) = step {
                self.stream.failed = true;
                return Some(Err(e));
            }
        }
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
        for bad in ["", "soon", "0", "-1", "inf", "NaN", "1e300"] {
            match timeout_from_env(Some(OsStr::new(bad))) {
                Err(Error::InvalidArgument(msg)) => {
                    assert!(msg.contains(TIMEOUT_VAR) && msg.contains(&format!("{bad:?}")), "{msg}");
                    assert!(msg.contains("positive number of seconds"), "{msg}");
                }
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }
}
