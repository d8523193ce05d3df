//! `Condition`: a condition variable in shared memory over a `Lock` or `RLock`.
//!
//! Each waiter takes a *slot* under the lock: its pid and a state word
//! (`WAITING`). `notify(n)` (also under the lock) turns up to `n` waiting
//! slots to `NOTIFIED` and wakes each on its own futex word. A waiter whose
//! process died is found there (its pid no longer runs) and its slot freed, so
//! it neither swallows a notification nor leaves one behind for a later
//! waiter: `notify(n)` wakes exactly `min(n, live waiters)`. A waiter that
//! times out leaves under the lock: notified in the meantime, it reports the
//! notification; otherwise it frees its slot.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::lock::{Lock, RLock};
use super::raw;
use crate::error::{Error, Result};
use crate::region::{Kind, Region};
use crate::sys::futex;

/// Slots in use (a waiter or a notified waiter that has not left yet).
const USED: usize = 0;
/// The slot table: `SLOTS` pairs of (pid, state) words.
const TABLE: usize = 8;
/// Most processes and threads waiting on one condition at once.
const SLOTS: usize = 510;
/// A slot's states; `SLEEPING` is `WAITING` with a sleeper on the word.
const FREE: u32 = 0;
const WAITING: u32 = 1;
const SLEEPING: u32 = 2;
const NOTIFIED: u32 = 3;

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
/// A waiter killed while waiting is forgotten: `notify` never spends a
/// wake-up on it, and no later waiter wakes in its place. Still, check the
/// state you wait for in a loop, as for every condition variable:
/// [`wait_for`](Condition::wait_for) does.
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
        Ok(Condition { lock, region: Region::create(Kind::Condition, TABLE + SLOTS * 8, 0)? })
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

    fn pid_of(&self, slot: usize) -> &AtomicU32 {
        self.region.u32(TABLE + slot * 8)
    }

    fn state_of(&self, slot: usize) -> &AtomicU32 {
        self.region.u32(TABLE + slot * 8 + 4)
    }

    /// Takes a free slot for this process (called under the lock), freeing
    /// the slots of dead waiters if every slot is taken.
    fn register(&self) -> Result<usize> {
        let me = futex::current_pid();
        for sweep in [false, true] {
            for slot in 0..SLOTS {
                let state = self.state_of(slot).load(Ordering::Acquire);
                if state != FREE {
                    let dead = sweep && !futex::alive(self.pid_of(slot).load(Ordering::Acquire));
                    if !dead {
                        continue;
                    }
                    self.free(slot);
                }
                self.pid_of(slot).store(me, Ordering::Relaxed);
                self.state_of(slot).store(WAITING, Ordering::Release);
                self.region.u32(USED).fetch_add(1, Ordering::SeqCst);
                return Ok(slot);
            }
        }
        Err(Error::InvalidState(format!(
            "more than {SLOTS} processes and threads wait on one Condition; wake some, or split the condition"
        )))
    }

    fn free(&self, slot: usize) {
        self.state_of(slot).store(FREE, Ordering::Release);
        self.region.u32(USED).fetch_sub(1, Ordering::SeqCst);
    }

    /// Waits (lock released) until the slot is notified or `deadline` passes.
    fn sleep_on(&self, slot: usize, deadline: Option<Instant>) {
        let state = self.state_of(slot);
        if raw::spin(deadline, || state.load(Ordering::Acquire) == NOTIFIED) {
            return;
        }
        loop {
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return;
            }
            match state.compare_exchange(WAITING, SLEEPING, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) | Err(SLEEPING) => {}
                Err(_) => return, // notified
            }
            futex::wait(state, SLEEPING, deadline.map(|d| d.saturating_duration_since(now)));
        }
    }

    fn wait_deadline(&self, deadline: Option<Instant>) -> Result<bool> {
        // Registered while the lock is held (checked by release_for_wait).
        let slot = self.register()?;
        let count = match self.release_for_wait() {
            Ok(c) => c,
            Err(e) => {
                self.free(slot);
                return Err(e);
            }
        };
        self.sleep_on(slot, deadline);
        self.reacquire(count);
        // Under the lock again: a notification that came after the deadline still counts.
        let woken = self.state_of(slot).load(Ordering::Acquire) == NOTIFIED;
        self.free(slot);
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
        let mut left = n;
        let mut used = self.region.u32(USED).load(Ordering::SeqCst);
        for slot in 0..SLOTS {
            if left == 0 || used == 0 {
                return;
            }
            let state = self.state_of(slot);
            let s = state.load(Ordering::Acquire);
            if s == FREE {
                continue;
            }
            used -= 1;
            if s == NOTIFIED {
                continue;
            }
            if !futex::alive(self.pid_of(slot).load(Ordering::Acquire)) {
                self.free(slot); // its waiter died waiting
                continue;
            }
            if state.swap(NOTIFIED, Ordering::AcqRel) == SLEEPING {
                futex::wake(state, 1);
            }
            left -= 1;
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
        let waiters = self.region.u32(USED).load(Ordering::Relaxed);
        match &self.lock {
            Inner::Lock(l) => write!(f, "<Condition({l:?}, {waiters})>"),
            Inner::RLock(l) => write!(f, "<Condition({l:?}, {waiters})>"),
        }
    }
}
