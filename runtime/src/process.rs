//! [`Process`]: one task in one child process, from both sides: the parent's
//! handle, and the child body ([`bootstrap`], Python's `_bootstrap`) that the
//! parent hands down to the start method.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::boot::{self, Boot};
use crate::codec;
use crate::context::{Context, default_start_method, get_start_method};
use crate::error::{Error, ExitStatus, IoContext, Result};
use crate::identity::{self, Me};
use crate::registry;
use crate::start::{ChildHandle, StartMethod, fork, forkserver, spawn};
use crate::sys;
use crate::task::Task;

/// A started child, shared by its [`Process`] handles and the table of children.
#[derive(Debug)]
struct Child {
    handle: ChildHandle,
    name: String,
    daemon: bool,
    thread: ThreadId,
    status: Mutex<Option<ExitStatus>>,
}

impl Child {
    /// Waits up to `timeout` (`None`: forever); caches the status once known.
    /// Blocks without holding the status lock, so that other threads (another
    /// handle's `is_alive`, `active_children`) are not stuck behind a `join`.
    fn wait(&self, timeout: Option<Duration>) -> Result<Option<ExitStatus>> {
        if timeout != Some(Duration::ZERO) {
            if let Some(s) = *self.status.lock().unwrap_or_else(|p| p.into_inner()) {
                return Ok(Some(s));
            }
            if !self.handle.wait_ready(timeout)? {
                return Ok(None);
            }
        }
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if status.is_none() {
            *status = self.handle.wait(Some(Duration::ZERO))?;
        }
        Ok(*status)
    }

    fn poll(&self) -> Option<ExitStatus> {
        self.wait(Some(Duration::ZERO)).ok().flatten()
    }
}

static CHILDREN: Mutex<Vec<Arc<Child>>> = Mutex::new(Vec::new());

fn children() -> std::sync::MutexGuard<'static, Vec<Arc<Child>>> {
    CHILDREN.lock().unwrap_or_else(|p| p.into_inner())
}

inventory::submit! { crate::sys::forklock::ForkLock::new(&CHILDREN) }

/// Reaps children that have ended and drops them from the table (Python's `_cleanup`).
fn reap_finished() {
    let snapshot: Vec<Arc<Child>> = children().clone();
    let done: Vec<i32> = snapshot.iter().filter(|c| c.poll().is_some()).map(|c| c.handle.pid()).collect();
    children().retain(|c| !done.contains(&c.handle.pid()));
}

/// At the end of an annotated `main` (or a test, for the children its thread
/// started): terminate daemon children, then join every child. While
/// unwinding from a panic, kill them all instead: joining a child that waits
/// for the panicking code would turn a failure into a hang.
pub(crate) fn shutdown_children(thread: Option<ThreadId>) {
    let mine: Vec<Arc<Child>> = children().iter().filter(|c| thread.is_none_or(|t| c.thread == t)).cloned().collect();
    let panicking = std::thread::panicking();
    for c in mine.iter().filter(|c| c.daemon || panicking) {
        let _ = c.handle.signal(if panicking { libc::SIGKILL } else { libc::SIGTERM });
    }
    for c in &mine {
        let _ = c.wait(None);
    }
    children().retain(|c| !mine.iter().any(|m| Arc::ptr_eq(m, c)));
}

/// In a forked child: the parent's children are not ours.
fn forget_children() {
    if let Ok(mut g) = CHILDREN.try_lock() {
        for c in g.drain(..) {
            std::mem::forget(c);
        }
    }
}

enum State {
    Ready { task: std::result::Result<&'static str, Error>, payload: codec::Payload, runner: ForkRunner },
    Started(Arc<Child>),
    Closed,
}

/// A task running (or about to run) in a child process — Python's `Process`.
///
/// The task is a [`#[multiproc::task]`](crate::task) function (or a
/// [`lambda!`](crate::lambda!)); its arguments travel to the child encoded,
/// handles such as a [`Connection`](crate::Connection) with their file
/// descriptors. Under the spawn and forkserver start methods (forkserver is
/// the default) the child re-runs this binary, so `fn main` carries
/// [`#[multiproc::main]`](crate::main).
///
/// ```
/// #[multiproc::task]
/// fn greet(name: String, conn: multiproc::Connection<String>) {
///     conn.send(&format!("hello {name}")).unwrap();
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let (parent, child) = multiproc::pipe()?;
///     let mut p = multiproc::Process::new(greet, ("bob".to_string(), child))?;
///     p.start()?;
///     assert_eq!(parent.recv()?, "hello bob");
///     p.join()?;
///     assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
///     Ok(())
/// }
/// ```
pub struct Process {
    name: String,
    identity: Vec<u32>,
    daemon: bool,
    method: StartMethod,
    state: State,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("name", &self.name)
            .field("daemon", &self.daemon)
            .field("start_method", &self.method)
            .field("pid", &self.pid())
            .field("exitcode", &self.exitcode())
            .finish()
    }
}

