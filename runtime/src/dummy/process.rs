//! [`Process`] on a thread: Python's `multiprocessing.dummy.DummyProcess`,
//! with [`current_process`] and [`active_children`] over those threads.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use crate::context::{StartMethod, get_start_method};
use crate::error::{Error, ExitStatus, Result};
use crate::identity;
use crate::process::ProcessInfo;
use crate::sys;
use crate::task::Task;

/// What one thread knows about itself once running, and how it ended.
#[derive(Debug, Default)]
struct Run {
    /// The thread's OS id, once it runs.
    tid: Option<u32>,
    status: Option<ExitStatus>,
}

/// A started thread, shared by its [`Process`] handles and the table of threads.
#[derive(Debug)]
struct Child {
    name: String,
    daemon: bool,
    /// The thread that started it ([`active_children`] is per thread, as in Python).
    parent: ThreadId,
    /// The process it belongs to (a forked child inherits the table, not the threads).
    owner: i32,
    run: Mutex<Run>,
    changed: Condvar,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Child {
    fn lock(&self) -> MutexGuard<'_, Run> {
        self.run.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until `done(run)` or `timeout` passes (`None`: forever).
    fn wait_for(&self, timeout: Option<Duration>, done: impl Fn(&Run) -> bool) -> MutexGuard<'_, Run> {
        // A timeout past what `Instant` can hold is no deadline at all.
        let until = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut g = self.lock();
        while !done(&g) {
            g = match until {
                None => self.changed.wait(g).unwrap_or_else(|p| p.into_inner()),
                Some(u) => {
                    let left = u.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    self.changed.wait_timeout(g, left).unwrap_or_else(|p| p.into_inner()).0
                }
            };
        }
        g
    }

    fn status(&self) -> Option<ExitStatus> {
        self.lock().status
    }

    fn set(&self, f: impl FnOnce(&mut Run)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    /// Joins the OS thread once it has reported its status (it only returns then).
    fn reap(&self) {
        if self.status().is_some()
            && let Some(h) = self.handle.lock().unwrap_or_else(|p| p.into_inner()).take()
        {
            let _ = h.join();
        }
    }
}

static THREADS: Mutex<Vec<Arc<Child>>> = Mutex::new(Vec::new());

inventory::submit! { crate::sys::forklock::ForkLock::new(&THREADS) }

fn threads() -> MutexGuard<'static, Vec<Arc<Child>>> {
    THREADS.lock().unwrap_or_else(|p| p.into_inner())
}

thread_local! {
    /// The [`Process`] this thread runs, if a [`Process`] started it.
    static CURRENT: RefCell<Option<Arc<Child>>> = const { RefCell::new(None) };
}

/// Numbers default names, `Thread-1`, `Thread-2`, … (Python's).
static NEXT: AtomicUsize = AtomicUsize::new(1);

type Body = Box<dyn FnOnce() + Send>;

enum State {
    Ready(Body),
    Started(Arc<Child>),
    Closed,
}

/// A task running (or about to run) on a thread of this process, with the API
/// of [`crate::Process`] — Python's `multiprocessing.dummy.Process`.
///
/// The task and its arguments are those [`crate::Process`] takes (a
/// [`#[multiproc::task]`](crate::task) function or a [`lambda!`](crate::lambda!),
/// with a tuple of arguments), but nothing is encoded: the arguments move to the
/// thread. [`exitcode`](Process::exitcode) is `Code(0)` after the task returns and
/// `Code(1)` after it panics (the panic is printed, as a child's is).
///
/// What a thread cannot do, and so returns [`Error::InvalidState`] for:
/// [`terminate`](Process::terminate), [`kill`](Process::kill),
/// [`interrupt`](Process::interrupt) (a thread cannot be stopped from outside:
/// have it watch an [`Event`](crate::Event)) and [`sentinel`](Process::sentinel)
/// (a thread has no pidfd). A task that returns `Err` still ends with `Code(0)`
/// (a thread cannot tell it from a value). [`pid`](Process::pid) is the thread's
/// OS id (Python's `native_id`), and the daemon flag only decides whether the end
/// of `#[multiproc::main]` waits for the thread (non-daemon threads are joined, as
/// Python joins them at exit; daemon threads end with the process).
///
/// ```
/// #[multiproc::task]
/// fn greet(name: String, conn: multiproc::Connection<String>) {
///     conn.send(&format!("hello {name}")).unwrap();
/// }
///
/// fn main() -> multiproc::Result<()> {
///     let (parent, child) = multiproc::dummy::pipe()?;
///     let mut p = multiproc::dummy::Process::new(greet, ("bob".to_string(), child))?;
///     p.start()?;
///     assert_eq!(parent.recv()?, "hello bob");
///     p.join()?;
///     assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
///     Ok(())
/// }
/// ```
pub struct Process {
    name: String,
    daemon: bool,
    method: StartMethod,
    state: State,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("dummy::Process")
            .field("name", &self.name)
            .field("daemon", &self.daemon)
            .field("pid", &self.pid())
            .field("exitcode", &self.exitcode())
            .finish()
    }
}

