//! `lock` and `rlock`: owners are the callers' (process, thread) tokens.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::{lock, micros, timeout, wait_or_try};
use crate::error::{Error, Result};
use crate::managers::client::owner_token;
use crate::managers::protocol::protocol;
use crate::managers::proxy::proxy_type;
use crate::managers::server::{Caller, Object};

protocol! {
    fn acquire(owner: u64, block: bool, timeout: Option<u64>) -> bool;
    fn release(owner: u64) -> ();
    fn locked() -> bool;
}

#[derive(Default)]
struct LockState {
    owner: Option<u64>,
    count: u64,
}

/// `Lock` and `RLock` (`rlock`: the owner may acquire again, and only it may release).
struct Lock {
    rlock: bool,
    state: Mutex<LockState>,
    cv: Condvar,
}

pub(super) fn new(rlock: bool) -> Arc<dyn Object> {
    Arc::new(Lock { rlock, state: Mutex::default(), cv: Condvar::new() })
}

impl Object for Lock {
    fn kind(&self) -> &str {
        if self.rlock { RLOCK } else { LOCK }
    }

    fn call(&self, caller: &Caller<'_>, call: &[u8]) -> Result<Vec<u8>> {
        serve(self.kind(), self, caller, call)
    }
}

impl Serve for Lock {
    fn acquire(&self, caller: &Caller<'_>, me: u64, block: bool, t: Option<u64>) -> Result<bool> {
        let rlock = self.rlock;
        let free = |s: &mut LockState| s.owner.is_none() || (rlock && s.owner == Some(me));
        let (mut g, ok) = wait_or_try(&self.cv, lock(&self.state), caller, block, timeout(t), free)?;
        if ok {
            g.owner = Some(me);
            g.count += 1;
        }
        Ok(ok)
    }
    fn release(&self, _: &Caller<'_>, me: u64) -> Result<()> {
        let mut g = lock(&self.state);
        match g.owner {
            None => return Err(Error::Remote("release of an unlocked lock".into())),
            Some(o) if self.rlock && o != me => {
                return Err(Error::Remote("cannot release a recursive lock owned by another thread".into()));
            }
            _ => {}
        }
        g.count -= 1;
        if g.count == 0 {
            g.owner = None;
            self.cv.notify_all();
        }
        Ok(())
    }
    fn locked(&self, _: &Caller<'_>) -> Result<bool> {
        Ok(lock(&self.state).owner.is_some())
    }
}

/// `acquire`, `acquire_timeout`, `try_acquire` and `release` for a proxy
/// whose protocol `$client` has `acquire(owner, block, timeout)` and `release(owner)`.
macro_rules! lock_methods {
    ($name:ident, $client:path) => {
        impl $name {
            /// Acquires the lock, waiting as long as it takes; returns `true`.
            ///
            /// # Errors
            /// A connection error.
            pub fn acquire(&self) -> Result<bool> {
                $client(&self.token).acquire(owner_token(), true, None)
            }

            /// Acquires the lock, waiting at most `timeout`; whether it was acquired.
            ///
            /// # Errors
            /// A connection error.
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
                $client(&self.token).acquire(owner_token(), true, micros(Some(timeout)))
            }

            /// Acquires the lock if it is free now; whether it was acquired.
            ///
            /// # Errors
            /// A connection error.
            pub fn try_acquire(&self) -> Result<bool> {
                $client(&self.token).acquire(owner_token(), false, None)
            }

            /// Releases the lock.
            ///
            /// # Errors
            /// [`Error::Remote`](crate::Error::Remote) if it is not held (by this thread, for a re-entrant lock).
            pub fn release(&self) -> Result<()> {
                $client(&self.token).release(owner_token())
            }
        }
    };
}

pub(super) use lock_methods;

const LOCK: &str = "lock";
const RLOCK: &str = "rlock";

proxy_type! {
    /// A lock in a manager (Python's `manager.Lock()`). Any thread may release it.
    LockProxy [] LOCK
}
lock_methods!(LockProxy, Client);

impl LockProxy {
    /// Whether the lock is held.
    ///
    /// # Errors
    /// A connection error.
    pub fn locked(&self) -> Result<bool> {
        Client(&self.token).locked()
    }
}

proxy_type! {
    /// A re-entrant lock in a manager (Python's `manager.RLock()`), owned by
    /// one thread of one process at a time.
    RLockProxy [] RLOCK
}
lock_methods!(RLockProxy, Client);

impl RLockProxy {
    /// Whether the lock is held, by anyone (Python 3.14's `RLock.locked()`).
    ///
    /// # Errors
    /// A connection error.
    pub fn locked(&self) -> Result<bool> {
        Client(&self.token).locked()
    }
}
