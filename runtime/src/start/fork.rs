//! The fork start method.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::{ChildHandle, Waiter};
use crate::backoff::Backoff;
use crate::error::{IoContext, Result};
use crate::sys;
use crate::sys::forklock::Held;

/// How long a fork waits for other threads to leave the runtime's locks.
const QUIESCE: Duration = Duration::from_millis(100);

/// Takes the runtime's process-wide locks (every one registered in
/// [`sys::forklock`]) before a fork, so that no other thread holds one at that
/// instant: the child would inherit it locked by a thread it does not have, and
/// hang on it. Never blocks while holding one: it takes all or none, retrying
/// while other threads hold some (briefly, as the runtime does), and after
/// [`QUIESCE`] settles for those that are free.
fn quiesce() -> Vec<Held> {
    let deadline = Instant::now() + QUIESCE;
    let mut backoff = Backoff::new();
    loop {
        let (held, all) = sys::forklock::hold_free();
        if all || Instant::now() >= deadline {
            return held;
        }
        drop(held);
        // Nothing to park on (no fd, no futex): past the spin budget, keep yielding.
        if !backoff.snooze_until(Some(deadline)) {
            std::thread::yield_now();
        }
    }
}

/// Forks the calling thread; the child keeps only stdio and `fds`, then runs
/// `child(arg, fds)`: the child body, handed down by the caller (a function
/// pointer, since only those may say that they never return).
#[allow(unsafe_code)] // the one fork call of this start method; see its SAFETY comment
pub(crate) fn start<T>(fds: Vec<OwnedFd>, child: fn(T, Vec<OwnedFd>) -> !, arg: T) -> Result<ChildHandle> {
    let mut keep: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    keep.sort_unstable();
    let parent = sys::process::getpid();
    let held = quiesce();
    // Fork while holding Rust's stdout and stderr locks (pthread_atfork's "prepare"):
    // a lock another thread held at the fork would stay locked in the child forever,
    // and the child's exit path (and any println!) would hang on it. Flushing first
    // also keeps the child from writing the parent's buffered output a second time.
    let mut stdout = std::io::stdout().lock();
    let stderr = std::io::stderr().lock();
    let _ = std::io::Write::flush(&mut stdout);
    // SAFETY: the child closes fds with async-signal-safe calls and then runs the task,
    // as Python's fork start method does; the fork hazards of a multi-threaded parent
    // (locks held by other threads; ours are quiesced above) are documented on
    // `StartMethod::Fork`.
    let forked = unsafe { sys::process::fork() };
    match forked.ctx("fork")? {
        None => {
            drop((stdout, stderr, held));
            sys::process::child_prelude(parent, &keep);
            super::forget_after_fork();
            child(arg, fds)
        }
        Some(pid) => {
            drop((stdout, stderr, held));
            drop((fds, arg));
            let pidfd = sys::process::pidfd_open(pid).ctx("pidfd_open")?;
            Ok(ChildHandle { pid, pidfd, waiter: Waiter::Own })
        }
    }
}
