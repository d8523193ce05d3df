//! `multiproc::dummy`: the [`Pool`](crate::Pool) API on threads of this
//! process — Python's `multiprocessing.dummy` / `ThreadPool`.
//!
//! Calls run in the pool's threads, so any `Fn` works (closures that capture,
//! types that are not serde), as do `#[multiproc::task]` functions and
//! `lambda!`s ([`ThreadTask`](crate::ThreadTask)), and values are not encoded. As in Python, results
//! and the task's own errors come back unwrapped: a task returning
//! `Result<T, E>` gives you that `Result<T, E>` itself. A panic in a task fails
//! only its call, with [`Error::TaskPanicked`] (message and location); the
//! thread carries on.
//!
//! ```
//! let pool = multiproc::dummy::Pool::new(4)?;
//! let offset = 10; // captured: fine on threads
//! assert_eq!(pool.map(move |x: u64| x + offset, 0..3)?, vec![10, 11, 12]);
//! # Ok::<(), multiproc::Error>(())
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::chunk::map_chunksize;
use super::threaded::{Slot, ThreadStream};
use crate::error::{Error, Result};
use crate::task::ThreadTask;
use crate::unwind;

type Job = Box<dyn FnOnce() + Send>;
type Results<R> = Arc<Mutex<(Vec<Option<Result<R>>>, usize)>>;
type ResultSender<R> = Sender<(usize, Result<R>)>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunState {
    Running,
    Closed,
    Terminated,
}

struct Queue {
    jobs: VecDeque<Job>,
    state: RunState,
}

struct Inner {
    q: Mutex<Queue>,
    cv: Condvar,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.q.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, jobs: Vec<Job>) -> Result<()> {
        let mut q = self.lock();
        match q.state {
            RunState::Running => {}
            RunState::Closed => return Err(Error::InvalidState("the pool is closed".into())),
            RunState::Terminated => return Err(Error::InvalidState("the pool was terminated".into())),
        }
        q.jobs.extend(jobs);
        drop(q);
        self.cv.notify_all();
        Ok(())
    }
}

/// Runs one call; a panic fails only this call (the one panic capture, [`unwind`]).
fn run_call<R>(f: impl FnOnce() -> R) -> Result<R> {
    unwind::catch(f).map_err(|unwind::Panic { message, location }| Error::TaskPanicked {
        task: "<thread pool task>".into(),
        message,
        location,
    })
}

fn worker(inner: Arc<Inner>) {
    loop {
        let job = {
            let mut q = inner.lock();
            loop {
                if q.state == RunState::Terminated {
                    return;
                }
                if let Some(j) = q.jobs.pop_front() {
                    break j;
                }
                if q.state == RunState::Closed {
                    return;
                }
                q = inner.cv.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        job();
    }
}

/// A pool of threads with the API of [`crate::Pool`] (re-exported as
/// `multiproc::dummy::Pool`) — Python's `multiprocessing.dummy.Pool` /
/// `ThreadPool`. Dropping it terminates it.
///
/// ```
/// use multiproc::dummy::Pool;
///
/// let pool = Pool::new(2)?;
/// let names = vec!["a".to_string(), "b".to_string()];
/// // Any closure works, and nothing is encoded.
/// assert_eq!(pool.map(|s: String| s.to_uppercase(), names)?, vec!["A", "B"]);
/// pool.close();
/// pool.join()?;
/// # Ok::<(), multiproc::Error>(())
/// ```
pub struct Pool {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    processes: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("dummy::Pool").field("threads", &self.processes).finish()
    }
}

/// Completes its slot with an error if the job is dropped unrun (`terminate`).
struct Completer<R>(Arc<Slot<R>>, bool);

impl<R> Completer<R> {
    fn new(slot: &Arc<Slot<R>>) -> Self {
        Completer(slot.clone(), true)
    }

    /// This job ran; another one completes the slot.
    fn disarm(mut self) {
        self.1 = false;
    }
}

impl<R> Drop for Completer<R> {
    fn drop(&mut self) {
        if self.1 {
            self.0.complete(Err(Error::InvalidState("the pool was terminated".into())));
        }
    }
}

/// The result of an asynchronous call on a [`Pool`]: the one [`crate::AsyncResult`].
pub use super::result::AsyncResult;
/// The iterator of [`Pool::imap`] and [`Pool::imap_unordered`]: the one [`crate::IMapIter`].
pub use super::result::IMapIter;

/// What each thread of a [`Pool`] runs once before its first call.
type Init = Arc<dyn Fn() -> Result<()> + Send + Sync>;

/// Configures a [`Pool`] ([`Pool::builder`]): the same shape as [`crate::PoolBuilder`].
///
/// ```
/// let pool = multiproc::dummy::Pool::builder().processes(2).build()?;
/// assert_eq!(pool.processes(), 2);
/// # Ok::<(), multiproc::Error>(())
/// ```
#[derive(Default)]
pub struct PoolBuilder {
    processes: Option<usize>,
    initializer: Option<Init>,
}

impl std::fmt::Debug for PoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("dummy::PoolBuilder")
            .field("processes", &self.processes)
            .field("initializer", &self.initializer.is_some())
            .finish()
    }
}

