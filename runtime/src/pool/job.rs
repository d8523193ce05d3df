//! One submitted call of the pool (`map`, `apply_async`, an `imap` stream, …):
//! its results as they come back, chunk by chunk, still encoded.
//!
//! A backend delivers [`ChunkResult`]s; the typed front end (`AsyncResult`,
//! the `imap` iterators) decodes them in the thread that asks for them.

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use serde::de::DeserializeOwned;

use super::signal::Signal;
use super::wire::{Cursor, WireError};
use crate::codec::{self, TakeBulk};
use crate::error::{Error, Result};
use crate::registry::SeqOutcome;
use crate::task::Task;

/// The outcome of one call, still encoded.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The encoded result at `body[start..start + len]`, with `nfds` handles.
    Ok { start: u32, len: u32, nfds: u16 },
    /// The call failed.
    Err(Box<Error>),
}

impl Seq {
    /// One call's outcome as the pool reports it: its value, or the panic as an error.
    fn result<T>(&self, outcome: SeqOutcome<T>) -> Result<T> {
        outcome.map_err(|(message, location)| Error::TaskPanicked { task: self.task.clone(), message, location })
    }
}

/// Skips a reply's kind byte and reads its result count, at most `expected`
/// (fewer when the chunk stopped early: the pool sees to the rest).
fn reply_count(c: &mut Cursor<'_>, expected: usize) -> Result<usize> {
    c.u8()?;
    let count = c.u32()? as usize;
    if count > expected {
        return Err(Error::Decode {
            what: "pool frame",
            reason: format!("a reply has {count} results for a chunk of {expected} calls"),
        });
    }
    Ok(count)
}

/// A `DONE_SEQ` reply: outcomes laid end to end, decoded one by one.
#[derive(Debug)]
struct Seq {
    /// Where the next outcome starts in the body.
    pos: usize,
    /// Outcomes not decoded yet.
    left: usize,
    task: String,
    /// The handles of all the outcomes (they index this one list).
    fds: Vec<OwnedFd>,
    /// Set once an outcome failed to decode: the rest cannot be found.
    broken: Option<String>,
    /// `DONE_VALUES`: plain values, no `Result` around each.
    values: bool,
}

/// The results of one chunk of calls (consecutive items of a job).
#[derive(Debug)]
pub(crate) struct ChunkResult {
    /// Index in the job of the first item.
    pub(crate) first: usize,
    body: Vec<u8>,
    items: VecDeque<Outcome>,
    fds: VecDeque<OwnedFd>,
    seq: Option<Seq>,
}

impl ChunkResult {
    /// A chunk whose every item failed with `err()`.
    pub(crate) fn failed(first: usize, count: usize, err: impl Fn() -> Error) -> Self {
        ChunkResult {
            first,
            body: Vec::new(),
            items: (0..count).map(|_| Outcome::Err(Box::new(err()))).collect(),
            fds: VecDeque::new(),
            seq: None,
        }
    }

    /// A chunk of one item that failed with `err`.
    pub(crate) fn one_error(first: usize, err: Error) -> Self {
        ChunkResult {
            first,
            body: Vec::new(),
            items: VecDeque::from([Outcome::Err(Box::new(err))]),
            fds: VecDeque::new(),
            seq: None,
        }
    }

    /// A chunk whose outcomes were read by a backend from `body` (ranges of
    /// `Outcome::Ok` index it; they carry no handles).
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn from_outcomes(first: usize, body: Vec<u8>, items: VecDeque<Outcome>) -> Self {
        ChunkResult { first, body, items, fds: VecDeque::new(), seq: None }
    }

