//! `event`: a flag that waiters wait to see set.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::{lock, micros, timeout, wait_until};
use crate::error::Result;
use crate::managers::protocol::protocol;
use crate::managers::proxy::proxy_type;
use crate::managers::server::{Caller, Object};

const KIND: &str = "event";

protocol! {
    fn set() -> ();
    fn clear() -> ();
    fn is_set() -> bool;
    fn wait(timeout: Option<u64>) -> bool;
}

struct Event {
    flag: Mutex<bool>,
    cv: Condvar,
}

pub(super) fn new() -> Arc<dyn Object> {
    Arc::new(Event { flag: Mutex::new(false), cv: Condvar::new() })
}

impl Object for Event {
    fn kind(&self) -> &str {
        KIND
    }

    fn call(&self, caller: &Caller<'_>, call: &[u8]) -> Result<Vec<u8>> {
        serve(KIND, self, caller, call)
    }
}

impl Serve for Event {
    fn set(&self, _: &Caller<'_>) -> Result<()> {
        *lock(&self.flag) = true;
        self.cv.notify_all();
        Ok(())
    }
    fn clear(&self, _: &Caller<'_>) -> Result<()> {
        *lock(&self.flag) = false;
        Ok(())
    }
    fn is_set(&self, _: &Caller<'_>) -> Result<bool> {
        Ok(*lock(&self.flag))
    }
    fn wait(&self, caller: &Caller<'_>, t: Option<u64>) -> Result<bool> {
        let (_flag, ok) = wait_until(&self.cv, lock(&self.flag), caller, timeout(t), |f| *f)?;
        Ok(ok)
    }
}

proxy_type! {
    /// An event flag in a manager (Python's `manager.Event()`).
    ///
    /// A child process waits until the parent sets it:
    ///
    /// ```
    /// use multiproc::managers::EventProxy;
    /// use std::time::Duration;
    ///
    /// #[multiproc::task]
    /// fn wait_for_go(go: EventProxy) {
    ///     assert!(go.wait(Some(Duration::from_secs(10))).unwrap());
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let manager = multiproc::Manager::start()?;
    ///     let go = manager.event()?;
    ///     let mut p = multiproc::Process::new(wait_for_go, (go.clone(),))?;
    ///     p.start()?;
    ///     go.set()?;
    ///     p.join()?;
    ///     assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
    ///     Ok(())
    /// }
    /// ```
    EventProxy [] KIND
}

impl EventProxy {
    /// Sets the flag and wakes every waiter (Python's `set`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let e = manager.event()?;
    /// std::thread::scope(|s| {
    ///     let waiter = s.spawn(|| e.wait(None));
    ///     e.set()?;
    ///     assert!(waiter.join().unwrap()?);
    ///     Ok(())
    /// })
    /// # }
    /// ```
    pub fn set(&self) -> Result<()> {
        Client(&self.token).set()
    }

    /// Clears the flag (Python's `clear`): later waiters wait again.
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let e = manager.event()?;
    /// e.set()?;
    /// e.clear()?;
    /// assert!(!e.is_set()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn clear(&self) -> Result<()> {
        Client(&self.token).clear()
    }

    /// Whether the flag is set (Python's `is_set`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let e = manager.event()?;
    /// assert!(!e.is_set()?);
    /// e.set()?;
    /// assert!(e.is_set()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_set(&self) -> Result<bool> {
        Client(&self.token).is_set()
    }

    /// Waits until the flag is set (or `timeout`; `None`: no limit); whether
    /// it is set (Python's `wait`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// use std::time::Duration;
    /// let e = manager.event()?;
    /// assert!(!e.wait(Some(Duration::from_millis(20)))?); // nobody set it
    /// e.set()?;
    /// assert!(e.wait(None)?); // returns at once
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        Client(&self.token).wait(micros(timeout))
    }
}
