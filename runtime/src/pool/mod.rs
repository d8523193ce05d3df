//! Process pools: Python's `multiprocessing.Pool`, over registered tasks.
//!
//! The pool is a façade over a private backend (today worker processes on
//! this machine, `local.rs`). Calls are encoded in the caller's thread,
//! batched into chunks, and pipelined: several chunks are in flight per
//! worker, and a thread waiting for a result helps move results along before
//! it sleeps (see `local.rs`).

mod job;
mod local;
mod wire;
mod worker;

pub mod dummy;
#[cfg(feature = "progress")]
mod progress;

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use self::job::{ChunkResult, Deferred, JobShared, finish_one, finish_vec, run_deferred};
use self::local::{Chunk, ChunkBuilder, Config, LocalPool, Shared};
use crate::context::{Context, StartMethod, get_start_method};
use crate::error::{Error, Result};
use crate::task::Task;

#[cfg(feature = "progress")]
pub use self::progress::Progress;

/// Where a pool's workers run. Each variant has the same operations; `Pool`
/// dispatches over it (an MPI backend can join as another variant).
enum Backend {
    /// Worker processes on this machine.
    Local(LocalPool),
    /// The other ranks of an MPI job (cargo feature `mpi`).
    #[cfg(feature = "mpi")]
    Mpi(crate::mpi::MpiPool),
}

/// A pool of worker processes running registered tasks — Python's `multiprocessing.Pool`.
///
/// ```no_run
/// #[multiproc::task]
/// fn square(x: u64) -> u64 { x * x }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let pool = multiproc::Pool::new(4)?;
///     assert_eq!(pool.map(square, 0..10)?, vec![0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
///     pool.close();
///     pool.join()
/// }
/// ```
///
/// A task is a function annotated with [`#[multiproc::task]`](crate::task) or
/// a closure made with [`lambda!`](crate::lambda!); arguments and results are
/// serde types (and handles such as [`Connection`](crate::Connection)).
///
/// # Failures (where Python's pool hangs, this one does not)
/// - A task that panics fails only its own call, with [`Error::TaskPanicked`]
///   (message, `file:line:col`, task name); the worker carries on.
/// - A worker that dies (killed, aborted, `exit`) fails the calls it held (sent
///   to it, not yet answered: several chunks are in flight per worker) with
///   [`Error::WorkerLost`] (pid and exit status); the worker is replaced and every
///   other call completes. With [`PoolBuilder::retries`], the held calls run
///   again, each alone, and only a call that kills a worker by itself is charged.
///
/// # Lifetime
/// [`close`](Pool::close) stops new work, [`join`](Pool::join) waits for the
/// work and the workers, [`terminate`](Pool::terminate) stops at once.
/// Dropping a pool terminates it (Python's `with Pool() as p:`); use
/// `close` + `join` to let submitted work finish first.
///
/// # Chunks
/// `map`, `starmap` and `map_async` split their input as Python does, in chunks
/// of `ceil(len / (4 × processes))`, capped at 2048 calls (so that the workers
/// start while a large input is still being encoded). `imap` and `imap_unordered` use the same
/// rule on the input's exact size hint, capped at 256, and 1 when the size is
/// unknown. Choose the chunk size per call with [`Pool::with_chunksize`].
///
/// # Progress
/// With the cargo feature `progress`, the `imap` iterators have a `.progress()`
/// adaptor that draws a progress bar (indicatif) on stderr.
///
/// # Threads
/// [`dummy::Pool`] has the same API on threads of this process.
pub struct Pool {
    backend: Backend,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("processes", &self.processes()).finish()
    }
}

/// A task name with encoded arguments and the handles inside them.
type EncodedCall = (String, Vec<u8>, Vec<std::os::fd::OwnedFd>);

/// Configures a [`Pool`] ([`Pool::builder`]).
#[derive(Default)]
pub struct PoolBuilder {
    processes: Option<usize>,
    method: Option<StartMethod>,
    initializer: Option<Result<EncodedCall>>,
    max_tasks: Option<usize>,
    retries: u32,
}

impl std::fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("processes", &self.processes)
            .field("start_method", &self.method)
            .field("max_tasks_per_child", &self.max_tasks)
            .field("retries", &self.retries)
            .finish()
    }
}

