//! The default start method and contexts.
//!
//! A [`Context`] names a start method; what it makes lives with the thing made
//! (`Context::process` in `process`, `Context::pool` in `pool`), so this module
//! stays below both.

use std::sync::Mutex;

use crate::error::{Error, Result};
pub use crate::start::StartMethod;

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
}
