//! Process pools: Python's `multiprocessing.Pool`, over registered tasks.
//!
//! The pool is a façade over a private backend enum whose arms share method
//! names (as crossbeam-channel's flavors do): worker processes on this machine
//! (`local/`) and, with the `mpi` feature, the ranks of an MPI job (`mpi.rs`).
//! Both cut the input by one rule (`chunk.rs`), deliver encoded chunk results
//! into a job (`job.rs`), and hand back the same result types (`result.rs`),
//! which wait through the backend's `Driver`.
//!
//! Locally, calls are encoded in the caller's thread, batched into chunks, and
//! pipelined: several chunks are in flight per worker, and a thread waiting for
//! a result helps move results along before it sleeps (see `local/`).

mod adaptor;
mod chunk;
mod fallible;
mod futures;
mod job;
mod local;
#[cfg(feature = "mpi")]
mod mpi;
mod result;
mod signal;
mod state;
mod threaded;
mod wire;
mod worker;

pub(crate) mod dummy;
#[cfg(feature = "progress")]
mod progress;

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use self::adaptor::PoolIterator;
use self::chunk::{Feed, imap_chunksize, map_chunksize};
pub use self::fallible::TryIMapIter;
pub use self::futures::{AsCompleted, ReturnWhen, Waited, as_completed, wait_results};
use self::job::{Driver, JobShared, decode_next, finish_one, finish_vec};
use self::local::{Config, LocalPool};
pub use self::result::{AsyncResult, IMapIter, IMapUnorderedIter};
use self::result::{Feeder, Stream};
use crate::context::{Context, StartMethod, get_start_method};
use crate::error::{Error, Result};
use crate::task::Task;

#[cfg(feature = "progress")]
pub use self::progress::Progress;

/// Where a pool's workers run. Each arm has the same operations, by the same
/// names; `Pool` dispatches over it. Dropping an arm terminates its workers.
enum Backend {
    /// Worker processes on this machine.
    Local(LocalPool),
    /// The other ranks of an MPI job (cargo feature `mpi`).
    #[cfg(feature = "mpi")]
    Mpi(self::mpi::MpiPool),
}

/// Runs the same expression on whichever arm `$b` is.
macro_rules! each_backend {
    ($b:expr, $arm:ident => $e:expr) => {
        match $b {
            Backend::Local($arm) => $e,
            #[cfg(feature = "mpi")]
            Backend::Mpi($arm) => $e,
        }
    };
}

impl Backend {
    fn processes(&self) -> usize {
        each_backend!(self, b => b.shared.processes())
    }

    fn worker_pids(&self) -> Vec<u32> {
        each_backend!(self, b => b.shared.worker_pids())
    }

    /// What waits for this backend's results (it does not keep the workers).
    fn driver(&self) -> Arc<dyn Driver> {
        each_backend!(self, b => b.shared.clone())
    }

    /// A feeder for a lazy job: submits up to `limit` more calls from `items`.
    fn feeder<'a, F, A>(&self, mut feed: Feed<F>, mut items: impl Iterator<Item = A> + 'a) -> Feeder<'a>
    where
        F: Task<A> + 'a,
        A: Serialize + 'a,
    {
        match self {
            Backend::Local(b) => {
                let sh = b.shared.clone();
                Box::new(move |limit| local::submit_items(&sh, &mut feed, &mut items, limit))
            }
            #[cfg(feature = "mpi")]
            Backend::Mpi(b) => {
                let sh = b.shared.clone();
                Box::new(move |limit| sh.submit_items(&mut feed, &mut items, limit))
            }
        }
    }

    /// Submits every call from `items`.
    fn submit_all<F, A>(&self, feed: &mut Feed<F>, items: &mut dyn Iterator<Item = A>) -> Result<()>
    where
        F: Task<A>,
        A: Serialize,
    {
        match self {
            Backend::Local(b) => local::submit_items(&b.shared, feed, items, usize::MAX).map(drop),
            #[cfg(feature = "mpi")]
            Backend::Mpi(b) => b.shared.submit_items(feed, items, usize::MAX).map(drop),
        }
    }

    fn close(&self) {
        each_backend!(self, b => b.shared.close())
    }

    fn join(&self) -> Result<()> {
        each_backend!(self, b => b.shared.join())
    }

    fn terminate(&self) {
        each_backend!(self, b => b.shared.terminate())
    }
}

