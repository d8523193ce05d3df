//! `semaphore`: a count of free units.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::{lock, micros, timeout, wait_or_try};
use crate::error::{Error, Result};
use crate::managers::protocol::protocol;
use crate::managers::proxy::proxy_type;
use crate::managers::server::{Caller, Object};

const KIND: &str = "semaphore";

protocol! {
    fn acquire(block: bool, timeout: Option<u64>) -> bool;
    fn release(n: u64) -> ();
    fn value() -> u64;
}

struct Semaphore {
    value: Mutex<u64>,
    cv: Condvar,
    /// A bounded semaphore's initial value, which a release may not exceed.
    bound: Option<u64>,
}

/// A semaphore of `value` units; `bounded`: releases beyond `value` are errors.
pub(super) fn new(value: u64, bounded: bool) -> Arc<dyn Object> {
    Arc::new(Semaphore { value: Mutex::new(value), cv: Condvar::new(), bound: bounded.then_some(value) })
}

impl Object for Semaphore {
    fn kind(&self) -> &str {
        KIND
    }

    fn call(&self, caller: &Caller<'_>, call: &[u8]) -> Result<Vec<u8>> {
        serve(KIND, self, caller, call)
    }
}

impl Serve for Semaphore {
    fn acquire(&self, caller: &Caller<'_>, block: bool, t: Option<u64>) -> Result<bool> {
        let (mut g, ok) = wait_or_try(&self.cv, lock(&self.value), caller, block, timeout(t), |v| *v > 0)?;
        if ok {
            *g -= 1;
        }
        Ok(ok)
    }
    fn release(&self, _: &Caller<'_>, n: u64) -> Result<()> {
        let mut v = lock(&self.value);
        if self.bound.is_some_and(|b| v.saturating_add(n) > b) {
            return Err(Error::InvalidState("a bounded semaphore was released too many times".into()));
        }
        *v = v.saturating_add(n);
        drop(v);
        self.cv.notify_all();
        Ok(())
    }
    fn value(&self, _: &Caller<'_>) -> Result<u64> {
        Ok(*lock(&self.value))
    }
}

proxy_type! {
    /// A counting semaphore in a manager (Python's `manager.Semaphore(n)`, and
    /// `manager.BoundedSemaphore(n)`, whose releases may not exceed `n`).
    SemaphoreProxy [] KIND
}

impl SemaphoreProxy {
    /// Takes one unit, waiting as long as it takes; returns `true`.
    ///
    /// # Errors
    /// A connection error.
    pub fn acquire(&self) -> Result<bool> {
        Client(&self.token).acquire(true, None)
    }

    /// Takes one unit, waiting at most `timeout`; whether it got one.
    ///
    /// # Errors
    /// A connection error.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        Client(&self.token).acquire(true, micros(Some(timeout)))
    }

    /// Takes one unit if one is free now.
    ///
    /// # Errors
    /// A connection error.
    pub fn try_acquire(&self) -> Result<bool> {
        Client(&self.token).acquire(false, None)
    }

    /// Gives one unit back.
    ///
    /// # Errors
    /// A connection error.
    pub fn release(&self) -> Result<()> {
        Client(&self.token).release(1u64)
    }

    /// The number of free units.
    ///
    /// # Errors
    /// A connection error.
    pub fn value(&self) -> Result<u64> {
        Client(&self.token).value()
    }
}
