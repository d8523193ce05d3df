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

/// The start methods this platform supports, the default first. Python's
/// `multiprocessing.get_all_start_methods`.
///
/// ```
/// use multiproc::StartMethod;
///
/// let all = multiproc::get_all_start_methods();
/// assert_eq!(all, [StartMethod::ForkServer, StartMethod::Spawn, StartMethod::Fork]);
/// ```
pub fn get_all_start_methods() -> Vec<StartMethod> {
    vec![StartMethod::ForkServer, StartMethod::Spawn, StartMethod::Fork]
}

/// The environment variable that names the default start method.
pub(crate) const START_METHOD_VAR: &str = "MULTIPROC_START_METHOD";

/// [`START_METHOD_VAR`] from the environment: `None` if unset;
/// [`Error::InvalidArgument`] naming the variable, its value and the allowed
/// values if it names no start method.
pub(crate) fn start_method_from_env() -> Result<Option<StartMethod>> {
    let value = match std::env::var(START_METHOD_VAR) {
        Err(std::env::VarError::NotPresent) => return Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => v.to_string_lossy().into_owned(),
        Ok(v) => match StartMethod::from_name(&v) {
            Ok(m) => return Ok(Some(m)),
            Err(_) => v,
        },
    };
    Err(Error::InvalidArgument(format!(
        "{START_METHOD_VAR}={value:?} names no start method; expected one of fork, spawn, forkserver"
    )))
}

/// The default start method, as [`get_start_method`], or the error of an
/// unknown `MULTIPROC_START_METHOD` (nothing is remembered then).
pub(crate) fn default_start_method() -> Result<StartMethod> {
    let mut g = DEFAULT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(m) = *g {
        return Ok(m);
    }
    let m = start_method_from_env()?.unwrap_or(StartMethod::ForkServer);
    *g = Some(m);
    Ok(m)
}

/// The default start method: the one set by [`set_start_method`], else
/// `MULTIPROC_START_METHOD` from the environment, else forkserver.
///
/// An unknown `MULTIPROC_START_METHOD` is reported by the first start (an
/// [`Error::InvalidArgument`] naming the variable and the allowed values);
/// until then this returns forkserver.
///
/// ```
/// let m = multiproc::get_start_method();
/// assert!(multiproc::get_all_start_methods().contains(&m));
/// ```
pub fn get_start_method() -> StartMethod {
    default_start_method().unwrap_or(StartMethod::ForkServer)
}

/// Sets the default start method. Python's `multiprocessing.set_start_method`.
///
/// ```
/// use multiproc::StartMethod;
///
/// multiproc::set_start_method(StartMethod::Spawn, false)?;
/// assert_eq!(multiproc::get_start_method(), StartMethod::Spawn);
/// // Set once; changing it takes `force`.
/// assert!(multiproc::set_start_method(StartMethod::Fork, false).is_err());
/// multiproc::set_start_method(StartMethod::Fork, true)?;
/// assert_eq!(multiproc::get_start_method(), StartMethod::Fork);
/// # Ok::<(), multiproc::Error>(())
/// ```
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

/// A context whose objects use one start method (Python's `get_context`):
/// its `process` and `pool` start children with that method, whatever the
/// default is.
///
/// ```
/// use multiproc::{Context, StartMethod};
///
/// let ctx: Context = multiproc::get_context(StartMethod::Fork);
/// assert_eq!(ctx.start_method(), StartMethod::Fork);
/// assert_eq!(Context::default().start_method(), multiproc::get_start_method());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context {
    method: StartMethod,
}

/// A [`Context`] for `method`. Python's `multiprocessing.get_context(method)`.
///
/// ```
/// #[multiproc::task]
/// fn square(x: u64) -> u64 { x * x }
///
/// let ctx = multiproc::get_context(multiproc::StartMethod::Fork);
/// let pool = ctx.pool(1)?; // fork needs no #[multiproc::main]
/// assert_eq!(pool.apply(square, (3,))?, 9);
/// # Ok::<(), multiproc::Error>(())
/// ```
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
    /// This context's start method (Python's `Context.get_start_method()`).
    ///
    /// ```
    /// let ctx = multiproc::get_context(multiproc::StartMethod::Spawn);
    /// assert_eq!(ctx.start_method().name(), "spawn");
    /// ```
    pub fn start_method(&self) -> StartMethod {
        self.method
    }
}
