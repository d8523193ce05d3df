//! # multiproc
//!
//! Python's `multiprocessing`, done the Rust way: annotate plain functions with
//! [`#[multiproc::task]`](task), and run them in real OS processes — many at
//! once through a [`Pool`], or one at a time with [`Process`].
//!
//! ```
//! #[multiproc::task]
//! fn square(x: u64) -> u64 { x * x }
//!
//! #[multiproc::main]
//! fn main() -> multiproc::Result<()> {
//!     let pool = multiproc::Pool::new(2)?;
//!     assert_eq!(pool.map(square, 0..10)?, vec![0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
//!     Ok(())
//! }
//! ```
//!
//! The guide in `book/` (build with `mdbook build book`) walks through pools,
//! processes, pipes, queues, shared memory, synchronisation, managers and MPI.
//!
//! One process and a pipe:
//!
//! ```
//! #[multiproc::task]
//! fn greet(name: String, conn: multiproc::Connection<String>) {
//!     conn.send(&format!("hello {name}")).unwrap();
//! }
//!
//! #[multiproc::main]
//! fn main() -> multiproc::Result<()> {
//!     let (parent, child) = multiproc::pipe()?;
//!     let mut p = multiproc::Process::new(greet, ("bob".to_string(), child))?;
//!     p.start()?;
//!     assert_eq!(parent.recv()?, "hello bob");
//!     p.join()?;
//!     assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
//!     Ok(())
//! }
//! ```
//!
//! ## How a child finds its code
//!
//! Rust cannot pickle a closure. `#[multiproc::task]` registers the function
//! under a stable name (`module::path::name`), checked at compile time: only
//! registered tasks implement [`Task`]; a child process — this same
//! binary, forked or re-executed — looks the name up and runs it. Under the
//! spawn and forkserver start methods the child re-executes the binary, so
//! `fn main` must carry [`#[multiproc::main]`](main) (the counterpart of
//! Python's `if __name__ == "__main__":`) and tests [`#[multiproc::test]`](test).
//!
//! ## Module map
//!
//! Arrows point down: a module uses only modules listed below it (a parent
//! module and its own files may refer to each other; checked with the
//! project's `modcycles.py runtime/src`: no cycle across top-level modules).
//!
//! - `role` — the child entry (`main_entry`, `test_entry`): takes a role, hands the child body down
//! - `dummy/` — `multiproc::dummy`, the API on threads: `Process` on a thread, `current_process`, `active_children`; re-exports `pool`'s `dummy::Pool` and the shared objects
//! - `managers/` — `Manager`, proxies, the server process; `#[managed]` support
//! - `pool/` — `Pool`, `AsyncResult`, imap iterators, the worker loop, `dummy::Pool`; `Context::pool`
//! - `mpi/` — MPI start-up and shut-down, the worker ranks' loop, its wire
//! - `process` — `Process`, the table of children, `current_process`; the child body; `Context::process`
//! - `context` — the default start method, `Context`
//! - `start/` — `StartMethod`, `ChildHandle`; `fork`, `spawn`, `forkserver`, each running the body handed to it
//! - `boot` — the boot message, the handshake constants, the entry point a re-executed child re-enters
//! - `identity` — who this process is (`Me`), how its children are numbered
//! - `connection/` — `pipe`, `Connection<T>`, `wait`; `Listener`, `Client`, auth
//! - `queues` — `Queue`, `JoinableQueue`, `SimpleQueue`
//! - `shared/` — `Value`, `Array`, `SharedMemory`, `ShareableList`, `SharedMemoryManager`; the resource tracker
//! - `sync/` — `Lock` … `Barrier`, on futexes in shared memory
//! - `task` — the `Task` trait, `lambda!`'s types, the generic invoker bodies
//! - `callmark` — a pool worker's mark (the call it runs) and the pool's cancel table, in shared memory
//! - `registry` — task entries (inventory), lookup by name, the build fingerprint
//! - `region` — one shared-memory object (a memfd) whose fd travels with its handle
//! - `codec` — frames, bincode 2 + serde, fds collected out of band; `Bytes` (bulk byte buffers)
//! - `backoff` — the one wait policy (spin, yield, park)
//! - `unwind` — the one panic capture (a chained hook, one text for message and location)
//! - `logging` — `log_to_stderr`, a stderr logger for the `log` facade
//! - `error` — `Error`, `Result`, `ExitStatus`
//! - `sys/` — every `unsafe` syscall behind a safe fn; `forklock`, the fork-time lock registry
#![deny(unsafe_code)]

#[allow(unused_extern_crates)] // lets `::multiproc::` paths from our own macros resolve in this crate
extern crate self as multiproc;

