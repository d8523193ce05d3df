//! `condition`: a condition variable with its own re-entrant lock (Python's default `Condition()`).

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::lock::lock_methods;
use super::{lock, micros, timeout, wait_until};
use crate::error::{Error, Result};
use crate::managers::client::owner_token;
use crate::managers::protocol::protocol;
use crate::managers::proxy::proxy_type;
use crate::managers::server::{Caller, Object};

const KIND: &str = "condition";

protocol! {
    fn acquire(owner: u64, block: bool, timeout: Option<u64>) -> bool;
    fn release(owner: u64) -> ();
    fn wait(owner: u64, timeout: Option<u64>) -> bool;
    fn notify(owner: u64, n: u64) -> ();
    fn notify_all(owner: u64) -> ();
}

#[derive(Default)]
struct ConditionState {
    owner: Option<u64>,
    count: u64,
    next_ticket: u64,
    waiting: VecDeque<u64>,
    notified: HashSet<u64>,
}

struct Condition {
    state: Mutex<ConditionState>,
    cv: Condvar,
}

pub(super) fn new() -> Arc<dyn Object> {
    Arc::new(Condition { state: Mutex::default(), cv: Condvar::new() })
}

impl Condition {
    fn take_lock<'a>(
        &'a self,
        g: MutexGuard<'a, ConditionState>,
        caller: &Caller<'_>,
        me: u64,
        t: Option<Duration>,
    ) -> Result<(MutexGuard<'a, ConditionState>, bool)> {
        let (mut g, ok) = wait_until(&self.cv, g, caller, t, |s| s.owner.is_none() || s.owner == Some(me))?;
        if ok {
            g.owner = Some(me);
            g.count += 1;
        }
        Ok((g, ok))
    }

    fn check_owner(s: &ConditionState, me: u64, what: &str) -> Result<()> {
        if s.owner == Some(me) { Ok(()) } else { Err(Error::Remote(format!("cannot {what} an un-acquired condition"))) }
    }
}

impl Object for Condition {
    fn kind(&self) -> &str {
        KIND
    }

    fn call(&self, caller: &Caller<'_>, call: &[u8]) -> Result<Vec<u8>> {
        serve(KIND, self, caller, call)
    }
}

impl Serve for Condition {
    fn acquire(&self, caller: &Caller<'_>, me: u64, block: bool, t: Option<u64>) -> Result<bool> {
        let t = if block { timeout(t) } else { Some(Duration::ZERO) };
        Ok(self.take_lock(lock(&self.state), caller, me, t)?.1)
    }

    fn release(&self, _: &Caller<'_>, me: u64) -> Result<()> {
        let mut g = lock(&self.state);
        Self::check_owner(&g, me, "release")?;
        g.count -= 1;
        if g.count == 0 {
            g.owner = None;
            self.cv.notify_all();
        }
        Ok(())
    }

    fn wait(&self, caller: &Caller<'_>, me: u64, t: Option<u64>) -> Result<bool> {
        let mut g = lock(&self.state);
        Self::check_owner(&g, me, "wait on")?;
        let saved = std::mem::take(&mut g.count);
        g.owner = None;
        let ticket = g.next_ticket;
        g.next_ticket += 1;
        g.waiting.push_back(ticket);
        self.cv.notify_all();
        let waited = wait_until(&self.cv, g, caller, timeout(t), |s| s.notified.contains(&ticket));
        let (mut g, notified) = match waited {
            Ok(r) => r,
            Err(e) => {
                let mut g = lock(&self.state);
                g.waiting.retain(|w| *w != ticket);
                g.notified.remove(&ticket);
                return Err(e);
            }
        };
        g.notified.remove(&ticket);
        g.waiting.retain(|w| *w != ticket);
        // Re-acquire the lock with the saved recursion count.
        let (mut g, _) = wait_until(&self.cv, g, caller, None, |s| s.owner.is_none())?;
        g.owner = Some(me);
        g.count = saved;
        Ok(notified)
    }

    fn notify(&self, _: &Caller<'_>, me: u64, n: u64) -> Result<()> {
        let mut g = lock(&self.state);
        Self::check_owner(&g, me, "notify on")?;
        for _ in 0..n {
            let Some(t) = g.waiting.pop_front() else { break };
            g.notified.insert(t);
        }
        self.cv.notify_all();
        Ok(())
    }

    fn notify_all(&self, _: &Caller<'_>, me: u64) -> Result<()> {
        let mut g = lock(&self.state);
        Self::check_owner(&g, me, "notify on")?;
        let all: Vec<u64> = g.waiting.drain(..).collect();
        g.notified.extend(all);
        self.cv.notify_all();
        Ok(())
    }
}

