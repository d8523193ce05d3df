//! `Event`: a flag in shared memory that processes can wait for.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::raw;
use crate::error::{Error, Result};
use crate::region::{Kind, Region, region_serde};

const FLAG: usize = 0;
const SEQ: usize = 4;
const SLEEPERS: usize = 8;

/// A flag shared between processes (Python's `multiprocessing.Event`).
///
/// [`set`](Event::set) wakes every process in [`wait`](Event::wait); the flag
/// stays set until [`clear`](Event::clear). An `Event` is a valid task
/// argument under every start method; clones share the flag.
///
/// ```
/// use std::time::Duration;
///
/// #[multiproc::task]
/// fn signal(ev: multiproc::Event) { ev.set(); }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let ev = multiproc::Event::new()?;
///     let mut p = multiproc::Process::new(signal, (ev.clone(),))?;
///     p.start()?;
///     assert!(ev.wait(Some(Duration::from_secs(10))));
///     p.join()?;
///     assert!(ev.is_set()); // it stays set
///     Ok(())
/// }
/// ```
#[derive(Clone)]
pub struct Event {
    region: Arc<Region>,
}

region_serde!(Event, Kind::Event, |region| Ok::<_, Error>(Event { region }));

impl Event {
    /// A new, unset event (Python's `multiprocessing.Event()`).
    ///
    /// ```
    /// let ev = multiproc::Event::new()?;
    /// assert!(!ev.is_set());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created.
    pub fn new() -> Result<Event> {
        Ok(Event { region: Region::create(Kind::Event, 64, 0)? })
    }

    /// Whether the flag is set (Python's `is_set`).
    ///
    /// ```
    /// let ev = multiproc::Event::new()?;
    /// assert!(!ev.is_set());
    /// ev.set();
    /// assert!(ev.is_set());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn is_set(&self) -> bool {
        self.region.u32(FLAG).load(Ordering::Acquire) != 0
    }

    /// Sets the flag and wakes every waiter (Python's `set`).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ev = multiproc::Event::new()?;
    /// std::thread::scope(|s| {
    ///     let waiters: Vec<_> = (0..2).map(|_| s.spawn(|| ev.wait(Some(Duration::from_secs(10))))).collect();
    ///     ev.set();
    ///     assert!(waiters.into_iter().all(|w| w.join().unwrap()));
    /// });
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn set(&self) {
        self.region.u32(FLAG).store(1, Ordering::SeqCst);
        raw::notify(self.region.u32(SEQ), self.region.u32(SLEEPERS), u32::MAX);
    }

    /// Clears the flag (Python's `clear`): later waits block until the next `set`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ev = multiproc::Event::new()?;
    /// ev.set();
    /// ev.clear();
    /// assert!(!ev.is_set());
    /// assert!(!ev.wait(Some(Duration::from_millis(10))));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn clear(&self) {
        self.region.u32(FLAG).store(0, Ordering::SeqCst);
    }

    /// Waits until the flag is set or `timeout` passes (`None`: no limit).
    /// Returns the flag (Python's `wait`): `false` means it timed out.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ev = multiproc::Event::new()?;
    /// assert!(!ev.wait(Some(Duration::from_millis(10)))); // timed out
    /// std::thread::scope(|s| {
    ///     s.spawn(|| ev.set());
    ///     assert!(ev.wait(None));
    /// });
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let r = &self.region;
        let res: std::result::Result<bool, ()> =
            raw::wait_until(r.u32(SEQ), r.u32(SLEEPERS), raw::deadline(timeout), || self.is_set(), || Ok(()));
        res.unwrap_or(false)
    }

    /// Waits at most `timeout`; the same as `wait(Some(timeout))`.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let ev = multiproc::Event::new()?;
    /// assert!(!ev.wait_timeout(Duration::from_millis(10)));
    /// ev.set();
    /// assert!(ev.wait_timeout(Duration::ZERO)); // set: returns at once
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait(Some(timeout))
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Event({})>", if self.is_set() { "set" } else { "unset" })
    }
}