/// Configures a [`Process`] before it is created ([`Process::builder`]): its
/// name, daemon flag and start method (Python's `Process(name=…, daemon=…)`
/// and `get_context(method).Process`).
///
/// ```
/// use multiproc::{Process, StartMethod};
///
/// #[multiproc::task]
/// fn work() {}
///
/// let p = Process::builder(work, ()).name("worker").daemon(true).start_method(StartMethod::Spawn).build()?;
/// assert_eq!((p.name(), p.daemon(), p.start_method()), ("worker", true, StartMethod::Spawn));
/// # Ok::<(), multiproc::Error>(())
/// ```
pub struct ProcessBuilder<F, A> {
    task: F,
    args: A,
    name: Option<String>,
    daemon: Option<bool>,
    method: Option<StartMethod>,
}

impl<F, A> ProcessBuilder<F, A>
where
    F: Task<A>,
    A: Serialize + DeserializeOwned + 'static,
{
    /// The process name (default `Process-N`), Python's `name=`. The child
    /// sees it as [`current_process`]`().name`.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn work() {}
    ///
    /// let p = multiproc::Process::builder(work, ()).name("loader").build()?;
    /// assert_eq!(p.name(), "loader");
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Whether the process is a daemon (Python's `daemon=`): terminated, not
    /// joined, when its parent's annotated `main` ends; a daemon cannot start
    /// children. Default: the creator's flag.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn watch() {}
    ///
    /// let p = multiproc::Process::builder(watch, ()).daemon(true).build()?;
    /// assert!(p.daemon());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = Some(daemon);
        self
    }

    /// The start method (default [`get_start_method`](crate::get_start_method)),
    /// as Python's `get_context(method).Process(…)`.
    ///
    /// ```
    /// use multiproc::StartMethod;
    ///
    /// #[multiproc::task]
    /// fn work() {}
    ///
    /// let mut p = multiproc::Process::builder(work, ()).start_method(StartMethod::Fork).build()?;
    /// assert_eq!(p.start_method(), StartMethod::Fork);
    /// p.start()?; // fork needs no annotated `main`
    /// p.join()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Creates the process (not started yet: see [`Process::start`]). The
    /// arguments are encoded now.
    ///
    /// # Errors
    /// [`Error::Encode`] if the arguments cannot be encoded;
    /// [`Error::InvalidArgument`] if a [`Process::fork_closure`] is to use
    /// spawn or forkserver, or if the default start method is wanted and
    /// `MULTIPROC_START_METHOD` names none.
    ///
    /// ```
    /// use multiproc::{Error, Process, StartMethod};
    ///
    /// #[multiproc::task]
    /// fn work(x: u64) -> u64 { x }
    ///
    /// let p = Process::builder(work, (7,)).build()?;
    /// assert_eq!((p.pid(), p.is_alive()), (None, false));
    /// // A closure has no registered name: only a forked child can run it.
    /// let closure = Process::fork_closure(|| (), ()).start_method(StartMethod::Spawn);
    /// assert!(matches!(closure.build(), Err(Error::InvalidArgument(_))));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn build(self) -> Result<Process> {
        let method = match self.method {
            Some(m) => m,
            None => default_start_method()?,
        };
        let task = self.task.task_name();
        if method != StartMethod::Fork
            && let Err(e) = task
        {
            return Err(e);
        }
        let payload = self.task.encode_args(&self.args)?;
        drop(self.args);
        let f = self.task;
        let runner: ForkRunner = Box::new(move |bytes, fds| f.call_encoded(bytes, fds).map(drop));
        let (identity, default_name) = identity::next_child_identity();
        Ok(Process {
            name: self.name.unwrap_or(default_name),
            identity,
            daemon: self.daemon.unwrap_or_else(|| identity::me().daemon),
            method,
            state: State::Ready { task, payload, runner },
        })
    }
}

impl Process {
    /// A process that will run `task(args…)`, with the default start method
    /// (Python's `Process(target=task, args=args)`). `args` is a tuple: `(a,)`,
    /// `(a, b)`, … or `()`.
    ///
    /// # Errors
    /// As [`ProcessBuilder::build`].
    ///
    /// ```
    /// #[multiproc::task]
    /// fn add(a: u64, b: u64, out: multiproc::Connection<u64>) { out.send(&(a + b)).unwrap(); }
    ///
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let (here, there) = multiproc::pipe()?;
    /// let mut p = multiproc::Process::new(add, (40, 2, there))?;
    /// p.start()?;
    /// assert_eq!(here.recv()?, 42);
    /// p.join()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn new<F, A>(task: F, args: A) -> Result<Process>
    where
        F: Task<A>,
        A: Serialize + DeserializeOwned + 'static,
    {
        Process::builder(task, args).build()
    }

    /// A process that runs `f(args…)` for any closure `f` (capturing
    /// anything, serde or not) in a forked copy of this process: the fork
    /// start method only, since no other child could find the closure. To use
    /// spawn or forkserver, make it a [`#[multiproc::task]`](crate::task) or a
    /// [`lambda!`](crate::lambda!) and use [`Process::new`].
    ///
    /// The child keeps only the file descriptors found in `args` (as for any
    /// task), so pass handles such as a [`Connection`](crate::Connection) as
    /// arguments, not as captures. The closure's return value is dropped (it
    /// does not fail the process: panic or `std::process::exit` for that).
    ///
    /// ```
    /// let (here, there) = multiproc::pipe::<u64>()?;
    /// let k = 40; // captured: any value will do
    /// let send = move |conn: multiproc::Connection<u64>| conn.send(&(k + 2)).unwrap();
    /// let mut p = multiproc::Process::fork_closure(send, (there,)).build()?;
    /// p.start()?;
    /// assert_eq!(here.recv()?, 42);
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn fork_closure<F, A>(f: F, args: A) -> ProcessBuilder<ForkClosure<F>, A>
    where
        ForkClosure<F>: Task<A>,
        A: Serialize + DeserializeOwned + 'static,
    {
        Process::builder(ForkClosure(Mutex::new(Some(f))), args).start_method(StartMethod::Fork)
    }

