//! The results of a pool's calls, the same for every backend: [`AsyncResult`]
//! (also a [`Future`]), and the iterators of `imap` ([`IMapIter`]) and
//! `imap_unordered` ([`IMapUnorderedIter`]).
//!
//! A backend delivers encoded chunk results into a [`JobShared`]; these types
//! decode them in the thread that asks, and wait through the backend's
//! [`Driver`] (which moves results along while it waits).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use super::job::{ChunkResult, Driver, JobShared, run_deferred};
use super::threaded::{Slot, ThreadStream};
use crate::codec::TakeBulk;
use crate::error::{Error, Result};

/// Decodes a complete job's chunks into the call's value.
pub(crate) type Finish<R> = fn(Vec<ChunkResult>) -> Result<R>;

fn already_taken() -> Error {
    Error::InvalidState("this result was already taken".into())
}

/// The result of an asynchronous call — Python's `AsyncResult`, and a [`Future`].
///
/// [`get`](AsyncResult::get) blocks until the result is ready; a thread that
/// waits spins briefly (helping move results along) before it sleeps, so a
/// quick call's round trip costs microseconds, not a kernel wake-up. Awaiting it
/// needs no runtime in particular: the pool's thread wakes the task.
///
/// ```
/// #[multiproc::task]
/// fn add(a: u64, b: u64) -> u64 { a + b }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let pool = multiproc::Pool::new(2)?;
///     let r: multiproc::AsyncResult<u64> = pool.apply_async(add, (2, 3))?;
///     assert_eq!(r.get()?, 5);
///     Ok(())
/// }
/// ```
///
/// Awaited, under any executor (here `block_on`, a minimal one that parks the thread):
///
/// ```
/// # use std::{future::Future, pin::pin, sync::Arc, task::{Context, Poll, Wake}, thread::Thread};
/// # struct Unpark(Thread);
/// # impl Wake for Unpark { fn wake(self: Arc<Self>) { self.0.unpark() } }
/// # fn block_on<F: Future>(f: F) -> F::Output {
/// #     let waker = Arc::new(Unpark(std::thread::current())).into();
/// #     let mut cx = Context::from_waker(&waker);
/// #     let mut f = pin!(f);
/// #     loop {
/// #         if let Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
/// #         std::thread::park();
/// #     }
/// # }
/// #[multiproc::task]
/// fn add(a: u64, b: u64) -> u64 { a + b }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let pool = multiproc::Pool::new(2)?;
///     let (a, b) = (pool.apply_async(add, (1, 2))?, pool.apply_async(add, (3, 4))?);
///     let sum = block_on(async { Ok::<_, multiproc::Error>(a.await? + b.await?) })?;
///     assert_eq!(sum, 10);
///     Ok(())
/// }
/// ```
pub struct AsyncResult<R> {
    src: Source<R>,
}

/// Where an [`AsyncResult`]'s value comes from.
enum Source<R> {
    /// Encoded results of a backend's job.
    Job(JobResult<R>),
    /// A value computed by a thread of [`dummy::Pool`](super::dummy::Pool).
    Thread(Arc<Slot<R>>),
}

/// Runs the same expression on whichever source `$s` is.
macro_rules! each_source {
    ($s:expr, $x:ident => $e:expr) => {
        match $s {
            Source::Job($x) => $e,
            Source::Thread($x) => $e,
        }
    };
}

impl<R> std::fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncResult").field("ready", &self.ready()).finish()
    }
}

impl<R> AsyncResult<R> {
    /// The result of a backend's `job`, sealed, waited for through `driver`.
    pub(crate) fn new(driver: Arc<dyn Driver>, job: Arc<JobShared>, finish: Finish<R>) -> Self {
        AsyncResult { src: Source::Job(JobResult::new(driver, job, finish)) }
    }

    /// The result a thread of `dummy::Pool` puts in `slot`.
    pub(crate) fn from_slot(slot: Arc<Slot<R>>) -> Self {
        AsyncResult { src: Source::Thread(slot) }
    }

    /// Whether the call has finished (successfully or not). Python's `ready`.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn after(go: multiproc::Event) -> u64 { go.wait(None); 42 }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(1)?;
    ///     let go = multiproc::Event::new()?;
    ///     let r = pool.apply_async(after, (go.clone(),))?;
    ///     assert!(!r.ready(), "it waits for `go`");
    ///     go.set();
    ///     r.wait();
    ///     assert!(r.ready());
    ///     Ok(())
    /// }
    /// ```
    pub fn ready(&self) -> bool {
        each_source!(&self.src, s => s.ready())
    }

