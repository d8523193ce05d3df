//! `Semaphore` and `BoundedSemaphore`: a counter in shared memory on a futex.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::raw;
use crate::error::{Error, Result};
use crate::region::{Kind, Region, region_serde};
use crate::sys::futex;

const VALUE: usize = 0;
const SLEEPERS: usize = 4;
/// Header parameter meaning "no bound".
const UNBOUNDED: u64 = u64::MAX;

/// A counting semaphore shared between processes (Python's `multiprocessing.Semaphore`).
///
/// [`acquire`](Semaphore::acquire) takes one unit, waiting while the value is
/// zero; [`release`](Semaphore::release) gives one back. The value may grow past
/// its initial value (use [`BoundedSemaphore`] to forbid that).
/// [`get_value`](Semaphore::get_value) works on every OS (CPython's raises on macOS).
///
/// A `Semaphore` is a valid task argument under every start method; clones
/// share the counter. Here a child signals its parent through one:
///
/// ```
/// use std::time::Duration;
///
/// #[multiproc::task]
/// fn signal(sem: multiproc::Semaphore) -> multiproc::Result<()> {
///     sem.release()
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let sem = multiproc::Semaphore::new(0)?;
///     let mut p = multiproc::Process::new(signal, (sem.clone(),))?;
///     p.start()?;
///     assert!(sem.acquire(true, Some(Duration::from_secs(10)))); // the child's unit
///     p.join()?;
///     assert_eq!(sem.get_value(), 0);
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct Semaphore {
    region: Arc<Region>,
}

region_serde!(Semaphore, Kind::Semaphore, |region: Arc<Region>| if region.param() == UNBOUNDED {
    Ok(Semaphore { region })
} else {
    Err(Error::Decode { what: "Semaphore", reason: "this is a BoundedSemaphore".into() })
});

/// A semaphore whose value may not exceed its initial value (Python's `BoundedSemaphore`).
///
/// As for [`Semaphore`], any process may give a unit back, and it is a valid
/// task argument. Here a child returns the unit its parent took:
///
/// ```
/// #[multiproc::task]
/// fn give_back(sem: multiproc::BoundedSemaphore) -> multiproc::Result<()> {
///     sem.release()
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let sem = multiproc::BoundedSemaphore::new(1)?;
///     assert!(sem.acquire(false, None));
///     let mut p = multiproc::Process::new(give_back, (sem.clone(),))?;
///     p.start()?;
///     p.join()?;
///     assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
///     assert_eq!(sem.get_value(), 1);
///     assert!(sem.release().is_err()); // already at its bound
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct BoundedSemaphore {
    region: Arc<Region>,
}

region_serde!(BoundedSemaphore, Kind::Semaphore, |region: Arc<Region>| if region.param() != UNBOUNDED {
    Ok(BoundedSemaphore { region })
} else {
    Err(Error::Decode { what: "BoundedSemaphore", reason: "this is an unbounded Semaphore".into() })
});

/// Holds one unit of a semaphore until dropped (Python's `with sem:`).
///
/// ```
/// let sem = multiproc::Semaphore::new(2)?;
/// let guard = sem.lock();
/// assert_eq!(sem.get_value(), 1);
/// drop(guard);
/// assert_eq!(sem.get_value(), 2);
/// # Ok::<(), multiproc::Error>(())
/// ```
#[must_use = "the unit is released when the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    region: &'a Region,
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        // A guard's unit was taken from this semaphore, so there is room for it.
        let _ = release(self.region, 1);
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphoreGuard")
    }
}

fn value(r: &Region) -> &AtomicU32 {
    r.u32(VALUE)
}

fn try_take(r: &Region) -> bool {
    let v = value(r);
    let mut cur = v.load(Ordering::Relaxed);
    while cur > 0 {
        match v.compare_exchange_weak(cur, cur - 1, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(c) => cur = c,
        }
    }
    false
}