    /// A builder to set the name, daemon flag or start method.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn work() {}
    ///
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let mut p = multiproc::Process::builder(work, ()).name("worker").build()?;
    /// p.start()?;
    /// p.join()?;
    /// assert_eq!(p.name(), "worker");
    /// assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder<F, A>(task: F, args: A) -> ProcessBuilder<F, A>
    where
        F: Task<A>,
        A: Serialize + DeserializeOwned + 'static,
    {
        ProcessBuilder { task, args, name: None, daemon: None, method: None }
    }

    /// The process name (Python's `name`): the builder's, or `Process-N`.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn work() {}
    ///
    /// let p = multiproc::Process::new(work, ())?;
    /// assert!(p.name().starts_with("Process-"));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the process is a daemon (Python's `daemon`); by default, the
    /// creating process's flag (`false` in the main process).
    ///
    /// ```
    /// #[multiproc::task]
    /// fn work() {}
    ///
    /// let p = multiproc::Process::new(work, ())?;
    /// assert!(!p.daemon());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn daemon(&self) -> bool {
        self.daemon
    }

    /// The start method it uses: the builder's, or the default one.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn work() {}
    ///
    /// let p = multiproc::Process::new(work, ())?;
    /// assert_eq!(p.start_method(), multiproc::get_start_method());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn start_method(&self) -> StartMethod {
        self.method
    }

    /// Runs the task here, in the calling process and thread, and returns
    /// when it does (Python's `Process.run()`): no child is started, and the
    /// process can still be [`start`](Self::start)ed afterwards (its handle
    /// arguments are duplicated for the run). A closure given to
    /// [`fork_closure`](Self::fork_closure) can run only once: after `run`,
    /// such a process cannot start.
    ///
    /// # Errors
    /// [`Error::TaskFailed`] if the task returned an `Err` (its text),
    /// [`Error::TaskPanicked`] if it panicked; [`Error::InvalidState`] once
    /// the process was started or closed; [`Error::Io`] if a handle argument
    /// cannot be duplicated.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn check(n: u32) -> Result<(), String> {
    ///     if n % 2 == 0 { Ok(()) } else { Err(format!("{n} is odd")) }
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let mut even = multiproc::Process::new(check, (4,))?;
    ///     even.run()?; // here, in this process
    ///     even.start()?; // and still startable in a child
    ///     even.join()?;
    ///     let mut odd = multiproc::Process::new(check, (3,))?;
    ///     assert!(matches!(odd.run(), Err(multiproc::Error::TaskFailed { message, .. }) if message.contains("3 is odd")));
    ///     Ok(())
    /// }
    /// ```
    pub fn run(&mut self) -> Result<()> {
        let (name, payload) = match &self.state {
            State::Ready { task: Ok(name), payload, .. } => (*name, payload),
            State::Ready { task: Err(_), .. } => return self.run_closure(),
            State::Started(_) | State::Closed => {
                return Err(Error::InvalidState(format!(
                    "process `{}` was started or closed; run() runs a process that has not started",
                    self.name
                )));
            }
        };
        let fds = payload.fds.iter().map(OwnedFd::try_clone).collect::<std::io::Result<Vec<_>>>().ctx("dup")?;
        let entry = registry::lookup(name)?;
        let ran = crate::unwind::catch(|| entry.run_target(&payload.bytes, fds));
        in_process_outcome(name, ran)
    }

    /// [`run`](Self::run) for a `fork_closure` process: its closure runs once.
    fn run_closure(&mut self) -> Result<()> {
        let State::Ready { payload, runner, .. } = std::mem::replace(&mut self.state, State::Closed) else {
            return Err(Error::InvalidState(format!("process `{}` is not ready to run", self.name)));
        };
        let ran = crate::unwind::catch(move || runner(&payload.bytes, payload.fds).map(|()| None));
        in_process_outcome("<closure>", ran)
    }

    /// Starts the child (Python's `start`). Returns once the child exists (under
    /// spawn, once it has taken its role: a child that cannot is reported here,
    /// not later). A process starts once.
    ///
    /// # Errors
    /// [`Error::InvalidState`] if already started or closed, or if this process is
    /// a daemon; [`Error::NotAnnotated`] under spawn/forkserver when the entry point
    /// lacks `#[multiproc::main]`; [`Error::Handshake`] if the child fails to start;
    /// [`Error::InvalidArgument`] if a `MULTIPROC_*` variable has an unknown value.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn work() {}
    ///
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let mut p = multiproc::Process::new(work, ())?;
    /// p.start()?;
    /// assert!(p.pid().is_some());
    /// assert!(matches!(p.start(), Err(multiproc::Error::InvalidState(_))));
    /// p.join()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn start(&mut self) -> Result<()> {
        boot::refuse_stray_child();
        if identity::me().daemon {
            return Err(Error::InvalidState("a daemon process cannot start child processes".into()));
        }
        let State::Ready { .. } = self.state else {
            return Err(Error::InvalidState(match self.state {
                State::Closed => format!("process `{}` is closed", self.name),
                _ => format!("process `{}` was already started; a process can only be started once", self.name),
            }));
        };
        check_env()?;
        reap_finished();
        let State::Ready { task, payload, runner } = std::mem::replace(&mut self.state, State::Closed) else {
            return Err(Error::InvalidState("process state changed during start".into()));
        };
        let me = identity::me();
        let boot = |task: &str, args: Vec<u8>| Boot {
            task: task.to_string(),
            args,
            me: Me {
                name: self.name.clone(),
                identity: self.identity.clone(),
                daemon: self.daemon,
                parent: Some((me.name.clone(), sys::process::getpid() as u32)),
            },
            fingerprint: registry::fingerprint(),
            method: self.method.to_string(),
        };
        let result = match self.method {
            StartMethod::Fork => {
                let name = task.as_deref().unwrap_or("<closure>");
                let b = boot(name, payload.bytes);
                fork::start(payload.fds, |(b, run), fds| bootstrap(b, fds, Some(run)), (b, runner))
            }
            StartMethod::Spawn | StartMethod::ForkServer => (|| {
                let name = task?;
                let entry = boot::entry().ok_or_else(boot::not_annotated)?;
                let codec::Payload { bytes, fds } = payload;
                let b = boot(name, bytes);
                if self.method == StartMethod::Spawn {
                    let encoded = codec::encode(&b, "boot message")?.bytes;
                    spawn::launch("task", &entry, &encoded, &fds).map(|(child, _ctl)| child)
                } else {
                    forkserver::start(&entry, &b, &fds)
                }
            })(),
        };
        let handle = result?;
        let child = Arc::new(Child {
            handle,
            name: self.name.clone(),
            daemon: self.daemon,
            thread: std::thread::current().id(),
            status: Mutex::new(None),
        });
        children().push(child.clone());
        self.state = State::Started(child);
        Ok(())
    }

    fn child(&self, what: &str) -> Result<&Arc<Child>> {
        match &self.state {
            State::Started(c) => Ok(c),
            State::Ready { .. } => {
                Err(Error::InvalidState(format!("cannot {what} process `{}`: it was never started", self.name)))
            }
            State::Closed => Err(Error::InvalidState(format!("cannot {what} process `{}`: it is closed", self.name))),
        }
    }

    /// Waits for the child to end (Python's `join()`); then
    /// [`exitcode`](Process::exitcode) tells how.
    ///
    /// # Errors
    /// [`Error::InvalidState`] if it was never started or is closed.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn work() {}
    ///
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let mut p = multiproc::Process::new(work, ())?;
    /// assert!(p.join().is_err()); // not started yet
    /// p.start()?;
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn join(&mut self) -> Result<()> {
        self.child("join")?.wait(None)?;
        self.forget_if_done();
        Ok(())
    }

    /// Waits at most `timeout`; `Ok(None)` if the child is still running (as
    /// Python's `join(timeout)`, then check [`Process::exitcode`]).
    ///
    /// # Errors
    /// As [`Process::join`].
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// #[multiproc::task]
    /// fn wait_for_go(go: multiproc::Connection<()>) { go.recv().unwrap(); }
    ///
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let (go, there) = multiproc::pipe()?;
    /// let mut p = multiproc::Process::new(wait_for_go, (there,))?;
    /// p.start()?;
    /// assert_eq!(p.join_timeout(Duration::from_millis(20))?, None); // still waiting
    /// go.send(&())?;
    /// assert_eq!(p.join_timeout(Duration::from_secs(30))?, Some(multiproc::ExitStatus::Code(0)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let s = self.child("join")?.wait(Some(timeout))?;
        self.forget_if_done();
        Ok(s)
    }

    fn forget_if_done(&self) {
        if let State::Started(c) = &self.state
            && c.status.lock().unwrap_or_else(|p| p.into_inner()).is_some()
        {
            children().retain(|o| !Arc::ptr_eq(o, c));
        }
    }

    /// Whether the child has started and not yet ended (Python's `is_alive`).
    ///
    /// ```
    /// #[multiproc::task]
    /// fn wait_for_go(go: multiproc::Connection<()>) { go.recv().unwrap(); }
    ///
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let (go, there) = multiproc::pipe()?;
    /// let mut p = multiproc::Process::new(wait_for_go, (there,))?;
    /// assert!(!p.is_alive()); // not started
    /// p.start()?;
    /// assert!(p.is_alive());
    /// go.send(&())?;
    /// p.join()?;
    /// assert!(!p.is_alive());
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_alive(&self) -> bool {
        match &self.state {
            State::Started(c) => c.poll().is_none(),
            _ => false,
        }
    }

    /// The child's pid, once started (Python's `pid`).
    ///
    /// ```
    /// #[multiproc::task]
    /// fn report(out: multiproc::Connection<u32>) { out.send(&std::process::id()).unwrap(); }
    ///
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let (here, there) = multiproc::pipe()?;
    /// let mut p = multiproc::Process::new(report, (there,))?;
    /// assert_eq!(p.pid(), None);
    /// p.start()?;
    /// assert_eq!(p.pid(), Some(here.recv()?));
    /// p.join()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn pid(&self) -> Option<u32> {
        match &self.state {
            State::Started(c) => Some(c.handle.pid() as u32),
            _ => None,
        }
    }

    /// How the child ended; `None` while running or before start.
    ///
    /// `Code(0)` after a normal return; `Code(1)` after a panic, or when a
    /// registered task (or `lambda!`) returns `Err(e)` with `e: Debug` (as
    /// Python's target raising); `Signal(n)` when killed by a signal.
    ///
    /// ```
    /// use multiproc::{ExitStatus, Process};
    ///
    /// #[multiproc::task]
    /// fn check(x: i64) -> Result<i64, String> {
    ///     if x >= 0 { Ok(x) } else { Err(format!("{x} is negative")) }
    /// }
    ///
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let (mut good, mut bad) = (Process::new(check, (1,))?, Process::new(check, (-1,))?);
    /// assert_eq!(good.exitcode(), None); // not started
    /// good.start()?;
    /// bad.start()?;
    /// good.join()?;
    /// bad.join()?;
    /// assert_eq!(good.exitcode(), Some(ExitStatus::Code(0)));
    /// assert_eq!(bad.exitcode(), Some(ExitStatus::Code(1)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn exitcode(&self) -> Option<ExitStatus> {
        match &self.state {
            State::Started(c) => c.poll(),
            _ => None,
        }
    }

    /// Sends `SIGTERM` (Python's `terminate`; a child that already ended is
    /// not an error).
    ///
    /// # Errors
    /// [`Error::InvalidState`] if never started or closed.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn wait_for_go(go: multiproc::Connection<()>) { go.recv().unwrap(); }
    ///
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let (_go, there) = multiproc::pipe()?;
    /// let mut p = multiproc::Process::new(wait_for_go, (there,))?;
    /// p.start()?;
    /// p.terminate()?;
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Signal(15))); // SIGTERM
    /// # Ok(())
    /// # }
    /// ```
    pub fn terminate(&self) -> Result<()> {
        self.child("terminate")?.handle.signal(libc::SIGTERM)
    }

    /// Sends `SIGINT` (Python 3.14's `interrupt`). A Rust child keeps the default
    /// action, so it ends with `ExitStatus::Signal(SIGINT)`, unless it inherited
    /// an ignored SIGINT (a parent started as a shell's background job), as in Python.
    ///
    /// # Errors
    /// As [`Process::terminate`].
    ///
    /// ```
    /// use multiproc::ExitStatus;
    /// use std::time::Duration;
    ///
    /// #[multiproc::task]
    /// fn wait_for_go(go: multiproc::Connection<()>) { go.recv().unwrap(); }
    ///
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let (_go, there) = multiproc::pipe()?;
    /// let mut p = multiproc::Process::new(wait_for_go, (there,))?;
    /// p.start()?;
    /// p.interrupt()?;
    /// if p.join_timeout(Duration::from_secs(10))?.is_none() {
    ///     p.kill()?; // it inherited an ignored SIGINT
    ///     p.join()?;
    /// }
    /// assert!(matches!(p.exitcode(), Some(ExitStatus::Signal(2 | 9)))); // SIGINT (or SIGKILL)
    /// # Ok(())
    /// # }
    /// ```
    pub fn interrupt(&self) -> Result<()> {
        self.child("interrupt")?.handle.signal(libc::SIGINT)
    }

    /// Sends `SIGKILL` (Python's `kill`): the child cannot catch or ignore it.
    ///
    /// # Errors
    /// As [`Process::terminate`].
    ///
    /// ```
    /// #[multiproc::task]
    /// fn wait_for_go(go: multiproc::Connection<()>) { go.recv().unwrap(); }
    ///
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let (_go, there) = multiproc::pipe()?;
    /// let mut p = multiproc::Process::new(wait_for_go, (there,))?;
    /// p.start()?;
    /// p.kill()?;
    /// p.join()?;
    /// assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Signal(9))); // SIGKILL
    /// # Ok(())
    /// # }
    /// ```
    pub fn kill(&self) -> Result<()> {
        self.child("kill")?.handle.signal(libc::SIGKILL)
    }

    /// An fd that becomes readable when the child ends (a pidfd; Python's
    /// `sentinel`), for [`wait`](crate::connection::wait) or your own event loop.
    ///
    /// # Errors
    /// As [`Process::terminate`].
    ///
    /// ```
    /// use multiproc::connection::wait;
    ///
    /// #[multiproc::task]
    /// fn work() {}
    ///
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let mut p = multiproc::Process::new(work, ())?;
    /// p.start()?;
    /// assert_eq!(wait(&[&p.sentinel()?], None)?, [0]); // the child has ended
    /// p.join()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn sentinel(&self) -> Result<BorrowedFd<'_>> {
        Ok(self.child("get the sentinel of")?.handle.sentinel())
    }

    /// Releases the process's resources (Python's `close`); the handle can do
    /// nothing more after it.
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the child is still running.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn wait_for_go(go: multiproc::Connection<()>) { go.recv().unwrap(); }
    ///
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let (go, there) = multiproc::pipe()?;
    /// let mut p = multiproc::Process::new(wait_for_go, (there,))?;
    /// p.start()?;
    /// assert!(p.close().is_err()); // still running
    /// go.send(&())?;
    /// p.join()?;
    /// p.close()?;
    /// assert!(p.join().is_err()); // closed
    /// # Ok(())
    /// # }
    /// ```
    pub fn close(&mut self) -> Result<()> {
        if let State::Started(c) = &self.state {
            if c.poll().is_none() {
                return Err(Error::InvalidState(format!(
                    "cannot close process `{}` while it is running; join or kill it first",
                    self.name
                )));
            }
            children().retain(|o| !Arc::ptr_eq(o, c));
        }
        self.state = State::Closed;
        Ok(())
    }
}