/// Configures a [`Process`] before it is created ([`Process::builder`]): the
/// same methods as [`crate::ProcessBuilder`].
///
/// ```
/// #[multiproc::task]
/// fn work() {}
///
/// fn main() -> multiproc::Result<()> {
///     let mut p = multiproc::dummy::Process::builder(work, ()).name("worker").daemon(true).build()?;
///     assert_eq!((p.name(), p.daemon()), ("worker", true));
///     p.start()?;
///     p.join()
/// }
/// ```
pub struct ProcessBuilder<F, A> {
    task: F,
    args: A,
    name: Option<String>,
    daemon: Option<bool>,
    method: Option<StartMethod>,
}

impl<F, A> std::fmt::Debug for ProcessBuilder<F, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("dummy::ProcessBuilder").field("name", &self.name).field("daemon", &self.daemon).finish()
    }
}

impl<F, A> ProcessBuilder<F, A>
where
    F: Task<A>,
    A: Send + 'static,
{
    /// The thread's name (default `Thread-N`, as Python's).
    ///
    /// ```
    /// use multiproc::dummy as mp;
    ///
    /// #[multiproc::task]
    /// fn whoami(out: mp::Connection<String>) { out.send(&mp::current_process().name).unwrap(); }
    ///
    /// let (here, there) = mp::pipe()?;
    /// let mut p = mp::Process::builder(whoami, (there,)).name("loader").build()?;
    /// p.start()?;
    /// assert_eq!(here.recv()?, "loader"); // also the OS thread's name
    /// p.join()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Whether the end of `#[multiproc::main]` leaves the thread running
    /// instead of joining it. Default: the creator's flag.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn watch() {}
    ///
    /// let mut p = multiproc::dummy::Process::builder(watch, ()).daemon(true).build()?;
    /// assert!(p.daemon());
    /// p.start()?;
    /// p.join()?; // a daemon thread can still be joined
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = Some(daemon);
        self
    }

    /// Accepted so that code written for [`crate::ProcessBuilder`] compiles
    /// unchanged, and reported by [`Process::start_method`]; a thread has no
    /// start method, so it changes nothing else.
    ///
    /// ```
    /// use multiproc::StartMethod;
    ///
    /// #[multiproc::task]
    /// fn work() {}
    ///
    /// let mut p = multiproc::dummy::Process::builder(work, ()).start_method(StartMethod::Spawn).build()?;
    /// assert_eq!(p.start_method(), StartMethod::Spawn);
    /// p.start()?; // still a thread: no annotated `main` needed
    /// p.join()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Creates the process (not started yet).
    ///
    /// # Errors
    /// None today; a `Result` as [`crate::ProcessBuilder::build`] returns one.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn work(x: u64) -> u64 { x }
    ///
    /// let p = multiproc::dummy::Process::builder(work, (7,)).build()?;
    /// assert!(p.name().starts_with("Thread-"));
    /// assert_eq!((p.pid(), p.is_alive()), (None, false)); // not started
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn build(self) -> Result<Process> {
        let (task, args) = (self.task, self.args);
        Ok(Process {
            name: self.name.unwrap_or_else(|| format!("Thread-{}", NEXT.fetch_add(1, Ordering::Relaxed))),
            daemon: self.daemon.unwrap_or_else(|| current_process().daemon),
            method: self.method.unwrap_or_else(get_start_method),
            state: State::Ready(Box::new(move || drop(task.call(args)))),
        })
    }
}