/// A pool of worker processes running registered tasks — Python's `multiprocessing.Pool`.
///
/// ```
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
/// - A worker that dies (killed, aborted, `exit`) fails the one call it was
///   running with [`Error::WorkerLost`] (pid and exit status); the calls it held
///   but had not started run on other workers, the worker is replaced and every
///   other call completes. With [`PoolBuilder::retries`], the call that was
///   running runs again, alone, up to that many times.
///
/// # Beyond Python's pool
/// Per-call timeouts ([`PoolBuilder::task_timeout`], [`AsyncResult::timeout`]),
/// cancellation ([`AsyncResult::cancel`]; dropping a [`Pool::submit`] result or
/// an `imap` iterator cancels too), memory limits
/// ([`PoolBuilder::max_memory_per_child`]), futures-style submission
/// ([`Pool::submit`], [`as_completed`](crate::as_completed),
/// [`wait_results`](crate::wait_results)), fallible tasks ([`Pool::try_map`]) and
/// `inputs.pool_map(&pool, task)` ([`PoolIterator`]).
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
/// [`dummy::Pool`](self::dummy::Pool) has the same API on threads of this process.
pub struct Pool {
    backend: Arc<Backend>,
    /// Chosen with [`Pool::with_chunksize`]; `None`: the rule of `chunk.rs`.
    chunksize: Option<usize>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("processes", &self.processes()).finish()
    }
}

/// A task name with encoded arguments and the handles inside them.
type EncodedCall = (String, Vec<u8>, Vec<std::os::fd::OwnedFd>);

/// Configures a [`Pool`] ([`Pool::builder`]): the number of workers, their
/// start method, an initializer, and the limits Python's pool does not have
/// (retries, per-call timeouts, memory).
///
/// ```
/// #[multiproc::task]
/// fn square(x: u64) -> u64 { x * x }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let builder: multiproc::PoolBuilder = multiproc::Pool::builder().processes(2).retries(1);
///     let pool = builder.build()?;
///     assert_eq!(pool.map(square, [3, 4])?, vec![9, 16]);
///     Ok(())
/// }
/// ```
#[derive(Default)]
pub struct PoolBuilder {
    processes: Option<usize>,
    method: Option<StartMethod>,
    initializer: Option<Result<EncodedCall>>,
    max_tasks: Option<usize>,
    retries: u32,
    task_timeout: Option<Duration>,
    max_memory: Option<u64>,
}

impl std::fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("processes", &self.processes)
            .field("start_method", &self.method)
            .field("max_tasks_per_child", &self.max_tasks)
            .field("retries", &self.retries)
            .field("task_timeout", &self.task_timeout)
            .field("max_memory_per_child", &self.max_memory)
            .finish()
    }
}