impl PoolBuilder {
    /// The number of worker processes (default: [`cpu_count`](crate::cpu_count)).
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n);
        self
    }

    /// The start method of the workers (default: [`get_start_method`]).
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// The start method of `ctx`.
    pub fn context(self, ctx: Context) -> Self {
        self.start_method(ctx.start_method())
    }

    /// A task each worker runs once, before its first call (Python's
    /// `initializer`, `initargs`). If it panics or fails, [`PoolBuilder::build`]
    /// reports it; if it fails in a replacement worker, the pool's remaining
    /// calls fail with that message.
    pub fn initializer<F, A>(mut self, task: F, args: A) -> Self
    where
        F: Task<A>,
        A: Serialize,
    {
        self.initializer = Some(task.task_name().and_then(|name| {
            let p = task.encode_args(&args)?;
            Ok((name.to_string(), p.bytes, p.fds))
        }));
        self
    }

    /// Replace each worker after it has run `n` calls (Python's
    /// `maxtasksperchild`). A chunk is never split, so a worker may run up to
    /// one chunk more than `n`. No call is lost when a worker retires.
    pub fn max_tasks_per_child(mut self, n: usize) -> Self {
        self.max_tasks = Some(n);
        self
    }

    /// When a worker dies, run the calls it held again (default 0: they fail with
    /// [`Error::WorkerLost`], so each call runs at most once). Calls that were in
    /// flight together are re-run each alone, uncharged; a call that kills a
    /// worker by itself is charged one attempt, and fails after `n` retries. A
    /// call may so run more than once.
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// Starts the workers; returns once every worker has run its initializer.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0 processes or `max_tasks_per_child(0)`;
    /// [`Error::NotRegistered`] for an unregistered initializer; the initializer's
    /// own failure ([`Error::TaskPanicked`], [`Error::TaskFailed`]); the errors of
    /// [`Process::start`](crate::Process::start) if a worker cannot start.
    pub fn build(self) -> Result<Pool> {
        let processes = self.processes.unwrap_or_else(crate::cpu_count);
        if processes == 0 {
            return Err(Error::InvalidArgument("a pool needs at least one process".into()));
        }
        if self.max_tasks == Some(0) {
            return Err(Error::InvalidArgument("max_tasks_per_child must be at least 1".into()));
        }
        let (initializer, init_fds) = match self.initializer.transpose()? {
            Some((name, bytes, fds)) => (Some((name, bytes)), fds),
            None => (None, Vec::new()),
        };
        let cfg = Config {
            processes,
            method: self.method.unwrap_or_else(get_start_method),
            initializer,
            init_fds,
            max_tasks: self.max_tasks,
            retries: self.retries,
        };
        Ok(Pool { backend: Backend::Local(LocalPool::start(cfg)?) })
    }
}

/// Default chunk size for `len` items on `processes` workers: Python's
/// `ceil(len / (4 × processes))`, but at most 2048, so that large inputs make
/// enough chunks for the workers to start while the rest is still being encoded.
fn default_chunksize(len: usize, processes: usize) -> usize {
    len.div_ceil(processes * 4).clamp(1, 2048)
}

/// Default chunk size of `imap`: Python's rule on an exact size hint, capped.
fn imap_chunksize(hint: (usize, Option<usize>), processes: usize) -> usize {
    match hint {
        (lo, Some(hi)) if lo == hi => default_chunksize(lo, processes).min(256),
        _ => 1,
    }
}

/// Chunks submitted together (one lock, few sends).
const SUBMIT_BATCH: usize = 64;
const SUBMIT_BYTES: usize = 32 << 10;
/// A chunk is closed early once it carries this many handles.
const CHUNK_FDS: usize = 32;

