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
    ///
    /// A child process that receives the proxy takes from the same queue:
    ///
    /// ```
    /// use multiproc::managers::QueueProxy;
    ///
    /// #[multiproc::task]
    /// fn double(jobs: QueueProxy<u64>, results: QueueProxy<u64>) {
    ///     let x = jobs.get().unwrap();
    ///     results.put(2 * x).unwrap();
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let manager = multiproc::Manager::start()?;
    ///     let (jobs, results) = (manager.queue()?, manager.queue()?);
    ///     let mut p = multiproc::Process::new(double, (jobs.clone(), results.clone()))?;
    ///     p.start()?;
    ///     jobs.put(21)?;
    ///     assert_eq!(results.get()?, 42);
    ///     p.join()?;
    ///     Ok(())
    /// }
    /// ```
    QueueProxy [T] KIND
}

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    /// Puts `item`, waiting while the queue is full (Python's `put`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let q = manager.queue::<String>()?;
    /// q.put("first".into())?;
    /// q.put("second".into())?;
    /// assert_eq!(q.get()?, "first");
    /// # Ok(())
    /// # }
    /// ```
    pub fn put(&self, item: T) -> Result<()> {
        Client(&self.token).put(en(&item)?, true, None)
    }

    /// Puts `item`, waiting at most `timeout` for room (Python's `put(item, timeout=t)`).
    ///
    /// # Errors
    /// [`Error::Full`](crate::Error::Full) if there was no room in time.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// use std::time::Duration;
    /// let q = manager.queue_bounded::<u8>(1)?;
    /// q.put_timeout(1, Duration::from_millis(20))?;
    /// let full = q.put_timeout(2, Duration::from_millis(20));
    /// assert!(matches!(full, Err(multiproc::Error::Full)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<()> {
        Client(&self.token).put(en(&item)?, true, micros(Some(timeout)))
    }

    /// Puts `item` if there is room now (Python's `put_nowait`).
    ///
    /// # Errors
    /// [`Error::Full`](crate::Error::Full) if there is none.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let q = manager.queue_bounded::<u8>(1)?;
    /// q.put_nowait(1)?;
    /// assert!(matches!(q.put_nowait(2), Err(multiproc::Error::Full)));
    /// assert_eq!(q.qsize()?, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn put_nowait(&self, item: T) -> Result<()> {
        Client(&self.token).put(en(&item)?, false, None)
    }

    /// Takes the oldest item, waiting until there is one (Python's `get`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let q = manager.queue::<u32>()?;
    /// std::thread::scope(|s| {
    ///     s.spawn(|| q.put(7));
    ///     assert_eq!(q.get()?, 7); // waits for the other thread's put
    ///     Ok(())
    /// })
    /// # }
    /// ```
    pub fn get(&self) -> Result<T> {
        de(&Client(&self.token).get(true, None)?)
    }

    /// Takes the oldest item, waiting at most `timeout` (Python's `get(timeout=t)`).
    ///
    /// # Errors
    /// [`Error::Empty`](crate::Error::Empty) if nothing arrived in time.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// use std::time::Duration;
    /// let q = manager.queue::<u8>()?;
    /// let empty = q.get_timeout(Duration::from_millis(20));
    /// assert!(matches!(empty, Err(multiproc::Error::Empty)));
    /// q.put(5)?;
    /// assert_eq!(q.get_timeout(Duration::from_millis(20))?, 5);
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        de(&Client(&self.token).get(true, micros(Some(timeout)))?)
    }

    /// Takes the oldest item if there is one now (Python's `get_nowait`).
    ///
    /// # Errors
    /// [`Error::Empty`](crate::Error::Empty) if the queue is empty.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let q = manager.queue::<u8>()?;
    /// q.put(1)?;
    /// assert_eq!(q.get_nowait()?, 1);
    /// assert!(matches!(q.get_nowait(), Err(multiproc::Error::Empty)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn get_nowait(&self) -> Result<T> {
        de(&Client(&self.token).get(false, None)?)
    }

    /// The number of items (Python's `qsize`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let q = manager.queue::<u8>()?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// assert_eq!(q.qsize()?, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn qsize(&self) -> Result<usize> {
        Ok(Client(&self.token).qsize()? as usize)
    }

    /// Whether the queue is empty (Python's `empty`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let q = manager.queue::<u8>()?;
    /// assert!(q.empty()?);
    /// q.put(1)?;
    /// assert!(!q.empty()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn empty(&self) -> Result<bool> {
        Client(&self.token).empty()
    }

    /// Whether the queue is at its bound (Python's `full`; never, for an unbounded queue).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let q = manager.queue_bounded::<u8>(2)?;
    /// q.put(1)?;
    /// assert!(!q.full()?);
    /// q.put(2)?;
    /// assert!(q.full()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn full(&self) -> Result<bool> {
        Client(&self.token).full()
    }

    /// Marks one item taken with `get` as processed (Python's `task_done`).
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) if called more times than items
    /// were put; a connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// use std::time::Duration;
    /// let q = manager.joinable_queue::<u8>()?;
    /// q.put(1)?;
    /// q.get()?;
    /// assert!(!q.join_timeout(Duration::ZERO)?); // taken, not yet done
    /// q.task_done()?;
    /// assert!(q.join_timeout(Duration::ZERO)?);
    /// assert!(matches!(q.task_done(), Err(multiproc::Error::Remote(_))));
    /// # Ok(())
    /// # }
    /// ```
    pub fn task_done(&self) -> Result<()> {
        Client(&self.token).task_done()
    }

    /// Waits until every item put has been marked done (Python's `join`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let q = manager.joinable_queue::<u32>()?;
    /// let done = manager.list::<u32>()?;
    /// for x in 1..=3 {
    ///     q.put(x)?;
    /// }
    /// std::thread::scope(|s| {
    ///     s.spawn(|| -> multiproc::Result<()> {
    ///         for _ in 0..3 {
    ///             done.push(q.get()? * 10)?;
    ///             q.task_done()?;
    ///         }
    ///         Ok(())
    ///     });
    ///     q.join()?; // returns once the worker marked all three done
    ///     assert_eq!(done.snapshot()?, [10, 20, 30]);
    ///     Ok(())
    /// })
    /// # }
    /// ```
    pub fn join(&self) -> Result<()> {
        Client(&self.token).join(None).map(drop)
    }

    /// As [`join`](Self::join), waiting at most `timeout`; whether all were done.
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// use std::time::Duration;
    /// let q = manager.joinable_queue::<u8>()?;
    /// assert!(q.join_timeout(Duration::ZERO)?); // nothing was put
    /// q.put(1)?;
    /// assert!(!q.join_timeout(Duration::from_millis(20))?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool> {
        Client(&self.token).join(micros(Some(timeout)))
    }
}