impl PoolBuilder {
    /// The number of worker processes (default: [`cpu_count`](crate::cpu_count)).
    /// Python's `processes=`.
    ///
    /// ```
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::builder().processes(2).build()?;
    ///     assert_eq!(pool.processes(), 2);
    ///     assert_eq!(pool.worker_pids().len(), 2);
    ///     Ok(())
    /// }
    /// ```
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n);
        self
    }

    /// The start method of the workers (default: [`get_start_method`]).
    ///
    /// ```
    /// use multiproc::StartMethod;
    ///
    /// #[multiproc::task]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     for method in multiproc::get_all_start_methods() {
    ///         let pool = multiproc::Pool::builder().processes(1).start_method(method).build()?;
    ///         assert_eq!(pool.apply(square, (5,))?, 25, "{method}");
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// The start method of `ctx` (Python's `context=`).
    ///
    /// ```
    /// #[multiproc::task]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let ctx = multiproc::get_context(multiproc::StartMethod::Fork);
    ///     let pool = multiproc::Pool::builder().processes(1).context(ctx).build()?;
    ///     assert_eq!(pool.map(square, [1, 2])?, vec![1, 4]);
    ///     Ok(())
    /// }
    /// ```
    pub fn context(self, ctx: Context) -> Self {
        self.start_method(ctx.start_method())
    }

    /// A task each worker runs once, before its first call (Python's
    /// `initializer`, `initargs`). If it panics or fails, [`PoolBuilder::build`]
    /// reports it; if it fails in a replacement worker, the pool's remaining
    /// calls fail with that message.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// static SCALE: AtomicU64 = AtomicU64::new(1);
    ///
    /// #[multiproc::task]
    /// fn set_scale(k: u64) { SCALE.store(k, Ordering::Relaxed) }
    ///
    /// #[multiproc::task]
    /// fn scaled(x: u64) -> u64 { x * SCALE.load(Ordering::Relaxed) }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::builder().processes(2).initializer(set_scale, (10,)).build()?;
    ///     assert_eq!(pool.map(scaled, 1..4)?, vec![10, 20, 30]);
    ///     Ok(())
    /// }
    /// ```
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
    ///
    /// ```
    /// #[multiproc::task]
    /// fn pid() -> u32 { std::process::id() }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::builder().processes(1).max_tasks_per_child(1).build()?;
    ///     let first = pool.apply(pid, ())?;
    ///     let second = pool.apply(pid, ())?;
    ///     assert_ne!(first, second, "each call ran in a fresh worker");
    ///     Ok(())
    /// }
    /// ```
    pub fn max_tasks_per_child(mut self, n: usize) -> Self {
        self.max_tasks = Some(n);
        self
    }

    /// When a worker dies, run the call it was running again, alone, up to `n`
    /// times (default 0: it fails with [`Error::WorkerLost`]). Whatever `n`, the
    /// calls the worker held but had not started run on another worker,
    /// uncharged; the calls of the same chunk that had finished but whose
    /// results had not left the worker yet run again too (so a call may run
    /// more than once when its worker dies).
    ///
    /// ```
    /// #[multiproc::task]
    /// fn die_once(died: multiproc::Event) -> String {
    ///     if !died.is_set() {
    ///         died.set();
    ///         std::process::exit(3); // the worker is lost mid-call
    ///     }
    ///     "second try".to_string()
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::builder().processes(1).retries(1).build()?;
    ///     let died = multiproc::Event::new()?;
    ///     assert_eq!(pool.apply(die_once, (died.clone(),))?, "second try");
    ///     assert!(died.is_set());
    ///     Ok(())
    /// }
    /// ```
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// The longest one call may run. A call still running after `timeout` is
    /// stopped by killing its worker (the only way to stop arbitrary code): it
    /// fails with [`Error::TaskTimeout`], is not retried, and the worker is
    /// replaced; the other calls that worker held run elsewhere. Measured from
    /// the moment the call starts in its worker (time spent queued does not
    /// count); the kill comes within a tenth of `timeout` (at most 100 ms) after
    /// it is due. A call's own [`AsyncResult::timeout`] wins over this.
    ///
    /// Local pools only: [`PoolBuilder::build`] refuses it for other backends,
    /// and a thread of [`dummy::Pool`](self::dummy::Pool) cannot be stopped.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// #[multiproc::task]
    /// fn nap(ms: u64) { std::thread::sleep(Duration::from_millis(ms)) }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::builder().processes(1).task_timeout(Duration::from_millis(200)).build()?;
    ///     assert!(matches!(pool.apply(nap, (10_000,)), Err(multiproc::Error::TaskTimeout { .. })));
    ///     pool.apply(nap, (1,))?; // a new worker took over
    ///     Ok(())
    /// }
    /// ```
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// Replace a worker whose resident memory (RSS) exceeds `bytes` after a
    /// call, before it takes the next (loky's memory leak protection): calls it
    /// held but had not started run on another worker; none is lost. The check
    /// reads `/proc/self/status` after each call, which costs a few µs a call.
    /// A worker killed for its memory by the kernel (the OOM killer, or a
    /// failed allocation under `RLIMIT_AS`) is a [`Error::WorkerLost`] for the
    /// call it ran, with its signal.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn hog(bytes: usize) -> u32 {
    ///     std::hint::black_box(vec![1u8; bytes].leak()); // touched, and never freed
    ///     std::process::id()
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::builder().processes(1).max_memory_per_child(48 << 20).build()?;
    ///     let leaky = pool.apply(hog, (64 << 20,))?;
    ///     let next = pool.apply(hog, (0,))?;
    ///     assert_ne!(leaky, next, "the worker over 48 MiB was replaced");
    ///     Ok(())
    /// }
    /// ```
    pub fn max_memory_per_child(mut self, bytes: u64) -> Self {
        self.max_memory = Some(bytes);
        self
    }

    /// Starts the workers; returns once every worker has run its initializer.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0 processes, `max_tasks_per_child(0)`,
    /// a zero `task_timeout` or `max_memory_per_child(0)`; the initializer's
    /// own failure ([`Error::TaskPanicked`], [`Error::TaskFailed`]); the errors of
    /// [`Process::start`](crate::Process::start) if a worker cannot start.
    ///
    /// ```
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::builder().processes(2).build()?;
    ///     assert_eq!(pool.processes(), 2);
    ///     let none = multiproc::Pool::builder().processes(0).build();
    ///     assert!(matches!(none, Err(multiproc::Error::InvalidArgument(_))));
    ///     Ok(())
    /// }
    /// ```
    pub fn build(self) -> Result<Pool> {
        let processes = self.processes.unwrap_or_else(crate::cpu_count);
        if processes == 0 {
            return Err(Error::InvalidArgument("a pool needs at least one process".into()));
        }
        if self.max_tasks == Some(0) {
            return Err(Error::InvalidArgument("max_tasks_per_child must be at least 1".into()));
        }
        if self.task_timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::InvalidArgument(
                "task_timeout must be longer than zero; leave it unset for no limit".into(),
            ));
        }
        if self.max_memory == Some(0) {
            return Err(Error::InvalidArgument(
                "max_memory_per_child must be at least 1 byte; leave it unset for no limit".into(),
            ));
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
            task_timeout: self.task_timeout,
            max_memory: self.max_memory,
        };
        Ok(Pool { backend: Arc::new(Backend::Local(LocalPool::start(cfg)?)), chunksize: None })
    }
}