    /// Waits until the call has finished. Python's `wait()`.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(1)?;
    ///     let r = pool.apply_async(add, (2, 3))?;
    ///     r.wait();
    ///     assert!(r.ready());
    ///     assert_eq!(r.get()?, 5);
    ///     Ok(())
    /// }
    /// ```
    pub fn wait(&self) {
        each_source!(&self.src, s => s.wait())
    }

    /// Waits at most `timeout`; returns whether the call has finished. Python's `wait(timeout)`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// #[multiproc::task]
    /// fn after(go: multiproc::Event) -> u64 { go.wait(None); 42 }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(1)?;
    ///     let go = multiproc::Event::new()?;
    ///     let r = pool.apply_async(after, (go.clone(),))?;
    ///     assert!(!r.wait_timeout(Duration::from_millis(20)));
    ///     go.set();
    ///     assert!(r.wait_timeout(Duration::from_secs(10)));
    ///     Ok(())
    /// }
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        each_source!(&self.src, s => s.wait_timeout(timeout))
    }

    fn take(&self) -> Result<R> {
        each_source!(&self.src, s => s.take())
    }

    /// Waits for the result and returns it. Python's `get()`.
    ///
    /// # Errors
    /// The call's error ([`Error::TaskPanicked`], [`Error::WorkerLost`], …; for
    /// `map_async`, the first failed item's); [`Error::InvalidState`] if the pool
    /// was terminated first.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn div(a: u64, b: u64) -> u64 { a / b }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(1)?;
    ///     assert_eq!(pool.apply_async(div, (6, 3))?.get()?, 2);
    ///     let panicked = pool.apply_async(div, (1, 0))?.get();
    ///     assert!(matches!(panicked, Err(multiproc::Error::TaskPanicked { .. })));
    ///     Ok(())
    /// }
    /// ```
    pub fn get(self) -> Result<R> {
        self.wait();
        self.take()
    }

    /// Waits at most `timeout` for the result and takes it. Python's `get(timeout)`.
    ///
    /// # Errors
    /// [`Error::Timeout`] if it is not ready in time (call again later);
    /// [`Error::InvalidState`] if the result was already taken; otherwise as [`AsyncResult::get`].
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// #[multiproc::task]
    /// fn after(go: multiproc::Event) -> u64 { go.wait(None); 42 }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(1)?;
    ///     let go = multiproc::Event::new()?;
    ///     let r = pool.apply_async(after, (go.clone(),))?;
    ///     let early = r.get_timeout(Duration::from_millis(20));
    ///     assert!(matches!(early, Err(multiproc::Error::Timeout(_))));
    ///     go.set();
    ///     assert_eq!(r.get_timeout(Duration::from_secs(10))?, 42);
    ///     assert!(r.get_timeout(Duration::ZERO).is_err(), "taken already");
    ///     Ok(())
    /// }
    /// ```
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
    ///
    /// ```
    /// #[multiproc::task]
    /// fn div(a: u64, b: u64) -> u64 { a / b }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(1)?;
    ///     let (good, bad) = (pool.apply_async(div, (6, 3))?, pool.apply_async(div, (1, 0))?);
    ///     good.wait();
    ///     bad.wait();
    ///     assert!(good.successful()?);
    ///     assert!(!bad.successful()?);
    ///     Ok(())
    /// }
    /// ```
    pub fn successful(&self) -> Result<bool> {
        each_source!(&self.src, s => s.successful())
    }

    /// Limits how long each of this result's calls may run, from the moment
    /// it starts in its worker (the pool's
    /// [`task_timeout`](crate::PoolBuilder::task_timeout) says what happens
    /// then: [`Error::TaskTimeout`], the worker is killed and replaced). It
    /// takes effect at once, also for a call already running. A zero `after`
    /// is a no-op (no limit), as are timeouts on an MPI pool and on
    /// [`dummy::Pool`](super::dummy::Pool), whose ranks and threads cannot be stopped.
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
    ///     let r = pool.apply_async(nap, (10_000,))?.timeout(Duration::from_millis(100));
    ///     assert!(matches!(r.get(), Err(multiproc::Error::TaskTimeout { .. })));
    ///     Ok(())
    /// }
    /// ```
    pub fn timeout(self, after: Duration) -> Self {
        if let Source::Job(j) = &self.src
            && !after.is_zero()
        {
            j.job.set_timeout(after);
            j.driver.watch();
        }
        self
    }

    /// Cancels the calls of this result that have not started: they never
    /// run, and [`get`](AsyncResult::get) reports [`Error::Cancelled`] (calls
    /// that already finished keep their results; a `map`'s `get` reports the
    /// first cancelled call). Calls already running go on; see
    /// [`cancel_running`](AsyncResult::cancel_running). Returns `false` if it
    /// was done already or cancelled before (then this is a no-op), and on a
    /// [`dummy::Pool`](super::dummy::Pool), whose calls cannot be cancelled.
    ///
    /// On an MPI pool, calls already sent to a rank still run there, but are
    /// reported cancelled.
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
    ///     let busy = pool.apply_async(nap, (300,))?;
    ///     let waiting = pool.apply_async(nap, (300,))?;
    ///     assert!(waiting.cancel());
    ///     assert!(matches!(waiting.get(), Err(multiproc::Error::Cancelled)));
    ///     busy.get()
    /// }
    /// ```
    pub fn cancel(&self) -> bool {
        match &self.src {
            Source::Job(j) => j.cancel(false),
            Source::Thread(_) => false,
        }
    }

    /// As [`cancel`](AsyncResult::cancel), and stops the calls already running
    /// by killing their workers (local pools; each is replaced): they too
    /// report [`Error::Cancelled`]. The other calls those workers held run
    /// elsewhere. On other backends, as `cancel`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// #[multiproc::task]
    /// fn stall(started: multiproc::Event) { started.set(); std::thread::sleep(Duration::from_secs(10)) }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(1)?;
    ///     let started = multiproc::Event::new()?;
    ///     let r = pool.apply_async(stall, (started.clone(),))?;
    ///     assert!(started.wait(Some(Duration::from_secs(10))));
    ///     assert!(r.cancel_running());
    ///     assert!(matches!(r.get(), Err(multiproc::Error::Cancelled)));
    ///     Ok(())
    /// }
    /// ```
    pub fn cancel_running(&self) -> bool {
        match &self.src {
            Source::Job(j) => j.cancel(true),
            Source::Thread(_) => false,
        }
    }

    /// Whether [`cancel`](AsyncResult::cancel) or
    /// [`cancel_running`](AsyncResult::cancel_running) was called (or the
    /// result was dropped while it cancels on drop). Python's `Future.cancelled`.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn after(go: multiproc::Event) -> u64 { go.wait(None); 42 }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(1)?;
    ///     let go = multiproc::Event::new()?;
    ///     let (busy, queued) = (pool.apply_async(after, (go.clone(),))?, pool.apply_async(after, (go.clone(),))?);
    ///     assert!(!queued.cancelled());
    ///     queued.cancel();
    ///     assert!(queued.cancelled());
    ///     go.set();
    ///     assert_eq!(busy.get()?, 42);
    ///     Ok(())
    /// }
    /// ```
    pub fn cancelled(&self) -> bool {
        match &self.src {
            Source::Job(j) => j.job.cancelled(),
            Source::Thread(_) => false,
        }
    }

    /// Whether this result moves only while someone polls it (an MPI pool's).
    pub(crate) fn needs_polling(&self) -> bool {
        match &self.src {
            Source::Job(j) => !j.driver.delivers_alone(),
            Source::Thread(_) => false,
        }
    }

    /// Runs `hook` once the call is done (at once if it is).
    pub(crate) fn on_done(&self, hook: Box<dyn FnOnce() + Send>) {
        match &self.src {
            Source::Job(j) => j.job.on_complete(hook),
            Source::Thread(s) => s.on_done(Box::new(move |_| hook())),
        }
    }

    /// Whether dropping this result before it is done cancels its calls.
    pub(crate) fn cancel_on_drop(self, yes: bool) -> Self {
        if let Source::Job(j) = &self.src {
            j.cancel_on_drop.store(yes, Ordering::Relaxed);
        }
        self
    }
}