/// Takes one unit: at once (`block == false`), or waiting until `timeout`.
fn acquire(r: &Region, block: bool, timeout: Option<Duration>) -> bool {
    if try_take(r) {
        return true;
    }
    if !block {
        return false;
    }
    let deadline = raw::deadline(timeout);
    let sleepers = r.u32(SLEEPERS);
    // Spin briefly (the one wait policy), then sleep on the value word while it is zero.
    if raw::spin(deadline, || try_take(r)) {
        return true;
    }
    loop {
        if try_take(r) {
            return true;
        }
        let now = std::time::Instant::now();
        // Naps are bounded (belt and braces: a wake-up cannot be lost, see `release`).
        let nap = match deadline {
            Some(d) if now >= d => return false,
            Some(d) => (d - now).min(raw::LIVENESS_EVERY),
            None => raw::LIVENESS_EVERY,
        };
        sleepers.fetch_add(1, Ordering::SeqCst);
        futex::wait(value(r), 0, Some(nap));
        sleepers.fetch_sub(1, Ordering::SeqCst);
    }
}

fn release(r: &Region, n: u32) -> Result<()> {
    let bound = r.param();
    let v = value(r);
    let mut cur = v.load(Ordering::Relaxed);
    loop {
        let next = cur.checked_add(n).ok_or_else(|| Error::InvalidState("semaphore value overflow".into()))?;
        if bound != UNBOUNDED && u64::from(next) > bound {
            return Err(Error::InvalidState("semaphore or lock released too many times".into()));
        }
        match v.compare_exchange_weak(cur, next, Ordering::SeqCst, Ordering::Relaxed) {
            Ok(_) => break,
            Err(c) => cur = c,
        }
    }
    if r.u32(SLEEPERS).load(Ordering::SeqCst) != 0 {
        futex::wake(v, n);
    }
    Ok(())
}

/// The methods `Semaphore` and `BoundedSemaphore` share; `$ty` names the type
/// in their examples.
macro_rules! semaphore_methods {
    ($ty:ident) => {
        /// Python's `acquire(block, timeout)`: takes one unit, returning whether it
        /// did. With `block == false` the timeout is ignored, as in Python.
        ///
        /// ```
        /// use std::time::Duration;
        ///
        #[doc = concat!("let sem = multiproc::", stringify!($ty), "::new(1)?;")]
        /// assert!(sem.acquire(true, None));
        /// assert!(!sem.acquire(false, None)); // none left: do not wait
        /// assert!(!sem.acquire(true, Some(Duration::from_millis(10)))); // timed out
        /// sem.release()?;
        /// assert_eq!(sem.get_value(), 1);
        /// # Ok::<(), multiproc::Error>(())
        /// ```
        pub fn acquire(&self, block: bool, timeout: Option<Duration>) -> bool {
            acquire(&self.region, block, timeout)
        }

        /// Takes one unit, waiting as long as needed; it is given back when the
        /// guard drops (Python's `with sem:`).
        ///
        /// ```
        #[doc = concat!("let sem = multiproc::", stringify!($ty), "::new(2)?;")]
        /// let a = sem.lock();
        /// let b = sem.lock();
        /// assert!(sem.locked()); // both units taken
        /// drop((a, b));
        /// assert_eq!(sem.get_value(), 2);
        /// # Ok::<(), multiproc::Error>(())
        /// ```
        pub fn lock(&self) -> SemaphoreGuard<'_> {
            acquire(&self.region, true, None);
            SemaphoreGuard { region: &self.region }
        }

        /// Takes one unit if one is free within `timeout`; given back when the guard drops.
        ///
        /// ```
        /// use std::time::Duration;
        ///
        #[doc = concat!("let sem = multiproc::", stringify!($ty), "::new(1)?;")]
        /// let first = sem.lock_timeout(Duration::from_millis(10));
        /// assert!(first.is_some());
        /// assert!(sem.lock_timeout(Duration::from_millis(10)).is_none());
        /// drop(first);
        /// assert!(sem.lock_timeout(Duration::from_millis(10)).is_some());
        /// # Ok::<(), multiproc::Error>(())
        /// ```
        pub fn lock_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
            acquire(&self.region, true, Some(timeout)).then_some(SemaphoreGuard { region: &self.region })
        }

        /// The current value (Python's `get_value`).
        ///
        /// ```
        #[doc = concat!("let sem = multiproc::", stringify!($ty), "::new(3)?;")]
        /// assert_eq!(sem.get_value(), 3);
        /// let _unit = sem.lock();
        /// assert_eq!(sem.get_value(), 2);
        /// # Ok::<(), multiproc::Error>(())
        /// ```
        pub fn get_value(&self) -> u32 {
            value(&self.region).load(Ordering::Relaxed)
        }

        /// Whether an `acquire` now would have to wait (the value is 0).
        /// Python's `locked()`.
        ///
        /// ```
        #[doc = concat!("let sem = multiproc::", stringify!($ty), "::new(1)?;")]
        /// assert!(!sem.locked());
        /// let _unit = sem.lock();
        /// assert!(sem.locked());
        /// # Ok::<(), multiproc::Error>(())
        /// ```
        pub fn locked(&self) -> bool {
            self.get_value() == 0
        }
    };
}