/// Encodes calls from `items` into chunks of `chunksize` and submits them, at
/// most `limit` items. Returns whether `items` ran out.
#[allow(clippy::too_many_arguments)]
fn submit_items<F, A>(
    sh: &Shared,
    task: &F,
    name: &str,
    job: &Arc<JobShared>,
    items: &mut dyn Iterator<Item = A>,
    chunksize: usize,
    next_index: &mut usize,
    continuing: bool,
    limit: usize,
) -> Result<bool>
where
    F: Task<A>,
    A: Serialize,
{
    let mut pending: Vec<Chunk> = Vec::new();
    let mut pending_bytes = 0;
    let mut uncounted = 0;
    let mut builder: Option<ChunkBuilder> = None;
    let mut deferred: Vec<Deferred> = Vec::new();
    let mut done = 0;
    let mut continuing = continuing;
    let flush = |pending: &mut Vec<Chunk>, uncounted: &mut usize, continuing: &mut bool| -> Result<()> {
        job.add_submitted(std::mem::take(uncounted));
        let r = sh.submit(std::mem::take(pending), *continuing);
        *continuing = true;
        r
    };
    let exhausted = loop {
        if done >= limit {
            break false;
        }
        // Take one chunk's worth of calls and try to encode them in one pass.
        let want = chunksize.min(limit - done);
        let batch: Vec<A> = (&mut *items).take(want).collect();
        if batch.is_empty() {
            break true;
        }
        let ran_out = batch.len() < want;
        let first = *next_index;
        *next_index += batch.len();
        done += batch.len();
        uncounted += batch.len();
        if batch.len() > 1
            && let Some(b) = ChunkBuilder::batch(name, first, batch.len(), |buf| task.encode_args_batch(&batch, buf))?
        {
            pending_bytes += b.bytes();
            pending.push(b.finish(job)?);
            if pending.len() >= SUBMIT_BATCH || pending_bytes >= SUBMIT_BYTES {
                pending_bytes = 0;
                flush(&mut pending, &mut uncounted, &mut continuing)?;
            }
            if ran_out {
                break true;
            }
            continue;
        }
        // Calls with handles (or one that cannot be encoded): one by one.
        for (k, args) in batch.into_iter().enumerate() {
            let index = first + k;
            let b = match &mut builder {
                Some(b) => b,
                None if chunksize == 1 => builder.insert(ChunkBuilder::new_per_call(name, index)?),
                None => builder.insert(ChunkBuilder::new(name, index)?),
            };
            if let Err(e) = b.push(|buf| task.encode_args_into(&args, buf)) {
                // This call fails on its own; the chunk so far goes as it is.
                if let Some(b) = builder.take().filter(|b| b.len() > 0) {
                    pending.push(b.finish(job)?);
                }
                flush(&mut pending, &mut uncounted, &mut continuing)?;
                job.deliver(ChunkResult::one_error(index, e), &mut deferred);
                continue;
            }
            if b.len() >= chunksize || b.nfds() >= CHUNK_FDS {
                pending_bytes += b.bytes();
                if let Some(b) = builder.take() {
                    pending.push(b.finish(job)?);
                }
                if pending.len() >= SUBMIT_BATCH || pending_bytes >= SUBMIT_BYTES {
                    pending_bytes = 0;
                    flush(&mut pending, &mut uncounted, &mut continuing)?;
                }
            }
        }
        if ran_out {
            break true;
        }
    };
    if let Some(b) = builder.take().filter(|b| b.len() > 0) {
        pending.push(b.finish(job)?);
    }
    flush(&mut pending, &mut uncounted, &mut continuing)?;
    run_deferred(deferred);
    Ok(exhausted)
}

impl Pool {
    /// A pool of `processes` workers with the default start method.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `processes` is 0; otherwise as [`PoolBuilder::build`].
    pub fn new(processes: usize) -> Result<Pool> {
        Pool::builder().processes(processes).build()
    }

    /// A builder for the other options (initializer, start method, …).
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// The pool that suits how the program was started: built with the `mpi`
    /// feature and launched under `mpirun`/`srun`, a pool over the other MPI ranks
    /// (`Pool::mpi`); otherwise a local pool of [`cpu_count`](crate::cpu_count) workers.
    ///
    /// # Errors
    /// As [`PoolBuilder::build`] or `Pool::mpi`.
    pub fn auto() -> Result<Pool> {
        #[cfg(feature = "mpi")]
        if crate::mpi::is_mpi_launch() {
            return Pool::mpi();
        }
        Pool::builder().build()
    }

    /// A pool whose workers are all the other ranks of this MPI job (rank 0 runs
    /// `main`). The same methods as a local pool; `apply_async`, `map_async` and
    /// `starmap_async` run their calls before they return (the result is ready at once).
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the program was not launched under MPI or runs on
    /// one rank only.
    #[cfg(feature = "mpi")]
    pub fn mpi() -> Result<Pool> {
        Ok(Pool { backend: Backend::Mpi(crate::mpi::MpiPool::new()?) })
    }

    fn shared(&self) -> Result<&Arc<Shared>> {
        match &self.backend {
            Backend::Local(l) => Ok(&l.shared),
            #[cfg(feature = "mpi")]
            Backend::Mpi(_) => Err(Error::InvalidState("not a local pool".into())),
        }
    }

    /// The number of workers the pool keeps.
    pub fn processes(&self) -> usize {
        match &self.backend {
            Backend::Local(l) => l.shared.processes(),
            #[cfg(feature = "mpi")]
            Backend::Mpi(m) => m.processes(),
        }
    }

    /// The pids of the workers right now (they change when a worker is replaced);
    /// empty for an MPI pool, whose workers may live on other hosts.
    pub fn worker_pids(&self) -> Vec<u32> {
        match &self.backend {
            Backend::Local(l) => l.shared.worker_pids(),
            #[cfg(feature = "mpi")]
            Backend::Mpi(_) => Vec::new(),
        }
    }