impl Context {
    /// A [`Process`] that will start with this context's method (Python's
    /// `ctx.Process(target=…, args=…)`).
    ///
    /// # Errors
    /// As [`Process::new`].
    ///
    /// ```
    /// use multiproc::StartMethod;
    ///
    /// #[multiproc::task]
    /// fn hello() {}
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let ctx = multiproc::get_context(StartMethod::Spawn);
    ///     let mut p = ctx.process(hello, ())?;
    ///     assert_eq!(p.start_method(), StartMethod::Spawn);
    ///     p.start()?;
    ///     p.join()?;
    ///     assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
    ///     Ok(())
    /// }
    /// ```
    pub fn process<F, A>(&self, task: F, args: A) -> Result<Process>
    where
        F: Task<A>,
        A: Serialize + DeserializeOwned + 'static,
    {
        Process::builder(task, args).start_method(self.start_method()).build()
    }
}

/// A closure run by [`Process::fork_closure`] (fork only: it has no registered
/// name). Not public API beyond its name in `ProcessBuilder<ForkClosure<F>, ()>`.
#[doc(hidden)]
pub struct ForkClosure<F>(Mutex<Option<F>>);

macro_rules! fork_closure_task {
    ($($a:ident $A:ident),*) => {
        impl<Func, Ret, $($A: 'static,)*> Task<($($A,)*)> for ForkClosure<Func>
        where
            Func: FnOnce($($A),*) -> Ret + Send + 'static,
        {
            type Output = ();
            fn call(&self, ($($a,)*): ($($A,)*)) {
                // Called once, in the forked child (the parent never runs it).
                let f = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
                if let Some(f) = f {
                    drop(f($($a),*));
                }
            }
            fn task_name(&self) -> Result<&'static str> {
                Err(fork_closure_elsewhere())
            }
        }
    };
}

