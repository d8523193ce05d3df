//! `barrier`: waits until `parties` callers have arrived.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::{lock, micros, timeout, wait_until};
use crate::error::{Error, Result};
use crate::managers::protocol::protocol;
use crate::managers::proxy::proxy_type;
use crate::managers::server::{Caller, Object};

const KIND: &str = "barrier";

protocol! {
    fn wait(timeout: Option<u64>) -> u64;
    fn reset() -> ();
    fn abort() -> ();
    fn parties() -> u64;
    fn n_waiting() -> u64;
    fn broken() -> bool;
}

#[derive(Default)]
struct BarrierState {
    count: u64,
    generation: u64,
    broken: bool,
    /// Generations ended by `reset` rather than by the last party arriving.
    reset: HashSet<u64>,
}

struct Barrier {
    parties: u64,
    state: Mutex<BarrierState>,
    cv: Condvar,
}

pub(super) fn new(parties: u64) -> Result<Arc<dyn Object>> {
    if parties == 0 {
        return Err(Error::Remote("a barrier needs at least one party".into()));
    }
    Ok(Arc::new(Barrier { parties, state: Mutex::default(), cv: Condvar::new() }))
}

impl Object for Barrier {
    fn kind(&self) -> &str {
        KIND
    }

    fn call(&self, caller: &Caller<'_>, call: &[u8]) -> Result<Vec<u8>> {
        serve(KIND, self, caller, call)
    }
}

impl Serve for Barrier {
    fn wait(&self, caller: &Caller<'_>, t: Option<u64>) -> Result<u64> {
        let mut g = lock(&self.state);
        if g.broken {
            return Err(Error::BrokenBarrier);
        }
        let index = g.count;
        g.count += 1;
        if g.count == self.parties {
            g.count = 0;
            g.generation += 1;
            self.cv.notify_all();
            return Ok(index);
        }
        let generation = g.generation;
        let waited = wait_until(&self.cv, g, caller, timeout(t), |s| s.generation != generation || s.broken);
        let (mut g, ok) = match waited {
            Ok(r) => r,
            Err(e) => {
                let mut g = lock(&self.state);
                g.broken = true;
                self.cv.notify_all();
                return Err(e);
            }
        };
        if g.generation != generation && !g.reset.contains(&generation) {
            return Ok(index);
        }
        if !ok {
            g.broken = true;
            self.cv.notify_all();
        }
        Err(Error::BrokenBarrier)
    }

    fn reset(&self, _: &Caller<'_>) -> Result<()> {
        let mut g = lock(&self.state);
        // The current generation's waiters get BrokenBarrier; the next one starts clean.
        if g.count > 0 {
            let current = g.generation;
            g.reset.insert(current);
        }
        g.count = 0;
        g.generation += 1;
        g.broken = false;
        self.cv.notify_all();
        Ok(())
    }

    fn abort(&self, _: &Caller<'_>) -> Result<()> {
        lock(&self.state).broken = true;
        self.cv.notify_all();
        Ok(())
    }

    fn parties(&self, _: &Caller<'_>) -> Result<u64> {
        Ok(self.parties)
    }

    fn n_waiting(&self, _: &Caller<'_>) -> Result<u64> {
        Ok(lock(&self.state).count)
    }

    fn broken(&self, _: &Caller<'_>) -> Result<bool> {
        Ok(lock(&self.state).broken)
    }
}

proxy_type! {
    /// A barrier for `parties` threads or processes (Python's `manager.Barrier(n)`).
    ///
    /// A parent and its child meet at the barrier:
    ///
    /// ```
    /// use multiproc::managers::BarrierProxy;
    ///
    /// #[multiproc::task]
    /// fn meet(b: BarrierProxy) {
    ///     b.wait(None).unwrap();
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let manager = multiproc::Manager::start()?;
    ///     let b = manager.barrier(2)?;
    ///     let mut p = multiproc::Process::new(meet, (b.clone(),))?;
    ///     p.start()?;
    ///     let index = b.wait(None)?; // returns once the child has arrived too
    ///     assert!(index < 2);
    ///     p.join()?;
    ///     Ok(())
    /// }
    /// ```
    BarrierProxy [] KIND
}

impl BarrierProxy {
    /// Waits until every party has arrived (or `timeout`; `None`: no limit);
    /// returns this party's arrival index (0..parties; Python's `wait`).
    ///
    /// # Errors
    /// [`Error::BrokenBarrier`](crate::Error::BrokenBarrier) if the barrier was
    /// reset, aborted, or `timeout` passed (which breaks it for everyone).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let b = manager.barrier(2)?;
    /// std::thread::scope(|s| {
    ///     let other = s.spawn(|| b.wait(None));
    ///     let mine = b.wait(None)?;
    ///     let theirs = other.join().unwrap()?;
    ///     assert_eq!(mine + theirs, 1); // one arrived first (0), one second (1)
    ///     Ok(())
    /// })
    /// # }
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> Result<usize> {
        Ok(Client(&self.token).wait(micros(timeout))? as usize)
    }

    /// Returns the barrier to its initial state (Python's `reset`); current
    /// waiters get `BrokenBarrier`, and a broken barrier works again.
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let b = manager.barrier(1)?;
    /// b.abort()?;
    /// b.reset()?;
    /// assert!(!b.broken()?);
    /// assert_eq!(b.wait(None)?, 0); // one party: passes at once
    /// # Ok(())
    /// # }
    /// ```
    pub fn reset(&self) -> Result<()> {
        Client(&self.token).reset()
    }

    /// Breaks the barrier (Python's `abort`): current and future waiters get
    /// `BrokenBarrier` until a [`reset`](Self::reset).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let b = manager.barrier(2)?;
    /// b.abort()?;
    /// assert!(matches!(b.wait(None), Err(multiproc::Error::BrokenBarrier)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn abort(&self) -> Result<()> {
        Client(&self.token).abort()
    }

    /// The number of parties (Python's `parties`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let b = manager.barrier(3)?;
    /// assert_eq!(b.parties()?, 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn parties(&self) -> Result<usize> {
        Ok(Client(&self.token).parties()? as usize)
    }

    /// How many parties are waiting now (Python's `n_waiting`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let b = manager.barrier(2)?;
    /// assert_eq!(b.n_waiting()?, 0);
    /// std::thread::scope(|s| {
    ///     let other = s.spawn(|| b.wait(None));
    ///     while b.n_waiting()? == 0 {} // until the other thread is in `wait`
    ///     assert_eq!(b.n_waiting()?, 1);
    ///     b.wait(None)?;
    ///     other.join().unwrap()?;
    ///     Ok(())
    /// })
    /// # }
    /// ```
    pub fn n_waiting(&self) -> Result<usize> {
        Ok(Client(&self.token).n_waiting()? as usize)
    }

    /// Whether the barrier is broken (Python's `broken`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// use std::time::Duration;
    /// let b = manager.barrier(2)?;
    /// assert!(!b.broken()?);
    /// let alone = b.wait(Some(Duration::from_millis(20))); // nobody else comes
    /// assert!(matches!(alone, Err(multiproc::Error::BrokenBarrier)));
    /// assert!(b.broken()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn broken(&self) -> Result<bool> {
        Client(&self.token).broken()
    }
}