    /// The same operations with a chosen chunk size (Python's `chunksize=`):
    /// `pool.with_chunksize(1).map(f, xs)`. A chunk size of 0 counts as 1.
    pub fn with_chunksize(&self, chunksize: usize) -> Chunked<'_> {
        Chunked { pool: self, chunksize: Some(chunksize.max(1)) }
    }

    fn opts(&self) -> Chunked<'_> {
        Chunked { pool: self, chunksize: None }
    }

    /// Runs `task(x)` for every `x` of `inputs` and returns the results in order.
    /// Blocks until all are done. Python's `map`.
    ///
    /// # Errors
    /// The first failed call's error, in input order ([`Error::TaskPanicked`],
    /// [`Error::WorkerLost`], [`Error::Encode`] …); [`Error::NotRegistered`] for
    /// an unregistered task; [`Error::InvalidState`] after `close`/`terminate`.
    pub fn map<F, T, I>(&self, task: F, inputs: I) -> Result<Vec<F::Output>>
    where
        F: Task<(T,)>,
        T: Serialize,
        I: IntoIterator<Item = T>,
        F::Output: DeserializeOwned,
    {
        self.opts().map(task, inputs)
    }

    /// Runs `task(a, b, …)` for every argument tuple of `inputs`; results in order.
    /// Python's `starmap`.
    ///
    /// # Errors
    /// As [`Pool::map`].
    pub fn starmap<F, A, I>(&self, task: F, inputs: I) -> Result<Vec<F::Output>>
    where
        F: Task<A>,
        A: Serialize,
        I: IntoIterator<Item = A>,
        F::Output: DeserializeOwned,
    {
        self.opts().starmap(task, inputs)
    }

    /// [`Pool::map`] without waiting: returns an [`AsyncResult`] of the whole list.
    ///
    /// # Errors
    /// [`Error::NotRegistered`], [`Error::InvalidState`] (as [`Pool::map`]); failed calls
    /// are reported by [`AsyncResult::get`].
    pub fn map_async<F, T, I>(&self, task: F, inputs: I) -> Result<AsyncResult<Vec<F::Output>>>
    where
        F: Task<(T,)>,
        T: Serialize,
        I: IntoIterator<Item = T>,
        F::Output: DeserializeOwned,
    {
        self.opts().map_async(task, inputs)
    }

    /// [`Pool::starmap`] without waiting.
    ///
    /// # Errors
    /// As [`Pool::map_async`].
    pub fn starmap_async<F, A, I>(&self, task: F, inputs: I) -> Result<AsyncResult<Vec<F::Output>>>
    where
        F: Task<A>,
        A: Serialize,
        I: IntoIterator<Item = A>,
        F::Output: DeserializeOwned,
    {
        self.opts().starmap_async(task, inputs)
    }

    /// Lazily maps `task` over `inputs`, yielding results in input order as
    /// they become available. The input is pulled as results are consumed, so an
    /// endless iterator works in bounded memory. Python's `imap`.
    ///
    /// # Errors
    /// [`Error::NotRegistered`], or [`Error::InvalidState`] on a closed pool; each
    /// item is then `Ok(result)` or that call's error.
    pub fn imap<'a, F, T, I>(&self, task: F, inputs: I) -> Result<IMapIter<'a, F::Output>>
    where
        F: Task<(T,)> + 'a,
        T: Serialize + 'a,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        F::Output: DeserializeOwned,
    {
        self.opts().imap(task, inputs)
    }

    /// As [`Pool::imap`], yielding results in completion order. Python's `imap_unordered`.
    ///
    /// # Errors
    /// As [`Pool::imap`].
    pub fn imap_unordered<'a, F, T, I>(&self, task: F, inputs: I) -> Result<IMapUnorderedIter<'a, F::Output>>
    where
        F: Task<(T,)> + 'a,
        T: Serialize + 'a,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        F::Output: DeserializeOwned,
    {
        self.opts().imap_unordered(task, inputs)
    }

    /// Runs `task(args…)` in a worker and waits for the result. Python's `apply`.
    ///
    /// # Errors
    /// The call's error, or as [`Pool::apply_async`].
    pub fn apply<F, A>(&self, task: F, args: A) -> Result<F::Output>
    where
        F: Task<A>,
        A: Serialize,
        F::Output: DeserializeOwned,
    {
        self.apply_async(task, args)?.get()
    }

    /// Runs `task(args…)` in a worker; returns at once with an [`AsyncResult`].
    /// Python's `apply_async`.
    ///
    /// # Errors
    /// [`Error::NotRegistered`], [`Error::Encode`], or [`Error::InvalidState`] on a
    /// closed pool.
    pub fn apply_async<F, A>(&self, task: F, args: A) -> Result<AsyncResult<F::Output>>
    where
        F: Task<A>,
        A: Serialize,
        F::Output: DeserializeOwned,
    {
        #[cfg(feature = "mpi")]
        if let Backend::Mpi(m) = &self.backend {
            return Ok(AsyncResult::from_value(m.apply(task, args)));
        }
        let sh = self.shared()?;
        let name = task.task_name()?;
        let job = Arc::new(JobShared::new(true));
        let mut b = ChunkBuilder::new_per_call(name, 0)?;
        b.push(|buf| task.encode_args_into(&args, buf))?;
        job.add_submitted(1);
        sh.submit(vec![b.finish(&job)?], false)?;
        let mut d = Vec::new();
        job.seal(&mut d);
        run_deferred(d);
        Ok(AsyncResult::new(sh.clone(), job, finish_one::<F::Output>))
    }

    /// Stops accepting work; submitted work still runs. Python's `close`.
    pub fn close(&self) {
        match &self.backend {
            Backend::Local(l) => l.shared.close(),
            #[cfg(feature = "mpi")]
            Backend::Mpi(m) => m.close(),
        }
    }

    /// Waits for all submitted work to finish and the workers to exit. Python's `join`.
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the pool is still running (call [`Pool::close`]
    /// or [`Pool::terminate`] first).
    pub fn join(&self) -> Result<()> {
        match &self.backend {
            Backend::Local(l) => l.shared.join(),
            #[cfg(feature = "mpi")]
            Backend::Mpi(m) => m.join(),
        }
    }

    /// Stops the workers at once; unfinished calls fail with [`Error::InvalidState`].
    /// Python's `terminate` (also what dropping the pool does).
    pub fn terminate(&self) {
        match &self.backend {
            Backend::Local(l) => l.shared.terminate(),
            #[cfg(feature = "mpi")]
            Backend::Mpi(m) => m.terminate(),
        }
    }
}