    /// Parses a worker's `DONE` or `DONE_SEQ` frame (kind byte already checked by the caller).
    pub(crate) fn parse(first: usize, expected: usize, body: Vec<u8>, fds: Vec<OwnedFd>) -> Result<Self> {
        let kind = body.first().copied();
        if kind == Some(super::wire::DONE_SEQ) || kind == Some(super::wire::DONE_VALUES) {
            let mut c = Cursor::new(&body);
            let count = reply_count(&mut c, expected)?;
            let name_len = c.u16()? as usize;
            let task = String::from_utf8_lossy(c.bytes(name_len)?).into_owned();
            let pos = c.pos;
            let values = kind == Some(super::wire::DONE_VALUES);
            let seq = Seq { pos, left: count, task, fds, broken: None, values };
            return Ok(ChunkResult { first, body, items: VecDeque::new(), fds: VecDeque::new(), seq: Some(seq) });
        }
        let mut items = VecDeque::with_capacity(expected);
        {
            let mut c = Cursor::new(&body);
            let count = reply_count(&mut c, expected)?;
            let mut total_fds = 0;
            for _ in 0..count {
                let status = c.u8()?;
                let len = c.u32()? as usize;
                let nfds = c.u16()? as usize;
                let start = c.pos;
                let bytes = c.bytes(len)?;
                total_fds += nfds;
                items.push_back(match status {
                    // `Cursor` checked that the item lies inside the body, whose
                    // length fits in u32 (a frame's length is a u32).
                    0 => Outcome::Ok { start: start as u32, len: len as u32, nfds: nfds as u16 },
                    _ => Outcome::Err(Box::new(match codec::decode::<WireError>(bytes, Vec::new(), "task error") {
                        Ok(w) => w.into(),
                        Err(e) => e,
                    })),
                });
            }
            if total_fds != fds.len() {
                return Err(Error::Decode { what: "pool frame", reason: "handle count mismatch in a reply".into() });
            }
        }
        Ok(ChunkResult { first, body, items, fds: fds.into(), seq: None })
    }

    /// How many items are left in this chunk.
    pub(crate) fn len(&self) -> usize {
        match &self.seq {
            Some(seq) => seq.left,
            None => self.items.len(),
        }
    }

    /// Decodes every item left onto `out` (a batch reply without handles in one
    /// decoder pass); stops at the first failed item and returns its error.
    pub(crate) fn take_all<T: DeserializeOwned>(&mut self, out: &mut Vec<T>, bulk: Option<TakeBulk<T>>) -> Result<()> {
        if bulk.is_some() {
            // One copy per value: no decoder pass to share.
            while let Some(v) = self.next_with(bulk) {
                out.push(v?);
            }
            return Ok(());
        }
        if let Some(seq) = &mut self.seq
            && seq.broken.is_none()
            && seq.fds.is_empty()
            && seq.left > 0
        {
            let bytes = self.body.get(seq.pos..).unwrap_or_default();
            let count = std::mem::take(&mut seq.left);
            if seq.values {
                seq.pos += codec::decode_end_to_end_into(bytes, count, out, "task result")?;
                return Ok(());
            }
            let mut outcomes: Vec<SeqOutcome<T>> = Vec::new();
            seq.pos += codec::decode_end_to_end_into(bytes, count, &mut outcomes, "task result")?;
            out.reserve(outcomes.len());
            for o in outcomes {
                out.push(seq.result(o)?);
            }
            return Ok(());
        }
        while let Some(v) = self.next() {
            out.push(v?);
        }
        Ok(())
    }

    /// Decodes the next item.
    pub(crate) fn next<T: DeserializeOwned>(&mut self) -> Option<Result<T>> {
        self.next_with(None)
    }

    /// Decodes the next item; a value (not an error) with `bulk`, when given
    /// (the result type's one-copy reader, see `codec::typed`).
    pub(crate) fn next_with<T: DeserializeOwned>(&mut self, bulk: Option<TakeBulk<T>>) -> Option<Result<T>> {
        if let Some(seq) = &mut self.seq {
            if seq.left == 0 {
                return None;
            }
            seq.left -= 1;
            if let Some(reason) = &seq.broken {
                return Some(Err(Error::Decode { what: "task result", reason: reason.clone() }));
            }
            let bytes = self.body.get(seq.pos..).unwrap_or_default();
            let decoded = if let Some(taken) = bulk.filter(|_| seq.values).and_then(|take| take(bytes)) {
                taken.map(|(v, used)| (Ok(v), used)).map_err(|reason| Error::Decode { what: "task result", reason })
            } else if seq.values {
                codec::decode_prefix_with::<T>(bytes, &mut seq.fds, "task result").map(|(v, used)| (Ok(v), used))
            } else {
                codec::decode_prefix_with::<SeqOutcome<T>>(bytes, &mut seq.fds, "task result")
            };
            return Some(match decoded {
                Ok((outcome, used)) => {
                    seq.pos += used;
                    seq.result(outcome)
                }
                Err(e) => {
                    seq.broken = Some(e.to_string());
                    Err(e)
                }
            });
        }
        let outcome = self.items.pop_front()?;
        Some(match outcome {
            Outcome::Err(e) => Err(*e),
            Outcome::Ok { start, len, nfds } => {
                let fds: Vec<OwnedFd> = match nfds as usize {
                    0 => Vec::new(),
                    n => self.fds.drain(..n.min(self.fds.len())).collect(),
                };
                let (start, len) = (start as usize, len as usize);
                let bytes = &self.body[start..start + len];
                match bulk.and_then(|take| take(bytes)) {
                    Some(taken) => codec::whole(taken, len, "task result"),
                    None => codec::decode(bytes, fds, "task result"),
                }
            }
        })
    }
}

