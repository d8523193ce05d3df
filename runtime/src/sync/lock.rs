//! `Lock` and `RLock`: robust futex locks in shared memory.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::raw::{self, Acquired};
use crate::error::{Error, Result};
use crate::region::{Kind, Region, region_serde};
use crate::sys::futex;

/// A lock shared between processes (Python's `multiprocessing.Lock`).
///
/// The lock word lives in shared memory; acquiring it uncontended is one
/// atomic compare-and-swap, and a waiter spins briefly before sleeping on a
/// futex. As in Python, any process (or thread) may release it, not only
/// the one that acquired it.
///
/// **Beyond Python:** if the process holding the lock dies (even by SIGKILL),
/// the next process to acquire it gets it (within ~20 ms) and is told: the
/// guard's [`LockGuard::owner_died`] returns the dead pid, and
/// [`Lock::acquire`] returns [`Error::OwnerDied`] *with the lock held*, as a
/// robust mutex reports `EOWNERDEAD`. CPython leaves such a lock held forever.
///
/// A `Lock` is a valid task argument under every start method; clones share the lock.
/// Two processes adding to one unlocked [`RawValue`](crate::RawValue) under it lose
/// no increment:
///
/// ```
/// #[multiproc::task]
/// fn add(lock: multiproc::Lock, total: multiproc::RawValue<u64>) {
///     for _ in 0..500 {
///         let _g = lock.lock().unwrap();
///         total.set(total.get() + 1);
///     }
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let (lock, total) = (multiproc::Lock::new()?, multiproc::RawValue::new(0u64)?);
///     let mut children = Vec::new();
///     for _ in 0..2 {
///         let mut p = multiproc::Process::new(add, (lock.clone(), total.clone()))?;
///         p.start()?;
///         children.push(p);
///     }
///     for p in &mut children {
///         p.join()?;
///     }
///     assert_eq!(total.get(), 1000);
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct Lock {
    region: Arc<Region>,
}

region_serde!(Lock, Kind::Lock, |region| Ok::<_, Error>(Lock { region }));

/// Holds a [`Lock`] until dropped (Python's `with lock:` block).
///
/// ```
/// let lock = multiproc::Lock::new()?;
/// let guard = lock.lock()?;
/// assert!(lock.locked());
/// drop(guard);
/// assert!(!lock.locked());
/// # Ok::<(), multiproc::Error>(())
/// ```
#[must_use = "the lock is released when the guard is dropped"]
pub struct LockGuard<'a> {
    /// The lock's word and holder cells, looked up once when it was taken.
    word: &'a AtomicU32,
    holder: &'a AtomicU32,
    owner_died: Option<u32>,
}

impl LockGuard<'_> {
    /// The pid of a previous owner that died holding the lock, if this
    /// acquisition took it over (like `std::sync::Mutex` poisoning).
    ///
    /// ```
    /// #[multiproc::task]
    /// fn die_holding(lock: multiproc::Lock) {
    ///     std::mem::forget(lock.lock().unwrap()); // the child exits with the lock held
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let lock = multiproc::Lock::new()?;
    ///     let mut p = multiproc::Process::new(die_holding, (lock.clone(),))?;
    ///     p.start()?;
    ///     p.join()?;
    ///     let guard = lock.lock()?; // taken over from the dead child
    ///     assert_eq!(guard.owner_died(), p.pid());
    ///     drop(guard);
    ///     assert_eq!(lock.lock()?.owner_died(), None);
    ///     Ok(())
    /// }
    /// ```
    pub fn owner_died(&self) -> Option<u32> {
        self.owner_died
    }
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.holder.store(0, Ordering::Relaxed);
        raw::unlock(self.word);
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").field("owner_died", &self.owner_died).finish()
    }
}

#[inline]
fn died(a: Acquired) -> Option<u32> {
    match a {
        Acquired::Clean => None,
        Acquired::OwnerDied(pid) => Some(pid),
    }
}

impl Lock {
    /// A new, unlocked lock (Python's `multiprocessing.Lock()`).
    ///
    /// ```
    /// let lock = multiproc::Lock::new()?;
    /// assert!(!lock.locked());
    /// assert_eq!(lock.owner(), None);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created.
    pub fn new() -> Result<Lock> {
        Ok(Lock { region: Region::create(Kind::Lock, 64, 0)? })
    }

    #[inline]
    pub(crate) fn word(&self) -> &AtomicU32 {
        self.region.u32(0)
    }

