//! The one chunking rule of every pool (local workers, MPI ranks, threads), and
//! the state of a job being fed to a backend chunk by chunk.
//!
//! - `map`, `starmap`, `map_async`: Python's `ceil(len / (4 × processes))`,
//!   capped at [`MAX_MAP_CHUNK`] so that a large input makes enough chunks for
//!   the workers to start while the rest is still being encoded.
//! - `imap`, `imap_unordered`: the same rule on the input's exact size hint,
//!   capped at [`MAX_IMAP_CHUNK`], and 1 when the size is unknown. The first
//!   chunks are smaller: 1 call, then twice as many each chunk up to that size
//!   ([`Feed::ramped`]), so an idle pool gives the first result after about one
//!   call's time (Python's `imap` defaults to `chunksize=1` for that), while a
//!   long `imap` still runs in full-size chunks.
//! - A chunk size chosen with `with_chunksize` wins on every backend (no ramp).

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
    /// Calls per chunk once the ramp is over (at least 1).
    pub(crate) chunksize: usize,
    /// Calls in the next chunk (1 ..= `chunksize`): below `chunksize` while
    /// a ramped feed is growing its chunks.
    size: usize,
    /// Made by [`Feed::ramped`].
    ramped: bool,
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
        let chunksize = chunksize.max(1);
        Feed { task, name, job, chunksize, size: chunksize, ramped: false, next: 0, continuing: false, strict: false }
    }

    /// As [`Feed::new`], with chunks that start at 1 call and double up to
    /// `chunksize` (the default rule of `imap`: an early first result).
    pub(crate) fn ramped(task: F, name: &'static str, job: Arc<JobShared>, chunksize: usize) -> Self {
        Feed { size: 1, ramped: true, ..Feed::new(task, name, job, chunksize) }
    }

    /// The next chunk is the first of a ramped feed: the one whose result
    /// should come back at once (a backend may send it alone).
    pub(crate) fn leads(&self) -> bool {
        self.ramped && self.next == 0
    }

    /// Calls in the chunk being cut now.
    pub(crate) fn chunk_len(&self) -> usize {
        self.size
    }

    /// Takes the next chunk of at most `limit` inputs from `items`: the index
    /// of its first call, and the calls. Empty once `items` has run out.
    pub(crate) fn take<A>(&mut self, items: &mut dyn Iterator<Item = A>, limit: usize) -> (usize, Vec<A>) {
        let batch: Vec<A> = items.take(self.size.min(limit)).collect();
        let first = self.next;
        self.next += batch.len();
        (first, batch)
    }

    /// The chunk being cut is complete: the next one is twice its size, up
    /// to `chunksize` (a no-op once the ramp is over).
    pub(crate) fn chunk_done(&mut self) {
        self.size = self.size.saturating_mul(2).min(self.chunksize);
    }

    /// Cuts at most `limit` calls from `items` into chunks (the one chunk
    /// builder of every backend) and hands each to `submit` with the index of
    /// its first call. Returns whether `items` ran out.
    pub(crate) fn cut<A>(
        &mut self,
        items: &mut dyn Iterator<Item = A>,
        limit: usize,
        mut submit: impl FnMut(&mut Self, usize, Vec<A>) -> crate::error::Result<()>,
    ) -> crate::error::Result<bool> {
        let mut done = 0;
        while done < limit {
            let want = self.chunk_len().min(limit - done);
            let (first, batch) = self.take(items, want);
            if batch.is_empty() {
                return Ok(true);
            }
            let ran_out = batch.len() < want;
            done += batch.len();
            submit(self, first, batch)?;
            self.chunk_done();
            if ran_out {
                return Ok(true);
            }
        }
        Ok(false)
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

    fn feed(chunksize: usize, ramped: bool) -> Feed<()> {
        let job = Arc::new(JobShared::new(true));
        if ramped { Feed::ramped((), "t", job, chunksize) } else { Feed::new((), "t", job, chunksize) }
    }

    /// The sizes of the chunks `f` cuts from `n` inputs; checks that only
    /// the first chunk of a ramped feed leads.
    fn cut(f: &mut Feed<()>, n: usize) -> Vec<usize> {
        let mut items = 0..n;
        let mut sizes = Vec::new();
        loop {
            assert_eq!(f.leads(), f.ramped && sizes.is_empty());
            let (first, batch) = f.take(&mut items, usize::MAX);
            if batch.is_empty() {
                return sizes;
            }
            assert_eq!(first, batch[0]);
            sizes.push(batch.len());
            f.chunk_done();
        }
    }

    #[test]
    fn a_ramped_feed_starts_with_one_call_and_doubles() {
        assert_eq!(cut(&mut feed(7, true), 30), [1, 2, 4, 7, 7, 7, 2]);
        assert_eq!(cut(&mut feed(1, true), 3), [1, 1, 1]);
    }

    #[test]
    fn a_plain_feed_cuts_full_chunks_from_the_start() {
        assert_eq!(cut(&mut feed(7, false), 16), [7, 7, 2]);
    }
}
