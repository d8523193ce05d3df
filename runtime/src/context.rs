//! Start methods and contexts.

use std::sync::Mutex;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::process::Process;
use crate::task::Task;

/// How a child process is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum StartMethod {
    /// `fork()` the calling thread and run the task in the copy. The fastest
    /// start; the child inherits the parent's memory, so closures work too. As in
    /// Python, forking a multi-threaded parent is hazardous: a lock another
    /// thread held at the fork stays locked in the child. multiproc guards its
    /// own locks (and Rust's stdout and stderr) by taking them around the fork;
    /// your program's locks and those of other libraries are not guarded. Also, on Linux the
    /// child dies if the *thread* that started it exits (`PR_SET_PDEATHSIG`).
    Fork,
    /// Re-execute this binary (`/proc/self/exe`); the child takes its role in
    /// `#[multiproc::main]` / `#[multiproc::test]` before any user code runs.
    Spawn,
    /// Ask a single-threaded fork server (started once, through the spawn path)
    /// to fork the child. The default, as in Python 3.14 on Linux.
    ForkServer,
}

impl StartMethod {
    /// Python's name for the method: `"fork"`, `"spawn"` or `"forkserver"`.
    pub fn name(self) -> &'static str {
        match self {
            StartMethod::Fork => "fork",
            StartMethod::Spawn => "spawn",
            StartMethod::ForkServer => "forkserver",
        }
    }

    /// Parses Python's name of a method.
    pub fn from_name(name: &str) -> Result<StartMethod> {
        match name {
            "fork" => Ok(StartMethod::Fork),
            "spawn" => Ok(StartMethod::Spawn),
            "forkserver" => Ok(StartMethod::ForkServer),
            other => Err(Error::InvalidArgument(format!(
                "unknown start method `{other}`; expected one of fork, spawn, forkserver"
            ))),
        }
    }
}

impl std::fmt::Display for StartMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

static DEFAULT: Mutex<Option<StartMethod>> = Mutex::new(None);

inventory::submit! { crate::sys::forklock::ForkLock::new(&DEFAULT) }

/// The start methods this platform supports, the default first.
pub fn get_all_start_methods() -> Vec<StartMethod> {
    vec![StartMethod::ForkServer, StartMethod::Spawn, StartMethod::Fork]
}

/// The default start method: the one set by [`set_start_method`], else
/// `MULTIPROC_START_METHOD` from the environment, else forkserver.
pub fn get_start_method() -> StartMethod {
    let mut g = DEFAULT.lock().unwrap_or_else(|p| p.into_inner());
    *g.get_or_insert_with(|| {
        std::env::var("MULTIPROC_START_METHOD")
            .ok()
            .and_then(|v| StartMethod::from_name(&v).ok())
            .unwrap_or(StartMethod::ForkServer)
    })
}

/// Sets the default start method.
///
/// # Errors
/// [`Error::InvalidState`] if a default was already set (or used) and `force` is false,
/// as Python raises `RuntimeError("context has already been set")`.
pub fn set_start_method(method: StartMethod, force: bool) -> Result<()> {
    let mut g = DEFAULT.lock().unwrap_or_else(|p| p.into_inner());
    match *g {
        Some(current) if !force && current != method => Err(Error::InvalidState(format!(
            "the start method is already set to {current}; pass force = true to change it"
        ))),
        _ => {
            *g = Some(method);
            Ok(())
        }
    }
}

/// A context whose objects use one start method (Python's `get_context`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    method: StartMethod,
}

/// A [`Context`] for `method`.
pub fn get_context(method: StartMethod) -> Context {
    Context { method }
}

impl Default for Context {
    /// A context with the default start method.
    fn default() -> Self {
        Context { method: get_start_method() }
    }
}

impl Context {
    /// This context's start method.
    pub fn start_method(&self) -> StartMethod {
        self.method
    }

    /// A [`Process`] that will start with this context's method.
    ///
    /// # Errors
    /// As [`Process::new`].
    pub fn process<F, A>(&self, task: F, args: A) -> Result<Process>
    where
        F: Task<A>,
        A: Serialize + DeserializeOwned + 'static,
    {
        Process::builder(task, args).start_method(self.method).build()
    }

    /// A [`Pool`](crate::Pool) of `processes` workers started with this context's method.
    ///
    /// # Errors
    /// As [`Pool::new`](crate::Pool::new).
    pub fn pool(&self, processes: usize) -> Result<crate::Pool> {
        crate::Pool::builder().processes(processes).context(*self).build()
    }
}