mod backoff;
mod boot;
mod callmark;
mod codec;
pub mod connection;
mod context;
pub mod dummy;
mod error;
mod identity;
mod logging;
pub mod managers;
pub mod mpi;
mod pool;
mod process;
mod queues;
mod region;
mod registry;
mod role;
mod shared;
mod start;
mod sync;
mod sys;
mod task;
mod unwind;

pub use crate::codec::Bytes;
pub use crate::connection::{Connection, pipe, pipe_oneway};
pub use crate::context::{
    Context, StartMethod, get_all_start_methods, get_context, get_start_method, set_start_method,
};
pub use crate::error::{Error, ExitStatus, Result};
pub use crate::logging::log_to_stderr;
pub use crate::managers::Manager;
#[cfg(feature = "progress")]
pub use crate::pool::Progress;
pub use crate::pool::{
    AsCompleted, AsyncResult, Chunked, IMapIter, IMapUnorderedIter, Pool, PoolBuilder, PoolIterator, ReturnWhen,
    TryIMapIter, Waited, as_completed, wait_results,
};
pub use crate::process::{
    ForkClosure, Process, ProcessBuilder, ProcessInfo, active_children, cpu_count, current_process, parent_process,
};
pub use crate::queues::{DEFAULT_RING_BYTES, JoinableQueue, Queue, SimpleQueue};
pub use crate::shared::{
    Array, ArrayGuard, RawArray, RawValue, ShareableList, SharedMemory, SharedMemoryManager, SharedMemoryOptions,
    Value, ValueGuard,
};
pub use crate::sync::{
    Barrier, BoundedSemaphore, Condition, ConditionGuard, Event, Lock, LockGuard, RLock, RLockGuard, Semaphore,
    SemaphoreGuard,
};
pub use crate::task::{Task, ThreadTask};
/// The level filter [`log_to_stderr`] takes (the `log` crate's, re-exported).
pub use log::LevelFilter;

/// Registers a free function as a task that child processes run by name.
///
/// Its arguments must be owned serde types (or multiproc handles such as
/// [`Connection`]); its result a serde type. Generic, `async`, `unsafe` and
/// method functions, and reference or `impl Trait` arguments, are compile
/// errors that say what to do.
///
/// Only such tasks (and [`lambda!`] closures) implement [`Task`], so passing
/// a plain function or closure to a [`Pool`] or [`Process`] is a compile
/// error that says to add `#[multiproc::task]`. To make that possible, the
/// name becomes a `const` of a unique wrapper type (keeping the function's
/// visibility and doc comment; the function itself moves to a hidden name).
/// The wrapper implements [`Task`] and derefs to the function pointer, so the
/// task is still called directly as `square(3)`, imported with `use`, and
/// turned into a plain `fn` pointer with `*square` (`iter.map(*square)`).
/// One thing changes: like any `const`, the name cannot be shadowed by a
/// `let` binding or parameter in its scope (`let square = ..` is read as a
/// pattern, and rustc says so): name the binding differently.
///
/// ```
/// #[multiproc::task]
/// fn square(x: u64) -> u64 { x * x }
///
/// assert_eq!(square(3), 9);
/// let squares: Vec<u64> = (0..4).map(*square).collect();
/// assert_eq!(squares, [0, 1, 4, 9]);
/// let pool = multiproc::get_context(multiproc::StartMethod::Fork).pool(2)?;
/// assert_eq!(pool.map(square, 0..4)?, squares);
/// # Ok::<(), multiproc::Error>(())
/// ```
pub use multiproc_macros::task;

/// Makes `fn main` the entry point of multiproc children.
///
/// A process started by the spawn or forkserver method re-executes this binary;
/// the annotated `main` takes the child role before any user code runs. At the
/// end of `main`, daemon children are terminated and the others joined
/// (Python's exit behaviour). `main` may return `()` or a `Result`.
///
/// It works in a doctest too, when the example writes its `fn main` out:
///
/// ```
/// #[multiproc::task]
/// fn square(x: u64) -> u64 { x * x }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let pool = multiproc::get_context(multiproc::StartMethod::Spawn).pool(2)?;
///     assert_eq!(pool.map(square, 0..4)?, [0, 1, 4, 9]);
///     Ok(())
/// }
/// ```
pub use multiproc_macros::main;

