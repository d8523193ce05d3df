//! The one error type of multiproc.

use std::fmt;
use std::io;
use std::time::Duration;

/// How a process ended.
///
/// Python reports a signal as a negative `exitcode`; [`ExitStatus::code`] does the same.
///
/// ```
/// use multiproc::ExitStatus;
///
/// #[multiproc::task]
/// fn fail() { std::process::exit(3) }
///
/// let mut p = multiproc::get_context(multiproc::StartMethod::Fork).process(fail, ())?;
/// p.start()?;
/// p.join()?;
/// assert_eq!(p.exitcode(), Some(ExitStatus::Code(3)));
/// assert_eq!(ExitStatus::Signal(9).to_string(), "killed by signal 9 (SIGKILL)");
/// # Ok::<(), multiproc::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ExitStatus {
    /// The process called `exit(code)` (or returned from its task: 0, or 1 after a panic).
    Code(i32),
    /// The process was killed by this signal number.
    Signal(i32),
}

impl ExitStatus {
    /// Python's `exitcode`: the exit code, or minus the signal number.
    ///
    /// ```
    /// use multiproc::ExitStatus;
    ///
    /// assert_eq!(ExitStatus::Code(2).code(), 2);
    /// assert_eq!(ExitStatus::Signal(15).code(), -15);
    /// ```
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => -s,
        }
    }

    /// Whether the process exited with code 0.
    ///
    /// ```
    /// use multiproc::ExitStatus;
    ///
    /// assert!(ExitStatus::Code(0).success());
    /// assert!(!ExitStatus::Code(1).success());
    /// assert!(!ExitStatus::Signal(9).success());
    /// ```
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signal(s) => {
                let name = nix::sys::signal::Signal::try_from(s).map(|s| s.as_str()).unwrap_or("unknown signal");
                write!(f, "killed by signal {s} ({name})")
            }
        }
    }
}

/// What usually ends a worker with `status`, for [`Error::WorkerLost`]'s message.
fn lost_hint(status: ExitStatus) -> &'static str {
    match status {
        ExitStatus::Signal(9) => {
            "; the OOM killer or someone's `kill -9` (see `dmesg`; limit a worker's memory with max_memory_per_child)"
        }
        ExitStatus::Signal(6) => {
            "; it aborted (a failed allocation under RLIMIT_AS, a panic while panicking, or abort())"
        }
        ExitStatus::Signal(11) | ExitStatus::Signal(7) => "; a memory fault in the task (unsafe code or a C library)",
        _ => "",
    }
}

