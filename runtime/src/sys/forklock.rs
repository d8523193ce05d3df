//! The fork-time lock registry: the runtime's process-wide locks, taken around
//! a `fork()` so that no other thread holds one at that instant (what
//! `pthread_atfork`'s "prepare" handlers are for).
//!
//! A child inherits memory, not threads: a lock another thread held at the fork
//! stays locked in the child forever, and the child hangs on it. So every
//! module with a process-wide `static` mutex that a forked child may take
//! registers it here, next to its declaration:
//!
//! ```text
//! static TABLE: Mutex<Vec<u32>> = Mutex::new(Vec::new());
//! inventory::submit! { crate::sys::forklock::ForkLock::new(&TABLE) }
//! ```
//!
//! and the fork start method takes them all ([`hold_free`], retried until all
//! are free or its deadline passes) without naming anyone. This module sits
//! below everything, so registering a lock adds no arrow up.

use std::any::Any;
use std::sync::{Mutex, TryLockError};

/// A registered lock, taken while it is held across a fork (dropping it releases the lock).
pub(crate) type Held = Box<dyn Any>;

/// A lock that can be taken if it is free.
trait TryHold: Sync {
    /// Takes the lock if it is free (a poisoned lock is taken as it is).
    fn try_hold(&'static self) -> Option<Held>;
}

impl<T: Send + 'static> TryHold for Mutex<T> {
    fn try_hold(&'static self) -> Option<Held> {
        match self.try_lock() {
            Ok(g) => Some(Box::new(g)),
            Err(TryLockError::Poisoned(p)) => Some(Box::new(p.into_inner())),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

/// One process-wide lock held across every fork of the fork start method.
pub(crate) struct ForkLock {
    lock: &'static dyn TryHold,
}

impl ForkLock {
    /// Registers `lock` (with `inventory::submit!`, next to the lock's declaration).
    pub(crate) const fn new<T: Send + 'static>(lock: &'static Mutex<T>) -> Self {
        ForkLock { lock }
    }
}

inventory::collect!(ForkLock);

/// Takes every registered lock that is free. Never blocks. Returns what it
/// took, and whether that was all of them (else the caller may drop the result
/// and retry: it must never wait for one lock while holding another).
pub(crate) fn hold_free() -> (Vec<Held>, bool) {
    let mut all = true;
    let mut held = Vec::new();
    for entry in inventory::iter::<ForkLock> {
        match entry.lock.try_hold() {
            Some(h) => held.push(h),
            None => all = false,
        }
    }
    (held, all)
}

#[cfg(test)]
mod tests {
    use super::*;

    static FREE: Mutex<u32> = Mutex::new(0);
    inventory::submit! { ForkLock::new(&FREE) }
    static TAKEN: Mutex<u32> = Mutex::new(0);
    inventory::submit! { ForkLock::new(&TAKEN) }

    #[test]
    fn holds_the_free_locks_and_tells_of_a_taken_one() {
        let taken = TAKEN.lock().unwrap_or_else(|p| p.into_inner());
        let (held, all) = hold_free();
        assert!(!all, "a lock held by this thread was reported free");
        // FREE and the runtime's own locks (context, process, identity, …).
        assert!(held.len() >= 2, "only {} locks held", held.len());
        assert!(FREE.try_lock().is_err(), "a free registered lock was not taken");
        drop((held, taken));
    }
}