/// Pool operations with a chosen chunk size ([`Pool::with_chunksize`]).
#[derive(Debug, Clone, Copy)]
pub struct Chunked<'p> {
    pool: &'p Pool,
    chunksize: Option<usize>,
}

impl Chunked<'_> {
    /// [`Pool::map`] with this chunk size.
    ///
    /// # Errors
    /// As [`Pool::map`].
    pub fn map<F, T, I>(&self, task: F, inputs: I) -> Result<Vec<F::Output>>
    where
        F: Task<(T,)>,
        T: Serialize,
        I: IntoIterator<Item = T>,
        F::Output: DeserializeOwned,
    {
        self.starmap(task, inputs.into_iter().map(|x| (x,)))
    }

    /// [`Pool::starmap`] with this chunk size.
    ///
    /// # Errors
    /// As [`Pool::map`].
    pub fn starmap<F, A, I>(&self, task: F, inputs: I) -> Result<Vec<F::Output>>
    where
        F: Task<A>,
        A: Serialize,
        I: IntoIterator<Item = A>,
        F::Output: DeserializeOwned,
    {
        #[cfg(feature = "mpi")]
        if let Backend::Mpi(m) = &self.pool.backend {
            let items: Vec<A> = inputs.into_iter().collect();
            return match self.chunksize {
                Some(c) => m.starmap_chunked(task, items, c),
                None => m.starmap(task, items),
            };
        }
        // As `starmap_async(..).get()`, but results are decoded as their chunks
        // arrive, while later chunks are still running.
        let r = self.starmap_async(task, inputs)?;
        let (Some(sh), job) = (&r.sh, &r.job) else {
            return r.get();
        };
        let mut out = Vec::with_capacity(job.lock().submitted);
        loop {
            let next = job.lock().take_chunk();
            if let Some(mut chunk) = next {
                chunk.take_all(&mut out)?;
                continue;
            }
            {
                let g = job.lock();
                if g.complete() && g.taken == g.submitted {
                    return Ok(out);
                }
            }
            sh.wait_job(job, None, &|g| g.chunk_ready() || (g.complete() && g.taken == g.submitted));
        }
    }

    /// [`Pool::map_async`] with this chunk size.
    ///
    /// # Errors
    /// As [`Pool::map_async`].
    pub fn map_async<F, T, I>(&self, task: F, inputs: I) -> Result<AsyncResult<Vec<F::Output>>>
    where
        F: Task<(T,)>,
        T: Serialize,
        I: IntoIterator<Item = T>,
        F::Output: DeserializeOwned,
    {
        self.starmap_async(task, inputs.into_iter().map(|x| (x,)))
    }

    /// [`Pool::starmap_async`] with this chunk size.
    ///
    /// # Errors
    /// As [`Pool::map_async`].
    pub fn starmap_async<F, A, I>(&self, task: F, inputs: I) -> Result<AsyncResult<Vec<F::Output>>>
    where
        F: Task<A>,
        A: Serialize,
        I: IntoIterator<Item = A>,
        F::Output: DeserializeOwned,
    {
        #[cfg(feature = "mpi")]
        if let Backend::Mpi(_) = &self.pool.backend {
            return Ok(AsyncResult::from_value(self.starmap(task, inputs)));
        }
        let sh = self.pool.shared()?;
        let name = task.task_name()?;
        let mut it = inputs.into_iter();
        let (chunksize, mut collected) = match (self.chunksize, it.size_hint()) {
            (Some(c), _) => (c, None),
            (None, (lo, Some(hi))) if lo == hi => (default_chunksize(lo, sh.processes()), None),
            (None, _) => {
                // Python's map takes len(list(iterable)) too.
                let v: Vec<A> = it.by_ref().collect();
                (default_chunksize(v.len(), sh.processes()), Some(v.into_iter()))
            }
        };
        let job = Arc::new(JobShared::new(true));
        let mut next = 0;
        let items: &mut dyn Iterator<Item = A> = match &mut collected {
            Some(v) => v,
            None => &mut it,
        };
        submit_items(sh, &task, name, &job, items, chunksize, &mut next, false, usize::MAX)?;
        let mut d = Vec::new();
        job.seal(&mut d);
        run_deferred(d);
        Ok(AsyncResult::new(sh.clone(), job, finish_vec::<F::Output>))
    }

    /// [`Pool::imap`] with this chunk size.
    ///
    /// # Errors
    /// As [`Pool::imap`].
    pub fn imap<'a, F, T, I>(&self, task: F, inputs: I) -> Result<IMapIter<'a, F::Output>>
    where
        F: Task<(T,)> + 'a,
        T: Serialize + 'a,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        F::Output: DeserializeOwned,
    {
        #[cfg(feature = "mpi")]
        if let Backend::Mpi(m) = &self.pool.backend {
            let inputs = inputs.into_iter(); // only the iterator is known to live for 'a
            return Ok(IMapIter { stream: Streamed::Mpi(m.imap(task, inputs)?) });
        }
        Ok(IMapIter { stream: Streamed::Local(self.stream(task, inputs, true)?) })
    }

    /// [`Pool::imap_unordered`] with this chunk size.
    ///
    /// # Errors
    /// As [`Pool::imap`].
    pub fn imap_unordered<'a, F, T, I>(&self, task: F, inputs: I) -> Result<IMapUnorderedIter<'a, F::Output>>
    where
        F: Task<(T,)> + 'a,
        T: Serialize + 'a,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        F::Output: DeserializeOwned,
    {
        #[cfg(feature = "mpi")]
        if let Backend::Mpi(m) = &self.pool.backend {
            let inputs = inputs.into_iter(); // only the iterator is known to live for 'a
            return Ok(IMapUnorderedIter { stream: StreamedUnordered::Mpi(m.imap_unordered(task, inputs)?) });
        }
        Ok(IMapUnorderedIter { stream: StreamedUnordered::Local(self.stream(task, inputs, false)?) })
    }

    fn stream<'a, F, T, I>(&self, task: F, inputs: I, ordered: bool) -> Result<Stream<'a, F::Output>>
    where
        F: Task<(T,)> + 'a,
        T: Serialize + 'a,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        F::Output: DeserializeOwned,
    {
        let sh = self.pool.shared()?.clone();
        let name = task.task_name()?;
        let it = inputs.into_iter();
        let len = match it.size_hint() {
            (lo, Some(hi)) if lo == hi => Some(lo),
            _ => None,
        };
        let processes = sh.processes();
        let chunksize = self.chunksize.unwrap_or_else(|| imap_chunksize(it.size_hint(), processes));
        let window = (chunksize * processes * 16).max(1024);
        let job = Arc::new(JobShared::new(ordered));
        let mut it = it.map(|x| (x,));
        let mut next = 0usize;
        let feeder_sh = sh.clone();
        let feeder_job = job.clone();
        let feeder: Feeder<'a> = Box::new(move |limit| {
            let continuing = next > 0;
            submit_items(&feeder_sh, &task, name, &feeder_job, &mut it, chunksize, &mut next, continuing, limit)
        });
        let mut s = Stream { sh, job, feeder: Some(feeder), current: None, window, len, _r: PhantomData };
        s.top_up()?;
        Ok(s)
    }
}

