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
/// whose protocol `$client` has `acquire(owner, block, timeout)` and `release(owner)`;
/// `$new` is the `Manager` method that makes one (`"lock"`), for the examples.
macro_rules! lock_methods {
    ($name:ident, $client:path, $new:literal) => {
        impl $name {
            /// Acquires the lock, waiting as long as it takes; returns `true`
            /// (Python's `acquire()`). The owner is the calling thread of this process.
            ///
            /// # Errors
            /// A connection error.
            ///
            /// ```
            /// # #[multiproc::main]
            /// # fn main() -> multiproc::Result<()> {
            /// # let manager = multiproc::Manager::start()?;
            #[doc = concat!("let l = manager.", $new, "()?;")]
            /// assert!(l.acquire()?);
            /// let other = std::thread::scope(|s| s.spawn(|| l.try_acquire()).join().unwrap())?;
            /// assert!(!other); // held by this thread
            /// l.release()?;
            /// # Ok(())
            /// # }
            /// ```
            pub fn acquire(&self) -> Result<bool> {
                $client(&self.token).acquire(owner_token(), true, None)
            }

            /// Acquires the lock, waiting at most `timeout`; whether it was
            /// acquired (Python's `acquire(timeout=t)`).
            ///
            /// # Errors
            /// A connection error.
            ///
            /// ```
            /// # #[multiproc::main]
            /// # fn main() -> multiproc::Result<()> {
            /// # let manager = multiproc::Manager::start()?;
            /// use std::time::Duration;
            #[doc = concat!("let l = manager.", $new, "()?;")]
            /// l.acquire()?;
            /// let wait = || l.acquire_timeout(Duration::from_millis(20));
            /// let other = std::thread::scope(|s| s.spawn(wait).join().unwrap())?;
            /// assert!(!other); // gave up: this thread holds it
            /// l.release()?;
            /// assert!(l.acquire_timeout(Duration::from_millis(20))?);
            /// # Ok(())
            /// # }
            /// ```
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
                $client(&self.token).acquire(owner_token(), true, micros(Some(timeout)))
            }

            /// Acquires the lock if it is free now; whether it was acquired
            /// (Python's `acquire(False)`).
            ///
            /// # Errors
            /// A connection error.
            ///
            /// ```
            /// # #[multiproc::main]
            /// # fn main() -> multiproc::Result<()> {
            /// # let manager = multiproc::Manager::start()?;
            #[doc = concat!("let l = manager.", $new, "()?;")]
            /// assert!(l.try_acquire()?);
            /// let other = std::thread::scope(|s| s.spawn(|| l.try_acquire()).join().unwrap())?;
            /// assert!(!other);
            /// # Ok(())
            /// # }
            /// ```
            pub fn try_acquire(&self) -> Result<bool> {
                $client(&self.token).acquire(owner_token(), false, None)
            }

            /// Releases the lock (Python's `release`).
            ///
            /// # Errors
            /// [`Error::Remote`](crate::Error::Remote) if it is not held (by this thread, for a re-entrant lock).
            ///
            /// ```
            /// # #[multiproc::main]
            /// # fn main() -> multiproc::Result<()> {
            /// # let manager = multiproc::Manager::start()?;
            #[doc = concat!("let l = manager.", $new, "()?;")]
            /// l.acquire()?;
            /// l.release()?;
            /// assert!(matches!(l.release(), Err(multiproc::Error::Remote(_)))); // not held any more
            /// # Ok(())
            /// # }
            /// ```
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
    /// A lock in a manager (Python's `manager.Lock()`), shared by every
    /// process that holds the proxy. Any thread may release it.
    ///
    /// ```
    /// use multiproc::managers::LockProxy;
    ///
    /// #[multiproc::task]
    /// fn try_take(l: LockProxy) {
    ///     assert!(!l.try_acquire().unwrap(), "the parent holds it");
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let manager = multiproc::Manager::start()?;
    ///     let l = manager.lock()?;
    ///     l.acquire()?;
    ///     let mut p = multiproc::Process::new(try_take, (l.clone(),))?;
    ///     p.start()?;
    ///     p.join()?;
    ///     assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
    ///     l.release()?;
    ///     Ok(())
    /// }
    /// ```
    LockProxy [] LOCK
}
lock_methods!(LockProxy, Client, "lock");

impl LockProxy {
    /// Whether the lock is held, by anyone (Python's `locked`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.lock()?;
    /// assert!(!l.locked()?);
    /// l.acquire()?;
    /// assert!(l.locked()?);
    /// std::thread::scope(|s| s.spawn(|| l.release()).join().unwrap())?; // any thread may release
    /// assert!(!l.locked()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn locked(&self) -> Result<bool> {
        Client(&self.token).locked()
    }
}

proxy_type! {
    /// A re-entrant lock in a manager (Python's `manager.RLock()`), owned by
    /// one thread of one process at a time: the owner may acquire it again,
    /// and it is free once released as many times.
    ///
    /// ```
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let manager = multiproc::Manager::start()?;
    ///     let r = manager.rlock()?;
    ///     assert!(r.acquire()?);
    ///     assert!(r.try_acquire()?); // again, by the same thread
    ///     r.release()?;
    ///     assert!(r.locked()?);
    ///     r.release()?;
    ///     assert!(!r.locked()?);
    ///     Ok(())
    /// }
    /// ```
    RLockProxy [] RLOCK
}
lock_methods!(RLockProxy, Client, "rlock");

impl RLockProxy {
    /// Whether the lock is held, by anyone (Python 3.14's `RLock.locked()`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let r = manager.rlock()?;
    /// assert!(!r.locked()?);
    /// std::thread::scope(|s| s.spawn(|| r.acquire()).join().unwrap())?;
    /// assert!(r.locked()?); // held by the other thread
    /// # Ok(())
    /// # }
    /// ```
    pub fn locked(&self) -> Result<bool> {
        Client(&self.token).locked()
    }
}
