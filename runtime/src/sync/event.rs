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
/// stays set until [`clear`](Event::clear).
///
/// ```no_run
/// #[multiproc::task]
/// fn signal(ev: multiproc::Event) { ev.set(); }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let ev = multiproc::Event::new()?;
///     let mut p = multiproc::Process::new(signal, (ev.clone(),))?;
///     p.start()?;
///     assert!(ev.wait(None));
///     p.join()
/// }
/// ```
#[derive(Clone)]
pub struct Event {
    region: Arc<Region>,
}

region_serde!(Event, Kind::Event, |region| Ok::<_, Error>(Event { region }));

impl Event {
    /// A new, unset event.
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created.
    pub fn new() -> Result<Event> {
        Ok(Event { region: Region::create(Kind::Event, 64, 0)? })
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.region.u32(FLAG).load(Ordering::Acquire) != 0
    }

    /// Sets the flag and wakes every waiter.
    pub fn set(&self) {
        self.region.u32(FLAG).store(1, Ordering::SeqCst);
        raw::notify(self.region.u32(SEQ), self.region.u32(SLEEPERS), u32::MAX);
    }

    /// Clears the flag.
    pub fn clear(&self) {
        self.region.u32(FLAG).store(0, Ordering::SeqCst);
    }

    /// Waits until the flag is set or `timeout` passes (`None`: no limit).
    /// Returns the flag (Python's `wait`): `false` means it timed out.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let r = &self.region;
        let res: std::result::Result<bool, ()> =
            raw::wait_until(r.u32(SEQ), r.u32(SLEEPERS), raw::deadline(timeout), || self.is_set(), || Ok(()));
        res.unwrap_or(false)
    }

    /// Waits at most `timeout`; the same as `wait(Some(timeout))`.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait(Some(timeout))
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Event({})>", if self.is_set() { "set" } else { "unset" })
    }
}
