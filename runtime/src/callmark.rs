//! What a pool worker tells its parent, through shared memory, about the call
//! it is running — and what the parent tells it back.
//!
//! Each worker has a *mark*: one word in a region of its own, written before
//! and after every call (`tag` of the chunk, index of the call, a running
//! bit). The pool reads it to know, when a worker dies, which one call was
//! running (only that call is charged; the calls after it never started, the
//! calls before it are re-run), and to time calls out: a mark that stays the
//! same for longer than the timeout is a call that runs too long.
//!
//! The pool also has a *cancel table*, shared by all its workers: the ids of
//! cancelled jobs, which a worker checks before each call, so that a
//! cancelled call that was already sent never runs.
//!
//! The worker side keeps the chunk being run in a thread-local (the worker
//! runs calls on one thread); [`next`] is what the batch invoker asks before
//! each call. Outside a pool worker no chunk is active and every call runs.

use std::cell::Cell;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::region::{Kind, Region};

/// Slots of a pool's cancel table (a job id lives in slot `id % CANCEL_SLOTS`).
const CANCEL_SLOTS: usize = 1024;
/// The running bit of a mark word.
const RUNNING: u64 = 1;

/// Which call a worker runs (or ran last).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    /// The tag of the chunk (0: no chunk yet).
    pub(crate) tag: u32,
    /// The index of the call within the chunk's frame.
    pub(crate) index: u32,
    /// The call has started and not returned.
    pub(crate) running: bool,
}

impl Mark {
    fn pack(self) -> u64 {
        (u64::from(self.tag) << 32) | (u64::from(self.index) << 1) | u64::from(self.running)
    }

    fn unpack(w: u64) -> Mark {
        Mark { tag: (w >> 32) as u32, index: ((w & 0xffff_ffff) >> 1) as u32, running: w & RUNNING != 0 }
    }
}

/// One worker's mark, as both sides map it.
#[derive(Debug, Clone)]
pub(crate) struct MarkCell {
    region: Arc<Region>,
}

crate::region::region_serde!(MarkCell, Kind::PoolMark, |region| Ok::<_, crate::error::Error>(MarkCell { region }));

impl MarkCell {
    /// A new mark (no call yet).
    pub(crate) fn new() -> Result<MarkCell> {
        Ok(MarkCell { region: Region::create(Kind::PoolMark, 8, 0)? })
    }

    /// The mark now.
    pub(crate) fn read(&self) -> Mark {
        Mark::unpack(self.region.u64(0).load(Ordering::Acquire))
    }

    #[inline]
    fn write(&self, m: Mark) {
        // Read by the pool after the worker died, or while it watches a
        // timeout: no other memory is published with it.
        self.region.u64(0).store(m.pack(), Ordering::Relaxed);
    }
}

/// A pool's cancel table.
#[derive(Debug, Clone)]
pub(crate) struct CancelTable {
    region: Arc<Region>,
}

crate::region::region_serde!(CancelTable, Kind::PoolCancels, |region: Arc<Region>| {
    if region.len() < CANCEL_SLOTS * 8 {
        return Err(crate::error::Error::Decode { what: "cancel table", reason: "too small".into() });
    }
    Ok(CancelTable { region })
});

impl CancelTable {
    /// An empty table.
    pub(crate) fn new() -> Result<CancelTable> {
        Ok(CancelTable { region: Region::create(Kind::PoolCancels, CANCEL_SLOTS * 8, 0)? })
    }

    #[inline]
    fn slot(&self, job: u64) -> &std::sync::atomic::AtomicU64 {
        self.region.u64((job as usize % CANCEL_SLOTS) * 8)
    }

    /// Marks `job` cancelled: workers run none of its calls from now on.
    pub(crate) fn cancel(&self, job: u64) {
        self.slot(job).store(job, Ordering::Release);
    }

    /// Whether `job` was cancelled (while no more than [`CANCEL_SLOTS`] later
    /// jobs were; the pool stops what it can of the others itself).
    #[inline]
    fn cancelled(&self, job: u64) -> bool {
        job != 0 && self.slot(job).load(Ordering::Relaxed) == job
    }
}

/// What a worker shares with its pool, installed once when it starts.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WorkerBoard {
    pub(crate) mark: MarkCell,
    pub(crate) cancels: CancelTable,
    /// Replace the worker once its resident memory exceeds this many bytes.
    pub(crate) max_rss: Option<u64>,
}

struct Installed {
    board: WorkerBoard,
    status: Option<File>,
}

static BOARD: OnceLock<Installed> = OnceLock::new();

