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
    EventProxy [] KIND
}

impl EventProxy {
    /// Sets the flag and wakes every waiter.
    ///
    /// # Errors
    /// A connection error.
    pub fn set(&self) -> Result<()> {
        Client(&self.token).set()
    }

    /// Clears the flag.
    ///
    /// # Errors
    /// A connection error.
    pub fn clear(&self) -> Result<()> {
        Client(&self.token).clear()
    }

    /// Whether the flag is set.
    ///
    /// # Errors
    /// A connection error.
    pub fn is_set(&self) -> Result<bool> {
        Client(&self.token).is_set()
    }

    /// Waits until the flag is set (or `timeout`); whether it is set.
    ///
    /// # Errors
    /// A connection error.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        Client(&self.token).wait(micros(timeout))
    }
}