/// Everything that can go wrong in multiproc. Each variant says what happened and to what.
///
/// `Debug` prints the same sentence as `Display` (with the OS error's source
/// after it), so `fn main() -> multiproc::Result<()>` and `.unwrap()` show the
/// message that says how to fix the problem, not the variant's fields.
///
/// ```
/// let e = multiproc::Pool::new(0).unwrap_err();
/// assert_eq!(format!("{e:?}"), e.to_string());
/// ```
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A function or closure that is not a registered task was sent to another process.
    #[error(
        "`{type_name}` is not a registered task; add #[multiproc::task] to the function \
         (a closure: wrap it in multiproc::lambda!, or run it with Process::fork_closure under the \
         fork start method)"
    )]
    NotRegistered {
        /// The Rust type of the function or closure.
        type_name: &'static str,
    },
    /// A child process was asked to run a task name its registry does not have.
    #[error("no task named `{name}` is registered in this binary")]
    UnknownTask {
        /// The task name that was looked up.
        name: String,
    },
    /// The program's entry point is not annotated, so a spawned child could not take its role.
    ///
    /// A plain `#[test]` gets it every time (use `#[multiproc::test]`), and so
    /// does a doctest (use the fork start method there):
    ///
    /// ```
    /// #[multiproc::task]
    /// fn noop() {}
    ///
    /// let spawn = multiproc::get_context(multiproc::StartMethod::Spawn);
    /// let e = spawn.process(noop, ())?.start().unwrap_err();
    /// assert!(matches!(e, multiproc::Error::NotAnnotated { .. }), "{e}");
    /// assert!(e.to_string().contains("use the fork start method"), "{e}");
    ///
    /// let fork = multiproc::get_context(multiproc::StartMethod::Fork);
    /// let mut p = fork.process(noop, ())?;
    /// p.start()?;
    /// p.join()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    #[error(
        "{what}: annotate `fn main` with #[multiproc::main] (or the test with #[multiproc::test]) \
         so spawn and forkserver children can start"
    )]
    NotAnnotated {
        /// What failed.
        what: String,
    },
    /// A new child process did not complete its start-up handshake.
    #[error("child process {pid} failed to start: {reason}")]
    Handshake {
        /// The child's pid.
        pid: u32,
        /// Why the handshake failed.
        reason: String,
    },
    /// An operation is not valid in the object's current state.
    #[error("{0}")]
    InvalidState(String),
    /// An argument is out of range or malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The peer closed its end (Python's `EOFError`).
    #[error("{0} is closed")]
    Closed(&'static str),
    /// A timed operation ran out of time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// A non-blocking get found nothing (Python's `queue.Empty`).
    #[error("the queue is empty")]
    Empty,
    /// A non-blocking put found no room (Python's `queue.Full`).
    #[error("the queue is full")]
    Full,
    /// The queue was shut down (Python 3.13's `queue.ShutDown`): no more puts,
    /// and no more gets once it is empty (at once, after an immediate shutdown).
    #[error("the queue was shut down")]
    ShutDown,
    /// [`Connection::recv_bytes_into`](crate::Connection::recv_bytes_into) got a
    /// message longer than the buffer (Python's `BufferTooShort`): the whole
    /// message is kept here, as Python keeps it in `e.args[0]`.
    ///
    /// ```
    /// let (a, b) = multiproc::pipe::<()>()?;
    /// a.send_bytes(b"too long")?;
    /// let mut buf = [0u8; 3];
    /// match b.recv_bytes_into(&mut buf, 0) {
    ///     Err(multiproc::Error::BufferTooShort { room, message }) => {
    ///         assert_eq!((room, message.as_slice()), (3, &b"too long"[..]));
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    #[error(
        "a message of {} bytes does not fit the {room} bytes left in the buffer; the error holds the message \
         (`BufferTooShort {{ message, .. }}`), or pass a larger buffer",
        message.len()
    )]
    BufferTooShort {
        /// The bytes the buffer had from the offset on.
        room: usize,
        /// The whole message.
        message: Vec<u8>,
    },
    /// A message is larger than the connection accepts.
    #[error("message of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// The message size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A value could not be encoded for another process.
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's message.
        reason: String,
    },
    /// Bytes from another process could not be decoded.
    #[error("cannot decode {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// A task panicked in a worker.
    #[error("task `{task}` panicked at {location}: {message}")]
    TaskPanicked {
        /// The task's registered name.
        task: String,
        /// The panic message.
        message: String,
        /// `file:line:column` of the panic.
        location: String,
    },
    /// A task returned an error or failed in a way other than a panic.
    #[error("task `{task}` failed: {message}")]
    TaskFailed {
        /// The task's registered name.
        task: String,
        /// What went wrong.
        message: String,
    },
    /// A call ran longer than its timeout ([`PoolBuilder::task_timeout`](crate::PoolBuilder::task_timeout),
    /// [`AsyncResult::timeout`](crate::AsyncResult::timeout)); its worker was
    /// killed and replaced. Make the limit longer, or the call shorter.
    #[error(
        "task `{task}` ran longer than its timeout of {after:?}; its worker was killed (raise the timeout, or split the work into shorter calls)"
    )]
    TaskTimeout {
        /// The task's registered name.
        task: String,
        /// The timeout it ran past.
        after: Duration,
    },
    /// The call was cancelled ([`AsyncResult::cancel`](crate::AsyncResult::cancel),
    /// or its result or iterator was dropped) before it ran, or stopped by
    /// [`AsyncResult::cancel_running`](crate::AsyncResult::cancel_running).
    #[error("the call was cancelled before it finished")]
    Cancelled,
    /// A fallible task returned `Err` ([`Pool::try_map`](crate::Pool::try_map) and
    /// friends): the first such error, by input order, with the input's index.
    /// [`Error::task_error`] decodes the task's own error value.
    #[error("task `{task}` returned an error for input {index}: {message}")]
    Task {
        /// The task's registered name.
        task: String,
        /// The index of the input (in input order) whose call returned the error.
        index: usize,
        /// The error, as its `Display` shows it.
        message: String,
        /// The error value, encoded (see [`Error::task_error`]).
        encoded: Vec<u8>,
    },
    /// A worker process died while it ran this call.
    #[error("worker {pid} was lost: {status}{}", lost_hint(*status))]
    WorkerLost {
        /// The worker's pid.
        pid: u32,
        /// How it ended.
        status: ExitStatus,
    },
    /// Every worker rank of an MPI pool is lost: the last one held chunks and
    /// sent no result and no heartbeat for `silent_for` (stopped, frozen or cut
    /// off; `MULTIPROC_MPI_TIMEOUT` sets the limit). The MPI counterpart of
    /// [`Error::WorkerLost`]: while a rank is left, a lost rank's calls go to
    /// the others instead.
    ///
    /// ```
    /// use std::time::Duration;
    /// use multiproc::Error;
    ///
    /// let e = Error::RankLost { rank: 2, silent_for: Duration::from_secs(30) };
    /// assert!(e.to_string().starts_with("MPI worker rank 2 was lost"));
    /// ```
    #[error(
        "MPI worker rank {rank} was lost: it held calls and sent nothing for {silent_for:?}, and no other rank is \
         left to run them (is it stopped or frozen? MULTIPROC_MPI_TIMEOUT sets how long to wait)"
    )]
    RankLost {
        /// The rank.
        rank: u32,
        /// How long it had said nothing.
        silent_for: std::time::Duration,
    },
    // -- Pool start-up (helper C's block) --
    /// A pool's workers could not start (they keep dying before they report
    /// ready, cannot be spawned, or their initializer failed), so the pool runs
    /// no more calls: each call submitted since fails with this.
    #[error("the pool's workers cannot start: {reason}")]
    WorkersNotStarting {
        /// What happened to the last worker that tried.
        reason: String,
    },
    // -- end of helper C's block --
    /// The barrier was broken (aborted, reset or timed out).
    #[error("the barrier is broken")]
    BrokenBarrier,
    /// The previous holder of a lock died while holding it; the lock is now yours.
    #[error("the previous owner of the lock (pid {pid}) died while holding it")]
    OwnerDied {
        /// The pid of the process that died.
        pid: u32,
    },
    /// The peer failed the HMAC challenge (wrong or missing authkey).
    #[error("authentication failed: {0}")]
    Authentication(String),
    /// An error raised on the other side of a manager or remote call.
    #[error("remote error: {0}")]
    Remote(String),
    /// An operating-system call failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The fork server stopped answering (killed, or it died): its socket closed
    /// or broke off mid-message. A start retries once with a new server first.
    ///
    /// ```
    /// let e = multiproc::Error::ForkServerDied { reason: "its socket closed".into() };
    /// assert_eq!(e.to_string(), "the fork server died: its socket closed");
    /// ```
    #[error("the fork server died: {reason}")]
    ForkServerDied {
        /// What gave it away.
        reason: String,
    },
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)?;
        if f.alternate() {
            let mut source = std::error::Error::source(self);
            while let Some(s) = source {
                write!(f, "\n  caused by: {s}")?;
                source = s.source();
            }
        }
        Ok(())
    }
}

/// `Result` with [`Error`] as its default error.
///
/// ```
/// fn two_workers() -> multiproc::Result<multiproc::dummy::Pool> {
///     multiproc::dummy::Pool::new(2)
/// }
///
/// assert_eq!(two_workers()?.processes(), 2);
/// let parsed: multiproc::Result<u8, std::num::ParseIntError> = "7".parse();
/// assert_eq!(parsed, Ok(7));
/// # Ok::<(), multiproc::Error>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<io::Error> for Error {
    fn from(source: io::Error) -> Self {
        Error::Io { op: "i/o", source }
    }
}

/// Attaches what was being done to an `io::Result`.
pub(crate) trait IoContext<T> {
    /// Maps an `io::Error` to [`Error::Io`] with `op`.
    fn ctx(self, op: &'static str) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str) -> Result<T> {
        self.map_err(|source| Error::Io { op, source })
    }
}

/// An `Error` crosses processes as its message: a task may return
/// `multiproc::Result<T>`, and an error it returns arrives as [`Error::Remote`]
/// carrying the original message.
impl serde::Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for Error {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d).map(Error::Remote)
    }
}