    /// The tid of the thread that holds the lock, while it holds it (0 otherwise).
    #[inline]
    fn holder(&self) -> &AtomicU32 {
        self.region.u32(4)
    }

    /// Records thread `tid` of this process as the holder, once the lock word is ours.
    #[inline]
    fn held(&self, a: Acquired, tid: u32) -> Acquired {
        self.holder().store(tid, Ordering::Relaxed);
        a
    }

    /// [`held`](Self::held), and makes the guard that frees the lock.
    #[inline]
    fn guard(&self, a: Acquired, tid: u32) -> LockGuard<'_> {
        let a = self.held(a, tid);
        LockGuard { word: self.word(), holder: self.holder(), owner_died: died(a) }
    }

    /// Takes the lock word for this process (`flags`: [`raw::GUARD`] or 0),
    /// waiting as long as it takes, and makes its guard.
    #[inline]
    fn take(&self, flags: u32) -> LockGuard<'_> {
        let (pid, tid) = futex::current_ids();
        // Without a deadline, `raw::lock` returns only once it holds the word.
        let a = raw::lock(self.word(), pid | flags, None).unwrap_or(Acquired::Clean);
        self.guard(a, tid)
    }

    /// Acquires the lock, blocking until it is free; released when the guard drops
    /// (Python's `with lock:`).
    ///
    /// ```
    /// let lock = multiproc::Lock::new()?;
    /// {
    ///     let _guard = lock.lock()?;
    ///     assert!(lock.try_lock().is_none()); // not re-entrant: see `RLock`
    /// }
    /// assert!(!lock.locked());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// None today (the `Result` leaves room for platforms where waiting can fail).
    /// A dead previous owner is reported on the guard, not as an error.
    #[inline]
    pub fn lock(&self) -> Result<LockGuard<'_>> {
        Ok(self.take(0))
    }

    /// Acquires the lock for a guard that hands out `&mut` to the data the
    /// lock protects: the lock word carries [`raw::GUARD`] until the guard
    /// drops, so no [`release`](Lock::release), in any process, can free the
    /// lock under it.
    #[inline]
    pub(crate) fn lock_exclusive(&self) -> LockGuard<'_> {
        self.take(raw::GUARD)
    }

    /// Runs `f` with the lock held exclusively (as [`lock_exclusive`](Lock::lock_exclusive)
    /// does). If the calling thread already holds it (through [`acquire`](Lock::acquire)
    /// or a [`LockGuard`]: Python's `with value.get_lock(): value.value += 1`), `f`
    /// runs under that hold, which is marked exclusive meanwhile so that no
    /// `release` frees it under `f`; otherwise `f` takes the lock (and waits for it).
    pub(crate) fn with_exclusive<R>(&self, f: impl FnOnce() -> R) -> R {
        let word = self.word();
        let me = futex::current_pid();
        if self.holder().load(Ordering::Relaxed) == futex::current_tid() {
            let mut v = word.load(Ordering::Acquire);
            while v & raw::ID == me && v & raw::GUARD == 0 {
                match word.compare_exchange_weak(v, v | raw::GUARD, Ordering::Acquire, Ordering::Relaxed) {
                    Ok(_) => {
                        let r = f();
                        word.fetch_and(!raw::GUARD, Ordering::Release);
                        return r;
                    }
                    Err(now) => v = now,
                }
            }
        }
        let _g = self.lock_exclusive();
        f()
    }

    /// Acquires the lock if it is free right now (Python's `acquire(block=False)`,
    /// as a guard); `None` if it is held.
    ///
    /// ```
    /// let lock = multiproc::Lock::new()?;
    /// let guard = lock.try_lock().expect("a new lock is free");
    /// assert!(lock.try_lock().is_none());
    /// drop(guard);
    /// assert!(lock.try_lock().is_some());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    #[inline]
    pub fn try_lock(&self) -> Option<LockGuard<'_>> {
        let (pid, tid) = futex::current_ids();
        raw::try_lock(self.word(), pid).then(|| self.guard(Acquired::Clean, tid))
    }

    /// Acquires the lock, waiting at most `timeout`; `None` if it stayed held
    /// (Python's `acquire(timeout=…)`, as a guard).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lock = multiproc::Lock::new()?;
    /// let held = lock.lock()?;
    /// assert!(lock.lock_timeout(Duration::from_millis(10)).is_none());
    /// drop(held);
    /// assert!(lock.lock_timeout(Duration::from_millis(10)).is_some());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<LockGuard<'_>> {
        let (pid, tid) = futex::current_ids();
        raw::lock(self.word(), pid, raw::deadline(Some(timeout))).map(|a| self.guard(a, tid))
    }

    /// Python's `acquire(block, timeout)`: returns whether the lock was taken.
    /// With `block == false` the timeout is ignored (as in Python); a negative
    /// timeout does not exist in Rust, and `Some(Duration::ZERO)` tries once.
    /// Release it with [`Lock::release`].
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let lock = multiproc::Lock::new()?;
    /// assert!(lock.acquire(true, None)?);
    /// assert!(!lock.acquire(false, None)?); // held: do not wait
    /// assert!(!lock.acquire(true, Some(Duration::from_millis(10)))?); // timed out
    /// lock.release()?;
    /// assert!(lock.acquire(false, None)?);
    /// # lock.release()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::OwnerDied`] when the lock was taken over from a dead owner: the
    /// lock **is held** by the caller, who should check the data it guards.
    pub fn acquire(&self, block: bool, timeout: Option<Duration>) -> Result<bool> {
        let (me, tid) = futex::current_ids();
        if !block {
            let got = raw::try_lock(self.word(), me);
            if got {
                self.held(Acquired::Clean, tid);
            }
            return Ok(got);
        }
        match raw::lock(self.word(), me, raw::deadline(timeout)).map(|a| self.held(a, tid)) {
            None => Ok(false),
            Some(Acquired::Clean) => Ok(true),
            Some(Acquired::OwnerDied(pid)) => Err(Error::OwnerDied { pid }),
        }
    }

    /// Releases the lock, whoever acquired it (Python semantics), unless a
    /// [`Value`](crate::Value) or [`Array`](crate::Array) guard holds it: that
    /// guard hands out `&mut` to the shared data, so the lock is freed only
    /// when the guard drops. Python's `Lock.release`.
    ///
    /// Here a child process releases the lock its parent acquired:
    ///
    /// ```
    /// #[multiproc::task]
    /// fn unlock(lock: multiproc::Lock) -> multiproc::Result<()> {
    ///     lock.release()
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let lock = multiproc::Lock::new()?;
    ///     assert!(lock.acquire(true, None)?);
    ///     let mut p = multiproc::Process::new(unlock, (lock.clone(),))?;
    ///     p.start()?;
    ///     p.join()?;
    ///     assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
    ///     assert!(!lock.locked());
    ///     // Releasing it again is Python's `ValueError`.
    ///     assert!(matches!(lock.release(), Err(multiproc::Error::InvalidState(_))));
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the lock is not held (Python's `ValueError`),
    /// or is held by a `Value`/`Array` guard.
    pub fn release(&self) -> Result<()> {
        let word = self.word();
        let mut v = word.load(Ordering::Relaxed);
        loop {
            if v == 0 {
                return Err(Error::InvalidState("release of an unlocked lock".into()));
            }
            if v & raw::GUARD != 0 {
                return Err(Error::InvalidState(
                    "release of a lock held by a Value or Array guard; it is released when the guard drops".into(),
                ));
            }
            self.holder().store(0, Ordering::Relaxed);
            match word.compare_exchange_weak(v, 0, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => v = now,
            }
        }
        if v & raw::WAITERS != 0 {
            futex::wake(word, 1);
        }
        Ok(())
    }

    /// Whether some process holds the lock (Python's `locked`).
    ///
    /// ```
    /// let lock = multiproc::Lock::new()?;
    /// assert!(!lock.locked());
    /// let _guard = lock.lock()?;
    /// assert!(lock.locked());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn locked(&self) -> bool {
        self.word().load(Ordering::Relaxed) != 0
    }

    /// The pid of the process holding the lock, if any (Python's `repr` shows it).
    ///
    /// ```
    /// let lock = multiproc::Lock::new()?;
    /// assert_eq!(lock.owner(), None);
    /// let _guard = lock.lock()?;
    /// assert_eq!(lock.owner(), Some(std::process::id()));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn owner(&self) -> Option<u32> {
        Some(self.word().load(Ordering::Relaxed) & raw::ID).filter(|&p| p != 0)
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.owner() {
            None => write!(f, "<Lock(owner=None)>"),
            Some(p) if p == futex::current_pid() => write!(f, "<Lock(owner=this process {p})>"),
            Some(p) => write!(f, "<Lock(owner=pid {p})>"),
        }
    }
}