impl Semaphore {
    /// A semaphore with initial `value` (Python's `Semaphore(value)`).
    ///
    /// ```
    /// let sem = multiproc::Semaphore::new(2)?;
    /// assert_eq!(sem.get_value(), 2);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created.
    pub fn new(value: u32) -> Result<Semaphore> {
        let region = Region::create(Kind::Semaphore, 64, UNBOUNDED)?;
        region.u32(VALUE).store(value, Ordering::Release);
        Ok(Semaphore { region })
    }

    semaphore_methods!(Semaphore);

    /// Gives one unit back (may exceed the initial value); Python's `release`.
    /// Any process may release, not only one that acquired.
    ///
    /// ```
    /// let sem = multiproc::Semaphore::new(0)?;
    /// assert!(!sem.acquire(false, None));
    /// sem.release()?;
    /// sem.release()?;
    /// assert_eq!(sem.get_value(), 2); // unbounded
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the value would overflow `u32`.
    pub fn release(&self) -> Result<()> {
        release(&self.region, 1)
    }
}

impl BoundedSemaphore {
    /// A bounded semaphore with initial (and maximum) `value` (Python's
    /// `BoundedSemaphore(value)`).
    ///
    /// ```
    /// let sem = multiproc::BoundedSemaphore::new(2)?;
    /// assert_eq!(sem.get_value(), 2);
    /// assert!(sem.release().is_err()); // cannot exceed 2
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created.
    pub fn new(value: u32) -> Result<BoundedSemaphore> {
        let region = Region::create(Kind::Semaphore, 64, u64::from(value))?;
        region.u32(VALUE).store(value, Ordering::Release);
        Ok(BoundedSemaphore { region })
    }

    semaphore_methods!(BoundedSemaphore);

    /// Gives one unit back (Python's `release`); any process may release.
    ///
    /// ```
    /// let sem = multiproc::BoundedSemaphore::new(1)?;
    /// assert!(sem.acquire(true, None));
    /// sem.release()?;
    /// // Past the bound: Python's `ValueError`.
    /// assert!(matches!(sem.release(), Err(multiproc::Error::InvalidState(_))));
    /// assert_eq!(sem.get_value(), 1);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidState`] ("semaphore or lock released too many times") if the
    /// value is already at its initial value; the value is unchanged.
    pub fn release(&self) -> Result<()> {
        release(&self.region, 1)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Semaphore(value={})>", self.get_value())
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<BoundedSemaphore(value={}, maxvalue={})>", self.get_value(), self.region.param())
    }
}