impl Pool {
    /// A pool of `processes` workers with the default start method
    /// ([`get_start_method`]). Python's `Pool(processes)`.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     assert_eq!(pool.map(square, 0..3)?, vec![0, 1, 4]);
    ///     assert!(multiproc::Pool::new(0).is_err());
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `processes` is 0; otherwise as [`PoolBuilder::build`].
    pub fn new(processes: usize) -> Result<Pool> {
        Pool::builder().processes(processes).build()
    }

    /// A builder for the other options (initializer, start method, …).
    ///
    /// ```
    /// #[multiproc::task]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::builder().processes(1).max_tasks_per_child(10).build()?;
    ///     assert_eq!(pool.apply(square, (4,))?, 16);
    ///     Ok(())
    /// }
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// The pool that suits how the program was started: built with the `mpi`
    /// feature and launched under `mpirun`/`srun`, a pool over the other MPI ranks
    /// (`Pool::mpi`); otherwise a local pool of [`cpu_count`](crate::cpu_count) workers.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     // Not under mpirun (as here): a local pool, one worker per CPU.
    ///     let pool = multiproc::Pool::auto()?;
    ///     assert_eq!(pool.processes(), multiproc::cpu_count());
    ///     assert_eq!(pool.map(square, 0..3)?, vec![0, 1, 4]);
    ///     Ok(())
    /// }
    /// ```
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
    /// `main`). The same methods, chunking and result types as a local pool, and
    /// every `*_async` method returns at once with its calls in flight; handles
    /// that hold a file descriptor (`Connection`, `Queue`, …) cannot cross MPI
    /// ([`Error::InvalidArgument`]). See the book's MPI chapter.
    ///
    /// A doctest is not launched under MPI, so here it is refused:
    ///
    /// ```
    /// #[multiproc::main]
    /// fn main() {
    ///     let e = multiproc::Pool::mpi().unwrap_err();
    ///     assert!(matches!(e, multiproc::Error::InvalidState(_)));
    ///     assert!(e.to_string().contains("not launched under MPI"), "{e}");
    /// }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the program was not launched under MPI or runs on
    /// one rank only.
    #[cfg(feature = "mpi")]
    pub fn mpi() -> Result<Pool> {
        Ok(Pool { backend: Arc::new(Backend::Mpi(self::mpi::MpiPool::new()?)), chunksize: None })
    }

    /// The number of workers the pool keeps (Python's `Pool._processes`).
    ///
    /// ```
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     assert_eq!(pool.processes(), 2);
    ///     Ok(())
    /// }
    /// ```
    pub fn processes(&self) -> usize {
        self.backend.processes()
    }