/// A `#[test]` whose spawn/forkserver children re-run exactly this test.
///
/// The child re-runs the test binary as `<binary> <test> --exact
/// --test-threads=1 --nocapture -q` and takes its role inside this test.
/// Children the test's thread started are joined when it ends. A plain
/// `#[test]` that starts a spawn or forkserver child fails at once with
/// [`Error::NotAnnotated`], which says to use this attribute.
///
/// ```
/// #[multiproc::task]
/// fn double(x: u64) -> u64 { x * 2 }
///
/// // In tests/my_test.rs (doctests do not run `#[test]` functions, so this
/// // one is only compiled here; `cargo test` runs it):
/// #[multiproc::test]
/// fn pool_doubles() -> multiproc::Result<()> {
///     let pool = multiproc::Pool::new(2)?;
///     assert_eq!(pool.map(double, [1, 2, 3])?, [2, 4, 6]);
///     Ok(())
/// }
/// # fn main() {}
/// ```
pub use multiproc_macros::test;

/// Lifts an inline closure into a registered task: Python's `lambda` in a pool.
///
/// `lambda!(|x: u64| x * x + x)` gives a value you can pass to `Process` or a
/// pool under every start method; it is registered under a unique, stable name
/// (module path plus the closure's position and text). Each parameter needs a
/// type. A closure may not capture its environment silently (that is a compile
/// error naming the variables); list captures explicitly, with their types, as
/// `lambda!(move [k: u64] |x: u64| x + k)`: the captured values (serde types)
/// travel with every call. The type may be left out (`move [k]`) when the body
/// alone fixes it, since the child rebuilds the closure from its registered
/// copy, which cannot see the caller's variables.
///
/// (It cannot be spelled `task!`: attribute and function-like macros share one
/// namespace, so `task!` would clash with `#[multiproc::task]`.)
pub use multiproc_macros::lambda;

/// Shares a type through a [`Manager`]: put it on the type's inherent `impl` block.
///
/// The impl stays as written. The macro generates `<Type>Proxy` (e.g.
/// `CounterProxy` for `Counter`), with one method per `&self` / `&mut self`
/// method, same name and arguments, returning `multiproc::Result<R>` of the
/// original result `R`; and it implements [`managers::Managed`], so
/// [`Manager::create`] accepts the type and returns the proxy. Arguments and
/// results are serde types. Associated functions without `self` (constructors)
/// are left alone. Generic methods, `self` by value, and reference or `impl
/// Trait` arguments or results are compile errors that say what to do. A
/// method that panics fails that call with [`Error::Remote`]; the manager
/// keeps serving. The proxy is a valid task argument under every start method.
/// A type has at most one `#[multiproc::managed]` impl block.
///
/// As in Python's `BaseManager.register`, methods whose name starts with `_`
/// are not offered by the proxy, nor callable by name from other processes;
/// `#[multiproc::managed(exposed = "get, _peek")]` names the methods to offer
/// instead (Python's `exposed=`; a name that is not a method of the block is a
/// compile error).
///
/// The other options of Python's `register`, each checked at compile time:
/// - `method_to_typeid = "open, child"`: these methods return a
///   `#[multiproc::managed]` value, which the server keeps as a new shared
///   object; the proxy method returns its proxy (`Result<CursorProxy>`);
/// - `create_method = false`: [`Manager::create`] does not accept the type
///   (it is not [`managers::Creatable`]), so only such a method makes it;
/// - `proxytype = "MyProxy"`: no proxy is generated; `MyProxy` implements
///   [`managers::Proxy`] with `KIND = <Type as Managed>::TYPE_NAME` and calls
///   the methods by name with [`managers::Token::call`] (see
///   [`managers::Creatable`] for `method_to_typeid` in use).
///
/// If the type is also `Serialize + Deserialize`, `create` moves the value to
/// the manager's server process (found there by type name); otherwise the
/// value is served by a thread of the creating process.
///
/// ```
/// struct Counter { n: u64 }
///
/// #[multiproc::managed]
/// impl Counter {
///     fn incr(&mut self, by: u64) -> u64 { self.n += by; self.n }
///     fn get(&self) -> u64 { self.n }
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let manager = multiproc::Manager::start()?;
///     let c = manager.create(Counter { n: 0 })?; // a CounterProxy
///     assert_eq!(c.incr(5)?, 5);
///     assert_eq!(c.get()?, 5);
///     Ok(())
/// }
/// ```
pub use multiproc_macros::managed;

// Not public API. Used by code the multiproc macros generate; changes in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::codec::{Payload, TakeBulk, bulk_taker, put_bulk, share_fd, take_bulk, take_fd};
    pub use crate::process::{runtime_fds, runtime_pids};
    pub use crate::registry::{
        Invoker, Returned, ReturnedErr, ReturnedValue, SeqInvoker, SeqReply, TargetRunner, TaskEntry,
    };
    pub use crate::role::{main_entry, test_entry};
    pub use crate::task::{Lambda, LambdaWith, invoke, invoke_seq};
    pub use inventory;
    pub use serde;
}