impl<R: DeserializeOwned> AsyncResult<Vec<R>> {
    /// As [`get`](AsyncResult::get) for a `map`, decoding chunks as they
    /// arrive (with `bulk`, the results' one-copy reader, if they have one).
    pub(crate) fn get_streaming(self, bulk: Option<TakeBulk<R>>) -> Result<Vec<R>> {
        match self.src {
            Source::Job(j) => j.get_streaming(bulk),
            Source::Thread(s) => {
                s.wait();
                s.take()
            }
        }
    }
}

impl<R: DeserializeOwned> AsyncResult<Vec<R>> {
    /// As [`JobResult::try_each`] (a thread pool's result: once it is complete).
    pub(crate) fn try_each(self, mut f: impl FnMut(usize, R) -> Result<()>) -> Result<()> {
        match &self.src {
            Source::Job(j) => j.try_each(f),
            Source::Thread(s) => {
                s.wait();
                s.take()?.into_iter().enumerate().try_for_each(|(i, r)| f(i, r))
            }
        }
    }
}

impl<R: Send + 'static> AsyncResult<R> {
    /// Calls `f` with the result once it is ready, if the call succeeded
    /// (Python's `callback`). It runs on the thread that completes the call (the
    /// pool's thread, or one waiting on a result), or at once if already ready.
    /// Keep it short: it holds up other results.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// #[multiproc::task]
    /// fn add(a: u64, b: u64) -> u64 { a + b }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(1)?;
    ///     let (tx, rx) = mpsc::channel();
    ///     let _r = pool.apply_async(add, (2, 3))?.callback(move |sum| tx.send(*sum).unwrap());
    ///     assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(5));
    ///     Ok(())
    /// }
    /// ```
    pub fn callback(self, f: impl FnOnce(&R) + Send + 'static) -> Self {
        match self.src {
            Source::Job(j) => AsyncResult { src: Source::Job(j.callback(f)) },
            Source::Thread(s) => {
                s.on_done(Box::new(move |r| {
                    if let Ok(v) = r {
                        f(v);
                    }
                }));
                AsyncResult { src: Source::Thread(s) }
            }
        }
    }

    /// Calls `f` with the error once the call has failed (Python's `error_callback`);
    /// runs as [`AsyncResult::callback`] does.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    ///
    /// #[multiproc::task]
    /// fn div(a: u64, b: u64) -> u64 { a / b }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(1)?;
    ///     let (tx, rx) = mpsc::channel();
    ///     let _r = pool.apply_async(div, (1, 0))?.error_callback(move |e| tx.send(e.to_string()).unwrap());
    ///     let message = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    ///     assert!(message.contains("divide by zero"), "{message}");
    ///     Ok(())
    /// }
    /// ```
    pub fn error_callback(self, f: impl FnOnce(&Error) + Send + 'static) -> Self {
        match self.src {
            Source::Job(j) => AsyncResult { src: Source::Job(j.error_callback(f)) },
            Source::Thread(s) => {
                s.on_done(Box::new(move |r| {
                    if let Err(e) = r {
                        f(e);
                    }
                }));
                AsyncResult { src: Source::Thread(s) }
            }
        }
    }
}

