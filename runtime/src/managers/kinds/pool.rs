//! `pool`: registered tasks run by name on threads of the server process
//! (Python's `manager.Pool(n)`, whose pool lives in the manager's process).

use std::sync::{Arc, Condvar, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Bytes, lock, wait_until};
use crate::error::{Error, Result};
use crate::managers::protocol::protocol;
use crate::managers::proxy::proxy_type;
use crate::managers::server::{Caller, Object, de};
use crate::task::Task;

const KIND: &str = "pool";

protocol! {
    fn apply(task: String, args: Bytes) -> Bytes;
    fn map(task: String, args: Vec<Bytes>) -> Vec<Bytes>;
    fn close() -> ();
    fn join() -> ();
    fn processes() -> u64;
}

#[derive(Default)]
struct State {
    closed: bool,
    running: usize,
}

struct Pool {
    workers: usize,
    state: Mutex<State>,
    cv: Condvar,
}

pub(super) fn new(processes: u64) -> Result<Arc<dyn Object>> {
    if processes == 0 {
        return Err(Error::Remote("a manager Pool needs at least 1 worker (Pool(0))".into()));
    }
    Ok(Arc::new(Pool { workers: processes as usize, state: Mutex::default(), cv: Condvar::new() }))
}

/// One call of the task `name` on encoded arguments; its encoded result.
fn run(name: &str, args: &[u8]) -> Result<Bytes> {
    let entry = crate::registry::lookup(name)?;
    match crate::unwind::catch(|| entry.invoke(args, Vec::new())) {
        Ok(r) => Ok(r?.bytes),
        Err(p) => Err(Error::Remote(format!("task `{name}` panicked at {}: {}", p.location, p.message))),
    }
}

impl Pool {
    /// Counts a call as running (so `join` waits for it), or refuses it after `close`.
    fn enter(&self) -> Result<Running<'_>> {
        let mut s = lock(&self.state);
        if s.closed {
            return Err(Error::InvalidState("the manager's Pool is closed: it takes no more calls".into()));
        }
        s.running += 1;
        Ok(Running(self))
    }
}

/// A running call; done when dropped.
struct Running<'a>(&'a Pool);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        lock(&self.0.state).running -= 1;
        self.0.cv.notify_all();
    }
}

impl Object for Pool {
    fn kind(&self) -> &str {
        KIND
    }

    fn call(&self, caller: &Caller<'_>, call: &[u8]) -> Result<Vec<u8>> {
        serve(KIND, self, caller, call)
    }
}

impl Serve for Pool {
    fn apply(&self, _: &Caller<'_>, task: String, args: Bytes) -> Result<Bytes> {
        let _running = self.enter()?;
        run(&task, &args)
    }

    fn map(&self, _: &Caller<'_>, task: String, args: Vec<Bytes>) -> Result<Vec<Bytes>> {
        let _running = self.enter()?;
        let chunk = args.len().div_ceil(self.workers).max(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = args
                .chunks(chunk)
                .map(|part| scope.spawn(|| part.iter().map(|a| run(&task, a)).collect::<Result<Vec<_>>>()))
                .collect();
            let mut out = Vec::with_capacity(args.len());
            for h in handles {
                // `run` catches the task's panics; a worker thread has no other way to panic.
                out.extend(h.join().unwrap_or_else(|_| Err(Error::Remote("a pool thread panicked".into())))?);
            }
            Ok(out)
        })
    }

    fn close(&self, _: &Caller<'_>) -> Result<()> {
        lock(&self.state).closed = true;
        Ok(())
    }

    fn join(&self, caller: &Caller<'_>) -> Result<()> {
        let s = lock(&self.state);
        if !s.closed {
            return Err(Error::InvalidState("Pool is still running: close() it before join()".into()));
        }
        wait_until(&self.cv, s, caller, None, |s| s.running == 0).map(drop)
    }

    fn processes(&self, _: &Caller<'_>) -> Result<u64> {
        Ok(self.workers as u64)
    }
}

proxy_type! {
    /// A pool in a manager (Python's `manager.Pool(n)`): registered tasks run
    /// in the manager's server process, at most `n` at a time per call, on
    /// its threads (the server is a daemon process, which cannot have
    /// children of its own). Any process holding the proxy can submit work.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let manager = multiproc::Manager::start()?;
    ///     let pool = manager.pool(2)?;
    ///     assert_eq!(pool.map(square, [1, 2, 3])?, [1, 4, 9]);
    ///     pool.close()?;
    ///     pool.join()?;
    ///     Ok(())
    /// }
    /// ```
    PoolProxy [] KIND
}