fork_closure_task!();
fork_closure_task!(a A);
fork_closure_task!(a A, b B);
fork_closure_task!(a A, b B, c C);
fork_closure_task!(a A, b B, c C, d D);
fork_closure_task!(a A, b B, c C, d D, e E);
fork_closure_task!(a A, b B, c C, d D, e E, f F);

fn fork_closure_elsewhere() -> Error {
    Error::InvalidArgument(
        "a Process::fork_closure runs only under the fork start method (no other child can find a closure); \
         make it a #[multiproc::task] fn or a multiproc::lambda! and use Process::new for spawn or forkserver"
            .into(),
    )
}

/// Runs the task a child was started for (the fork start method's typed path,
/// for [`Process::fork_closure`]).
type ForkRunner = Box<dyn FnOnce(&[u8], Vec<OwnedFd>) -> Result<()> + Send>;

/// The child body: takes the identity in `boot` and runs its task (by name, or
/// the fork-only typed `runner`), then exits: code 0, or 1 if the task panicked
/// (the panic hook has printed message and location), returned `Err`, or could
/// not run. The start methods are handed this function; they never name it.
pub(crate) fn bootstrap(boot: Boot, fds: Vec<OwnedFd>, runner: Option<ForkRunner>) -> ! {
    // A forked child inherits the parent's table: those children are not ours.
    forget_children();
    let task = boot.task.clone();
    let parent = boot.me.parent.as_ref().map(|(_, pid)| *pid as i32);
    let _ = PARENT.set(parent.and_then(|pid| sys::process::pidfd_open(pid).ok()));
    identity::set_me(boot.me);
    // Input is the parent's: a child reads nothing from it (Python does the same).
    let _ = sys::process::stdin_from_devnull();
    // `get_start_method()` in the child names the method that started it.
    if let Ok(m) = StartMethod::from_name(&boot.method) {
        let _ = crate::context::set_start_method(m, true);
    }
    // A registered task runs through its entry, which can tell an `Err` return
    // value; the fork-only typed runner serves `fork_closure`s.
    let result = catch_unwind(AssertUnwindSafe(|| match (registry::lookup(&task), runner) {
        (Ok(entry), _) => entry.run_target(&boot.args, fds),
        (Err(_), Some(run)) => run(&boot.args, fds).map(|()| None),
        (Err(e), None) => Err(e),
    }));
    let code = match result {
        Ok(Ok(None)) => 0,
        Ok(Ok(Some(returned))) => {
            eprintln!("multiproc: task `{task}` returned an error: {returned}");
            1
        }
        Ok(Err(e)) => {
            eprintln!("multiproc: task `{task}` failed: {e}");
            1
        }
        Err(_) => 1,
    };
    exit_child(code)
}

