//! `Condition`: a condition variable in shared memory over a `Lock` or `RLock`.
//!
//! Waiters register under the lock (`waiters += 1`); `notify(n)` (also under
//! the lock) moves up to `n` of them to `tokens` and wakes that many; a woken
//! waiter consumes one token. The invariant `waiters + tokens = processes in
//! wait` makes `notify(n)` wake exactly `min(n, waiting)` and lets a timed-out
//! waiter leave cleanly (it takes a token if one is there, else unregisters).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::lock::{Lock, RLock};
use super::raw;
use crate::error::{Error, Result};
use crate::region::{Kind, Region};
use crate::sys::futex;

const WAITERS: usize = 0;
const TOKENS: usize = 4;
const SLEEPERS: usize = 8;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum Inner {
    Lock(Lock),
    RLock(RLock),
}

/// A condition variable shared between processes (Python's `multiprocessing.Condition`).
///
/// It works over a [`Lock`] or an [`RLock`] (the default, as in Python). Call
/// [`wait`](Condition::wait), [`notify`](Condition::notify) and
/// [`notify_all`](Condition::notify_all) while holding the lock (through
/// [`acquire`](Condition::acquire) or the guard of [`lock`](Condition::lock)).
/// Waiting releases the lock and re-acquires it before returning.
///
/// A waiter killed while waiting leaves one registration behind; a later
/// `notify` may spend one wake-up on it. Spurious returns from `wait` are
/// possible, as for every condition variable: use [`wait_for`](Condition::wait_for).
///
/// A `Condition` is a valid task argument under every start method; clones
/// share it. Here the parent waits until a child has set a flag:
///
/// ```
/// use std::time::Duration;
///
/// #[multiproc::task]
/// fn ready(cond: multiproc::Condition, flag: multiproc::RawValue<u32>) -> multiproc::Result<()> {
///     let _guard = cond.lock()?;
///     flag.set(1);
///     cond.notify_all();
///     Ok(())
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let (cond, flag) = (multiproc::Condition::new()?, multiproc::RawValue::new(0u32)?);
///     let mut p = multiproc::Process::new(ready, (cond.clone(), flag.clone()))?;
///     let guard = cond.lock()?;
///     p.start()?;
///     assert!(cond.wait_for(|| flag.get() == 1, Some(Duration::from_secs(10)))?);
///     drop(guard);
///     p.join()?;
///     Ok(())
/// }
/// ```
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct Condition {
    lock: Inner,
    #[serde(with = "cond_region")]
    region: Arc<Region>,
}

mod cond_region {
    use super::*;
    pub(super) fn serialize<S: serde::Serializer>(r: &Arc<Region>, s: S) -> std::result::Result<S::Ok, S::Error> {
        crate::region::serialize(r, Kind::Condition, s)
    }
    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Arc<Region>, D::Error> {
        crate::region::deserialize(d, Kind::Condition)
    }
}

/// Holds a [`Condition`]'s lock until dropped (Python's `with cond:`).
///
/// ```
/// let lock = multiproc::Lock::new()?;
/// let cond = multiproc::Condition::with_lock(lock.clone())?;
/// let guard = cond.lock()?;
/// assert!(lock.locked());
/// drop(guard);
/// assert!(!lock.locked());
/// # Ok::<(), multiproc::Error>(())
/// ```
#[must_use = "the lock is released when the guard is dropped"]
pub struct ConditionGuard<'a> {
    cond: &'a Condition,
}

impl Drop for ConditionGuard<'_> {
    fn drop(&mut self) {
        let _ = self.cond.release();
    }
}

impl fmt::Debug for ConditionGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConditionGuard")
    }
}

impl Condition {
    fn with_inner(lock: Inner) -> Result<Condition> {
        Ok(Condition { lock, region: Region::create(Kind::Condition, 64, 0)? })
    }

    /// A condition over a new [`RLock`] (Python's `Condition()`): its lock is re-entrant.
    ///
    /// ```
    /// let cond = multiproc::Condition::new()?;
    /// let _outer = cond.lock()?;
    /// assert!(cond.acquire(false, None)?); // the owner takes its RLock again
    /// cond.release()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created.
    pub fn new() -> Result<Condition> {
        Condition::with_inner(Inner::RLock(RLock::new()?))
    }

    /// A condition over `lock` (Python's `Condition(lock)` with a `Lock`); the
    /// condition and the lock's other handles share it.
    ///
    /// ```
    /// let lock = multiproc::Lock::new()?;
    /// let cond = multiproc::Condition::with_lock(lock.clone())?;
    /// let _guard = cond.lock()?;
    /// assert!(lock.locked());
    /// assert!(!cond.acquire(false, None)?); // a Lock is not re-entrant
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created.
    pub fn with_lock(lock: Lock) -> Result<Condition> {
        Condition::with_inner(Inner::Lock(lock))
    }