    /// The pids of the workers right now (they change when a worker is replaced);
    /// empty for an MPI pool, whose workers may live on other hosts.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn pid() -> u32 { std::process::id() }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     let pids = pool.worker_pids();
    ///     assert_eq!(pids.len(), 2);
    ///     assert!(pids.contains(&pool.apply(pid, ())?));
    ///     Ok(())
    /// }
    /// ```
    pub fn worker_pids(&self) -> Vec<u32> {
        self.backend.worker_pids()
    }

    /// The same operations with a chosen chunk size (Python's `chunksize=`), on
    /// every backend: `pool.with_chunksize(1).map(f, xs)`. A chunk size of 0
    /// counts as 1.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn pid(_x: u64) -> u32 { std::process::id() }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     // One chunk of all four calls: a single worker runs them.
    ///     let pids = pool.with_chunksize(4).map(pid, 0..4)?;
    ///     assert!(pids.iter().all(|&p| p == pids[0]));
    ///     Ok(())
    /// }
    /// ```
    pub fn with_chunksize(&self, chunksize: usize) -> Chunked<'_> {
        let pool = Pool { backend: self.backend.clone(), chunksize: Some(chunksize.max(1)) };
        Chunked { pool, _borrow: PhantomData }
    }

    /// Runs `task(x)` for every `x` of `inputs` and returns the results in order.
    /// Blocks until all are done. Python's `map`.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     assert_eq!(pool.map(square, vec![3, 1, 2])?, vec![9, 1, 4]);
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// The first failed call's error, in input order ([`Error::TaskPanicked`],
    /// [`Error::WorkerLost`], [`Error::Encode`] …); [`Error::InvalidState`] after
    /// `close`/`terminate`. (An unregistered task is a compile error.)
    pub fn map<F, T, I>(&self, task: F, inputs: I) -> Result<Vec<F::Output>>
    where
        F: Task<(T,)>,
        T: Serialize,
        I: IntoIterator<Item = T>,
        F::Output: DeserializeOwned,
    {
        self.starmap(task, inputs.into_iter().map(|x| (x,)))
    }

    /// Runs `task(a, b, …)` for every argument tuple of `inputs`; results in order.
    /// Python's `starmap`.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     assert_eq!(pool.starmap(add, [(1, 2), (3, 4)])?, vec![3, 7]);
    ///     Ok(())
    /// }
    /// ```
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
        // As `starmap_async(..).get()`, but results are decoded as their chunks
        // arrive, while later chunks are still running.
        self.starmap_async(task, inputs)?.get_streaming(F::bulk_output())
    }

    /// [`Pool::map`] without waiting: returns an [`AsyncResult`] of the whole list.
    /// Python's `map_async`.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     let pending = pool.map_async(square, 0..4)?;
    ///     // ... the calls run while this thread does something else ...
    ///     assert_eq!(pending.get()?, vec![0, 1, 4, 9]);
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidState`] (as [`Pool::map`]); failed calls
    /// are reported by [`AsyncResult::get`].
    pub fn map_async<F, T, I>(&self, task: F, inputs: I) -> Result<AsyncResult<Vec<F::Output>>>
    where
        F: Task<(T,)>,
        T: Serialize,
        I: IntoIterator<Item = T>,
        F::Output: DeserializeOwned,
    {
        self.starmap_async(task, inputs.into_iter().map(|x| (x,)))
    }

    /// [`Pool::starmap`] without waiting. Python's `starmap_async`.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     let pending = pool.starmap_async(add, vec![(1, 1), (2, 2)])?;
    ///     assert_eq!(pending.get()?, vec![2, 4]);
    ///     Ok(())
    /// }
    /// ```
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
        let name = task.task_name()?;
        let processes = self.backend.processes();
        let mut it = inputs.into_iter();
        let (chunksize, mut collected) = match (self.chunksize, it.size_hint()) {
            (Some(c), _) => (c, None),
            (None, (lo, Some(hi))) if lo == hi => (map_chunksize(lo, processes), None),
            (None, _) => {
                // Python's map takes len(list(iterable)) too.
                let v: Vec<A> = it.by_ref().collect();
                (map_chunksize(v.len(), processes), Some(v.into_iter()))
            }
        };
        let job = Arc::new(JobShared::new(true));
        let mut feed = Feed::new(task, name, job.clone(), chunksize);
        let items: &mut dyn Iterator<Item = A> = match &mut collected {
            Some(v) => v,
            None => &mut it,
        };
        self.backend.submit_all(&mut feed, items)?;
        // Dropped before it is done (and with no callback), nobody can see the
        // rest of its results: the calls not yet run are cancelled.
        Ok(AsyncResult::new(self.backend.driver(), job, finish_vec::<F, A>).cancel_on_drop(true))
    }

    /// Lazily maps `task` over `inputs`, yielding results in input order as
    /// they become available. The input is pulled as results are consumed, so an
    /// endless iterator works in bounded memory. Python's `imap`.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     // An endless input: only what is consumed is computed (give or take a window).
    ///     let first: Vec<u64> = pool.imap(square, 0..)?.take(3).collect::<multiproc::Result<_>>()?;
    ///     assert_eq!(first, vec![0, 1, 4]);
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidState`] on a closed pool; each
    /// item is then `Ok(result)` or that call's error.
    pub fn imap<'a, F, T, I>(&self, task: F, inputs: I) -> Result<IMapIter<'a, F::Output>>
    where
        F: Task<(T,)> + 'a,
        T: Serialize + 'a,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        F::Output: DeserializeOwned,
    {
        Ok(IMapIter::new(self.stream(task, inputs, true)?))
    }

    /// As [`Pool::imap`], yielding results in completion order. Python's `imap_unordered`.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     let mut squares = Vec::new();
    ///     for r in pool.imap_unordered(square, 0..5)? {
    ///         squares.push(r?); // whichever call finished next
    ///     }
    ///     squares.sort();
    ///     assert_eq!(squares, vec![0, 1, 4, 9, 16]);
    ///     Ok(())
    /// }
    /// ```
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
        Ok(IMapUnorderedIter::new(self.stream(task, inputs, false)?))
    }

    /// Runs `task(args…)` in a worker and waits for the result. Python's `apply`.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(1)?;
    ///     assert_eq!(pool.apply(add, (2, 3))?, 5);
    ///     Ok(())
    /// }
    /// ```
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
    /// ```
    /// #[multiproc::task]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     let a = pool.apply_async(add, (1, 2))?;
    ///     let b = pool.apply_async(add, (3, 4))?; // both in flight at once
    ///     assert_eq!(a.get()? + b.get()?, 10);
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// [`Error::Encode`], or [`Error::InvalidState`] on a
    /// closed pool.
    pub fn apply_async<F, A>(&self, task: F, args: A) -> Result<AsyncResult<F::Output>>
    where
        F: Task<A>,
        A: Serialize,
        F::Output: DeserializeOwned,
    {
        let name = task.task_name()?;
        let job = Arc::new(JobShared::new(true));
        let mut feed = Feed::new(task, name, job.clone(), 1);
        feed.strict = true;
        self.backend.submit_all(&mut feed, &mut std::iter::once(args))?;
        Ok(AsyncResult::new(self.backend.driver(), job, finish_one::<F, A>))
    }

    /// Runs `task(args…)` in a worker, as a future: [`Pool::apply_async`], but a
    /// result dropped before it is done cancels its call (it never runs if it
    /// had not started). `concurrent.futures`' `Executor.submit`; take many with
    /// [`as_completed`](crate::as_completed) or [`wait_results`](crate::wait_results).
    ///
    /// ```
    /// #[multiproc::task]
    /// fn crunch(n: u64) -> u64 { (0..n).sum() }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     let futs: Vec<_> = (0..10u64).map(|n| pool.submit(crunch, (n,))).collect::<multiproc::Result<_>>()?;
    ///     let mut sums = multiproc::as_completed(futs).collect::<multiproc::Result<Vec<u64>>>()?;
    ///     sums.sort();
    ///     assert_eq!(sums[9], 36);
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// As [`Pool::apply_async`].
    pub fn submit<F, A>(&self, task: F, args: A) -> Result<AsyncResult<F::Output>>
    where
        F: Task<A>,
        A: Serialize,
        F::Output: DeserializeOwned,
    {
        Ok(self.apply_async(task, args)?.cancel_on_drop(true))
    }

    /// Stops accepting work; submitted work still runs. Python's `close`.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(1)?;
    ///     let pending = pool.apply_async(square, (3,))?;
    ///     pool.close();
    ///     assert!(matches!(pool.apply(square, (4,)), Err(multiproc::Error::InvalidState(_))));
    ///     assert_eq!(pending.get()?, 9, "work submitted before close still runs");
    ///     pool.join()
    /// }
    /// ```
    pub fn close(&self) {
        self.backend.close()
    }

    /// Waits for all submitted work to finish and the workers to exit. Python's `join`.
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the pool is still running (call [`Pool::close`]
    /// or [`Pool::terminate`] first).
    ///
    /// ```
    /// #[multiproc::task]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(1)?;
    ///     let pending = pool.map_async(square, 0..3)?;
    ///     assert!(pool.join().is_err(), "still running: close it first");
    ///     pool.close();
    ///     pool.join()?;
    ///     assert!(pending.ready());
    ///     assert_eq!(pending.get()?, vec![0, 1, 4]);
    ///     Ok(())
    /// }
    /// ```
    pub fn join(&self) -> Result<()> {
        self.backend.join()
    }

    /// Stops the workers at once; unfinished calls fail with [`Error::InvalidState`].
    /// Python's `terminate` (also what dropping the pool does).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// #[multiproc::task]
    /// fn nap(ms: u64) { std::thread::sleep(Duration::from_millis(ms)) }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(1)?;
    ///     let long = pool.apply_async(nap, (10_000,))?;
    ///     pool.terminate();
    ///     assert!(matches!(long.get(), Err(multiproc::Error::InvalidState(_))));
    ///     pool.join() // the workers are gone
    /// }
    /// ```
    pub fn terminate(&self) {
        self.backend.terminate()
    }

    fn stream<'a, F, T, I>(&self, task: F, inputs: I, ordered: bool) -> Result<Stream<'a, F::Output>>
    where
        F: Task<(T,)> + 'a,
        T: Serialize + 'a,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        F::Output: DeserializeOwned,
    {
        let name = task.task_name()?;
        let it = inputs.into_iter();
        let len = match it.size_hint() {
            (lo, Some(hi)) if lo == hi => Some(lo),
            _ => None,
        };
        let processes = self.backend.processes();
        let job = Arc::new(JobShared::new(ordered));
        let (chunksize, feed) = match self.chunksize {
            Some(c) => (c, Feed::new(task, name, job.clone(), c)),
            None => {
                // The default rule starts small: an early first result.
                let c = imap_chunksize(it.size_hint(), processes);
                (c, Feed::ramped(task, name, job.clone(), c))
            }
        };
        let window = (chunksize * processes * 16).max(1024);
        let feeder = self.backend.feeder(feed, it.map(|x| (x,)));
        Stream::start(self.backend.driver(), job, feeder, window, len, decode_next::<F, (T,)>)
    }
}