/// The result of a task run in this process ([`Process::run`]).
fn in_process_outcome(
    task: &str,
    ran: std::result::Result<Result<Option<String>>, crate::unwind::Panic>,
) -> Result<()> {
    match ran {
        Ok(Ok(None)) => Ok(()),
        Ok(Ok(Some(message))) => Err(Error::TaskFailed { task: task.to_string(), message }),
        Ok(Err(e)) => Err(e),
        Err(p) => Err(Error::TaskPanicked { task: task.to_string(), message: p.message, location: p.location }),
    }
}

/// Python's exit path for a child: join non-daemon children, terminate daemon
/// ones, flush stdio, and leave without running the parent's destructors.
fn exit_child(code: i32) -> ! {
    shutdown_children(None);
    sys::process::flush_stdio();
    sys::process::exit_now(code)
}

/// What [`current_process`] and [`parent_process`] report: a process's name,
/// pid and daemon flag (Python's `current_process()` object, without the
/// methods that only its parent may call).
///
/// ```
/// let me = multiproc::current_process();
/// assert_eq!(me.name, "MainProcess");
/// assert_eq!(me.pid, std::process::id());
/// assert!(!me.daemon);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The process name (`MainProcess` for the main process).
    pub name: String,
    /// The pid.
    pub pid: u32,
    /// Whether it is a daemon.
    pub daemon: bool,
}