    /// A condition over `lock` (Python's `Condition(lock)` with an `RLock`).
    ///
    /// ```
    /// let rlock = multiproc::RLock::new()?;
    /// let cond = multiproc::Condition::with_rlock(rlock.clone())?;
    /// let _guard = cond.lock()?;
    /// assert!(rlock.is_owned());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created.
    pub fn with_rlock(lock: RLock) -> Result<Condition> {
        Condition::with_inner(Inner::RLock(lock))
    }

    /// Python's `acquire(block, timeout)` on the underlying lock: whether it was taken.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = multiproc::Condition::with_lock(multiproc::Lock::new()?)?;
    /// assert!(cond.acquire(true, None)?);
    /// assert!(!cond.acquire(true, Some(Duration::from_millis(10)))?); // held
    /// cond.release()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::OwnerDied`] when taken over from a dead owner (the lock **is held**).
    pub fn acquire(&self, block: bool, timeout: Option<Duration>) -> Result<bool> {
        match &self.lock {
            Inner::Lock(l) => l.acquire(block, timeout),
            Inner::RLock(l) => l.acquire(block, timeout),
        }
    }

    /// Releases the underlying lock (Python's `Condition.release`).
    ///
    /// ```
    /// let lock = multiproc::Lock::new()?;
    /// let cond = multiproc::Condition::with_lock(lock.clone())?;
    /// cond.acquire(true, None)?;
    /// cond.release()?;
    /// assert!(!lock.locked());
    /// assert!(cond.release().is_err()); // not held
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As the lock's `release`.
    pub fn release(&self) -> Result<()> {
        match &self.lock {
            Inner::Lock(l) => l.release(),
            Inner::RLock(l) => l.release(),
        }
    }