/// An exponential moving average of service times: `sample` alone when
/// nothing was measured yet (`old <= 0`).
pub(crate) fn ewma(old: f64, sample: f64) -> f64 {
    if old <= 0.0 { sample } else { 0.8 * old + 0.2 * sample }
}

/// What moves a backend's results to their jobs while a thread waits: the
/// local pool's links, or MPI's messages. Each backend implements it once; the
/// result types (`AsyncResult`, the `imap` iterators) wait through it.
pub(crate) trait Driver: Send + Sync {
    /// Waits until `cond` holds for `job` or `deadline` passes (`false`),
    /// moving results along meanwhile.
    fn wait_job(&self, job: &JobShared, deadline: Option<std::time::Instant>, cond: &dyn Fn(&JobInner) -> bool)
    -> bool;

    /// Whether results arrive without a waiting thread (a background thread
    /// delivers them, and wakes a `Future`). If not, a poll moves them along
    /// itself ([`Driver::progress`]).
    fn delivers_alone(&self) -> bool {
        true
    }

    /// Moves results along once, without blocking (for a thread that polls `job`).
    fn progress(&self, _job: &JobShared) {}

    /// Cancels `job` (see `AsyncResult::cancel`); with `running`, also stops
    /// its running calls where the backend can. Whether it was not already.
    fn cancel(&self, job: &Arc<JobShared>, running: bool) -> bool;

    /// `job`'s timeout changed: look at its running calls again.
    fn watch(&self) {}
}

/// Work to run once no lock is held: callbacks and wakers of finished jobs.
pub(crate) type Deferred = Box<dyn FnOnce() + Send>;

pub(crate) struct JobInner {
    ordered: bool,
    /// Ordered jobs: results by first index, waiting for their turn.
    by_index: BTreeMap<usize, ChunkResult>,
    /// Unordered jobs: results in arrival order.
    arrivals: VecDeque<ChunkResult>,
    /// Items submitted so far.
    pub(crate) submitted: usize,
    /// Items whose result arrived.
    pub(crate) delivered: usize,
    /// Items handed to the consumer.
    pub(crate) taken: usize,
    /// No more items will be submitted.
    pub(crate) sealed: bool,
    hooks: Vec<Deferred>,
    /// Callbacks are running: the job reads as complete once they are done (as in Python).
    hooks_running: bool,
    wakers: Vec<Waker>,
}

impl JobInner {
    /// Every item submitted has a result, no more will come, and callbacks have run.
    pub(crate) fn complete(&self) -> bool {
        self.all_delivered() && !self.hooks_running
    }

    fn all_delivered(&self) -> bool {
        self.sealed && self.delivered == self.submitted
    }

    /// Items submitted but not yet taken by the consumer.
    pub(crate) fn outstanding(&self) -> usize {
        self.submitted - self.taken
    }

    /// Whether [`JobInner::take_chunk`] would return a chunk.
    pub(crate) fn chunk_ready(&self) -> bool {
        if self.ordered {
            self.by_index.first_key_value().is_some_and(|(k, _)| *k == self.taken)
        } else {
            !self.arrivals.is_empty()
        }
    }

    /// The next chunk for the consumer: the one at the cursor (ordered), or the
    /// oldest arrival (unordered).
    pub(crate) fn take_chunk(&mut self) -> Option<ChunkResult> {
        let c = if self.ordered {
            let (k, _) = self.by_index.first_key_value()?;
            if *k != self.taken {
                return None;
            }
            self.by_index.pop_first().map(|(_, c)| c)
        } else {
            self.arrivals.pop_front()
        }?;
        self.taken += c.len();
        Some(c)
    }

    /// All results in order (once complete).
    pub(crate) fn take_all(&mut self) -> Vec<ChunkResult> {
        let mut out: Vec<ChunkResult> = std::mem::take(&mut self.by_index).into_values().collect();
        out.extend(self.arrivals.drain(..));
        out.sort_by_key(|c| c.first);
        self.taken = self.delivered;
        out
    }
}

/// A job's shared state: results and who waits for them.
pub(crate) struct JobShared {
    inner: Mutex<JobInner>,
    cv: Signal,
    /// Exponential average of one call's service time in this job, in ns (`f64`
    /// bits; 0 until a reply arrived): how many lone calls may share a frame.
    item_ns: AtomicU64,
    /// This job's id (unique in the process; never 0).
    id: u64,
    /// Cancelled: calls not yet run never run.
    cancelled: AtomicBool,
    /// Longest one call may run, in ns (0: the pool's `task_timeout`, if any).
    timeout_ns: AtomicU64,
}