type Feeder<'a> = Box<dyn FnMut(usize) -> Result<bool> + 'a>;

/// The shared machinery of `imap` and `imap_unordered`.
struct Stream<'a, R> {
    sh: Arc<Shared>,
    job: Arc<JobShared>,
    feeder: Option<Feeder<'a>>,
    current: Option<ChunkResult>,
    window: usize,
    /// The input's exact length, if its size hint gives one.
    #[cfg_attr(not(feature = "progress"), allow(dead_code))]
    len: Option<usize>,
    _r: PhantomData<fn() -> R>,
}

impl<R: DeserializeOwned> Stream<'_, R> {
    /// Submits more input while fewer than `window` items are outstanding.
    fn top_up(&mut self) -> Result<()> {
        let Some(feed) = &mut self.feeder else { return Ok(()) };
        let outstanding = self.job.lock().outstanding();
        if outstanding > self.window / 2 {
            return Ok(());
        }
        let r = feed(self.window - outstanding);
        if !matches!(r, Ok(false)) {
            self.feeder = None;
            let mut d = Vec::new();
            self.job.seal(&mut d);
            run_deferred(d);
        }
        r.map(drop)
    }

    fn next_item(&mut self) -> Option<Result<R>> {
        loop {
            if let Some(c) = &mut self.current {
                if let Some(r) = c.next::<R>() {
                    return Some(r);
                }
                self.current = None;
            }
            if let Err(e) = self.top_up() {
                return Some(Err(e));
            }
            {
                let mut g = self.job.lock();
                if let Some(c) = g.take_chunk() {
                    self.current = Some(c);
                    continue;
                }
                if g.sealed && g.taken == g.submitted {
                    return None;
                }
            }
            let feeding = self.feeder.is_some();
            let window = self.window;
            self.sh.wait_job(&self.job, None, &|g| {
                g.chunk_ready() || (g.sealed && g.taken == g.submitted) || (feeding && g.outstanding() <= window / 2)
            });
        }
    }
}