// ------------------------------------------------------------------ RLock

const RL_WORD: usize = 0;
const RL_COUNT: usize = 4;

/// A re-entrant lock shared between processes (Python's `multiprocessing.RLock`).
///
/// The thread that holds it may acquire it again; it is released when every
/// acquisition has been released. Only the owning thread may release it
/// ([`Error::InvalidState`] otherwise, Python's `AssertionError`). The owner
/// is a thread id, unique across processes. A dead owner (its process killed,
/// or its thread gone) is detected and reported as for [`Lock`].
///
/// An `RLock` is a valid task argument under every start method; clones share
/// the lock. While the parent holds it (twice), a child cannot take it:
///
/// ```
/// #[multiproc::task]
/// fn try_take(rlock: multiproc::RLock) {
///     assert!(!rlock.acquire(false, None).unwrap(), "the parent holds it");
///     assert!(!rlock.is_owned());
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let rlock = multiproc::RLock::new()?;
///     let _outer = rlock.lock()?;
///     let _inner = rlock.lock()?; // re-entrant in the owning thread
///     let mut p = multiproc::Process::new(try_take, (rlock.clone(),))?;
///     p.start()?;
///     p.join()?;
///     assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct RLock {
    region: Arc<Region>,
}

region_serde!(RLock, Kind::RLock, |region| Ok::<_, Error>(RLock { region }));

