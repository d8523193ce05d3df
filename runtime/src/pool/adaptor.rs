//! `inputs.pool_map(&pool, task)`: a pool's `imap` as an iterator adaptor,
//! in the style of rayon's `par_iter().map(..)`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{IMapIter, IMapUnorderedIter, Pool};
use crate::error::Result;
use crate::task::Task;

/// Maps an iterator through a [`Pool`]: `inputs.pool_map(&pool, task)` is
/// `pool.imap(task, inputs)` (Python's `pool.imap(task, inputs)`), streaming:
/// the input is pulled as results are consumed, and dropping the results
/// cancels the calls not yet run.
///
/// ```
/// use multiproc::PoolIterator;
///
/// #[multiproc::task]
/// fn square(x: u64) -> u64 { x * x }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let pool = multiproc::Pool::new(2)?;
///     let squares: Vec<u64> = (0..5u64).pool_map(&pool, square)?.collect::<multiproc::Result<_>>()?;
///     assert_eq!(squares, vec![0, 1, 4, 9, 16]);
///     Ok(())
/// }
/// ```
pub trait PoolIterator: Iterator + Sized {
    /// `pool.imap(task, self)`: results in input order.
    ///
    /// ```
    /// use multiproc::PoolIterator;
    ///
    /// #[multiproc::task]
    /// fn len(s: String) -> usize { s.len() }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     let words = ["a", "bb", "ccc"].into_iter().map(String::from);
    ///     let lens: Vec<usize> = words.pool_map(&pool, len)?.collect::<multiproc::Result<_>>()?;
    ///     assert_eq!(lens, vec![1, 2, 3]);
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// As [`Pool::imap`].
    fn pool_map<'a, F>(self, pool: &Pool, task: F) -> Result<IMapIter<'a, F::Output>>
    where
        Self: 'a,
        Self::Item: Serialize + 'a,
        F: Task<(Self::Item,)> + 'a,
        F::Output: DeserializeOwned,
    {
        pool.imap(task, self)
    }

    /// `pool.imap_unordered(task, self)`: results in completion order.
    ///
    /// ```
    /// use multiproc::PoolIterator;
    ///
    /// #[multiproc::task]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     let total: u64 = (1..=3u64).pool_map_unordered(&pool, square)?.sum::<multiproc::Result<u64>>()?;
    ///     assert_eq!(total, 1 + 4 + 9);
    ///     Ok(())
    /// }
    /// ```
    ///
    /// # Errors
    /// As [`Pool::imap_unordered`].
    fn pool_map_unordered<'a, F>(self, pool: &Pool, task: F) -> Result<IMapUnorderedIter<'a, F::Output>>
    where
        Self: 'a,
        Self::Item: Serialize + 'a,
        F: Task<(Self::Item,)> + 'a,
        F::Output: DeserializeOwned,
    {
        pool.imap_unordered(task, self)
    }
}

impl<I: Iterator> PoolIterator for I {}
