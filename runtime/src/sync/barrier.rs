//! `Barrier`: parties meet, in shared memory.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::raw;
use crate::error::{Error, Result};
use crate::region::{Kind, Region, region_serde};
use crate::sys::futex;

const LOCK: usize = 0;
const COUNT: usize = 4;
const RELEASED: usize = 8;
const BROKEN: usize = 12;
const EPOCH: usize = 16;
const SLEEPERS: usize = 20;
const TIMEOUT_NS: usize = 24;
const NO_TIMEOUT: u64 = u64::MAX;

/// A barrier for a fixed number of processes (Python's `multiprocessing.Barrier`).
///
/// Each party calls [`wait`](Barrier::wait); all return once `parties` have
/// arrived, each with a distinct arrival index in `0..parties`. A timeout,
/// [`abort`](Barrier::abort) or [`reset`](Barrier::reset) breaks the current
/// round: every waiter gets [`Error::BrokenBarrier`], and so does every later
/// `wait` until `reset`.
///
/// Python's `action` callable is not offered: run the action in the party that
/// gets index 0.
#[derive(Clone)]
pub struct Barrier {
    region: Arc<Region>,
}

region_serde!(Barrier, Kind::Barrier, |region: Arc<Region>| if region.param() >= 1
    && region.param() <= u64::from(u32::MAX)
{
    Ok(Barrier { region })
} else {
    Err(Error::Decode { what: "Barrier", reason: "invalid party count".into() })
});

struct Held<'a>(&'a Region);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        raw::unlock(self.0.u32(LOCK));
    }
}

impl Barrier {
    /// A barrier for `parties` processes, without a default timeout.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `parties` is 0; [`Error::Io`] if the shared
    /// memory cannot be created.
    pub fn new(parties: u32) -> Result<Barrier> {
        Barrier::build(parties, None)
    }

    /// A barrier whose [`wait`](Barrier::wait) uses `timeout` by default.
    ///
    /// # Errors
    /// As [`Barrier::new`].
    pub fn with_timeout(parties: u32, timeout: Duration) -> Result<Barrier> {
        Barrier::build(parties, Some(timeout))
    }

    fn build(parties: u32, timeout: Option<Duration>) -> Result<Barrier> {
        if parties == 0 {
            return Err(Error::InvalidArgument("a barrier needs at least one party".into()));
        }
        let region = Region::create(Kind::Barrier, 64, u64::from(parties))?;
        let ns = timeout.map_or(NO_TIMEOUT, |t| t.as_nanos().min(u128::from(NO_TIMEOUT - 1)) as u64);
        region.u64(TIMEOUT_NS).store(ns, Ordering::Release);
        Ok(Barrier { region })
    }

    fn hold(&self) -> Held<'_> {
        raw::lock(self.region.u32(LOCK), futex::current_tid(), None);
        Held(&self.region)
    }

    /// The number of parties.
    pub fn parties(&self) -> u32 {
        self.region.param() as u32
    }

    /// How many parties are waiting now.
    pub fn n_waiting(&self) -> u32 {
        self.region.u32(COUNT).load(Ordering::Relaxed)
    }

    /// Whether the barrier is broken.
    pub fn broken(&self) -> bool {
        self.region.u32(BROKEN).load(Ordering::Relaxed) != 0
    }

    /// Waits for all parties, with the barrier's default timeout. Returns this
    /// party's arrival index (exactly one party gets 0).
    ///
    /// # Errors
    /// [`Error::BrokenBarrier`] if the barrier is or becomes broken (timeout, abort, reset).
    pub fn wait(&self) -> Result<u32> {
        let ns = self.region.u64(TIMEOUT_NS).load(Ordering::Relaxed);
        self.wait_inner((ns != NO_TIMEOUT).then(|| Duration::from_nanos(ns)))
    }

    /// Waits for all parties for at most `timeout`; on timeout the barrier breaks
    /// for everyone.
    ///
    /// # Errors
    /// [`Error::BrokenBarrier`] as for [`Barrier::wait`].
    pub fn wait_timeout(&self, timeout: Duration) -> Result<u32> {
        self.wait_inner(Some(timeout))
    }

    fn wait_inner(&self, timeout: Option<Duration>) -> Result<u32> {
        let r = &self.region;
        let deadline = raw::deadline(timeout);
        let (index, generation, epoch) = {
            let _h = self.hold();
            if r.u32(BROKEN).load(Ordering::Relaxed) != 0 {
                return Err(Error::BrokenBarrier);
            }
            let index = r.u32(COUNT).load(Ordering::Relaxed);
            if index + 1 >= self.parties() {
                r.u32(COUNT).store(0, Ordering::Relaxed);
                r.u32(RELEASED).fetch_add(1, Ordering::SeqCst);
                raw::notify(r.u32(EPOCH), r.u32(SLEEPERS), u32::MAX);
                return Ok(index);
            }
            r.u32(COUNT).store(index + 1, Ordering::Relaxed);
            (index, r.u32(RELEASED).load(Ordering::Relaxed), r.u32(EPOCH).load(Ordering::SeqCst))
        };
        let _: std::result::Result<bool, ()> = raw::wait_until(
            r.u32(EPOCH),
            r.u32(SLEEPERS),
            deadline,
            || r.u32(EPOCH).load(Ordering::SeqCst) != epoch,
            || Ok(()),
        );
        let _h = self.hold();
        if r.u32(RELEASED).load(Ordering::Relaxed) != generation {
            return Ok(index);
        }
        if r.u32(EPOCH).load(Ordering::Relaxed) == epoch {
            // Timed out: break the barrier for everyone.
            self.break_locked();
        }
        Err(Error::BrokenBarrier)
    }

    fn break_locked(&self) {
        let r = &self.region;
        r.u32(BROKEN).store(1, Ordering::Relaxed);
        r.u32(COUNT).store(0, Ordering::Relaxed);
        raw::notify(r.u32(EPOCH), r.u32(SLEEPERS), u32::MAX);
    }

    /// Breaks the barrier: current and future waiters get [`Error::BrokenBarrier`]
    /// until [`reset`](Barrier::reset).
    pub fn abort(&self) {
        let _h = self.hold();
        self.break_locked();
    }

    /// Returns the barrier to its initial state; current waiters get
    /// [`Error::BrokenBarrier`].
    pub fn reset(&self) {
        let r = &self.region;
        let _h = self.hold();
        r.u32(BROKEN).store(0, Ordering::Relaxed);
        r.u32(COUNT).store(0, Ordering::Relaxed);
        raw::notify(r.u32(EPOCH), r.u32(SLEEPERS), u32::MAX);
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Barrier(parties={}, waiting={}, broken={})>", self.parties(), self.n_waiting(), self.broken())
    }
}