/// Installs this worker's board (once; a second board is ignored).
pub(crate) fn install(board: WorkerBoard) {
    let status = board.max_rss.and_then(|_| File::open("/proc/self/status").ok());
    let _ = BOARD.set(Installed { board, status });
}

/// The chunk a worker is running.
#[derive(Clone, Copy)]
struct Current {
    tag: u32,
    job: u64,
    skip: u32,
    end: u32,
    ran: u32,
    stopped: bool,
}

thread_local! {
    static CURRENT: Cell<Option<Current>> = const { Cell::new(None) };
}

/// Starts a chunk: calls `skip .. end` of the frame run, unless stopped.
pub(crate) fn begin(tag: u32, job: u64, skip: u32, end: u32) {
    CURRENT.set(Some(Current { tag, job, skip, end, ran: 0, stopped: false }));
}

/// Ends the chunk: how many calls ran, and whether it stopped early (its job
/// was cancelled, or the worker's memory is over its limit).
pub(crate) fn end() -> (u32, bool) {
    CURRENT.take().map_or((0, false), |c| (c.ran, c.stopped))
}

/// Of the chunk being run: how many calls ran so far, and how many its window holds.
pub(crate) fn progress() -> (u32, u32) {
    CURRENT.get().map_or((0, 0), |c| (c.ran, c.end.saturating_sub(c.skip)))
}

/// What to do with the call at `index` of the chunk being run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Outside the window: not this chunk's to run.
    Skip,
    /// Run it.
    Run,
    /// Stop here: this call and the rest do not run.
    Stop,
}

/// A walk over the calls of the chunk being run: what an invoker asks before
/// each call. It holds everything a look needs, so a call costs one store
/// (the mark) and one load (the job's cancel slot) in shared memory, and no
/// thread-local access. The mark of a call that returned stays "running"
/// until the next call's replaces it, or the walk ends (dropping it clears the
/// running bit and hands the count back): a worker killed in that gap of a few
/// instructions charges a call that had finished.
pub(crate) struct Walk {
    run: Option<(Current, &'static Installed)>,
}

/// Starts a walk over the chunk being run (outside a pool worker, a walk
/// that runs every call).
pub(crate) fn walk() -> Walk {
    Walk { run: CURRENT.get().zip(BOARD.get()) }
}

impl Walk {
    /// Asks before the call at `index`.
    #[inline]
    pub(crate) fn next(&mut self, index: usize) -> Step {
        let Some((c, installed)) = &mut self.run else { return Step::Run };
        let index = index as u32;
        if index < c.skip || index >= c.end {
            return Step::Skip;
        }
        let board = &installed.board;
        if c.stopped || board.cancels.cancelled(c.job) || (c.ran > 0 && board.max_rss.is_some() && over_memory()) {
            c.stopped = true;
            return Step::Stop;
        }
        c.ran += 1;
        board.mark.write(Mark { tag: c.tag, index, running: true });
        Step::Run
    }
}

impl Drop for Walk {
    fn drop(&mut self) {
        if let Some((c, installed)) = self.run {
            let last = installed.board.mark.read();
            installed.board.mark.write(Mark { running: false, ..last });
            CURRENT.set(Some(c));
        }
    }
}

/// Whether this worker's resident memory exceeds its limit.
pub(crate) fn over_memory() -> bool {
    let Some(Installed { board: WorkerBoard { max_rss: Some(max), .. }, status: Some(f) }) = BOARD.get() else {
        return false;
    };
    resident_bytes(f).is_some_and(|rss| rss > *max)
}

/// Resident bytes of this process, from the `VmRSS` line of `/proc/self/status`.
fn resident_bytes(status: &File) -> Option<u64> {
    let mut buf = [0u8; 4096];
    let n = status.read_at(&mut buf, 0).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.trim_start_matches("VmRSS:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip() {
        for m in [
            Mark { tag: 0, index: 0, running: false },
            Mark { tag: u32::MAX, index: u32::MAX >> 1, running: true },
            Mark { tag: 7, index: 300, running: false },
        ] {
            assert_eq!(Mark::unpack(m.pack()), m);
        }
    }

    #[test]
    fn cancel_table_knows_only_its_jobs() {
        let t = CancelTable::new().unwrap();
        assert!(!t.cancelled(5));
        t.cancel(5);
        assert!(t.cancelled(5));
        assert!(!t.cancelled(5 + CANCEL_SLOTS as u64));
        assert!(!t.cancelled(0));
    }

    #[test]
    fn resident_memory_is_read() {
        let f = File::open("/proc/self/status").unwrap();
        assert!(resident_bytes(&f).unwrap() > 0);
    }
}