/// Holds one level of an [`RLock`] until dropped; the lock is free once every
/// guard (and [`RLock::acquire`]) of the owning thread is released.
///
/// ```
/// let rlock = multiproc::RLock::new()?;
/// let outer = rlock.lock()?;
/// let inner = rlock.lock()?;
/// drop(inner);
/// assert!(rlock.is_owned()); // one level still held
/// drop(outer);
/// assert!(!rlock.locked());
/// # Ok::<(), multiproc::Error>(())
/// ```
#[must_use = "the lock is released when the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    owner_died: Option<u32>,
}

impl RLockGuard<'_> {
    /// The thread id of a previous owner that died holding the lock, if this
    /// acquisition took it over. A thread that ends holding it counts as dead:
    ///
    /// ```
    /// let rlock = multiproc::RLock::new()?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| std::mem::forget(rlock.lock().unwrap())); // ends holding it
    /// });
    /// let guard = rlock.lock()?;
    /// assert!(guard.owner_died().is_some());
    /// drop(guard);
    /// assert_eq!(rlock.lock()?.owner_died(), None);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn owner_died(&self) -> Option<u32> {
        self.owner_died
    }
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        // The guard's thread owns the lock, so this cannot fail.
        let _ = self.lock.release();
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard").field("owner_died", &self.owner_died).finish()
    }
}

impl RLock {
    /// A new, unlocked re-entrant lock (Python's `multiprocessing.RLock()`).
    ///
    /// ```
    /// let rlock = multiproc::RLock::new()?;
    /// assert!(!rlock.locked());
    /// assert!(!rlock.is_owned());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created.
    pub fn new() -> Result<RLock> {
        Ok(RLock { region: Region::create(Kind::RLock, 64, 0)? })
    }

    fn word(&self) -> &std::sync::atomic::AtomicU32 {
        self.region.u32(RL_WORD)
    }

    fn count(&self) -> &std::sync::atomic::AtomicU32 {
        self.region.u32(RL_COUNT)
    }

    fn acquire_inner(&self, deadline: Option<Option<std::time::Instant>>) -> Option<Acquired> {
        let me = futex::current_tid();
        if self.word().load(Ordering::Relaxed) & raw::OWNER == me {
            self.count().fetch_add(1, Ordering::Relaxed);
            return Some(Acquired::Clean);
        }
        let got = match deadline {
            None => raw::try_lock(self.word(), me).then_some(Acquired::Clean),
            Some(d) => raw::lock(self.word(), me, d),
        };
        if got.is_some() {
            self.count().store(1, Ordering::Relaxed);
        }
        got
    }