/// Pool operations with a chosen chunk size ([`Pool::with_chunksize`]): it
/// dereferences to the same [`Pool`], whose methods then use that chunk size.
///
/// ```
/// #[multiproc::task]
/// fn square(x: u64) -> u64 { x * x }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let pool = multiproc::Pool::new(2)?;
///     let one_by_one: multiproc::Chunked<'_> = pool.with_chunksize(1);
///     assert_eq!(one_by_one.map(square, 0..3)?, vec![0, 1, 4]);
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct Chunked<'p> {
    pool: Pool,
    _borrow: PhantomData<&'p Pool>,
}

impl Clone for Chunked<'_> {
    fn clone(&self) -> Self {
        let pool = Pool { backend: self.pool.backend.clone(), chunksize: self.pool.chunksize };
        Chunked { pool, _borrow: PhantomData }
    }
}

impl Deref for Chunked<'_> {
    type Target = Pool;
    fn deref(&self) -> &Pool {
        &self.pool
    }
}

impl Context {
    /// A [`Pool`] of `processes` workers started with this context's method
    /// (here rather than in `context`, which stays below the pool).
    ///
    /// ```
    /// #[multiproc::task]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::get_context(multiproc::StartMethod::Spawn).pool(2)?;
    ///     assert_eq!(pool.map(square, vec![1, 2, 3])?, vec![1, 4, 9]);
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// As [`Pool::new`].
    pub fn pool(&self, processes: usize) -> Result<Pool> {
        Pool::builder().processes(processes).context(*self).build()
    }
}
