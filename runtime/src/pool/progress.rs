//! Progress bars for long maps (cargo feature `progress`, indicatif).

use indicatif::{ProgressBar, ProgressStyle};

use super::{IMapIter, IMapUnorderedIter};

/// An iterator that advances a progress bar on stderr as results arrive.
/// Made by [`IMapIter::progress`] or [`IMapUnorderedIter::progress`].
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
    /// Shows a progress bar (length from the input's size hint) while iterating.
    pub fn progress(self) -> Progress<Self> {
        let b = bar(self.input_len());
        Progress { inner: self, bar: b }
    }
}

impl<'a, R> IMapUnorderedIter<'a, R> {
    /// Shows a progress bar (length from the input's size hint) while iterating.
    pub fn progress(self) -> Progress<Self> {
        let b = bar(self.input_len());
        Progress { inner: self, bar: b }
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
