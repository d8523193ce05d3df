//! The built-in kinds of shared object, one file each: its [`protocol!`]
//! (the method list), its server-side object, and its typed proxy, side by side.
//!
//! The server stores encoded values and never needs their types; each proxy
//! encodes arguments and decodes results with its own type parameters. Every
//! blocking method waits on a `Condvar` in slices of [`CALLER_CHECK`], and
//! gives up without taking anything if its caller has hung up, so a client
//! killed mid-call cannot swallow an item meant for another.
//!
//! [`protocol!`]: super::protocol::protocol

mod barrier;
mod condition;
mod custom;
mod dict;
mod event;
mod list;
mod lock;
mod namespace;
mod pool;
mod queue;
mod semaphore;
mod set;
mod value;

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::server::{CALLER_CHECK, Caller, Object, de};
use crate::error::{Error, Result};

pub use barrier::BarrierProxy;
pub use condition::ConditionProxy;
pub(crate) use custom::{Custom, Erased};
pub use dict::DictProxy;
pub use event::EventProxy;
pub use list::ListProxy;
pub use lock::{LockProxy, RLockProxy};
pub use namespace::NamespaceProxy;
pub use pool::PoolProxy;
pub use queue::QueueProxy;
pub use semaphore::SemaphoreProxy;
pub use set::SetProxy;
pub use value::ValueProxy;

/// An encoded value, as the server stores it.
type Bytes = Vec<u8>;

/// A new built-in object, with its initial state (the manager's `create`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Init {
    Dict(Vec<(Bytes, Bytes)>),
    List(Vec<Bytes>),
    Value(Bytes),
    Namespace,
    Queue { maxsize: u64 },
    Lock,
    RLock,
    Semaphore { value: u64, bounded: bool },
    Condition,
    Event,
    Barrier { parties: u64 },
    Set(Vec<Bytes>),
    Pool { processes: u64 },
}

impl Init {
    /// Builds the object.
    ///
    /// # Errors
    /// [`Error::Remote`] for a barrier of no parties or a pool of no workers.
    pub(crate) fn build(self) -> Result<Arc<dyn Object>> {
        Ok(match self {
            Init::Dict(items) => dict::new(items),
            Init::List(items) => list::new(items),
            Init::Value(v) => value::new(v),
            Init::Namespace => namespace::new(),
            Init::Queue { maxsize } => queue::new(maxsize),
            Init::Lock => lock::new(false),
            Init::RLock => lock::new(true),
            Init::Semaphore { value, bounded } => semaphore::new(value, bounded),
            Init::Condition => condition::new(),
            Init::Event => event::new(),
            Init::Barrier { parties } => barrier::new(parties)?,
            Init::Set(items) => set::new(items),
            Init::Pool { processes } => pool::new(processes)?,
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn timeout(micros: Option<u64>) -> Option<Duration> {
    micros.map(Duration::from_micros)
}

fn micros(t: Option<Duration>) -> Option<u64> {
    t.map(|d| d.as_micros().min(u128::from(u64::MAX)) as u64)
}

fn decode_opt<T: DeserializeOwned>(b: Option<Bytes>) -> Result<Option<T>> {
    b.map(|b| de(&b)).transpose()
}

fn decode_all<T: DeserializeOwned>(items: Vec<Bytes>) -> Result<Vec<T>> {
    items.iter().map(|b| de(b)).collect()
}

/// Waits on `cv` until `ready` holds (true), `timeout` passes (false), or the
/// caller hangs up ([`Error::Closed`]).
fn wait_until<'a, S>(
    cv: &Condvar,
    mut guard: MutexGuard<'a, S>,
    caller: &Caller<'_>,
    timeout: Option<Duration>,
    mut ready: impl FnMut(&mut S) -> bool,
) -> Result<(MutexGuard<'a, S>, bool)> {
    let deadline = crate::backoff::deadline(timeout);
    loop {
        if caller.gone() {
            return Err(Error::Closed("the caller's connection"));
        }
        if ready(&mut guard) {
            return Ok((guard, true));
        }
        let slice = match deadline {
            None => CALLER_CHECK,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok((guard, false));
                }
                left.min(CALLER_CHECK)
            }
        };
        guard = cv.wait_timeout(guard, slice).unwrap_or_else(|p| p.into_inner()).0;
    }
}

/// [`wait_until`] when `block`, else one look at `ready`.
fn wait_or_try<'a, S>(
    cv: &Condvar,
    mut guard: MutexGuard<'a, S>,
    caller: &Caller<'_>,
    block: bool,
    timeout: Option<Duration>,
    mut ready: impl FnMut(&mut S) -> bool,
) -> Result<(MutexGuard<'a, S>, bool)> {
    if block {
        wait_until(cv, guard, caller, timeout, ready)
    } else {
        let ok = ready(&mut guard);
        Ok((guard, ok))
    }
}