/// The body of a started thread: runs the task, then reports how it ended.
/// The task and its arguments are dropped before the status is set, so that
/// a `join` returns after the thread's handles (pipe ends, …) are closed.
fn run(me: Arc<Child>, body: Body) {
    CURRENT.with(|c| *c.borrow_mut() = Some(me.clone()));
    me.set(|r| r.tid = Some(sys::process::gettid() as u32));
    let code = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(()) => 0,
        Err(_) => 1,
    };
    CURRENT.with(|c| c.borrow_mut().take());
    me.set(|r| r.status = Some(ExitStatus::Code(code)));
}

/// The error for what a thread cannot do.
fn not_for_threads(what: &str, name: &str, why: &str) -> Error {
    Error::InvalidState(format!(
        "cannot {what} `{name}`: a dummy::Process is a thread, and {why}; use multiproc::Process for that"
    ))
}

impl Process {
    /// A thread that will run `task(args…)`. `args` is a tuple: `(a,)`, `(a, b)`, … or `()`.
    ///
    /// # Errors
    /// As [`ProcessBuilder::build`].
    ///
    /// ```
    /// #[multiproc::task]
    /// fn work(x: u64) { assert_eq!(x, 7); }
    ///
    /// fn main() -> multiproc::Result<()> {
    ///     let mut p = multiproc::dummy::Process::new(work, (7,))?;
    ///     p.start()?;
    ///     p.join()
    /// }
    /// ```
    pub fn new<F, A>(task: F, args: A) -> Result<Process>
    where
        F: Task<A>,
        A: Send + 'static,
    {
        Process::builder(task, args).build()
    }

    /// A builder to set the name or daemon flag.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn work() {}
    ///
    /// let mut p = multiproc::dummy::Process::builder(work, ()).name("worker").build()?;
    /// p.start()?;
    /// p.join()?;
    /// assert_eq!(p.name(), "worker");
    /// assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn builder<F, A>(task: F, args: A) -> ProcessBuilder<F, A>
    where
        F: Task<A>,
        A: Send + 'static,
    {
        ProcessBuilder { task, args, name: None, daemon: None, method: None }
    }

    /// The thread's name.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn work() {}
    ///
    /// let p = multiproc::dummy::Process::new(work, ())?;
    /// assert!(p.name().starts_with("Thread-")); // Python's default thread names
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it is a daemon.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn work() {}
    ///
    /// let p = multiproc::dummy::Process::new(work, ())?;
    /// assert!(!p.daemon()); // the creator's flag
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn daemon(&self) -> bool {
        self.daemon
    }

