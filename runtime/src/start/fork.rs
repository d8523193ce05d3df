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
    // Hold Rust's stdio locks across the fork (what pthread_atfork's "prepare" does
    // for C locks): if another thread were printing at that instant (libtest's
    // main thread reporting results, say), the child would inherit them locked by
    // a thread it does not have, and its first print or its exit-time flush would
    // hang for ever. Both sides release them right after the fork.
    let out = std::io::stdout().lock();
    let err = std::io::stderr().lock();
    // SAFETY: the child closes fds with async-signal-safe calls and then runs the task,
    // as Python's fork start method does; the fork hazards of a multi-threaded parent
    // (locks held by other threads) are documented on `StartMethod::Fork`.
    let forked = unsafe { sys::process::fork() };
    drop(err);
    drop(out);
    match forked.ctx("fork")? {
        None => {
            sys::process::child_prelude(parent, &keep);
            role::after_fork_in_child();
            role::run_child(boot, fds, Some(runner))
        }
        Some(pid) => {
            drop(fds);
            let pidfd = sys::process::pidfd_open(pid).ctx("pidfd_open")?;
            Ok(ChildHandle { pid, pidfd, waiter: Waiter::Own })
        }
    }
}