impl<R> Future for AsyncResult<R> {
    type Output = Result<R>;
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<R>> {
        match &self.src {
            Source::Job(j) => j.poll_job(cx),
            Source::Thread(s) => {
                s.add_waker(cx.waker());
                if s.ready() { Poll::Ready(s.take()) } else { Poll::Pending }
            }
        }
    }
}

/// An [`AsyncResult`] whose calls run on a backend (local workers, MPI ranks).
pub(crate) struct JobResult<R> {
    driver: Arc<dyn Driver>,
    job: Arc<JobShared>,
    finish: Finish<R>,
    value: Arc<Mutex<Option<Result<R>>>>,
    taken: AtomicBool,
    /// Dropping it before it is done cancels its calls (`submit`, `map_async`
    /// without callbacks).
    cancel_on_drop: AtomicBool,
}

impl<R> Drop for JobResult<R> {
    fn drop(&mut self) {
        if self.cancel_on_drop.load(Ordering::Relaxed) && !self.job.lock().complete() {
            self.driver.cancel(&self.job, false);
        }
    }
}

fn decode_into<R>(job: &JobShared, finish: Finish<R>, value: &Mutex<Option<Result<R>>>) {
    let mut v = value.lock().unwrap_or_else(|p| p.into_inner());
    if v.is_none() {
        let chunks = job.lock().take_all();
        *v = Some(finish(chunks));
    }
}