/// Ids of jobs.
static NEXT_JOB: AtomicU64 = AtomicU64::new(1);

impl JobShared {
    pub(crate) fn new(ordered: bool) -> Self {
        JobShared {
            inner: Mutex::new(JobInner {
                ordered,
                by_index: BTreeMap::new(),
                arrivals: VecDeque::new(),
                submitted: 0,
                delivered: 0,
                taken: 0,
                sealed: false,
                hooks: Vec::new(),
                hooks_running: false,
                wakers: Vec::new(),
            }),
            cv: Signal::default(),
            item_ns: AtomicU64::new(0),
            id: NEXT_JOB.fetch_add(1, Ordering::Relaxed),
            cancelled: AtomicBool::new(false),
            timeout_ns: AtomicU64::new(0),
        }
    }

    /// This job's id (unique in the process; never 0).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Marks the job cancelled; whether it was not already.
    pub(crate) fn set_cancelled(&self) -> bool {
        !self.cancelled.swap(true, Ordering::AcqRel)
    }

    /// Whether the job was cancelled.
    pub(crate) fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Acquire)
    }

    /// Sets the longest one call of this job may run.
    pub(crate) fn set_timeout(&self, t: std::time::Duration) {
        let ns = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.timeout_ns.store(ns, Ordering::Release);
    }

    /// The longest one call of this job may run, if it has its own limit.
    pub(crate) fn timeout(&self) -> Option<std::time::Duration> {
        match self.timeout_ns.load(Ordering::Acquire) {
            0 => None,
            ns => Some(std::time::Duration::from_nanos(ns)),
        }
    }

    /// This job's measured time per call, in ns (0 before any reply).
    pub(crate) fn item_ns(&self) -> f64 {
        f64::from_bits(self.item_ns.load(Ordering::Relaxed))
    }

    /// Folds one reply's time per call into [`JobShared::item_ns`].
    pub(crate) fn record_item_ns(&self, per_item: f64) {
        self.item_ns.store(ewma(self.item_ns(), per_item).to_bits(), Ordering::Relaxed);
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, JobInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits on the job's condition variable (bounded, so a lost wake-up only costs time).
    pub(crate) fn park<'a>(&self, g: MutexGuard<'a, JobInner>, max: std::time::Duration) -> MutexGuard<'a, JobInner> {
        self.cv.wait_timeout(g, max)
    }

    /// Records `n` more submitted items.
    pub(crate) fn add_submitted(&self, n: usize) {
        self.lock().submitted += n;
    }

    /// Adds the results of one chunk; finished-job work goes to `deferred`.
    pub(crate) fn deliver(self: &Arc<Self>, chunk: ChunkResult, deferred: &mut Vec<Deferred>) {
        let mut g = self.lock();
        g.delivered += chunk.len();
        if g.ordered {
            g.by_index.insert(chunk.first, chunk);
        } else {
            g.arrivals.push_back(chunk);
        }
        self.after_change(g, deferred);
    }

    /// No more items will be submitted.
    pub(crate) fn seal(self: &Arc<Self>, deferred: &mut Vec<Deferred>) {
        let mut g = self.lock();
        g.sealed = true;
        self.after_change(g, deferred);
    }

    fn after_change(self: &Arc<Self>, mut g: MutexGuard<'_, JobInner>, deferred: &mut Vec<Deferred>) {
        if g.all_delivered() && !g.hooks.is_empty() && !g.hooks_running {
            g.hooks_running = true;
            let hooks = std::mem::take(&mut g.hooks);
            let me = self.clone();
            deferred.push(Box::new(move || {
                for h in hooks {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(h));
                }
                let mut g = me.lock();
                g.hooks_running = false;
                let wakers: Vec<Waker> = g.wakers.drain(..).collect();
                drop(g);
                me.cv.notify_all();
                wakers.into_iter().for_each(Waker::wake);
            }));
            return;
        }
        deferred.extend(g.wakers.drain(..).map(|w| Box::new(move || w.wake()) as Deferred));
        drop(g);
        self.cv.notify_all();
    }

    /// Runs `hook` once the job is complete (now, if it already is).
    pub(crate) fn on_complete(&self, hook: Deferred) {
        let mut g = self.lock();
        if g.all_delivered() {
            drop(g);
            // A user callback that panics is contained here too, as in `run_deferred`.
            run_deferred(vec![hook]);
        } else {
            g.hooks.push(hook);
        }
    }

    /// Registers a waker for the next change.
    pub(crate) fn add_waker(&self, w: &Waker) {
        let mut g = self.lock();
        if !g.wakers.iter().any(|o| o.will_wake(w)) {
            g.wakers.push(w.clone());
        }
    }
}