/// A pidfd of this process's parent, opened at bootstrap while it surely ran
/// (`None` in the main process, or if it had already ended).
static PARENT: std::sync::OnceLock<Option<OwnedFd>> = std::sync::OnceLock::new();

impl ProcessInfo {
    /// Whether the process is running (always `true` for the current process).
    /// Python's `is_alive()`. A child can watch its parent this way.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn check(out: multiproc::Connection<bool>) {
    ///     out.send(&multiproc::parent_process().unwrap().is_alive()).unwrap();
    /// }
    ///
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// assert!(multiproc::current_process().is_alive());
    /// let (here, there) = multiproc::pipe()?;
    /// let mut p = multiproc::Process::new(check, (there,))?;
    /// p.start()?;
    /// assert!(here.recv()?); // the child sees its parent running
    /// p.join()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_alive(&self) -> bool {
        if self.pid == sys::process::getpid() as u32 {
            return true;
        }
        match self.pidfd() {
            Some(fd) => !sys::fd::readable_now(fd).unwrap_or(true),
            None => false,
        }
    }

    /// How it ended: `None` — only a process's own parent learns its exit
    /// status (see [`Process::exitcode`]), as Python's `parent_process().exitcode`
    /// is `None`.
    ///
    /// ```
    /// assert_eq!(multiproc::current_process().exitcode(), None);
    /// ```
    pub fn exitcode(&self) -> Option<ExitStatus> {
        None
    }

    /// A file descriptor that becomes readable when the process ends (Python's
    /// `sentinel`; use it with `poll` or [`connection::wait`](crate::connection::wait)-style loops).
    /// A child has one for its parent; no process has one for itself.
    ///
    /// # Errors
    /// [`Error::InvalidState`] for the current process, or one that ended
    /// before it could be watched.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// #[multiproc::task]
    /// fn check(out: multiproc::Connection<Vec<usize>>) {
    ///     let parent = multiproc::parent_process().unwrap();
    ///     let ready = multiproc::connection::wait(&[&parent.sentinel().unwrap()], Some(Duration::ZERO));
    ///     out.send(&ready.unwrap()).unwrap();
    /// }
    ///
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// assert!(multiproc::current_process().sentinel().is_err());
    /// let (here, there) = multiproc::pipe()?;
    /// let mut p = multiproc::Process::new(check, (there,))?;
    /// p.start()?;
    /// assert_eq!(here.recv()?, Vec::<usize>::new()); // the parent has not ended
    /// p.join()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn sentinel(&self) -> Result<BorrowedFd<'_>> {
        if self.pid == sys::process::getpid() as u32 {
            return Err(Error::InvalidState(
                "the current process has no sentinel: it cannot wait for its own end".into(),
            ));
        }
        self.pidfd().ok_or_else(|| Error::InvalidState(format!("process {} has ended", self.pid)))
    }

    /// Waits for the process to end (Python's `parent_process().join()`); a
    /// process cannot join itself.
    ///
    /// # Errors
    /// [`Error::InvalidState`] for the current process.
    ///
    /// ```
    /// assert!(multiproc::current_process().join().is_err()); // it would wait for ever
    /// ```
    pub fn join(&self) -> Result<()> {
        self.join_timeout(None).map(drop)
    }

    /// Waits at most `timeout` (`None`: for ever) for the process to end;
    /// whether it has (Python's `parent_process().join(timeout)`).
    ///
    /// # Errors
    /// As [`ProcessInfo::join`].
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// #[multiproc::task]
    /// fn check(out: multiproc::Connection<bool>) {
    ///     let parent = multiproc::parent_process().unwrap();
    ///     out.send(&parent.join_timeout(Some(Duration::from_millis(10))).unwrap()).unwrap();
    /// }
    ///
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let (here, there) = multiproc::pipe()?;
    /// let mut p = multiproc::Process::new(check, (there,))?;
    /// p.start()?;
    /// assert!(!here.recv()?); // the parent was still running
    /// p.join()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn join_timeout(&self, timeout: Option<Duration>) -> Result<bool> {
        let Ok(fd) = self.sentinel() else {
            if self.pid == sys::process::getpid() as u32 {
                return Err(Error::InvalidState("a process cannot join itself".into()));
            }
            return Ok(true);
        };
        let ready = sys::fd::poll_readable(&[fd], timeout).ctx("poll")?;
        Ok(ready.first().copied().unwrap_or(false))
    }

    /// The pidfd that watches this process: the parent's, opened at bootstrap.
    fn pidfd(&self) -> Option<BorrowedFd<'static>> {
        let parent = identity::me().parent.map(|(_, pid)| pid);
        if parent != Some(self.pid) {
            return None;
        }
        PARENT.get().and_then(|p| p.as_ref()).map(|fd| fd.as_fd())
    }
}

