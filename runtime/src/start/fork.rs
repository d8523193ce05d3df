//! The fork start method.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::{ChildHandle, Waiter};
use crate::error::{IoContext, Result};
use crate::role::{self, Boot, ForkRunner};
use crate::sys;

/// Forks the calling thread; the child keeps only stdio and `fds`, then runs `runner`.
#[allow(unsafe_code)] // the one fork call of this start method; see its SAFETY comment
pub(crate) fn start(boot: Boot, fds: Vec<OwnedFd>, runner: ForkRunner) -> Result<ChildHandle> {
    let mut keep: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    keep.sort_unstable();
    let parent = sys::process::getpid();
    // Fork while holding Rust's stdout and stderr locks (pthread_atfork's "prepare"):
    // a lock another thread held at the fork would stay locked in the child forever,
    // and the child's exit path (and any println!) would hang on it. Flushing first
    // also keeps the child from writing the parent's buffered output a second time.
    let mut stdout = std::io::stdout().lock();
    let stderr = std::io::stderr().lock();
    let _ = std::io::Write::flush(&mut stdout);
    // SAFETY: the child closes fds with async-signal-safe calls and then runs the task,
    // as Python's fork start method does; the fork hazards of a multi-threaded parent
    // (locks held by other threads) are documented on `StartMethod::Fork`.
    let forked = unsafe { sys::process::fork() };
    match forked.ctx("fork")? {
        None => {
            drop((stdout, stderr));
            sys::process::child_prelude(parent, &keep);
            role::after_fork_in_child();
            role::run_child(boot, fds, Some(runner))
        }
        Some(pid) => {
            drop((stdout, stderr));
            drop(fds);
            let pidfd = sys::process::pidfd_open(pid).ctx("pidfd_open")?;
            Ok(ChildHandle { pid, pidfd, waiter: Waiter::Own })
        }
    }
}