/// The iterator of [`Pool::imap`]: results in input order.
pub struct IMapIter<'a, R> {
    stream: Streamed<'a, R>,
}

/// The iterator of [`Pool::imap_unordered`]: results in completion order.
pub struct IMapUnorderedIter<'a, R> {
    stream: StreamedUnordered<'a, R>,
}

enum Streamed<'a, R> {
    Local(Stream<'a, R>),
    #[cfg(feature = "mpi")]
    Mpi(crate::mpi::MpiImap<'a, R>),
}

enum StreamedUnordered<'a, R> {
    Local(Stream<'a, R>),
    #[cfg(feature = "mpi")]
    Mpi(crate::mpi::MpiImapUnordered<'a, R>),
}

impl<R: DeserializeOwned> Iterator for IMapIter<'_, R> {
    type Item = Result<R>;
    fn next(&mut self) -> Option<Result<R>> {
        match &mut self.stream {
            Streamed::Local(s) => s.next_item(),
            #[cfg(feature = "mpi")]
            Streamed::Mpi(m) => m.next(),
        }
    }
}

impl<R: DeserializeOwned> Iterator for IMapUnorderedIter<'_, R> {
    type Item = Result<R>;
    fn next(&mut self) -> Option<Result<R>> {
        match &mut self.stream {
            StreamedUnordered::Local(s) => s.next_item(),
            #[cfg(feature = "mpi")]
            StreamedUnordered::Mpi(m) => m.next(),
        }
    }
}

impl<R> IMapIter<'_, R> {
    /// The input's exact length, if its size hint gave one (for a progress bar).
    #[cfg_attr(not(feature = "progress"), allow(dead_code))]
    fn input_len(&self) -> Option<usize> {
        match &self.stream {
            Streamed::Local(s) => s.len,
            #[cfg(feature = "mpi")]
            Streamed::Mpi(_) => None,
        }
    }
}

impl<R> IMapUnorderedIter<'_, R> {
    /// The input's exact length, if its size hint gave one (for a progress bar).
    #[cfg_attr(not(feature = "progress"), allow(dead_code))]
    fn input_len(&self) -> Option<usize> {
        match &self.stream {
            StreamedUnordered::Local(s) => s.len,
            #[cfg(feature = "mpi")]
            StreamedUnordered::Mpi(_) => None,
        }
    }
}

impl<R> std::fmt::Debug for IMapIter<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IMapIter").finish_non_exhaustive()
    }
}

impl<R> std::fmt::Debug for IMapUnorderedIter<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IMapUnorderedIter").finish_non_exhaustive()
    }
}

type Finish<R> = fn(Vec<ChunkResult>) -> Result<R>;

/// The result of an asynchronous call — Python's `AsyncResult`, and a [`Future`].
///
/// [`get`](AsyncResult::get) blocks until the result is ready; a thread that
/// waits spins briefly (helping move results along) before it sleeps, so a
/// quick call's round trip costs microseconds, not a kernel wake-up. Awaiting it
/// needs no runtime in particular: the pool's thread wakes the task.
pub struct AsyncResult<R> {
    /// `None` for a result that was ready when it was made (MPI pools).
    sh: Option<Arc<Shared>>,
    job: Arc<JobShared>,
    finish: Finish<R>,
    value: Arc<Mutex<Option<Result<R>>>>,
    taken: std::sync::atomic::AtomicBool,
}