impl<R> JobResult<R> {
    /// The result of `job`, sealed (every call submitted), waited for through `driver`.
    pub(crate) fn new(driver: Arc<dyn Driver>, job: Arc<JobShared>, finish: Finish<R>) -> Self {
        let mut d = Vec::new();
        job.seal(&mut d);
        run_deferred(d);
        JobResult {
            driver,
            job,
            finish,
            value: Arc::new(Mutex::new(None)),
            taken: false.into(),
            cancel_on_drop: false.into(),
        }
    }

    /// Cancels the job (see [`AsyncResult::cancel`]); whether that did anything.
    pub(crate) fn cancel(&self, running: bool) -> bool {
        if self.job.lock().complete() {
            return false;
        }
        self.driver.cancel(&self.job, running)
    }

    /// Whether the call has finished (successfully or not). Python's `ready`.
    pub(crate) fn ready(&self) -> bool {
        if !self.driver.delivers_alone() {
            self.driver.progress(&self.job);
        }
        self.job.lock().complete()
    }

    /// Waits until the call has finished. Python's `wait()`.
    pub(crate) fn wait(&self) {
        self.driver.wait_job(&self.job, None, &|g| g.complete());
    }

    /// Waits at most `timeout`; returns whether the call has finished. Python's `wait(timeout)`.
    pub(crate) fn wait_timeout(&self, timeout: Duration) -> bool {
        self.driver.wait_job(&self.job, Some(crate::backoff::deadline_after(timeout)), &|g| g.complete())
    }

    pub(crate) fn take(&self) -> Result<R> {
        decode_into(&self.job, self.finish, &self.value);
        if self.taken.swap(true, Ordering::AcqRel) {
            return Err(already_taken());
        }
        self.value.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_else(|| Err(already_taken()))
    }

    /// Whether the call finished without error. Python's `successful`.
    ///
    /// # Errors
    /// [`Error::InvalidState`] if it has not finished yet (Python raises `ValueError`).
    pub(crate) fn successful(&self) -> Result<bool> {
        if !self.ready() {
            return Err(Error::InvalidState("the result is not ready".into()));
        }
        decode_into(&self.job, self.finish, &self.value);
        Ok(self.value.lock().unwrap_or_else(|p| p.into_inner()).as_ref().is_none_or(|r| r.is_ok()))
    }
}

impl<R: DeserializeOwned> JobResult<Vec<R>> {
    /// As [`get`](AsyncResult::get) for a `map`, but the results are decoded as
    /// their chunks arrive, while later chunks still run.
    pub(crate) fn get_streaming(self, bulk: Option<TakeBulk<R>>) -> Result<Vec<R>> {
        let job = &self.job;
        let mut out = Vec::with_capacity(job.lock().submitted);
        loop {
            let next = job.lock().take_chunk();
            if let Some(mut chunk) = next {
                chunk.take_all(&mut out, bulk)?;
                continue;
            }
            {
                let g = job.lock();
                if g.complete() && g.taken == g.submitted {
                    return Ok(out);
                }
            }
            self.driver.wait_job(job, None, &|g| g.chunk_ready() || (g.complete() && g.taken == g.submitted));
        }
    }
}

impl<R: DeserializeOwned> JobResult<Vec<R>> {
    /// Hands each result to `f` in input order, decoding chunks as they
    /// arrive; at the first failed call, or the first error of `f`, cancels
    /// the calls not yet run and returns that error.
    pub(crate) fn try_each(&self, mut f: impl FnMut(usize, R) -> Result<()>) -> Result<()> {
        let job = &self.job;
        let mut each = || -> Result<()> {
            loop {
                let next = job.lock().take_chunk();
                if let Some(mut chunk) = next {
                    let mut index = chunk.first;
                    while let Some(item) = chunk.next::<R>() {
                        f(index, item?)?;
                        index += 1;
                    }
                    continue;
                }
                {
                    let g = job.lock();
                    if g.complete() && g.taken == g.submitted {
                        return Ok(());
                    }
                }
                self.driver.wait_job(job, None, &|g| g.chunk_ready() || (g.complete() && g.taken == g.submitted));
            }
        };
        let r = each();
        if r.is_err() {
            self.driver.cancel(job, false);
        }
        r
    }
}

