//! Fallible tasks: `try_map` and friends, for tasks that return
//! `Result<T, E>`. The first `Err` (in input order) comes back as one
//! [`Error::Task`] with the input's index, and the calls not yet run are
//! cancelled; plain `map` keeps returning `Vec<Result<T, E>>`.

use std::fmt::Display;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{IMapIter, Pool};
use crate::codec;
use crate::error::{Error, Result};
use crate::task::Task;

/// The [`Error::Task`] of a call of `task` on input `index` that returned `e`.
fn task_error<E: Serialize + Display>(task: &str, index: usize, e: &E) -> Error {
    Error::Task {
        task: task.to_string(),
        index,
        message: e.to_string(),
        encoded: codec::encode(e, "task error").map(|p| p.bytes).unwrap_or_default(),
    }
}

impl Error {
    /// The task's own error value of an [`Error::Task`], decoded as `E` (the
    /// task's error type); `None` for other errors or another type.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn parse(s: String) -> Result<u64, String> { s.parse().map_err(|_| format!("not a number: {s}")) }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     let err = pool.try_map(parse, vec!["1".to_string(), "x".to_string()]).unwrap_err();
    ///     assert_eq!(err.task_error::<String>().as_deref(), Some("not a number: x"));
    ///     Ok(())
    /// }
    /// ```
    pub fn task_error<E: DeserializeOwned>(&self) -> Option<E> {
        match self {
            Error::Task { encoded, .. } => codec::decode(encoded, Vec::new(), "task error").ok(),
            _ => None,
        }
    }
}

impl Pool {
    /// [`Pool::map`] for a task that returns `Result<T, E>`: the values, or
    /// the first `Err` (in input order) as [`Error::Task`] with its input's
    /// index, its `Display` text and the value itself ([`Error::task_error`]).
    /// At the first error the calls not yet run are cancelled.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn parse(line: String) -> Result<u64, String> {
    ///     line.trim().parse().map_err(|e| format!("{line:?}: {e}"))
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     let nums: Vec<u64> = pool.try_map(parse, vec!["1".into(), "2".into()])?;
    ///     assert_eq!(nums, vec![1, 2]);
    ///     let bad = pool.try_map(parse, vec!["1".into(), "x".into()]);
    ///     assert!(matches!(bad, Err(multiproc::Error::Task { index: 1, .. })));
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// [`Error::Task`]; otherwise as [`Pool::map`].
    pub fn try_map<F, T, I, U, E>(&self, task: F, inputs: I) -> Result<Vec<U>>
    where
        F: Task<(T,), Output = std::result::Result<U, E>>,
        T: Serialize,
        I: IntoIterator<Item = T>,
        U: DeserializeOwned,
        E: Serialize + DeserializeOwned + Display,
    {
        self.try_starmap(task, inputs.into_iter().map(|x| (x,)))
    }

    /// [`Pool::try_map`] over argument tuples ([`Pool::starmap`]'s form).
    ///
    /// ```
    /// #[multiproc::task]
    /// fn checked_div(a: u64, b: u64) -> Result<u64, String> {
    ///     a.checked_div(b).ok_or_else(|| format!("{a} / 0"))
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     assert_eq!(pool.try_starmap(checked_div, [(6, 3), (8, 2)])?, vec![2, 4]);
    ///     let err = pool.try_starmap(checked_div, [(6, 3), (1, 0)]).unwrap_err();
    ///     assert!(matches!(err, multiproc::Error::Task { index: 1, .. }));
    ///     assert_eq!(err.task_error::<String>().as_deref(), Some("1 / 0"));
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// As [`Pool::try_map`].
    pub fn try_starmap<F, A, I, U, E>(&self, task: F, inputs: I) -> Result<Vec<U>>
    where
        F: Task<A, Output = std::result::Result<U, E>>,
        A: Serialize,
        I: IntoIterator<Item = A>,
        U: DeserializeOwned,
        E: Serialize + DeserializeOwned + Display,
    {
        let name = task.task_name()?;
        let mut out = Vec::new();
        self.starmap_async(task, inputs)?.try_each(|index, r: std::result::Result<U, E>| match r {
            Ok(v) => {
                out.push(v);
                Ok(())
            }
            Err(e) => Err(task_error(name, index, &e)),
        })?;
        Ok(out)
    }

    /// [`Pool::imap`] for a task that returns `Result<T, E>`: yields the
    /// values in input order, then the first `Err` as [`Error::Task`] (or the
    /// first failed call's error), and then nothing more; the calls not yet
    /// run are cancelled.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn parse(line: String) -> Result<u64, String> { line.parse().map_err(|_| line) }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     let it = pool.try_imap(parse, vec!["1".to_string(), "x".into(), "3".into()])?;
    ///     let got: Vec<multiproc::Result<u64>> = it.collect();
    ///     assert_eq!(got.len(), 2);
    ///     assert!(matches!(got[1], Err(multiproc::Error::Task { index: 1, .. })));
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// As [`Pool::imap`].
    pub fn try_imap<'a, F, T, I, U, E>(&self, task: F, inputs: I) -> Result<TryIMapIter<'a, U>>
    where
        F: Task<(T,), Output = std::result::Result<U, E>> + 'a,
        T: Serialize + 'a,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'a,
        U: DeserializeOwned + 'a,
        E: Serialize + DeserializeOwned + Display + 'a,
    {
        let name = task.task_name()?;
        let inner: IMapIter<'a, std::result::Result<U, E>> = self.imap(task, inputs)?;
        let items = inner.enumerate().map(move |(index, r)| match r {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(task_error(name, index, &e)),
            Err(e) => Err(e),
        });
        Ok(TryIMapIter { items: Some(Box::new(items)) })
    }
}

/// The iterator of [`Pool::try_imap`]: values in input order, up to and
/// including the first error. Dropping it cancels the calls not yet run.
///
/// ```
/// #[multiproc::task]
/// fn parse(s: String) -> Result<i32, String> { s.parse().map_err(|_| s) }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let pool = multiproc::Pool::new(2)?;
///     let mut it: multiproc::TryIMapIter<'_, i32> = pool.try_imap(parse, ["7", "x", "9"].map(String::from))?;
///     assert_eq!(it.next().transpose()?, Some(7));
///     assert!(matches!(it.next(), Some(Err(multiproc::Error::Task { index: 1, .. }))));
///     assert!(it.next().is_none(), "nothing after the first error");
///     Ok(())
/// }
/// ```
pub struct TryIMapIter<'a, U> {
    /// `None` once an error was yielded (the stream, dropped, cancelled the rest).
    items: Option<Box<dyn Iterator<Item = Result<U>> + 'a>>,
}

impl<U> std::fmt::Debug for TryIMapIter<'_, U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TryIMapIter").field("ended", &self.items.is_none()).finish()
    }
}

impl<U> Iterator for TryIMapIter<'_, U> {
    type Item = Result<U>;

    fn next(&mut self) -> Option<Result<U>> {
        let r = self.items.as_mut()?.next();
        if !matches!(r, Some(Ok(_))) {
            self.items = None;
        }
        r
    }
}
