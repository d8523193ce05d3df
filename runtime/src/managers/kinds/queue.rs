//! `queue`: a FIFO of encoded values, optionally bounded.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Bytes, lock, micros, timeout, wait_or_try, wait_until};
use crate::error::{Error, Result};
use crate::managers::protocol::protocol;
use crate::managers::proxy::proxy_type;
use crate::managers::server::{Caller, Object, de, en};

const KIND: &str = "queue";

protocol! {
    fn put(item: Bytes, block: bool, timeout: Option<u64>) -> ();
    fn get(block: bool, timeout: Option<u64>) -> Bytes;
    fn qsize() -> u64;
    fn empty() -> bool;
    fn full() -> bool;
    fn task_done() -> ();
    fn join(timeout: Option<u64>) -> bool;
}

/// The items, and how many put items have not been marked done (`join`).
#[derive(Default)]
struct State {
    items: VecDeque<Bytes>,
    unfinished: u64,
}

struct Queue {
    state: Mutex<State>,
    cv: Condvar,
    maxsize: usize,
}

pub(super) fn new(maxsize: u64) -> Arc<dyn Object> {
    Arc::new(Queue { state: Mutex::new(State::default()), cv: Condvar::new(), maxsize: maxsize as usize })
}

impl Queue {
    fn is_full(&self, s: &State) -> bool {
        self.maxsize > 0 && s.items.len() >= self.maxsize
    }
}

impl Object for Queue {
    fn kind(&self) -> &str {
        KIND
    }

    fn call(&self, caller: &Caller<'_>, call: &[u8]) -> Result<Vec<u8>> {
        serve(KIND, self, caller, call)
    }
}

impl Serve for Queue {
    fn put(&self, caller: &Caller<'_>, item: Bytes, block: bool, t: Option<u64>) -> Result<()> {
        let g = lock(&self.state);
        let (mut g, ok) = wait_or_try(&self.cv, g, caller, block, timeout(t), |q| !self.is_full(q))?;
        if !ok {
            return Err(Error::Full);
        }
        g.items.push_back(item);
        g.unfinished += 1;
        self.cv.notify_all();
        Ok(())
    }
    fn get(&self, caller: &Caller<'_>, block: bool, t: Option<u64>) -> Result<Bytes> {
        let g = lock(&self.state);
        let (mut g, ok) = wait_or_try(&self.cv, g, caller, block, timeout(t), |q| !q.items.is_empty())?;
        let item = if ok { g.items.pop_front() } else { None };
        let item = item.ok_or(Error::Empty)?;
        self.cv.notify_all();
        Ok(item)
    }
    fn qsize(&self, _: &Caller<'_>) -> Result<u64> {
        Ok(lock(&self.state).items.len() as u64)
    }
    fn empty(&self, _: &Caller<'_>) -> Result<bool> {
        Ok(lock(&self.state).items.is_empty())
    }
    fn full(&self, _: &Caller<'_>) -> Result<bool> {
        Ok(self.is_full(&lock(&self.state)))
    }
    fn task_done(&self, _: &Caller<'_>) -> Result<()> {
        let mut g = lock(&self.state);
        if g.unfinished == 0 {
            return Err(Error::InvalidState("task_done() called more times than there were items put".into()));
        }
        g.unfinished -= 1;
        if g.unfinished == 0 {
            self.cv.notify_all();
        }
        Ok(())
    }
    fn join(&self, caller: &Caller<'_>, t: Option<u64>) -> Result<bool> {
        let g = lock(&self.state);
        Ok(wait_until(&self.cv, g, caller, timeout(t), |s| s.unfinished == 0)?.1)
    }
}

proxy_type! {
    /// A FIFO queue in a manager (Python's `manager.Queue()` and
    /// `manager.JoinableQueue()`, which share a type, as Python's `queue.Queue`
    /// has `task_done` and `join`), optionally bounded.
    QueueProxy [T] KIND
}

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    /// Puts `item`, waiting while the queue is full.
    ///
    /// # Errors
    /// A connection error.
    pub fn put(&self, item: T) -> Result<()> {
        Client(&self.token).put(en(&item)?, true, None)
    }

    /// Puts `item`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`Error::Full`](crate::Error::Full) if there was no room in time.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<()> {
        Client(&self.token).put(en(&item)?, true, micros(Some(timeout)))
    }

    /// Puts `item` if there is room now.
    ///
    /// # Errors
    /// [`Error::Full`](crate::Error::Full) if there is none.
    pub fn put_nowait(&self, item: T) -> Result<()> {
        Client(&self.token).put(en(&item)?, false, None)
    }

    /// Takes the oldest item, waiting until there is one.
    ///
    /// # Errors
    /// A connection error.
    pub fn get(&self) -> Result<T> {
        de(&Client(&self.token).get(true, None)?)
    }

    /// Takes the oldest item, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`Error::Empty`](crate::Error::Empty) if nothing arrived in time.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        de(&Client(&self.token).get(true, micros(Some(timeout)))?)
    }

    /// Takes the oldest item if there is one now.
    ///
    /// # Errors
    /// [`Error::Empty`](crate::Error::Empty) if the queue is empty.
    pub fn get_nowait(&self) -> Result<T> {
        de(&Client(&self.token).get(false, None)?)
    }

    /// The number of items.
    ///
    /// # Errors
    /// A connection error.
    pub fn qsize(&self) -> Result<usize> {
        Ok(Client(&self.token).qsize()? as usize)
    }

    /// Whether the queue is empty.
    ///
    /// # Errors
    /// A connection error.
    pub fn empty(&self) -> Result<bool> {
        Client(&self.token).empty()
    }

    /// Whether the queue is at its bound.
    ///
    /// # Errors
    /// A connection error.
    pub fn full(&self) -> Result<bool> {
        Client(&self.token).full()
    }

    /// Marks one item taken with `get` as processed (Python's `task_done`).
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) if called more times than items
    /// were put; a connection error.
    pub fn task_done(&self) -> Result<()> {
        Client(&self.token).task_done()
    }

    /// Waits until every item put has been marked done (Python's `join`).
    ///
    /// # Errors
    /// A connection error.
    pub fn join(&self) -> Result<()> {
        Client(&self.token).join(None).map(drop)
    }

    /// As [`join`](Self::join), waiting at most `timeout`; whether all were done.
    ///
    /// # Errors
    /// A connection error.
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool> {
        Client(&self.token).join(micros(Some(timeout)))
    }
}