impl<R> std::fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult").field("ready", &self.ready()).finish()
    }
}

fn decode_into<R>(job: &JobShared, finish: Finish<R>, value: &Mutex<Option<Result<R>>>) {
    let mut v = value.lock().unwrap_or_else(|p| p.into_inner());
    if v.is_none() {
        let chunks = job.lock().take_all();
        *v = Some(finish(chunks));
    }
}

impl<R> AsyncResult<R> {
    fn new(sh: Arc<Shared>, job: Arc<JobShared>, finish: Finish<R>) -> Self {
        AsyncResult { sh: Some(sh), job, finish, value: Arc::new(Mutex::new(None)), taken: false.into() }
    }

    /// A result that is already known.
    #[cfg(feature = "mpi")]
    fn from_value(value: Result<R>) -> Self {
        let job = Arc::new(JobShared::new(true));
        let mut d = Vec::new();
        job.seal(&mut d);
        run_deferred(d);
        let finish: Finish<R> = |_| Err(Error::InvalidState("this result was already taken".into()));
        AsyncResult { sh: None, job, finish, value: Arc::new(Mutex::new(Some(value))), taken: false.into() }
    }

    /// Whether the call has finished (successfully or not). Python's `ready`.
    pub fn ready(&self) -> bool {
        self.job.lock().complete()
    }

    /// Waits until the call has finished. Python's `wait()`.
    pub fn wait(&self) {
        if let Some(sh) = &self.sh {
            sh.wait_job(&self.job, None, &|g| g.complete());
        }
    }

    /// Waits at most `timeout`; returns whether the call has finished. Python's `wait(timeout)`.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        match &self.sh {
            Some(sh) => sh.wait_job(&self.job, Some(Instant::now() + timeout), &|g| g.complete()),
            None => true,
        }
    }

    fn take(&self) -> Result<R> {
        decode_into(&self.job, self.finish, &self.value);
        if self.taken.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return Err(Error::InvalidState("this result was already taken".into()));
        }
        self.value
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| Err(Error::InvalidState("this result was already taken".into())))
    }

    /// Waits for the result and returns it. Python's `get()`.
    ///
    /// # Errors
    /// The call's error ([`Error::TaskPanicked`], [`Error::WorkerLost`], …; for
    /// `map_async`, the first failed item's).
    pub fn get(self) -> Result<R> {
        self.wait();
        self.take()
    }

    /// Waits at most `timeout` for the result and takes it. Python's `get(timeout)`.
    ///
    /// # Errors
    /// [`Error::Timeout`] if it is not ready in time (call again later);
    /// [`Error::InvalidState`] if the result was already taken; otherwise as [`AsyncResult::get`].
    pub fn get_timeout(&self, timeout: Duration) -> Result<R> {
        if !self.wait_timeout(timeout) {
            return Err(Error::Timeout(timeout));
        }
        self.take()
    }

    /// Whether the call finished without error. Python's `successful`.
    ///
    /// # Errors
    /// [`Error::InvalidState`] if it has not finished yet (Python raises `ValueError`).
    pub fn successful(&self) -> Result<bool> {
        if !self.ready() {
            return Err(Error::InvalidState("the result is not ready".into()));
        }
        decode_into(&self.job, self.finish, &self.value);
        Ok(self.value.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_none_or(|r| r.is_ok()))
    }
}

impl<R: Send + 'static> AsyncResult<R> {
    /// Calls `f` with the result once it is ready, if the call succeeded
    /// (Python's `callback`). It runs on the thread that completes the call (the
    /// pool's thread, or one waiting on a result), or at once if already ready.
    /// Keep it short: it holds up other results.
    pub fn callback(self, f: impl FnOnce(&R) + Send + 'static) -> Self {
        let (job, finish, value) = (self.job.clone(), self.finish, self.value.clone());
        self.job.on_complete(Box::new(move || {
            decode_into(&job, finish, &value);
            if let Some(Ok(r)) = value.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                f(r);
            }
        }));
        self
    }

    /// Calls `f` with the error once the call has failed (Python's `error_callback`);
    /// runs as [`AsyncResult::callback`] does.
    pub fn error_callback(self, f: impl FnOnce(&Error) + Send + 'static) -> Self {
        let (job, finish, value) = (self.job.clone(), self.finish, self.value.clone());
        self.job.on_complete(Box::new(move || {
            decode_into(&job, finish, &value);
            if let Some(Err(e)) = value.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                f(e);
            }
        }));
        self
    }
}

impl<R> Future for AsyncResult<R> {
    type Output = Result<R>;
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<R>> {
        if self.ready() {
            return Poll::Ready(self.take());
        }
        self.job.add_waker(cx.waker());
        if self.ready() { Poll::Ready(self.take()) } else { Poll::Pending }
    }
}