proxy_type! {
    /// A condition variable with its own re-entrant lock (Python's `manager.Condition()`).
    ///
    /// A child changes shared state under the lock and notifies; the parent
    /// waits for the state it needs:
    ///
    /// ```
    /// use multiproc::managers::{ConditionProxy, ValueProxy};
    /// use std::time::Duration;
    ///
    /// #[multiproc::task]
    /// fn produce(cond: ConditionProxy, ready: ValueProxy<bool>) {
    ///     cond.acquire().unwrap();
    ///     ready.set(true).unwrap();
    ///     cond.notify_all().unwrap();
    ///     cond.release().unwrap();
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let manager = multiproc::Manager::start()?;
    ///     let (cond, ready) = (manager.condition()?, manager.value(false)?);
    ///     let mut p = multiproc::Process::new(produce, (cond.clone(), ready.clone()))?;
    ///     p.start()?;
    ///     cond.acquire()?;
    ///     let seen = cond.wait_for(|| ready.get().unwrap_or(false), Some(Duration::from_secs(10)))?;
    ///     cond.release()?;
    ///     assert!(seen);
    ///     p.join()?;
    ///     Ok(())
    /// }
    /// ```
    ConditionProxy [] KIND
}
lock_methods!(ConditionProxy, Client, "condition");

impl ConditionProxy {
    /// Releases the lock, waits for a notification (or `timeout`; `None`: no
    /// limit), re-acquires the lock; whether it was notified (Python's
    /// `wait`). The caller must hold the lock.
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) if the lock is not held by this thread.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// use std::time::Duration;
    /// let cond = manager.condition()?;
    /// assert!(matches!(cond.wait(None), Err(multiproc::Error::Remote(_)))); // not held
    /// cond.acquire()?;
    /// assert!(!cond.wait(Some(Duration::from_millis(20)))?); // nobody notified
    /// cond.release()?; // held again after the wait
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        Client(&self.token).wait(owner_token(), micros(timeout))
    }

    /// Waits until `predicate()` holds, re-checking after each notification;
    /// returns its last value (false after `timeout`; Python's `wait_for`).
    /// The caller must hold the lock.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// use std::time::Duration;
    /// let (cond, items) = (manager.condition()?, manager.list::<u8>()?);
    /// std::thread::scope(|s| {
    ///     s.spawn(|| -> multiproc::Result<()> {
    ///         for x in 0..3 {
    ///             cond.acquire()?;
    ///             items.push(x)?;
    ///             cond.notify_all()?;
    ///             cond.release()?;
    ///         }
    ///         Ok(())
    ///     });
    ///     cond.acquire()?;
    ///     let three = cond.wait_for(|| items.len().unwrap_or(0) == 3, Some(Duration::from_secs(10)))?;
    ///     cond.release()?;
    ///     assert!(three);
    ///     Ok(())
    /// })
    /// # }
    /// ```
    pub fn wait_for(&self, mut predicate: impl FnMut() -> bool, timeout: Option<Duration>) -> Result<bool> {
        let deadline = crate::backoff::deadline(timeout);
        loop {
            if predicate() {
                return Ok(true);
            }
            let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return Ok(false);
            }
            self.wait(left)?;
        }
    }

    /// Wakes up to `n` waiters (Python's `notify(n)`). The caller must hold the lock.
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) if the lock is not held by this thread.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// use std::time::Duration;
    /// let (cond, go) = (manager.condition()?, manager.value(false)?);
    /// std::thread::scope(|s| {
    ///     let waiter = s.spawn(|| -> multiproc::Result<bool> {
    ///         cond.acquire()?;
    ///         let seen = cond.wait_for(|| go.get().unwrap_or(false), Some(Duration::from_secs(10)));
    ///         cond.release()?;
    ///         seen
    ///     });
    ///     cond.acquire()?;
    ///     go.set(true)?;
    ///     cond.notify(1)?;
    ///     cond.release()?;
    ///     assert!(waiter.join().unwrap()?);
    ///     Ok(())
    /// })
    /// # }
    /// ```
    pub fn notify(&self, n: usize) -> Result<()> {
        Client(&self.token).notify(owner_token(), n as u64)
    }

    /// Wakes every waiter (Python's `notify_all`). The caller must hold the lock.
    ///
    /// # Errors
    /// As [`notify`](Self::notify).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let cond = manager.condition()?;
    /// assert!(matches!(cond.notify_all(), Err(multiproc::Error::Remote(_)))); // not held
    /// cond.acquire()?;
    /// cond.notify_all()?; // no waiters: nothing happens
    /// cond.release()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn notify_all(&self) -> Result<()> {
        Client(&self.token).notify_all(owner_token())
    }
}
