//! [`Signal`]: a condition variable whose notify costs nothing while nobody waits.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, MutexGuard};
use std::time::Duration;

/// A [`Condvar`] that counts its waiters, so that a notify with none is one
/// load, not a system call: std's `notify_all` always enters the kernel
/// (`futex` wake), and a pool notifies twice per `apply` (the job's waiters
/// and the pool's) whether anyone waits or not.
///
/// Why no wake-up is lost: a waiter counts itself while it holds the mutex,
/// after it found its condition false; a notifier changes the state under
/// that mutex and reads the count after. Either the notifier took the mutex
/// after the waiter released it (waiting), so it reads a count of at least
/// one and wakes it; or before the waiter took it, so the waiter sees the
/// change and does not wait.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    cv: Condvar,
    waiters: AtomicUsize,
}

impl Signal {
    /// Waits for a notify, at most `max` (a poisoned mutex is used as is).
    pub(crate) fn wait_timeout<'a, T>(&self, g: MutexGuard<'a, T>, max: Duration) -> MutexGuard<'a, T> {
        self.wait(g, max).0
    }

    /// [`wait_timeout`](Self::wait_timeout), and whether the wait timed out.
    fn wait<'a, T>(&self, g: MutexGuard<'a, T>, max: Duration) -> (MutexGuard<'a, T>, bool) {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let (g, timed_out) = match self.cv.wait_timeout(g, max) {
            Ok((g, r)) => (g, r.timed_out()),
            Err(p) => {
                let (g, r) = p.into_inner();
                (g, r.timed_out())
            }
        };
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        (g, timed_out)
    }

    /// Wakes every waiter; call it after changing the state under the mutex.
    pub(crate) fn notify_all(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.cv.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn a_waiter_wakes_on_the_notify_after_a_change() {
        let shared = Arc::new((Mutex::new(false), Signal::default()));
        let other = shared.clone();
        let waiter = std::thread::spawn(move || {
            let (m, s) = &*other;
            let mut g = m.lock().unwrap();
            let mut timed_out = false;
            while !*g {
                (g, timed_out) = s.wait(g, Duration::from_secs(60));
            }
            timed_out
        });
        // Not a sleep: the waiter counts itself (under the mutex) before it waits.
        while shared.1.waiters.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        *shared.0.lock().unwrap() = true;
        shared.1.notify_all();
        assert!(!waiter.join().unwrap(), "the waiter was woken by the notify, not its 60 s timeout");
        assert_eq!(shared.1.waiters.load(Ordering::SeqCst), 0);
        // With nobody waiting a notify is only a load.
        shared.1.notify_all();
    }
}