/// Runs deferred work (no lock may be held). A user callback that panics is
/// contained here: it must not take down the pool's thread or a waiter.
pub(crate) fn run_deferred(deferred: Vec<Deferred>) {
    for d in deferred {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(d));
    }
}

/// Decodes a complete job's results as one value (`apply`).
pub(crate) fn finish_one<F: Task<A>, A>(chunks: Vec<ChunkResult>) -> Result<F::Output>
where
    F::Output: DeserializeOwned,
{
    for mut c in chunks {
        if let Some(r) = c.next_with(F::bulk_output()) {
            return r;
        }
    }
    Err(Error::InvalidState("the call produced no result".into()))
}

/// Decodes a complete job's results in order (`map`); the first error wins.
pub(crate) fn finish_vec<F: Task<A>, A>(chunks: Vec<ChunkResult>) -> Result<Vec<F::Output>>
where
    F::Output: DeserializeOwned,
{
    let mut out = Vec::with_capacity(chunks.iter().map(ChunkResult::len).sum());
    for mut c in chunks {
        while let Some(r) = c.next_with(F::bulk_output()) {
            out.push(r?);
        }
    }
    Ok(out)
}

/// Decodes the next result of a chunk of calls of `F`.
pub(crate) fn decode_next<F: Task<A>, A>(c: &mut ChunkResult) -> Option<Result<F::Output>>
where
    F::Output: DeserializeOwned,
{
    c.next_with(F::bulk_output())
}

#[cfg(test)]
mod test {
    use super::super::wire::{DONE, DONE_SEQ, DONE_VALUES, WireError, put_u16, put_u32};
    use super::*;

    /// A reply of each kind for 3 calls returning `String`s (one failing in `DONE`).
    fn replies() -> Vec<Vec<u8>> {
        let values = ["a", "bc", ""].map(String::from);
        let mut done = vec![DONE];
        put_u32(&mut done, 3);
        for (i, v) in values.iter().enumerate() {
            let enc = if i == 1 {
                codec::encode(&WireError::Failed { task: "t".into(), message: "m".into() }, "t").unwrap().bytes
            } else {
                codec::encode(v, "t").unwrap().bytes
            };
            done.push(u8::from(i == 1));
            put_u32(&mut done, enc.len() as u32);
            put_u16(&mut done, 0);
            done.extend(enc);
        }
        let mut seq = vec![DONE_VALUES];
        put_u32(&mut seq, 3);
        put_u16(&mut seq, 1);
        seq.push(b't');
        let mut outcomes = seq.clone();
        outcomes[0] = DONE_SEQ;
        for v in &values {
            seq.extend(codec::encode(v, "t").unwrap().bytes);
            let o: SeqOutcome<String> = Ok(v.clone());
            outcomes.extend(codec::encode(&o, "t").unwrap().bytes);
        }
        vec![done, seq, outcomes]
    }

    /// Parses `body` and decodes every outcome, every way a pool does (one by
    /// one or all at once, through serde or the bulk reader).
    fn consume(body: &[u8]) -> usize {
        let mut decoded = 0;
        for bulk in [None, codec::bulk_taker::<String>()] {
            for all_at_once in [false, true] {
                let Ok(mut chunk) = ChunkResult::parse(0, 3, body.to_vec(), Vec::new()) else { continue };
                if all_at_once {
                    let mut out: Vec<String> = Vec::new();
                    let _ = chunk.take_all(&mut out, bulk);
                    decoded += out.len();
                } else {
                    while let Some(r) = chunk.next_with::<String>(bulk) {
                        decoded += usize::from(r.is_ok());
                    }
                }
            }
        }
        decoded
    }

    #[test]
    fn mutated_replies_decode_or_fail_but_never_panic() {
        // The valid replies decode in full (`take_all` stops at the failed call).
        let good = replies();
        assert_eq!(good.iter().map(|b| consume(b)).collect::<Vec<_>>(), [6, 12, 12]);
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut runs = 0;
        for body in &good {
            for n in 0..body.len() {
                consume(&body[..n]);
                runs += 1;
            }
            for _ in 0..2000 {
                let mut m = body.clone();
                for _ in 0..1 + next() % 3 {
                    let bit = next() as usize % (m.len() * 8);
                    m[bit / 8] ^= 1 << (bit % 8);
                }
                consume(&m);
                runs += 1;
            }
        }
        assert!(runs > 6000);
    }
}