    /// The start method it was given (or the default one); threads ignore it.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn work() {}
    ///
    /// let p = multiproc::dummy::Process::new(work, ())?;
    /// assert_eq!(p.start_method(), multiproc::get_start_method());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn start_method(&self) -> StartMethod {
        self.method
    }

    /// Starts the thread; returns once it runs (Python's `start`).
    ///
    /// # Errors
    /// [`Error::InvalidState`] if already started or closed; [`Error::Io`] if
    /// the thread cannot be created (then the process is closed).
    ///
    /// ```
    /// #[multiproc::task]
    /// fn work() {}
    ///
    /// let mut p = multiproc::dummy::Process::new(work, ())?;
    /// p.start()?;
    /// assert!(p.pid().is_some()); // it runs
    /// assert!(matches!(p.start(), Err(multiproc::Error::InvalidState(_)))); // only once
    /// p.join()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn start(&mut self) -> Result<()> {
        let State::Ready(_) = self.state else {
            return Err(Error::InvalidState(match self.state {
                State::Closed => format!("process `{}` is closed", self.name),
                _ => format!("process `{}` was already started; a process can only be started once", self.name),
            }));
        };
        let State::Ready(body) = std::mem::replace(&mut self.state, State::Closed) else {
            return Err(Error::InvalidState("process state changed during start".into()));
        };
        let child = Arc::new(Child {
            name: self.name.clone(),
            daemon: self.daemon,
            parent: std::thread::current().id(),
            owner: sys::process::getpid(),
            run: Mutex::new(Run::default()),
            changed: Condvar::new(),
            handle: Mutex::new(None),
        });
        let me = child.clone();
        let h = std::thread::Builder::new()
            .name(self.name.clone())
            .spawn(move || run(me, body))
            .map_err(|e| Error::Io { op: "start a thread", source: e })?;
        *child.handle.lock().unwrap_or_else(|p| p.into_inner()) = Some(h);
        threads().push(child.clone());
        drop(child.wait_for(None, |r| r.tid.is_some()));
        self.state = State::Started(child);
        Ok(())
    }

    fn child(&self, what: &str) -> Result<&Arc<Child>> {
        match &self.state {
            State::Started(c) => Ok(c),
            State::Ready(_) => {
                Err(Error::InvalidState(format!("cannot {what} process `{}`: it was never started", self.name)))
            }
            State::Closed => Err(Error::InvalidState(format!("cannot {what} process `{}`: it is closed", self.name))),
        }
    }

    /// Waits for the thread to end.
    ///
    /// # Errors
    /// [`Error::InvalidState`] if it was never started, is closed, or is the
    /// calling thread (it would wait for itself).
    ///
    /// ```
    /// #[multiproc::task]
    /// fn work() {}
    ///
    /// let mut p = multiproc::dummy::Process::new(work, ())?;
    /// assert!(p.join().is_err()); // not started yet
    /// p.start()?;
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn join(&mut self) -> Result<()> {
        self.wait(None).map(drop)
    }

    /// Waits at most `timeout`; `Ok(None)` if the thread is still running.
    ///
    /// # Errors
    /// As [`Process::join`].
    ///
    /// ```
    /// #[multiproc::task]
    /// fn wait_for_go(go: multiproc::Connection<()>) { go.recv().unwrap(); }
    ///
    /// use std::time::Duration;
    ///
    /// let (go, there) = multiproc::dummy::pipe()?;
    /// let mut p = multiproc::dummy::Process::new(wait_for_go, (there,))?;
    /// p.start()?;
    /// assert_eq!(p.join_timeout(Duration::from_millis(20))?, None); // still waiting
    /// go.send(&())?;
    /// assert_eq!(p.join_timeout(Duration::MAX)?, Some(multiproc::ExitStatus::Code(0))); // no real limit
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        self.wait(Some(timeout))
    }

    fn wait(&self, timeout: Option<Duration>) -> Result<Option<ExitStatus>> {
        let c = self.child("join")?;
        if CURRENT.with(|cur| cur.borrow().as_ref().is_some_and(|me| Arc::ptr_eq(me, c))) {
            return Err(Error::InvalidState(format!("process `{}` cannot join itself", self.name)));
        }
        let status = c.wait_for(timeout, |r| r.status.is_some()).status;
        if status.is_some() {
            c.reap();
            threads().retain(|o| !Arc::ptr_eq(o, c));
        }
        Ok(status)
    }

    /// Whether the thread has started and not yet ended.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn wait_for_go(go: multiproc::Connection<()>) { go.recv().unwrap(); }
    ///
    /// let (go, there) = multiproc::dummy::pipe()?;
    /// let mut p = multiproc::dummy::Process::new(wait_for_go, (there,))?;
    /// assert!(!p.is_alive()); // not started
    /// p.start()?;
    /// assert!(p.is_alive());
    /// go.send(&())?;
    /// p.join()?;
    /// assert!(!p.is_alive());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn is_alive(&self) -> bool {
        matches!(&self.state, State::Started(c) if c.status().is_none())
    }

    /// The thread's OS id (Linux's TID, Python's `native_id`), once started.
    ///
    /// ```
    /// use multiproc::dummy as mp;
    ///
    /// #[multiproc::task]
    /// fn report(out: mp::Connection<u32>) { out.send(&mp::current_process().pid).unwrap(); }
    ///
    /// let (here, there) = mp::pipe()?;
    /// let mut p = mp::Process::new(report, (there,))?;
    /// assert_eq!(p.pid(), None);
    /// p.start()?;
    /// assert_eq!(p.pid(), Some(here.recv()?));
    /// assert_ne!(p.pid(), Some(std::process::id())); // a thread's id, not the process's
    /// p.join()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn pid(&self) -> Option<u32> {
        match &self.state {
            State::Started(c) => c.lock().tid,
            _ => None,
        }
    }

    /// How the task ended: `Code(0)` after it returned, `Code(1)` after a
    /// panic; `None` while running or before start.
    ///
    /// ```
    /// use multiproc::{ExitStatus, dummy::Process};
    ///
    /// #[multiproc::task]
    /// fn fail() { panic!("this thread fails"); }
    ///
    /// #[multiproc::task]
    /// fn refuse() -> Result<(), String> { Err("no".into()) }
    ///
    /// let (mut failing, mut refusing) = (Process::new(fail, ())?, Process::new(refuse, ())?);
    /// assert_eq!(failing.exitcode(), None); // not started
    /// failing.start()?;
    /// refusing.start()?;
    /// failing.join()?;
    /// refusing.join()?;
    /// assert_eq!(failing.exitcode(), Some(ExitStatus::Code(1))); // it panicked
    /// assert_eq!(refusing.exitcode(), Some(ExitStatus::Code(0))); // an `Err` is a value to a thread
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn exitcode(&self) -> Option<ExitStatus> {
        match &self.state {
            State::Started(c) => c.status(),
            _ => None,
        }
    }

    /// A thread cannot be stopped from outside.
    ///
    /// # Errors
    /// Always [`Error::InvalidState`], saying so.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn wait_for_go(go: multiproc::Connection<()>) { go.recv().unwrap(); }
    ///
    /// let (go, there) = multiproc::dummy::pipe()?;
    /// let mut p = multiproc::dummy::Process::new(wait_for_go, (there,))?;
    /// p.start()?;
    /// assert!(matches!(p.terminate(), Err(multiproc::Error::InvalidState(_))));
    /// go.send(&())?; // ask it to stop instead
    /// p.join()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn terminate(&self) -> Result<()> {
        Err(not_for_threads("terminate", &self.name, "a thread cannot be stopped from outside"))
    }

    /// A thread cannot be stopped from outside.
    ///
    /// # Errors
    /// Always [`Error::InvalidState`], saying so.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn wait_for_go(go: multiproc::Connection<()>) { go.recv().unwrap(); }
    ///
    /// let (go, there) = multiproc::dummy::pipe()?;
    /// let mut p = multiproc::dummy::Process::new(wait_for_go, (there,))?;
    /// p.start()?;
    /// assert!(matches!(p.interrupt(), Err(multiproc::Error::InvalidState(_))));
    /// go.send(&())?; // ask it to stop instead
    /// p.join()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn interrupt(&self) -> Result<()> {
        Err(not_for_threads("interrupt", &self.name, "a thread cannot be stopped from outside"))
    }

    /// A thread cannot be stopped from outside.
    ///
    /// # Errors
    /// Always [`Error::InvalidState`], saying so.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn wait_for_go(go: multiproc::Connection<()>) { go.recv().unwrap(); }
    ///
    /// let (go, there) = multiproc::dummy::pipe()?;
    /// let mut p = multiproc::dummy::Process::new(wait_for_go, (there,))?;
    /// p.start()?;
    /// assert!(matches!(p.kill(), Err(multiproc::Error::InvalidState(_))));
    /// go.send(&())?; // ask it to stop instead
    /// p.join()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn kill(&self) -> Result<()> {
        Err(not_for_threads("kill", &self.name, "a thread cannot be stopped from outside"))
    }

    /// A thread has no pidfd to wait on.
    ///
    /// # Errors
    /// Always [`Error::InvalidState`], saying so.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn work() {}
    ///
    /// let mut p = multiproc::dummy::Process::new(work, ())?;
    /// p.start()?;
    /// assert!(matches!(p.sentinel(), Err(multiproc::Error::InvalidState(_))));
    /// p.join()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn sentinel(&self) -> Result<std::os::fd::BorrowedFd<'_>> {
        Err(not_for_threads("get the sentinel of", &self.name, "a thread has no pidfd"))
    }

    /// Releases the handle (Python's `close`).
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the thread is still running.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn wait_for_go(go: multiproc::Connection<()>) { go.recv().unwrap(); }
    ///
    /// let (go, there) = multiproc::dummy::pipe()?;
    /// let mut p = multiproc::dummy::Process::new(wait_for_go, (there,))?;
    /// p.start()?;
    /// assert!(p.close().is_err()); // still running
    /// go.send(&())?;
    /// p.join()?;
    /// p.close()?;
    /// assert!(p.join().is_err()); // closed
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn close(&mut self) -> Result<()> {
        if let State::Started(c) = &self.state {
            if c.status().is_none() {
                return Err(Error::InvalidState(format!(
                    "cannot close process `{}` while it is running; join it first",
                    self.name
                )));
            }
            c.reap();
            threads().retain(|o| !Arc::ptr_eq(o, c));
        }
        self.state = State::Closed;
        Ok(())
    }
}

