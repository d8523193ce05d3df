//! `Barrier`: parties meet, in shared memory.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::raw;
use crate::codec;
use crate::error::{Error, Result};
use crate::region::{Kind, Region, region_serde};
use crate::registry;
use crate::sys::futex;
use crate::task::Task;
use crate::unwind;

const LOCK: usize = 0;
const COUNT: usize = 4;
const RELEASED: usize = 8;
const BROKEN: usize = 12;
const EPOCH: usize = 16;
const SLEEPERS: usize = 20;
const TIMEOUT_NS: usize = 24;
/// Length of the action's task name (0: no action); the name is at [`ACTION`].
const ACTION_LEN: usize = 32;
const ACTION: usize = 64;
/// Longest action name.
const MAX_ACTION: usize = 256;
const NO_TIMEOUT: u64 = u64::MAX;

/// A barrier for a fixed number of processes (Python's `multiprocessing.Barrier`).
///
/// Each party calls [`wait`](Barrier::wait); all return once `parties` have
/// arrived, each with a distinct arrival index in `0..parties`. A timeout,
/// [`abort`](Barrier::abort) or [`reset`](Barrier::reset) breaks the current
/// round: every waiter gets [`Error::BrokenBarrier`], and so does every later
/// `wait` until `reset`.
///
/// With [`Barrier::with_action`], the last party to arrive runs an action (a
/// registered task, in whichever process that party is) before any is
/// released, as Python's `action` callable.
///
/// A `Barrier` is a valid task argument under every start method; clones share
/// it. A parent and its child meet:
///
/// ```
/// #[multiproc::task]
/// fn meet(barrier: multiproc::Barrier) -> multiproc::Result<u32> {
///     barrier.wait()
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let barrier = multiproc::Barrier::new(2)?;
///     let mut p = multiproc::Process::new(meet, (barrier.clone(),))?;
///     p.start()?;
///     let index = barrier.wait()?; // returns once the child has arrived too
///     assert!(index < 2);
///     p.join()?;
///     assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
///     Ok(())
/// }
/// ```
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
    /// A barrier for `parties` processes, without a default timeout (Python's
    /// `Barrier(parties)`).
    ///
    /// ```
    /// let barrier = multiproc::Barrier::new(1)?;
    /// assert_eq!(barrier.wait()?, 0); // the only party: released at once
    /// assert!(matches!(multiproc::Barrier::new(0), Err(multiproc::Error::InvalidArgument(_))));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `parties` is 0; [`Error::Io`] if the shared
    /// memory cannot be created.
    pub fn new(parties: u32) -> Result<Barrier> {
        Barrier::build(parties, None)
    }

    /// A barrier whose [`wait`](Barrier::wait) uses `timeout` by default
    /// (Python's `Barrier(parties, timeout=…)`).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let barrier = multiproc::Barrier::with_timeout(2, Duration::from_millis(10))?;
    /// // The other party never comes: the wait times out and breaks the barrier.
    /// assert!(matches!(barrier.wait(), Err(multiproc::Error::BrokenBarrier)));
    /// assert!(barrier.broken());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Barrier::new`].
    pub fn with_timeout(parties: u32, timeout: Duration) -> Result<Barrier> {
        Barrier::build(parties, Some(timeout))
    }

    /// Python's `Barrier(parties, action, timeout)`: the last party to arrive
    /// runs `action` (a `#[multiproc::task]` without arguments) before the
    /// others are released. If the action panics or returns `Err`, that party
    /// gets the error and the barrier breaks for the others.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// static RAN: AtomicBool = AtomicBool::new(false);
    ///
    /// #[multiproc::task]
    /// fn announce() { RAN.store(true, Ordering::Relaxed); }
    ///
    /// let b = multiproc::Barrier::with_action(1, announce, None)?;
    /// assert_eq!(b.wait()?, 0); // the last (only) party ran the action
    /// assert!(RAN.load(Ordering::Relaxed));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Barrier::new`]; [`Error::NotRegistered`] for an action that is not a task.
    pub fn with_action<F: Task<()>>(parties: u32, action: F, timeout: Option<Duration>) -> Result<Barrier> {
        let name = action.task_name()?;
        if name.len() > MAX_ACTION {
            return Err(Error::InvalidArgument(format!(
                "the barrier action's name `{name}` is over {MAX_ACTION} bytes"
            )));
        }
        let b = Barrier::build(parties, timeout)?;
        b.region.write(ACTION, name.as_bytes());
        b.region.u32(ACTION_LEN).store(name.len() as u32, Ordering::Release);
        Ok(b)
    }

    fn build(parties: u32, timeout: Option<Duration>) -> Result<Barrier> {
        if parties == 0 {
            return Err(Error::InvalidArgument("a barrier needs at least one party".into()));
        }
        let region = Region::create(Kind::Barrier, ACTION + MAX_ACTION, u64::from(parties))?;
        let ns = timeout.map_or(NO_TIMEOUT, |t| t.as_nanos().min(u128::from(NO_TIMEOUT - 1)) as u64);
        region.u64(TIMEOUT_NS).store(ns, Ordering::Release);
        Ok(Barrier { region })
    }

    /// Runs the barrier's action, if it has one (the last party, before the release).
    fn run_action(&self) -> Result<()> {
        let len = (self.region.u32(ACTION_LEN).load(Ordering::Acquire) as usize).min(MAX_ACTION);
        if len == 0 {
            return Ok(());
        }
        let mut name = vec![0u8; len];
        self.region.read(ACTION, &mut name);
        let name = String::from_utf8_lossy(&name).into_owned();
        let entry = registry::lookup(&name)?;
        let args = codec::encode(&(), "barrier action")?;
        match unwind::catch(|| entry.run_target(&args.bytes, Vec::new())) {
            Ok(Ok(None)) => Ok(()),
            Ok(Ok(Some(returned))) => Err(Error::TaskFailed { task: name, message: returned }),
            Ok(Err(e)) => Err(e),
            Err(unwind::Panic { message, location }) => Err(Error::TaskPanicked { task: name, message, location }),
        }
    }

    fn hold(&self) -> Held<'_> {
        raw::lock(self.region.u32(LOCK), futex::current_tid(), None);
        Held(&self.region)
    }

    /// The number of parties (Python's `parties`).
    ///
    /// ```
    /// let barrier = multiproc::Barrier::new(3)?;
    /// assert_eq!(barrier.parties(), 3);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn parties(&self) -> u32 {
        self.region.param() as u32
    }

    /// How many parties are waiting now (Python's `n_waiting`).
    ///
    /// ```
    /// let barrier = multiproc::Barrier::new(2)?;
    /// assert_eq!(barrier.n_waiting(), 0);
    /// std::thread::scope(|s| {
    ///     let first = s.spawn(|| barrier.wait().unwrap());
    ///     while barrier.n_waiting() == 0 {
    ///         std::thread::yield_now();
    ///     }
    ///     assert_eq!(barrier.n_waiting(), 1);
    ///     barrier.wait().unwrap(); // the second party releases both
    ///     first.join().unwrap();
    /// });
    /// assert_eq!(barrier.n_waiting(), 0);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn n_waiting(&self) -> u32 {
        self.region.u32(COUNT).load(Ordering::Relaxed)
    }

    /// Whether the barrier is broken (Python's `broken`).
    ///
    /// ```
    /// let barrier = multiproc::Barrier::new(2)?;
    /// assert!(!barrier.broken());
    /// barrier.abort();
    /// assert!(barrier.broken());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn broken(&self) -> bool {
        self.region.u32(BROKEN).load(Ordering::Relaxed) != 0
    }

    /// Waits for all parties, with the barrier's default timeout. Returns this
    /// party's arrival index (exactly one party gets 0); Python's `wait()`.
    ///
    /// ```
    /// let barrier = multiproc::Barrier::new(2)?;
    /// let mut indices = std::thread::scope(|s| {
    ///     let other = s.spawn(|| barrier.wait().unwrap());
    ///     vec![barrier.wait().unwrap(), other.join().unwrap()]
    /// });
    /// indices.sort();
    /// assert_eq!(indices, [0, 1]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::BrokenBarrier`] if the barrier is or becomes broken (timeout, abort, reset).
    pub fn wait(&self) -> Result<u32> {
        let ns = self.region.u64(TIMEOUT_NS).load(Ordering::Relaxed);
        self.wait_inner((ns != NO_TIMEOUT).then(|| Duration::from_nanos(ns)))
    }

    /// Waits for all parties for at most `timeout`; on timeout the barrier breaks
    /// for everyone (Python's `wait(timeout)`).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let barrier = multiproc::Barrier::new(2)?;
    /// let lonely = barrier.wait_timeout(Duration::from_millis(10));
    /// assert!(matches!(lonely, Err(multiproc::Error::BrokenBarrier)));
    /// assert!(barrier.broken());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
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
                // Python runs the action under the barrier's lock, before the release.
                if let Err(e) = self.run_action() {
                    self.break_locked();
                    return Err(e);
                }
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
    /// until [`reset`](Barrier::reset). Python's `abort`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let barrier = multiproc::Barrier::new(2)?;
    /// std::thread::scope(|s| {
    ///     let waiter = s.spawn(|| barrier.wait_timeout(Duration::from_secs(10)));
    ///     while barrier.n_waiting() == 0 {
    ///         std::thread::yield_now();
    ///     }
    ///     barrier.abort(); // the waiter is released with an error, not after 10 s
    ///     assert!(matches!(waiter.join().unwrap(), Err(multiproc::Error::BrokenBarrier)));
    /// });
    /// assert!(matches!(barrier.wait(), Err(multiproc::Error::BrokenBarrier)));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn abort(&self) {
        let _h = self.hold();
        self.break_locked();
    }

    /// Returns the barrier to its initial state; current waiters get
    /// [`Error::BrokenBarrier`]. Python's `reset`.
    ///
    /// ```
    /// let barrier = multiproc::Barrier::new(1)?;
    /// barrier.abort();
    /// assert!(barrier.wait().is_err());
    /// barrier.reset();
    /// assert!(!barrier.broken());
    /// assert_eq!(barrier.wait()?, 0);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
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