impl PoolBuilder {
    /// The number of threads (default: [`cpu_count`](crate::cpu_count), as [`crate::PoolBuilder`]).
    ///
    /// ```
    /// let pool = multiproc::dummy::Pool::builder().processes(3).build()?;
    /// assert_eq!(pool.processes(), 3);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn processes(mut self, n: usize) -> Self {
        self.processes = Some(n);
        self
    }

    /// A task each thread runs once, before its first call (Python's
    /// `initializer`, `initargs`); each thread gets its own clone of `args`.
    /// If it panics, [`PoolBuilder::build`] reports it. (Its result is
    /// dropped: a thread cannot tell an `Err` it returns from a value.)
    ///
    /// ```
    /// #[multiproc::task]
    /// fn hello(greeting: String) { println!("{greeting}"); }
    ///
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::dummy::Pool::builder().processes(2).initializer(hello, ("hi".to_string(),)).build()?;
    ///     assert_eq!(pool.processes(), 2);
    ///     Ok(())
    /// }
    /// ```
    pub fn initializer<F, A>(mut self, task: F, args: A) -> Self
    where
        F: ThreadTask<A>,
        A: Clone + Send + 'static,
    {
        // Behind a mutex, `args` need not be `Sync`: each thread takes a clone.
        let args = Mutex::new(args);
        self.initializer = Some(Arc::new(move || {
            let args = args.lock().unwrap_or_else(|p| p.into_inner()).clone();
            run_call(|| drop(task.call_here(args)))
        }));
        self
    }

    /// Accepted so that code written for [`crate::PoolBuilder`] compiles
    /// unchanged; threads have no start method, so it changes nothing.
    ///
    /// ```
    /// use multiproc::StartMethod;
    ///
    /// let pool = multiproc::dummy::Pool::builder().processes(1).start_method(StartMethod::Spawn).build()?;
    /// let here = std::process::id();
    /// assert!(pool.apply(move || std::process::id() == here, ())?, "still this process");
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn start_method(self, _method: crate::StartMethod) -> Self {
        self
    }

    /// Starts the threads; returns once every thread has run its initializer.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0 threads; [`Error::Io`] if a thread
    /// cannot start; the initializer's panic ([`Error::TaskPanicked`]).
    ///
    /// ```
    /// use multiproc::dummy::Pool;
    ///
    /// fn load_config() { panic!("no config file") }
    ///
    /// let pool = Pool::builder().processes(2).build()?;
    /// assert_eq!(pool.processes(), 2);
    /// assert!(matches!(Pool::builder().processes(0).build(), Err(multiproc::Error::InvalidArgument(_))));
    /// let failing = Pool::builder().processes(1).initializer(load_config, ()).build();
    /// assert!(matches!(failing, Err(multiproc::Error::TaskPanicked { .. })));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn build(self) -> Result<Pool> {
        let threads = self.processes.unwrap_or_else(crate::cpu_count);
        if threads == 0 {
            return Err(Error::InvalidArgument("a pool needs at least one thread".into()));
        }
        let inner = Arc::new(Inner {
            q: Mutex::new(Queue { jobs: VecDeque::new(), state: RunState::Running }),
            cv: Condvar::new(),
        });
        let pool = Pool { inner, threads: Mutex::new(Vec::new()), processes: threads };
        let (ready_tx, ready) = mpsc::channel::<Result<()>>();
        // A task that starts processes on a pool thread starts them for the
        // creating thread's #[multiproc::test].
        let test = crate::boot::this_test();
        for i in 0..threads {
            let (inner, init, ready_tx) = (pool.inner.clone(), self.initializer.clone(), ready_tx.clone());
            let h = std::thread::Builder::new()
                .name(format!("multiproc-dummy-{i}"))
                .spawn(move || {
                    crate::boot::set_this_test(test);
                    let r = init.map_or(Ok(()), |f| f());
                    let ok = r.is_ok();
                    let _ = ready_tx.send(r);
                    if ok {
                        worker(inner);
                    }
                })
                .map_err(|e| Error::Io { op: "spawn a pool thread", source: e })?;
            pool.threads.lock().unwrap_or_else(|p| p.into_inner()).push(h);
        }
        drop(ready_tx);
        // Each thread sends once; a thread that ends without sending cannot
        // (it sends before anything that may panic outside `run_call`).
        for r in ready.iter().take(threads) {
            r?; // dropping `pool` terminates the threads that did start
        }
        Ok(pool)
    }
}

