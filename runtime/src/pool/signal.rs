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
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let g = self.cv.wait_timeout(g, max).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        g
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
            while !*g {
                g = s.wait_timeout(g, Duration::from_secs(60));
            }
        });
        // Notifies with nobody counted cost nothing and lose nothing.
        shared.1.notify_all();
        *shared.0.lock().unwrap() = true;
        shared.1.notify_all();
        waiter.join().unwrap();
        assert_eq!(shared.1.waiters.load(Ordering::SeqCst), 0);
    }
}