/// This process (Python's `current_process()`): `MainProcess`, or the name a
/// child was given.
///
/// ```
/// #[multiproc::task]
/// fn whoami(out: multiproc::Connection<String>) {
///     out.send(&multiproc::current_process().name).unwrap();
/// }
///
/// # #[multiproc::main]
/// # fn main() -> multiproc::Result<()> {
/// assert_eq!(multiproc::current_process().name, "MainProcess");
/// let (here, there) = multiproc::pipe()?;
/// let mut p = multiproc::Process::builder(whoami, (there,)).name("worker").build()?;
/// p.start()?;
/// assert_eq!(here.recv()?, "worker");
/// p.join()?;
/// # Ok(())
/// # }
/// ```
pub fn current_process() -> ProcessInfo {
    let me = identity::me();
    ProcessInfo { name: me.name, pid: sys::process::getpid() as u32, daemon: me.daemon }
}

/// The process that started this one, if it was started by multiproc
/// (Python's `parent_process()`; `None` in the main process).
///
/// ```
/// #[multiproc::task]
/// fn parent_pid(out: multiproc::Connection<Option<u32>>) {
///     out.send(&multiproc::parent_process().map(|p| p.pid)).unwrap();
/// }
///
/// # #[multiproc::main]
/// # fn main() -> multiproc::Result<()> {
/// assert_eq!(multiproc::parent_process(), None);
/// let (here, there) = multiproc::pipe()?;
/// let mut p = multiproc::Process::new(parent_pid, (there,))?;
/// p.start()?;
/// assert_eq!(here.recv()?, Some(std::process::id()));
/// p.join()?;
/// # Ok(())
/// # }
/// ```
pub fn parent_process() -> Option<ProcessInfo> {
    identity::me().parent.map(|(name, pid)| ProcessInfo { name, pid, daemon: false })
}

/// The children of this process that are still running (finished ones are reaped,
/// as Python's `active_children` does). The handles share state with the originals.
///
/// ```
/// #[multiproc::task]
/// fn wait_for_go(go: multiproc::Connection<()>) { go.recv().unwrap(); }
///
/// # #[multiproc::main]
/// # fn main() -> multiproc::Result<()> {
/// let (go, there) = multiproc::pipe()?;
/// let mut p = multiproc::Process::new(wait_for_go, (there,))?;
/// p.start()?;
/// let running: Vec<Option<u32>> = multiproc::active_children().iter().map(|c| c.pid()).collect();
/// assert_eq!(running, [p.pid()]);
/// go.send(&())?;
/// p.join()?;
/// assert!(multiproc::active_children().is_empty());
/// # Ok(())
/// # }
/// ```
pub fn active_children() -> Vec<Process> {
    reap_finished();
    children()
        .iter()
        .map(|c| Process {
            name: c.name.clone(),
            identity: Vec::new(),
            daemon: c.daemon,
            method: get_start_method(),
            state: State::Started(c.clone()),
        })
        .collect()
}

/// The number of CPUs this process may use (its affinity mask, not the
/// machine's total): Python's `os.process_cpu_count()`, which is what
/// `multiprocessing.cpu_count()` reports on recent Pythons. A pool's default size.
///
/// ```
/// let n = multiproc::cpu_count();
/// // at least what std reports (which also counts cgroup CPU quotas)
/// assert!(n >= std::thread::available_parallelism().map_or(1, |p| p.get()));
/// ```
pub fn cpu_count() -> usize {
    sys::process::cpu_count()
}

/// Every `MULTIPROC_*` setting a start depends on, checked at each start so an
/// unknown value is an [`Error::InvalidArgument`] naming the variable, the
/// value and the allowed values, never silently ignored.
fn check_env() -> Result<()> {
    crate::context::start_method_from_env()?;
    match std::env::var_os(crate::mpi::BACKEND_VAR) {
        Some(v) if v != "mpi" && v != "local" => Err(Error::InvalidArgument(format!(
            "{}={:?} names no backend; expected one of mpi, local",
            crate::mpi::BACKEND_VAR,
            v.to_string_lossy()
        ))),
        _ => Ok(()),
    }
}

/// Not public API: child processes the runtime keeps for its own use (tests' leak checks).
#[doc(hidden)]
pub fn runtime_pids() -> Vec<u32> {
    forkserver::server_pid().into_iter().chain(crate::shared::tracker::pid()).collect()
}

/// Not public API: fds the runtime keeps open for its own use (tests' leak checks).
#[doc(hidden)]
pub fn runtime_fds() -> Vec<i32> {
    let mut fds = forkserver::server_fds();
    fds.extend(crate::shared::tracker::fd());
    fds
}

impl Drop for Process {
    fn drop(&mut self) {
        // A finished child is reaped here; a running one stays in the table, to be
        // reaped later (next start, active_children, or the end of main).
        self.forget_if_done();
    }
}