impl Pool {
    /// A pool of `threads` threads (Python's `ThreadPool(threads)`).
    ///
    /// ```
    /// let pool = multiproc::dummy::Pool::new(2)?;
    /// assert_eq!(pool.processes(), 2);
    /// assert!(multiproc::dummy::Pool::new(0).is_err());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `threads` is 0; [`Error::Io`] if a thread cannot start.
    pub fn new(threads: usize) -> Result<Pool> {
        Pool::builder().processes(threads).build()
    }

    /// A builder for the other options: the number of threads (default
    /// [`cpu_count`](crate::cpu_count), Python's `ThreadPool()`) and an initializer.
    ///
    /// ```
    /// let pool = multiproc::dummy::Pool::builder().build()?;
    /// assert_eq!(pool.processes(), multiproc::cpu_count());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// The number of threads.
    ///
    /// ```
    /// let pool = multiproc::dummy::Pool::new(2)?;
    /// assert_eq!(pool.processes(), 2);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn processes(&self) -> usize {
        self.processes
    }

    /// Runs `task(args…)` on a pool thread; returns at once. Python's `apply_async`.
    ///
    /// ```
    /// let pool = multiproc::dummy::Pool::new(2)?;
    /// let r = pool.apply_async(|a: u64, b: u64| a * b, (6, 7))?;
    /// assert_eq!(r.get()?, 42);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the pool is closed or terminated.
    pub fn apply_async<F, A>(&self, task: F, args: A) -> Result<AsyncResult<F::Output>>
    where
        F: ThreadTask<A>,
        A: Send + 'static,
        F::Output: Send + 'static,
    {
        let slot = Slot::new();
        let c = Completer::new(&slot);
        self.inner.push(vec![Box::new(move || {
            let r = run_call(|| task.call_here(args));
            c.0.complete(r);
        })])?;
        Ok(AsyncResult::from_slot(slot))
    }

    /// Runs `task(args…)` on a pool thread and waits for it. Python's `apply`.
    ///
    /// ```
    /// let pool = multiproc::dummy::Pool::new(1)?;
    /// let name = pool.apply(|| std::thread::current().name().map(String::from), ())?;
    /// assert_eq!(name.as_deref(), Some("multiproc-dummy-0"));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`AsyncResult::get`] and [`Pool::apply_async`].
    pub fn apply<F, A>(&self, task: F, args: A) -> Result<F::Output>
    where
        F: ThreadTask<A>,
        A: Send + 'static,
        F::Output: Send + 'static,
    {
        self.apply_async(task, args)?.get()
    }

    /// [`Pool::starmap`] without waiting. Python's `starmap_async`.
    ///
    /// ```
    /// let pool = multiproc::dummy::Pool::new(2)?;
    /// let r = pool.starmap_async(|a: u64, b: u64| a + b, [(1, 2), (3, 4)])?;
    /// assert_eq!(r.get()?, vec![3, 7]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the pool is closed or terminated.
    pub fn starmap_async<F, A, I>(&self, task: F, inputs: I) -> Result<AsyncResult<Vec<F::Output>>>
    where
        F: ThreadTask<A>,
        A: Send + 'static,
        I: IntoIterator<Item = A>,
        F::Output: Send + 'static,
    {
        let items: Vec<A> = inputs.into_iter().collect();
        let n = items.len();
        let chunksize = map_chunksize(n, self.processes);
        let task = Arc::new(task);
        let slot = Slot::new();
        let results: Results<F::Output> = Arc::new(Mutex::new(((0..n).map(|_| None).collect(), n)));
        if n == 0 {
            slot.complete(Ok(Vec::new()));
            return Ok(AsyncResult::from_slot(slot));
        }
        let mut jobs: Vec<Job> = Vec::new();
        let mut items = items.into_iter().enumerate().peekable();
        while items.peek().is_some() {
            let chunk: Vec<(usize, A)> = items.by_ref().take(chunksize).collect();
            let (task, results, c) = (task.clone(), results.clone(), Completer::new(&slot));
            jobs.push(Box::new(move || {
                let mut out = Vec::with_capacity(chunk.len());
                for (i, a) in chunk {
                    out.push((i, run_call(|| task.call_here(a))));
                }
                let mut g = results.lock().unwrap_or_else(|p| p.into_inner());
                for (i, r) in out {
                    g.0[i] = Some(r);
                    g.1 -= 1;
                }
                if g.1 == 0 {
                    let all: Result<Vec<F::Output>> = std::mem::take(&mut g.0)
                        .into_iter()
                        .map(|r| r.unwrap_or_else(|| Err(Error::InvalidState("missing result".into()))))
                        .collect();
                    drop(g);
                    c.0.complete(all);
                } else {
                    // Only the last chunk completes the slot.
                    c.disarm();
                }
            }));
        }
        self.inner.push(jobs)?;
        Ok(AsyncResult::from_slot(slot))
    }

    /// [`Pool::map`] without waiting. Python's `map_async`.
    ///
    /// ```
    /// let pool = multiproc::dummy::Pool::new(2)?;
    /// let r = pool.map_async(|x: u64| x * 10, 1..4)?;
    /// assert_eq!(r.get()?, vec![10, 20, 30]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Pool::starmap_async`].
    pub fn map_async<F, T, I>(&self, task: F, inputs: I) -> Result<AsyncResult<Vec<F::Output>>>
    where
        F: ThreadTask<(T,)>,
        T: Send + 'static,
        I: IntoIterator<Item = T>,
        F::Output: Send + 'static,
    {
        self.starmap_async(task, inputs.into_iter().map(|x| (x,)))
    }

    /// Runs `task(x)` for each input on the threads; results in order. Python's `map`.
    ///
    /// ```
    /// let pool = multiproc::dummy::Pool::new(2)?;
    /// assert_eq!(pool.map(|x: u64| x * x, 0..4)?, vec![0, 1, 4, 9]);
    /// let failed = pool.map(|x: u64| 10 / x, 0..4);
    /// assert!(matches!(failed, Err(multiproc::Error::TaskPanicked { .. })));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// The first failed call's error.
    pub fn map<F, T, I>(&self, task: F, inputs: I) -> Result<Vec<F::Output>>
    where
        F: ThreadTask<(T,)>,
        T: Send + 'static,
        I: IntoIterator<Item = T>,
        F::Output: Send + 'static,
    {
        self.map_async(task, inputs)?.get()
    }

    /// Runs `task(a, b, …)` for each argument tuple; results in order. Python's `starmap`.
    ///
    /// ```
    /// let pool = multiproc::dummy::Pool::new(2)?;
    /// let joined = pool.starmap(|s: String, n: usize| s.repeat(n), [("ab".to_string(), 2), ("c".to_string(), 3)])?;
    /// assert_eq!(joined, vec!["abab", "ccc"]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// The first failed call's error.
    pub fn starmap<F, A, I>(&self, task: F, inputs: I) -> Result<Vec<F::Output>>
    where
        F: ThreadTask<A>,
        A: Send + 'static,
        I: IntoIterator<Item = A>,
        F::Output: Send + 'static,
    {
        self.starmap_async(task, inputs)?.get()
    }

    fn stream<'a, F, T, I>(&self, task: F, inputs: I, ordered: bool) -> IMapIter<'a, F::Output>
    where
        F: ThreadTask<(T,)>,
        T: Send + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        F::Output: Send + 'static,
    {
        let (tx, rx): (ResultSender<F::Output>, _) = mpsc::channel();
        let task = Arc::new(task);
        let it = inputs.into_iter();
        let len = match it.size_hint() {
            (lo, Some(hi)) if lo == hi => Some(lo),
            _ => None,
        };
        let mut it = it.enumerate();
        let inner = self.inner.clone();
        let submitted = Arc::new(Mutex::new(0usize));
        let counter = submitted.clone();
        let mut tx = Some(tx);
        let submit = move |limit: usize| -> Result<bool> {
            let mut jobs: Vec<Job> = Vec::new();
            let mut exhausted = false;
            for _ in 0..limit {
                let Some((i, x)) = it.next() else {
                    exhausted = true;
                    break;
                };
                let (task, Some(tx)) = (task.clone(), tx.clone()) else { break };
                jobs.push(Box::new(move || {
                    let _ = tx.send((i, run_call(|| task.call_here((x,)))));
                }));
            }
            let n = jobs.len();
            if exhausted {
                tx = None;
            }
            inner.push(jobs)?;
            *counter.lock().unwrap_or_else(|p| p.into_inner()) += n;
            Ok(exhausted)
        };
        IMapIter::from_threads(ThreadStream {
            rx,
            submit: Some(Box::new(submit)),
            ordered,
            pending: BTreeMap::new(),
            next: 0,
            submitted,
            received: 0,
            window: self.processes * 64,
            len,
        })
    }

    /// Lazily maps `task` over `inputs`; results in input order. Python's `imap`.
    ///
    /// ```
    /// let pool = multiproc::dummy::Pool::new(2)?;
    /// let evens: Vec<u64> = pool.imap(|x: u64| 2 * x, 0..)?.take(3).collect::<multiproc::Result<_>>()?;
    /// assert_eq!(evens, vec![0, 2, 4]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// Never at the call; each item is `Ok` or its call's error.
    pub fn imap<'a, F, T, I>(&self, task: F, inputs: I) -> Result<IMapIter<'a, F::Output>>
    where
        F: ThreadTask<(T,)>,
        T: Send + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        F::Output: Send + 'static,
    {
        Ok(self.stream(task, inputs, true))
    }

    /// Lazily maps `task` over `inputs`; results in completion order. Python's `imap_unordered`.
    ///
    /// ```
    /// let pool = multiproc::dummy::Pool::new(2)?;
    /// let mut v = pool.imap_unordered(|x: u64| x + 1, 0..4)?.collect::<multiproc::Result<Vec<_>>>()?;
    /// v.sort();
    /// assert_eq!(v, vec![1, 2, 3, 4]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Pool::imap`].
    pub fn imap_unordered<'a, F, T, I>(&self, task: F, inputs: I) -> Result<IMapIter<'a, F::Output>>
    where
        F: ThreadTask<(T,)>,
        T: Send + 'static,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        F::Output: Send + 'static,
    {
        Ok(self.stream(task, inputs, false))
    }

    /// Stops accepting work; queued work still runs. Python's `close`.
    ///
    /// ```
    /// let pool = multiproc::dummy::Pool::new(1)?;
    /// let queued = pool.apply_async(|| 7, ())?;
    /// pool.close();
    /// assert!(matches!(pool.apply(|| 8, ()), Err(multiproc::Error::InvalidState(_))));
    /// assert_eq!(queued.get()?, 7);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn close(&self) {
        let mut q = self.inner.lock();
        if q.state == RunState::Running {
            q.state = RunState::Closed;
        }
        drop(q);
        self.inner.cv.notify_all();
    }

    /// Drops queued work (its results fail) and stops the threads after their
    /// current call. Python's `terminate`.
    ///
    /// ```
    /// use std::sync::{Mutex, mpsc};
    ///
    /// let pool = multiproc::dummy::Pool::new(1)?;
    /// let (started_tx, started) = mpsc::channel::<()>();
    /// let (tx, rx) = mpsc::channel::<()>();
    /// let rx = Mutex::new(rx);
    /// // The one thread runs `first` until `second`, which holds the sender, is dropped.
    /// let first = pool.apply_async(
    ///     move || {
    ///         started_tx.send(()).unwrap();
    ///         rx.lock().unwrap().recv().is_err()
    ///     },
    ///     (),
    /// )?;
    /// let second = pool.apply_async(move || tx.send(()).is_ok(), ())?;
    /// started.recv().unwrap(); // `first` runs, `second` is queued
    /// pool.terminate();
    /// assert!(matches!(second.get(), Err(multiproc::Error::InvalidState(_))));
    /// assert!(first.get()?, "the running call finished");
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn terminate(&self) {
        let jobs = {
            let mut q = self.inner.lock();
            q.state = RunState::Terminated;
            std::mem::take(&mut q.jobs)
        };
        drop(jobs);
        self.inner.cv.notify_all();
        let _ = self.join_threads();
    }

    fn join_threads(&self) -> Result<()> {
        let handles = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        let me = std::thread::current().id();
        for h in handles {
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
        Ok(())
    }

    /// Waits for the threads to finish the queued work and exit. Python's `join`.
    ///
    /// ```
    /// let pool = multiproc::dummy::Pool::new(2)?;
    /// let r = pool.map_async(|x: u64| x + 1, 0..3)?;
    /// assert!(pool.join().is_err(), "close (or terminate) first");
    /// pool.close();
    /// pool.join()?;
    /// assert!(r.ready());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the pool is still running (call `close` or `terminate` first).
    pub fn join(&self) -> Result<()> {
        if self.inner.lock().state == RunState::Running {
            return Err(Error::InvalidState(
                "the pool is still running; call close() or terminate() before join()".into(),
            ));
        }
        self.join_threads()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.terminate();
    }
}
