//! `multiproc::dummy`: the multiproc API on threads of this process — Python's
//! `multiprocessing.dummy`.
//!
//! Change one line, `use multiproc as mp;` to `use multiproc::dummy as mp;`,
//! and a program that uses `mp::Process`, `mp::Pool`, the queues, pipes, locks,
//! shared values and managers runs its tasks on threads instead of processes.
//! Tasks are the same ([`#[multiproc::task]`](crate::task) functions and
//! [`lambda!`](crate::lambda!) closures, through the same [`Task`] bound).
//!
//! - [`Process`], [`current_process`], [`active_children`]: a thread with the
//!   API of [`crate::Process`] (Python's `DummyProcess`); see [`Process`] for
//!   what a thread cannot do.
//! - [`Pool`] (and [`PoolBuilder`], [`AsyncResult`], [`IMapIter`]): a thread
//!   pool with the API of [`crate::Pool`] (Python's `ThreadPool`). Values are
//!   not encoded, and results come back unwrapped: a task returning
//!   `Result<T, E>` gives you that `Result<T, E>`; a panic fails only its call,
//!   with [`Error::TaskPanicked`].
//! - Everything else is the process-shared object itself, which works between
//!   threads as it does between processes: [`Queue`], [`JoinableQueue`],
//!   [`pipe`], [`Lock`] … [`Barrier`], [`Value`], [`Array`], [`Manager`],
//!   [`cpu_count`].
//!
//! ```
//! use multiproc::dummy as mp; // or: use multiproc as mp;
//!
//! #[multiproc::task]
//! fn add(q: mp::Queue<u64>, x: u64) { q.put(x + 1).unwrap(); }
//!
//! fn main() -> mp::Result<()> {
//!     let q = mp::Queue::new()?;
//!     let mut p = mp::Process::new(add, (q.clone(), 41))?;
//!     p.start()?;
//!     assert_eq!(q.get()?, 42);
//!     p.join()?;
//!     assert_eq!(p.exitcode(), Some(mp::ExitStatus::Code(0)));
//!     let pool = mp::Pool::new(2)?;
//!     assert_eq!(pool.map(multiproc::lambda!(|x: u64| x * 2), 0..3)?, vec![0, 2, 4]);
//!     Ok(())
//! }
//! ```

mod process;

pub(crate) use self::process::join_threads;
pub use self::process::{Process, ProcessBuilder, active_children, current_process};
pub use crate::connection::{Connection, pipe, pipe_oneway};
pub use crate::error::{Error, ExitStatus, Result};
pub use crate::managers::Manager;
pub use crate::pool::dummy::{AsyncResult, IMapIter, Pool, PoolBuilder};
pub use crate::process::{ProcessInfo, cpu_count};
pub use crate::queues::{JoinableQueue, Queue, SimpleQueue};
pub use crate::shared::{Array, ArrayGuard, RawArray, RawValue, Value, ValueGuard};
pub use crate::sync::{
    Barrier, BoundedSemaphore, Condition, ConditionGuard, Event, Lock, LockGuard, RLock, RLockGuard, Semaphore,
    SemaphoreGuard,
};
pub use crate::task::Task;