/// This thread as a process: a [`Process`]'s thread reports its name, daemon
/// flag and OS thread id as `pid`; any other thread its own name (the main
/// thread is `MainThread`, as in Python) and its OS thread id.
///
/// ```
/// use multiproc::dummy as mp;
///
/// #[multiproc::task]
/// fn whoami(out: mp::Connection<(String, u32)>) {
///     let me = mp::current_process();
///     out.send(&(me.name, me.pid)).unwrap();
/// }
///
/// let (here, there) = mp::pipe()?;
/// let mut p = mp::Process::builder(whoami, (there,)).name("worker").build()?;
/// p.start()?;
/// let (name, pid) = here.recv()?;
/// assert_eq!((name.as_str(), Some(pid)), ("worker", p.pid()));
/// assert_ne!(mp::current_process().pid, pid); // each thread has its own
/// p.join()?;
/// # Ok::<(), multiproc::Error>(())
/// ```
pub fn current_process() -> ProcessInfo {
    let tid = sys::process::gettid() as u32;
    if let Some(c) = CURRENT.with(|c| c.borrow().clone()) {
        return ProcessInfo { name: c.name.clone(), pid: tid, daemon: c.daemon };
    }
    let name = match std::thread::current().name() {
        Some("main") => "MainThread".to_string(),
        Some(n) => n.to_string(),
        None => format!("Dummy-{tid}"),
    };
    ProcessInfo { name, pid: tid, daemon: identity::me().daemon }
}