    /// Acquires the underlying lock until the guard drops (Python's `with cond:`).
    /// A dead previous owner is not an error here (the lock is taken over).
    ///
    /// ```
    /// let rlock = multiproc::RLock::new()?;
    /// let cond = multiproc::Condition::with_rlock(rlock.clone())?;
    /// {
    ///     let _guard = cond.lock()?;
    ///     assert!(rlock.is_owned());
    /// }
    /// assert!(!rlock.locked());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// None today.
    pub fn lock(&self) -> Result<ConditionGuard<'_>> {
        match self.acquire(true, None) {
            Ok(_) | Err(Error::OwnerDied { .. }) => Ok(ConditionGuard { cond: self }),
            Err(e) => Err(e),
        }
    }

    fn release_for_wait(&self) -> Result<u32> {
        match &self.lock {
            Inner::Lock(l) => {
                if l.owner() != Some(futex::current_pid()) {
                    return Err(Error::InvalidState("cannot wait on un-acquired lock".into()));
                }
                l.release()?;
                Ok(1)
            }
            Inner::RLock(l) => l.release_all(),
        }
    }

    fn reacquire(&self, count: u32) {
        match &self.lock {
            Inner::Lock(l) => {
                let _ = l.acquire(true, None);
            }
            Inner::RLock(l) => {
                l.reacquire(count);
            }
        }
    }

    fn take_token(&self) -> bool {
        let t = self.region.u32(TOKENS);
        let mut cur = t.load(Ordering::Acquire);
        while cur > 0 {
            match t.compare_exchange_weak(cur, cur - 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(c) => cur = c,
            }
        }
        false
    }

    fn wait_deadline(&self, deadline: Option<Instant>) -> Result<bool> {
        let r = &self.region;
        // Registered while the lock is held (checked by release_for_wait).
        r.u32(WAITERS).fetch_add(1, Ordering::SeqCst);
        let count = match self.release_for_wait() {
            Ok(c) => c,
            Err(e) => {
                r.u32(WAITERS).fetch_sub(1, Ordering::SeqCst);
                return Err(e);
            }
        };
        let got: std::result::Result<bool, ()> =
            raw::wait_until(r.u32(TOKENS), r.u32(SLEEPERS), deadline, || self.take_token(), || Ok(()));
        let mut woken = got.unwrap_or(false);
        self.reacquire(count);
        if !woken {
            // Under the lock again: leave with a token if one is there, else unregister.
            if self.take_token() {
                woken = true;
            } else {
                let w = r.u32(WAITERS);
                let _ = w.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1));
            }
        }
        Ok(woken)
    }

    /// Releases the lock, waits for a notification, and re-acquires the lock
    /// (Python's `wait()`). Check the condition in a loop: a return may be spurious.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// let cond = multiproc::Condition::new()?;
    /// let done = AtomicBool::new(false);
    /// let guard = cond.lock()?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         let _g = cond.lock().unwrap(); // free once the main thread waits
    ///         done.store(true, Ordering::Relaxed);
    ///         cond.notify(1);
    ///     });
    ///     while !done.load(Ordering::Relaxed) {
    ///         cond.wait().unwrap();
    ///     }
    /// });
    /// drop(guard);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the caller does not hold the lock.
    pub fn wait(&self) -> Result<()> {
        self.wait_deadline(None).map(drop)
    }

    /// As [`wait`](Condition::wait), for at most `timeout`; `false` if it timed out
    /// (Python's `wait(timeout)`).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = multiproc::Condition::new()?;
    /// // Waiting without the lock is an error (Python's `AssertionError`).
    /// assert!(cond.wait_timeout(Duration::from_millis(10)).is_err());
    /// let _guard = cond.lock()?;
    /// assert!(!cond.wait_timeout(Duration::from_millis(10))?); // nobody notifies
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the caller does not hold the lock.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.wait_deadline(raw::deadline(Some(timeout)))
    }

    /// Waits until `predicate()` is true (checked under the lock), for at most
    /// `timeout` (`None`: no limit). Returns the predicate's last value
    /// (Python's `wait_for`).
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::time::Duration;
    ///
    /// let cond = multiproc::Condition::new()?;
    /// let items = AtomicU32::new(0);
    /// let _guard = cond.lock()?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         for _ in 0..3 {
    ///             let _g = cond.lock().unwrap();
    ///             items.fetch_add(1, Ordering::Relaxed);
    ///             cond.notify_all();
    ///         }
    ///     });
    ///     let three = || items.load(Ordering::Relaxed) == 3;
    ///     assert!(cond.wait_for(three, Some(Duration::from_secs(10))).unwrap());
    /// });
    /// assert!(!cond.wait_for(|| false, Some(Duration::from_millis(10)))?); // timed out
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the caller does not hold the lock.
    pub fn wait_for(&self, mut predicate: impl FnMut() -> bool, timeout: Option<Duration>) -> Result<bool> {
        let deadline = raw::deadline(timeout);
        loop {
            if predicate() {
                return Ok(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
            self.wait_deadline(deadline)?;
        }
    }

    /// Wakes up to `n` waiting processes (Python's `notify(n)`). Call it holding the lock.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cond = multiproc::Condition::new()?;
    /// let _guard = cond.lock()?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| {
    ///         let _g = cond.lock().unwrap(); // free once the main thread waits
    ///         cond.notify(1);
    ///     });
    ///     // `true`: woken by the notification, not timed out.
    ///     assert!(cond.wait_timeout(Duration::from_secs(10)).unwrap());
    /// });
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn notify(&self, n: u32) {
        let r = &self.region;
        let w = r.u32(WAITERS);
        let mut k = 0;
        let _ = w.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
            k = v.min(n);
            Some(v - k)
        });
        if k > 0 {
            r.u32(TOKENS).fetch_add(k, Ordering::SeqCst);
            if r.u32(SLEEPERS).load(Ordering::SeqCst) != 0 {
                futex::wake(r.u32(TOKENS), k);
            }
        }
    }

    /// Wakes every waiting process (Python's `notify_all`). Call it holding the lock.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::time::Duration;
    ///
    /// let cond = multiproc::Condition::new()?;
    /// let waiting = AtomicU32::new(0);
    /// std::thread::scope(|s| {
    ///     let waiters: Vec<_> = (0..2)
    ///         .map(|_| s.spawn(|| {
    ///             let _g = cond.lock().unwrap();
    ///             waiting.fetch_add(1, Ordering::Relaxed);
    ///             cond.wait_timeout(Duration::from_secs(10)).unwrap() // true: notified
    ///         }))
    ///         .collect();
    ///     // Both wait once we hold the lock and count two.
    ///     let held = loop {
    ///         let g = cond.lock().unwrap();
    ///         if waiting.load(Ordering::Relaxed) == 2 { break g; }
    ///         drop(g);
    ///         std::thread::yield_now();
    ///     };
    ///     cond.notify_all();
    ///     drop(held);
    ///     assert!(waiters.into_iter().all(|w| w.join().unwrap()));
    /// });
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn notify_all(&self) {
        self.notify(u32::MAX);
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waiters = self.region.u32(WAITERS).load(Ordering::Relaxed);
        match &self.lock {
            Inner::Lock(l) => write!(f, "<Condition({l:?}, {waiters})>"),
            Inner::RLock(l) => write!(f, "<Condition({l:?}, {waiters})>"),
        }
    }
}