/// The task's name and its arguments' bytes (a manager pool cannot receive file descriptors).
fn encode_call<F: Task<A>, A: Serialize>(task: &F, args: &A) -> Result<(String, Bytes)> {
    let name = task.task_name()?;
    let p = task.encode_args(args)?;
    if !p.fds.is_empty() {
        return Err(Error::Encode {
            what: "a manager Pool's task arguments",
            reason: "they hold a file descriptor (a Queue, Lock or Connection); pass a manager proxy instead".into(),
        });
    }
    Ok((name.to_string(), p.bytes))
}

impl PoolProxy {
    /// Runs `task(args…)` in the manager and returns its result (Python's `apply`).
    ///
    /// # Errors
    /// [`Error::Remote`] if the task panicked or the server's program does
    /// not have it; [`Error::InvalidState`](crate::Error::InvalidState) text
    /// (as [`Error::Remote`]) after [`close`](Self::close); [`Error::Encode`]
    /// for arguments holding a file descriptor.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn add(a: u64, b: u64) -> u64 {
    ///     a + b
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let manager = multiproc::Manager::start()?;
    ///     let pool = manager.pool(1)?;
    ///     assert_eq!(pool.apply(add, (2, 3))?, 5);
    ///     Ok(())
    /// }
    /// ```
    pub fn apply<F, A>(&self, task: F, args: A) -> Result<F::Output>
    where
        F: Task<A>,
        A: Serialize,
        F::Output: DeserializeOwned,
    {
        let (name, args) = encode_call(&task, &args)?;
        de(&Client(&self.token).apply(name, args)?)
    }

    /// Runs `task(x)` for every `x` of `inputs`; results in input order (Python's `map`).
    ///
    /// # Errors
    /// As [`apply`](Self::apply): the first failed call's error.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn host(_: u8) -> u32 {
    ///     std::process::id()
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let manager = multiproc::Manager::start()?;
    ///     let pool = manager.pool(2)?;
    ///     assert_eq!(pool.map(host, [0, 1])?, vec![manager.pid().unwrap(); 2]); // in the server
    ///     Ok(())
    /// }
    /// ```
    pub fn map<F, T, I>(&self, task: F, inputs: I) -> Result<Vec<F::Output>>
    where
        F: Task<(T,)>,
        T: Serialize,
        I: IntoIterator<Item = T>,
        F::Output: DeserializeOwned,
    {
        let name = task.task_name()?.to_string();
        let args = inputs.into_iter().map(|x| encode_call(&task, &(x,)).map(|(_, a)| a)).collect::<Result<Vec<_>>>()?;
        Client(&self.token).map(name, args)?.iter().map(|b| de(b)).collect()
    }

    /// Takes no more calls (Python's `close`); calls already running finish.
    ///
    /// # Errors
    /// A connection error if the manager is gone.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn one() -> u8 {
    ///     1
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let manager = multiproc::Manager::start()?;
    ///     let pool = manager.pool(1)?;
    ///     pool.close()?;
    ///     assert!(matches!(pool.apply(one, ()), Err(multiproc::Error::Remote(_))));
    ///     Ok(())
    /// }
    /// ```
    pub fn close(&self) -> Result<()> {
        Client(&self.token).close()
    }

    /// Waits until every running call has finished; the pool must be
    /// [`close`](Self::close)d first (Python's `join`).
    ///
    /// # Errors
    /// [`Error::Remote`] ("Pool is still running", Python's `ValueError`)
    /// before `close`; a connection error if the manager is gone.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let manager = multiproc::Manager::start()?;
    /// let pool = manager.pool(1)?;
    /// assert!(matches!(pool.join(), Err(multiproc::Error::Remote(_))));
    /// pool.close()?;
    /// pool.join()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn join(&self) -> Result<()> {
        Client(&self.token).join()
    }

    /// How many calls of one `map` run at a time (the `n` of `manager.pool(n)`).
    ///
    /// # Errors
    /// A connection error if the manager is gone.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let manager = multiproc::Manager::start()?;
    /// assert_eq!(manager.pool(3)?.processes()?, 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn processes(&self) -> Result<usize> {
        Ok(Client(&self.token).processes()? as usize)
    }
}
