//! The three start methods behind one private interface.
//!
//! 1. `fork`: fork the calling thread and run the task in the copy.
//! 2. `spawn`: fork+exec this binary (`/proc/self/exe`) with its role in the
//!    environment; the boot message and fds follow over a control socket.
//! 3. `forkserver`: a single-threaded server, started once through the spawn
//!    path, forks children on request (fds by `SCM_RIGHTS`).
//!
//! Each returns a [`ChildHandle`]: the pid, a pidfd (the sentinel: readable
//! once the child ends) and the way to learn its exit status. The child body
//! (what a new child runs) is handed down by the caller, a function pointer
//! that never returns: nothing here calls up into `process` or `role`.
//! [`StartMethod`] names the three; the boot message they carry is `boot`'s.

pub(crate) mod fork;
pub(crate) mod forkserver;
pub(crate) mod spawn;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use crate::error::{Error, ExitStatus, IoContext, Result};
use crate::sys;
use crate::sys::process::RawExit;

/// How a child process is created: Python's start methods, by their names
/// (`Display` shows the name).
///
/// ```
/// use multiproc::StartMethod;
///
/// assert_eq!(StartMethod::ForkServer.to_string(), "forkserver");
/// assert_eq!(multiproc::get_context(StartMethod::Fork).start_method(), StartMethod::Fork);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum StartMethod {
    /// `fork()` the calling thread and run the task in the copy. The fastest
    /// start; the child inherits the parent's memory, so any closure can run
    /// there too ([`Process::fork_closure`](crate::Process::fork_closure)). As in
    /// Python, forking a multi-threaded parent is hazardous: a lock another
    /// thread held at the fork stays locked in the child. multiproc guards its
    /// own locks (and Rust's stdout and stderr) by taking them around the fork;
    /// your program's locks and those of other libraries are not guarded. Also, on Linux the
    /// child dies if the *thread* that started it exits (`PR_SET_PDEATHSIG`).
    Fork,
    /// Re-execute this binary (`/proc/self/exe`); the child takes its role in
    /// `#[multiproc::main]` / `#[multiproc::test]` before any user code runs.
    Spawn,
    /// Ask a single-threaded fork server (started once, through the spawn path)
    /// to fork the child. The default, as in Python 3.14 on Linux.
    ForkServer,
}

impl StartMethod {
    /// Python's name for the method: `"fork"`, `"spawn"` or `"forkserver"`.
    ///
    /// ```
    /// use multiproc::StartMethod;
    ///
    /// assert_eq!(StartMethod::Spawn.name(), "spawn");
    /// assert_eq!(StartMethod::from_name(StartMethod::Fork.name())?, StartMethod::Fork);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            StartMethod::Fork => "fork",
            StartMethod::Spawn => "spawn",
            StartMethod::ForkServer => "forkserver",
        }
    }

    /// Parses Python's name of a method.
    ///
    /// ```
    /// use multiproc::StartMethod;
    ///
    /// assert_eq!(StartMethod::from_name("forkserver")?, StartMethod::ForkServer);
    /// let e = StartMethod::from_name("thread").unwrap_err();
    /// assert!(matches!(e, multiproc::Error::InvalidArgument(_)));
    /// assert!(e.to_string().contains("expected one of fork, spawn, forkserver"), "{e}");
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for any other name.
    pub fn from_name(name: &str) -> Result<StartMethod> {
        match name {
            "fork" => Ok(StartMethod::Fork),
            "spawn" => Ok(StartMethod::Spawn),
            "forkserver" => Ok(StartMethod::ForkServer),
            other => Err(Error::InvalidArgument(format!(
                "unknown start method `{other}`; expected one of fork, spawn, forkserver"
            ))),
        }
    }
}

impl std::fmt::Display for StartMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How the parent learns a child's exit status.
#[derive(Debug)]
enum Waiter {
    /// Our own child: `waitpid` (fork-server children too: the server forks
    /// them as its siblings, so they are ours).
    Own,
}

/// A started child process.
#[derive(Debug)]
pub(crate) struct ChildHandle {
    pid: i32,
    pidfd: OwnedFd,
    waiter: Waiter,
}

impl From<RawExit> for ExitStatus {
    fn from(r: RawExit) -> Self {
        match r {
            RawExit::Code(c) => ExitStatus::Code(c),
            RawExit::Signal(s) => ExitStatus::Signal(s),
        }
    }
}

impl ChildHandle {
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    /// Readable once the child has ended.
    pub(crate) fn sentinel(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Waits up to `timeout` (`None`: forever) for the child to end and reaps it.
    /// `Ok(None)`: still running. Call at most once after it returned `Some`.
    pub(crate) fn wait(&self, timeout: Option<Duration>) -> Result<Option<ExitStatus>> {
        match &self.waiter {
            Waiter::Own => {
                if timeout.is_some() && !sys::fd::poll_readable(&[self.pidfd.as_fd()], timeout).ctx("poll")?[0] {
                    return Ok(None);
                }
                Ok(sys::process::wait_child(self.pid, true).ctx("waitpid")?.map(ExitStatus::from))
            }
        }
    }

    /// Waits up to `timeout` (`None`: forever) until [`wait`](Self::wait) would
    /// not block. Reaps nothing, so several threads may call it at once.
    pub(crate) fn wait_ready(&self, timeout: Option<Duration>) -> Result<bool> {
        Ok(sys::fd::poll_readable(&[self.pidfd.as_fd()], timeout).ctx("poll")?[0])
    }

    /// Sends `signal`; a child that already ended is not an error.
    pub(crate) fn signal(&self, signal: i32) -> Result<()> {
        sys::process::pidfd_signal(self.pidfd.as_fd(), signal).ctx("pidfd_send_signal").map(drop)
    }
}

/// Drops (without closing) what a forked child inherited from the parent's launchers.
pub(crate) fn forget_after_fork() {
    spawn::forget_after_fork();
    forkserver::forget_after_fork();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_child_is_waited_for_and_reaped() {
        let mut child = std::process::Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        let pid = child.id() as i32;
        let handle = ChildHandle { pid, pidfd: sys::process::pidfd_open(pid).unwrap(), waiter: Waiter::Own };
        assert!(handle.wait_ready(None).unwrap());
        let got = handle.wait(Some(Duration::ZERO));
        let reaped = child.try_wait().is_err_and(|e| e.raw_os_error() == Some(libc::ECHILD));
        if !reaped {
            let _ = child.wait();
        }
        assert_eq!(got.unwrap(), Some(ExitStatus::Code(3)));
        assert!(reaped, "wait did not reap the child");
    }
}