    /// Acquires the lock (again, if this thread holds it); released when the guard drops.
    ///
    /// ```
    /// let rlock = multiproc::RLock::new()?;
    /// let _outer = rlock.lock()?;
    /// let _inner = rlock.lock()?; // the owner does not wait for itself
    /// assert!(rlock.is_owned());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// None today; a dead previous owner is reported on the guard.
    pub fn lock(&self) -> Result<RLockGuard<'_>> {
        let a = self.acquire_inner(Some(None)).unwrap_or(Acquired::Clean);
        Ok(RLockGuard { lock: self, owner_died: died(a) })
    }

    /// Acquires the lock, waiting at most `timeout`; `None` if another thread kept it.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rlock = multiproc::RLock::new()?;
    /// let _held = rlock.lock()?;
    /// assert!(rlock.lock_timeout(Duration::from_millis(10)).is_some()); // the owner: at once
    /// std::thread::scope(|s| {
    ///     s.spawn(|| assert!(rlock.lock_timeout(Duration::from_millis(10)).is_none()));
    /// });
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Option<RLockGuard<'_>> {
        self.acquire_inner(Some(raw::deadline(Some(timeout)))).map(|a| RLockGuard { lock: self, owner_died: died(a) })
    }

    /// Python's `acquire(block, timeout)`: returns whether the lock was taken
    /// (again, by its owner). Release each level with [`RLock::release`].
    ///
    /// ```
    /// let rlock = multiproc::RLock::new()?;
    /// assert!(rlock.acquire(true, None)?);
    /// assert!(rlock.acquire(false, None)?); // re-entered
    /// std::thread::scope(|s| {
    ///     s.spawn(|| assert!(!rlock.acquire(false, None).unwrap()));
    /// });
    /// rlock.release()?;
    /// rlock.release()?;
    /// assert!(!rlock.locked());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::OwnerDied`] when taken over from a dead owner (the lock **is held**).
    pub fn acquire(&self, block: bool, timeout: Option<Duration>) -> Result<bool> {
        let d = if block { Some(raw::deadline(timeout)) } else { None };
        match self.acquire_inner(d) {
            None => Ok(false),
            Some(Acquired::Clean) => Ok(true),
            Some(Acquired::OwnerDied(pid)) => Err(Error::OwnerDied { pid }),
        }
    }

    /// Releases one level of the lock (Python's `RLock.release`).
    ///
    /// ```
    /// let rlock = multiproc::RLock::new()?;
    /// // Not held by this thread: Python's `AssertionError`.
    /// assert!(matches!(rlock.release(), Err(multiproc::Error::InvalidState(_))));
    /// rlock.acquire(true, None)?;
    /// rlock.acquire(true, None)?;
    /// rlock.release()?;
    /// assert!(rlock.locked());
    /// rlock.release()?;
    /// assert!(!rlock.locked());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the calling thread does not own the lock.
    pub fn release(&self) -> Result<()> {
        let me = futex::current_tid();
        if self.word().load(Ordering::Relaxed) & raw::OWNER != me {
            return Err(Error::InvalidState("attempt to release recursive lock not owned by thread".into()));
        }
        let c = self.count().load(Ordering::Relaxed);
        if c > 1 {
            self.count().store(c - 1, Ordering::Relaxed);
        } else {
            self.count().store(0, Ordering::Relaxed);
            raw::unlock(self.word());
        }
        Ok(())
    }

    /// Whether some thread (of any process) holds the lock.
    ///
    /// ```
    /// let rlock = multiproc::RLock::new()?;
    /// let guard = rlock.lock()?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| assert!(rlock.locked()));
    /// });
    /// drop(guard);
    /// assert!(!rlock.locked());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn locked(&self) -> bool {
        self.word().load(Ordering::Relaxed) != 0
    }

    /// Whether the calling thread holds the lock (Python's private `SemLock._is_mine`).
    ///
    /// ```
    /// let rlock = multiproc::RLock::new()?;
    /// let _guard = rlock.lock()?;
    /// assert!(rlock.is_owned());
    /// std::thread::scope(|s| {
    ///     s.spawn(|| assert!(!rlock.is_owned()));
    /// });
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn is_owned(&self) -> bool {
        self.word().load(Ordering::Relaxed) & raw::OWNER == futex::current_tid()
    }

    /// Releases every level held by this thread; returns the count (for `Condition::wait`).
    pub(crate) fn release_all(&self) -> Result<u32> {
        if !self.is_owned() {
            return Err(Error::InvalidState("cannot wait on un-acquired lock".into()));
        }
        let c = self.count().swap(0, Ordering::Relaxed);
        raw::unlock(self.word());
        Ok(c)
    }

    /// Re-acquires with the count saved by [`RLock::release_all`].
    pub(crate) fn reacquire(&self, count: u32) -> Option<u32> {
        let a = raw::lock(self.word(), futex::current_tid(), None);
        self.count().store(count.max(1), Ordering::Relaxed);
        a.and_then(died)
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let owner = self.word().load(Ordering::Relaxed) & raw::OWNER;
        match owner {
            0 => write!(f, "<RLock(None, 0)>"),
            o if o == futex::current_tid() => {
                write!(f, "<RLock(this thread {o}, {})>", self.count().load(Ordering::Relaxed))
            }
            o => write!(f, "<RLock(thread {o}, nonzero)>"),
        }
    }
}