impl<R: Send + 'static> JobResult<R> {
    /// Calls `f` with the result once it is ready, if the call succeeded
    /// (Python's `callback`). It runs on the thread that completes the call (the
    /// pool's thread, or one waiting on a result), or at once if already ready.
    /// Keep it short: it holds up other results.
    pub(crate) fn callback(self, f: impl FnOnce(&R) + Send + 'static) -> Self {
        self.cancel_on_drop.store(false, Ordering::Relaxed);
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
    pub(crate) fn error_callback(self, f: impl FnOnce(&Error) + Send + 'static) -> Self {
        self.cancel_on_drop.store(false, Ordering::Relaxed);
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

impl<R> JobResult<R> {
    fn poll_job(&self, cx: &mut TaskContext<'_>) -> Poll<Result<R>> {
        // An awaited result dropped before it is done (a `select!`, a tokio
        // `timeout()`) is cancelled, as any Rust future dropped unfinished.
        self.cancel_on_drop.store(true, Ordering::Relaxed);
        if self.ready() {
            return Poll::Ready(self.take());
        }
        self.job.add_waker(cx.waker());
        if self.ready() {
            return Poll::Ready(self.take());
        }
        if !self.driver.delivers_alone() {
            // Nobody else moves this backend's results: ask to be polled again.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

/// Submits up to `limit` more calls of a lazy job; `Ok(true)` once its input ran out.
pub(crate) type Feeder<'a> = Box<dyn FnMut(usize) -> Result<bool> + 'a>;

/// The shared machinery of `imap` and `imap_unordered`.
pub(crate) struct Stream<'a, R> {
    driver: Arc<dyn Driver>,
    job: Arc<JobShared>,
    feeder: Option<Feeder<'a>>,
    current: Option<ChunkResult>,
    window: usize,
    /// The input's exact length, if its size hint gives one.
    len: Option<usize>,
    /// Decodes the next result of a chunk (fixed where `R` is known to decode).
    decode: fn(&mut ChunkResult) -> Option<Result<R>>,
}

impl<'a, R: DeserializeOwned> Stream<'a, R> {
    /// A stream over `job`, fed by `feeder` while fewer than `window` calls are out.
    pub(crate) fn start(
        driver: Arc<dyn Driver>,
        job: Arc<JobShared>,
        feeder: Feeder<'a>,
        window: usize,
        len: Option<usize>,
        decode: fn(&mut ChunkResult) -> Option<Result<R>>,
    ) -> Result<Self> {
        let mut s = Stream { driver, job, feeder: Some(feeder), current: None, window, len, decode };
        s.top_up()?;
        Ok(s)
    }
}

impl<R> Drop for Stream<'_, R> {
    /// An iterator dropped before its end cancels the calls not yet run.
    fn drop(&mut self) {
        self.feeder = None;
        let unfinished = {
            let g = self.job.lock();
            !(g.sealed && g.delivered == g.submitted)
        };
        if unfinished {
            let mut d = Vec::new();
            self.job.seal(&mut d);
            run_deferred(d);
            self.driver.cancel(&self.job, false);
        }
    }
}

impl<R> Stream<'_, R> {
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

    fn next_item(&mut self, deadline: Option<(Instant, Duration)>) -> Option<Result<R>> {
        loop {
            if let Some(c) = &mut self.current {
                if let Some(r) = (self.decode)(c) {
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
            let arrived = self.driver.wait_job(&self.job, deadline.map(|(at, _)| at), &|g| {
                g.chunk_ready() || (g.sealed && g.taken == g.submitted) || (feeding && g.outstanding() <= window / 2)
            });
            if let (false, Some((_, timeout))) = (arrived, deadline) {
                return Some(Err(Error::Timeout(timeout)));
            }
        }
    }
}

/// The iterator of [`Pool::imap`](crate::Pool::imap): results in input order.
///
/// ```
/// #[multiproc::task]
/// fn square(x: u64) -> u64 { x * x }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let pool = multiproc::Pool::new(2)?;
///     let it: multiproc::IMapIter<'_, u64> = pool.imap(square, 0..4)?;
///     assert_eq!(it.collect::<multiproc::Result<Vec<_>>>()?, vec![0, 1, 4, 9]);
///     Ok(())
/// }
/// ```
pub struct IMapIter<'a, R> {
    stream: Streams<'a, R>,
}

/// Where an iterator's results come from: a backend's job, or (`dummy::Pool`,
/// whose `imap_unordered` also yields an [`IMapIter`]) threads of this process.
enum Streams<'a, R> {
    Job(Stream<'a, R>),
    Thread(ThreadStream<'a, R>),
}

impl<R> Streams<'_, R> {
    fn next_item(&mut self, deadline: Option<(Instant, Duration)>) -> Option<Result<R>> {
        match self {
            Streams::Job(s) => s.next_item(deadline),
            Streams::Thread(s) => s.next_item(deadline),
        }
    }

    fn next_timeout(&mut self, timeout: Duration) -> Option<Result<R>> {
        self.next_item(Some((crate::backoff::deadline_after(timeout), timeout)))
    }

    fn len(&self) -> Option<usize> {
        match self {
            Streams::Job(s) => s.len,
            Streams::Thread(s) => s.len,
        }
    }
}

/// The iterator of [`Pool::imap_unordered`](crate::Pool::imap_unordered):
/// results in completion order.
///
/// ```
/// #[multiproc::task]
/// fn square(x: u64) -> u64 { x * x }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let pool = multiproc::Pool::new(2)?;
///     let it: multiproc::IMapUnorderedIter<'_, u64> = pool.imap_unordered(square, 0..4)?;
///     let mut v = it.collect::<multiproc::Result<Vec<_>>>()?;
///     v.sort();
///     assert_eq!(v, vec![0, 1, 4, 9]);
///     Ok(())
/// }
/// ```
pub struct IMapUnorderedIter<'a, R> {
    stream: Streams<'a, R>,
}

impl<'a, R> IMapIter<'a, R> {
    pub(crate) fn new(stream: Stream<'a, R>) -> Self {
        IMapIter { stream: Streams::Job(stream) }
    }

    /// The results of `dummy::Pool`'s threads.
    pub(crate) fn from_threads(stream: ThreadStream<'a, R>) -> Self {
        IMapIter { stream: Streams::Thread(stream) }
    }

    /// The input's exact length, if its size hint gave one (for a progress bar).
    #[cfg_attr(not(feature = "progress"), allow(dead_code))]
    pub(crate) fn input_len(&self) -> Option<usize> {
        self.stream.len()
    }
}

impl<'a, R> IMapUnorderedIter<'a, R> {
    pub(crate) fn new(stream: Stream<'a, R>) -> Self {
        IMapUnorderedIter { stream: Streams::Job(stream) }
    }

    /// The input's exact length, if its size hint gave one (for a progress bar).
    #[cfg_attr(not(feature = "progress"), allow(dead_code))]
    pub(crate) fn input_len(&self) -> Option<usize> {
        self.stream.len()
    }
}

impl<R> Iterator for IMapIter<'_, R> {
    type Item = Result<R>;
    fn next(&mut self) -> Option<Result<R>> {
        self.stream.next_item(None)
    }
}

impl<R> Iterator for IMapUnorderedIter<'_, R> {
    type Item = Result<R>;
    fn next(&mut self) -> Option<Result<R>> {
        self.stream.next_item(None)
    }
}

