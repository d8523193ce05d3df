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
#[derive(Clone)]
pub struct BoundedSemaphore {
    region: Arc<Region>,
}

region_serde!(BoundedSemaphore, Kind::Semaphore, |region: Arc<Region>| if region.param() != UNBOUNDED {
    Ok(BoundedSemaphore { region })
} else {
    Err(Error::Decode { what: "BoundedSemaphore", reason: "this is an unbounded Semaphore".into() })
});

/// Holds one unit of a semaphore until dropped.
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

macro_rules! semaphore_methods {
    () => {
        /// Python's `acquire(block, timeout)`: takes one unit, returning whether it
        /// did. With `block == false` the timeout is ignored, as in Python.
        pub fn acquire(&self, block: bool, timeout: Option<Duration>) -> bool {
            acquire(&self.region, block, timeout)
        }

        /// Takes one unit, waiting as long as needed; it is given back when the guard drops.
        pub fn lock(&self) -> SemaphoreGuard<'_> {
            acquire(&self.region, true, None);
            SemaphoreGuard { region: &self.region }
        }

        /// Takes one unit if one is free within `timeout`.
        pub fn lock_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
            acquire(&self.region, true, Some(timeout)).then_some(SemaphoreGuard { region: &self.region })
        }

        /// The current value (Python's `get_value`).
        pub fn get_value(&self) -> u32 {
            value(&self.region).load(Ordering::Relaxed)
        }

        /// Whether an `acquire` now would have to wait (the value is 0).
        /// Python's `locked()`.
        pub fn locked(&self) -> bool {
            self.get_value() == 0
        }
    };
}

impl Semaphore {
    /// A semaphore with initial `value`.
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created.
    pub fn new(value: u32) -> Result<Semaphore> {
        let region = Region::create(Kind::Semaphore, 64, UNBOUNDED)?;
        region.u32(VALUE).store(value, Ordering::Release);
        Ok(Semaphore { region })
    }

    semaphore_methods!();

    /// Gives one unit back (may exceed the initial value).
    ///
    /// # Errors
    /// [`Error::InvalidState`] if the value would overflow `u32`.
    pub fn release(&self) -> Result<()> {
        release(&self.region, 1)
    }
}

impl BoundedSemaphore {
    /// A bounded semaphore with initial (and maximum) `value`.
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created.
    pub fn new(value: u32) -> Result<BoundedSemaphore> {
        let region = Region::create(Kind::Semaphore, 64, u64::from(value))?;
        region.u32(VALUE).store(value, Ordering::Release);
        Ok(BoundedSemaphore { region })
    }

    semaphore_methods!();

    /// Gives one unit back.
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
