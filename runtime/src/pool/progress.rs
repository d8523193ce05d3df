//! Progress bars for long maps (cargo feature `progress`, indicatif).

use indicatif::{ProgressBar, ProgressStyle};

use super::{IMapIter, IMapUnorderedIter};

/// An iterator that advances a progress bar on stderr as results arrive.
/// Made by [`IMapIter::progress`] or [`IMapUnorderedIter::progress`]; it
/// yields the same items as the iterator it wraps.
///
/// ```
/// #[multiproc::task]
/// fn square(x: u64) -> u64 { x * x }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let pool = multiproc::Pool::new(2)?;
///     let it: multiproc::Progress<_> = pool.imap(square, 0..4)?.progress();
///     assert_eq!(it.collect::<multiproc::Result<Vec<_>>>()?, vec![0, 1, 4, 9]);
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct Progress<I> {
    inner: I,
    bar: ProgressBar,
}

fn bar(len: Option<usize>) -> ProgressBar {
    match len {
        Some(n) => {
            let b = ProgressBar::new(n as u64);
            if let Ok(style) =
                ProgressStyle::with_template("{bar:40} {pos}/{len} [{elapsed_precise} < {eta_precise}] {per_sec}")
            {
                b.set_style(style);
            }
            b
        }
        None => ProgressBar::new_spinner(),
    }
}

impl<'a, R> IMapIter<'a, R> {
    /// Shows a progress bar (length from the input's size hint) while iterating
    /// (tqdm's `tqdm(pool.imap(..), total=n)`).
    ///
    /// ```
    /// #[multiproc::task]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     let mut it = pool.imap(square, 0..3)?.progress();
    ///     assert_eq!(it.length(), Some(3));
    ///     assert_eq!(it.next().transpose()?, Some(0));
    ///     assert_eq!(it.position(), 1);
    ///     Ok(())
    /// }
    /// ```
    pub fn progress(self) -> Progress<Self> {
        let b = bar(self.input_len());
        Progress { inner: self, bar: b }
    }
}

impl<'a, R> IMapUnorderedIter<'a, R> {
    /// Shows a progress bar (length from the input's size hint) while iterating.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn square(x: u64) -> u64 { x * x }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let pool = multiproc::Pool::new(2)?;
    ///     let mut it = pool.imap_unordered(square, 0..3)?.progress();
    ///     let total: u64 = it.by_ref().sum::<multiproc::Result<u64>>()?;
    ///     assert_eq!(total, 5);
    ///     assert_eq!((it.position(), it.length()), (3, Some(3)));
    ///     Ok(())
    /// }
    /// ```
    pub fn progress(self) -> Progress<Self> {
        let b = bar(self.input_len());
        Progress { inner: self, bar: b }
    }
}

impl<I> Progress<I> {
    /// Items seen so far: the bar's count, one per result the iterator has
    /// yielded (failed calls included).
    ///
    /// ```
    /// #[multiproc::task]
    /// fn double(x: u64) -> u64 { 2 * x }
    ///
    /// let pool = multiproc::dummy::Pool::new(2).unwrap();
    /// let mut it = pool.imap(double, 0..5u64).unwrap().progress();
    /// assert_eq!(it.position(), 0);
    /// it.next();
    /// it.next();
    /// assert_eq!(it.position(), 2);
    /// assert_eq!(it.by_ref().count(), 3);
    /// assert_eq!(it.position(), 5);
    /// ```
    pub fn position(&self) -> u64 {
        self.bar.position()
    }

    /// The bar's length: the number of inputs when the input's size is known
    /// exactly, `None` for an input of unknown length (a spinner then).
    ///
    /// ```
    /// #[multiproc::task]
    /// fn double(x: u64) -> u64 { 2 * x }
    ///
    /// let pool = multiproc::dummy::Pool::new(2).unwrap();
    /// assert_eq!(pool.imap(double, 0..7u64).unwrap().progress().length(), Some(7));
    /// let unsized_input = (0..7u64).filter(|x| x % 2 == 0);
    /// assert_eq!(pool.imap(double, unsized_input).unwrap().progress().length(), None);
    /// ```
    pub fn length(&self) -> Option<u64> {
        self.bar.length()
    }
}

impl<I: Iterator> Iterator for Progress<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        let item = self.inner.next();
        match item {
            Some(_) => self.bar.inc(1),
            None => self.bar.finish(),
        }
        item
    }
}
