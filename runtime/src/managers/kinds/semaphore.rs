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
    ///
    /// Units taken in one process are missing in every other:
    ///
    /// ```
    /// use multiproc::managers::SemaphoreProxy;
    ///
    /// #[multiproc::task]
    /// fn take_one(s: SemaphoreProxy) {
    ///     assert!(s.try_acquire().unwrap());
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let manager = multiproc::Manager::start()?;
    ///     let s = manager.semaphore(2)?;
    ///     let mut p = multiproc::Process::new(take_one, (s.clone(),))?;
    ///     p.start()?;
    ///     p.join()?;
    ///     assert_eq!(s.value()?, 1);
    ///     Ok(())
    /// }
    /// ```
    SemaphoreProxy [] KIND
}

impl SemaphoreProxy {
    /// Takes one unit, waiting as long as it takes; returns `true` (Python's `acquire()`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let s = manager.semaphore(1)?;
    /// assert!(s.acquire()?);
    /// assert_eq!(s.value()?, 0);
    /// s.release()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn acquire(&self) -> Result<bool> {
        Client(&self.token).acquire(true, None)
    }

    /// Takes one unit, waiting at most `timeout`; whether it got one
    /// (Python's `acquire(timeout=t)`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// use std::time::Duration;
    /// let s = manager.semaphore(1)?;
    /// assert!(s.acquire_timeout(Duration::from_millis(20))?);
    /// assert!(!s.acquire_timeout(Duration::from_millis(20))?); // none left
    /// # Ok(())
    /// # }
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        Client(&self.token).acquire(true, micros(Some(timeout)))
    }

    /// Takes one unit if one is free now; whether it got one (Python's `acquire(False)`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let s = manager.semaphore(2)?;
    /// assert!(s.try_acquire()?);
    /// assert!(s.try_acquire()?);
    /// assert!(!s.try_acquire()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_acquire(&self) -> Result<bool> {
        Client(&self.token).acquire(false, None)
    }

    /// Gives one unit back (Python's `release`).
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) for a bounded semaphore already
    /// at its initial value; a connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let s = manager.semaphore(0)?;
    /// s.release()?;
    /// assert_eq!(s.value()?, 1);
    /// let b = manager.bounded_semaphore(1)?;
    /// assert!(matches!(b.release(), Err(multiproc::Error::Remote(_))));
    /// # Ok(())
    /// # }
    /// ```
    pub fn release(&self) -> Result<()> {
        Client(&self.token).release(1u64)
    }

    /// The number of free units (`multiprocessing.Semaphore.get_value`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let s = manager.semaphore(3)?;
    /// s.acquire()?;
    /// assert_eq!(s.value()?, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn value(&self) -> Result<u64> {
        Client(&self.token).value()
    }
}