/// The threads the calling thread started with [`Process`] that are still
/// running (Python's `multiprocessing.dummy.active_children`); finished ones
/// are dropped from the table. The handles share state with the originals.
///
/// ```
/// use multiproc::dummy as mp;
///
/// #[multiproc::task]
/// fn wait_for_go(go: mp::Connection<()>) { go.recv().unwrap(); }
///
/// let (go, there) = mp::pipe()?;
/// let mut p = mp::Process::new(wait_for_go, (there,))?;
/// p.start()?;
/// let running: Vec<Option<u32>> = mp::active_children().iter().map(|c| c.pid()).collect();
/// assert_eq!(running, [p.pid()]);
/// go.send(&())?;
/// p.join()?;
/// assert!(mp::active_children().is_empty());
/// # Ok::<(), multiproc::Error>(())
/// ```
pub fn active_children() -> Vec<Process> {
    let (me, pid) = (std::thread::current().id(), sys::process::getpid());
    let mut table = threads();
    table.retain(|c| c.owner == pid && c.status().is_none());
    table
        .iter()
        .filter(|c| c.parent == me)
        .map(|c| Process {
            name: c.name.clone(),
            daemon: c.daemon,
            method: get_start_method(),
            state: State::Started(c.clone()),
        })
        .collect()
}

/// At the end of an annotated `main` (or a test, for the threads its thread
/// started): join the non-daemon threads, as Python joins its threads at exit.
/// Not while unwinding from a panic: a thread waiting for the panicking code
/// would turn a failure into a hang.
pub(crate) fn join_threads(parent: Option<ThreadId>) {
    if std::thread::panicking() {
        return;
    }
    let pid = sys::process::getpid();
    let mine: Vec<Arc<Child>> = threads()
        .iter()
        .filter(|c| c.owner == pid && !c.daemon && parent.is_none_or(|t| c.parent == t))
        .cloned()
        .collect();
    for c in &mine {
        drop(c.wait_for(None, |r| r.status.is_some()));
        c.reap();
    }
    threads().retain(|c| !mine.iter().any(|m| Arc::ptr_eq(m, c)));
}
