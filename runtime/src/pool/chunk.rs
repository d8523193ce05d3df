//! The one chunking rule of every pool (local workers, MPI ranks, threads), and
//! the state of a job being fed to a backend chunk by chunk.
//!
//! - `map`, `starmap`, `map_async`: Python's `ceil(len / (4 × processes))`,
//!   capped at [`MAX_MAP_CHUNK`] so that a large input makes enough chunks for
//!   the workers to start while the rest is still being encoded.
//! - `imap`, `imap_unordered`: the same rule on the input's exact size hint,
//!   capped at [`MAX_IMAP_CHUNK`], and 1 when the size is unknown.
//! - A chunk size chosen with `with_chunksize` wins on every backend.

use std::sync::Arc;

use super::job::JobShared;

/// Most calls in one chunk of a `map` by the default rule.
pub(crate) const MAX_MAP_CHUNK: usize = 2048;
/// Most calls in one chunk of an `imap` by the default rule.
pub(crate) const MAX_IMAP_CHUNK: usize = 256;

/// Default chunk size of a `map` of `len` items on `processes` workers.
pub(crate) fn map_chunksize(len: usize, processes: usize) -> usize {
    len.div_ceil(processes.max(1) * 4).clamp(1, MAX_MAP_CHUNK)
}

/// Default chunk size of an `imap`: the `map` rule on an exact size hint, capped.
pub(crate) fn imap_chunksize(hint: (usize, Option<usize>), processes: usize) -> usize {
    match hint {
        (lo, Some(hi)) if lo == hi => map_chunksize(lo, processes).min(MAX_IMAP_CHUNK),
        _ => 1,
    }
}

/// One job being fed to a backend: the task, where its results go, how the
/// input is cut, and how far the input has been read.
pub(crate) struct Feed<F> {
    pub(crate) task: F,
    pub(crate) name: &'static str,
    pub(crate) job: Arc<JobShared>,
    /// Calls per chunk (at least 1).
    pub(crate) chunksize: usize,
    /// Index in the job of the next input.
    pub(crate) next: usize,
    /// Chunks were submitted before (a lazy `imap` still pulling its input
    /// may go on after `close`).
    pub(crate) continuing: bool,
    /// A call that cannot be encoded is the submitter's error (`apply_async`
    /// returns it), not a failed call in the job.
    pub(crate) strict: bool,
}

impl<F> Feed<F> {
    /// A job about to be fed its first chunk.
    pub(crate) fn new(task: F, name: &'static str, job: Arc<JobShared>, chunksize: usize) -> Self {
        Feed { task, name, job, chunksize: chunksize.max(1), next: 0, continuing: false, strict: false }
    }

    /// Takes the next chunk of at most `limit` inputs from `items`: the index
    /// of its first call, and the calls. Empty once `items` has run out.
    pub(crate) fn take<A>(&mut self, items: &mut dyn Iterator<Item = A>, limit: usize) -> (usize, Vec<A>) {
        let batch: Vec<A> = items.take(self.chunksize.min(limit)).collect();
        let first = self.next;
        self.next += batch.len();
        (first, batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_is_pythons_capped() {
        assert_eq!(map_chunksize(0, 4), 1);
        assert_eq!(map_chunksize(100, 4), 7);
        assert_eq!(map_chunksize(10_000_000, 1), MAX_MAP_CHUNK);
        assert_eq!(imap_chunksize((100, Some(100)), 4), 7);
        assert_eq!(imap_chunksize((100_000, Some(100_000)), 1), MAX_IMAP_CHUNK);
        assert_eq!(imap_chunksize((0, None), 4), 1);
    }
}
