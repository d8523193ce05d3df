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
    BarrierProxy [] KIND
}

impl BarrierProxy {
    /// Waits until every party has arrived; returns this party's arrival index (0..parties).
    ///
    /// # Errors
    /// [`Error::BrokenBarrier`](crate::Error::BrokenBarrier) if the barrier was
    /// reset, aborted, or `timeout` passed (which breaks it for everyone).
    pub fn wait(&self, timeout: Option<Duration>) -> Result<usize> {
        Ok(Client(&self.token).wait(micros(timeout))? as usize)
    }

    /// Returns the barrier to its initial state; current waiters get `BrokenBarrier`.
    ///
    /// # Errors
    /// A connection error.
    pub fn reset(&self) -> Result<()> {
        Client(&self.token).reset()
    }

    /// Breaks the barrier: current and future waiters get `BrokenBarrier` until a reset.
    ///
    /// # Errors
    /// A connection error.
    pub fn abort(&self) -> Result<()> {
        Client(&self.token).abort()
    }

    /// The number of parties.
    ///
    /// # Errors
    /// A connection error.
    pub fn parties(&self) -> Result<usize> {
        Ok(Client(&self.token).parties()? as usize)
    }

    /// How many parties are waiting now.
    ///
    /// # Errors
    /// A connection error.
    pub fn n_waiting(&self) -> Result<usize> {
        Ok(Client(&self.token).n_waiting()? as usize)
    }

    /// Whether the barrier is broken.
    ///
    /// # Errors
    /// A connection error.
    pub fn broken(&self) -> Result<bool> {
        Client(&self.token).broken()
    }
}