impl<R> IMapIter<'_, R> {
    /// The next result, waiting at most `timeout` — Python's `next(timeout)`:
    /// [`Error::Timeout`] if none is ready in time (the iterator goes on: call
    /// again), `None` at the end.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// #[multiproc::task]
    /// fn nap(ms: u64) -> u64 { std::thread::sleep(Duration::from_millis(ms)); ms }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(1)?;
    ///     let mut it = pool.imap(nap, [500])?;
    ///     assert!(matches!(it.next_timeout(Duration::from_millis(10)), Some(Err(multiproc::Error::Timeout(_)))));
    ///     assert_eq!(it.next_timeout(Duration::from_secs(10)).unwrap()?, 500);
    ///     assert!(it.next_timeout(Duration::from_secs(1)).is_none());
    ///     Ok(())
    /// }
    /// ```
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<R>> {
        self.stream.next_timeout(timeout)
    }
}

impl<R> IMapUnorderedIter<'_, R> {
    /// As [`IMapIter::next_timeout`]: the next result to finish, waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// #[multiproc::task]
    /// fn after(go: multiproc::Event) -> u64 { go.wait(None); 42 }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(1)?;
    ///     let go = multiproc::Event::new()?;
    ///     let mut it = pool.imap_unordered(after, [go.clone()])?;
    ///     assert!(matches!(it.next_timeout(Duration::from_millis(20)), Some(Err(multiproc::Error::Timeout(_)))));
    ///     go.set();
    ///     assert_eq!(it.next_timeout(Duration::from_secs(10)).transpose()?, Some(42));
    ///     assert!(it.next_timeout(Duration::from_secs(10)).is_none());
    ///     Ok(())
    /// }
    /// ```
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<Result<R>> {
        self.stream.next_timeout(timeout)
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
