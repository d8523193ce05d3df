//! Dispatch: sending queued chunks to workers with room, pumping replies to
//! their jobs, and a waiter's spin-then-park.

use std::os::fd::AsFd;
use std::time::Instant;

use super::{Chunk, Core, PARK, Shared, Worker, fail_chunk};
use crate::backoff::Backoff;
use crate::codec;
use crate::error::Error;
use crate::pool::job::{ChunkResult, Deferred, Driver, JobInner, JobShared, ewma, run_deferred};
use crate::pool::wire::{self, WireError};

/// Bytes of requests a worker may have in flight (well under its 4 MiB socket buffer).
const MAX_INFLIGHT_BYTES: usize = 1 << 20;
/// Why calls could not be queued again.
pub(super) const NO_DUP: &str = "cannot duplicate the handles of the calls to run them again";
/// Chunks in flight per worker before anything is measured.
const INITIAL_DEPTH: usize = 4;
/// Most chunks in flight per worker.
const MAX_DEPTH: usize = 256;
/// How much work (ns) to keep queued in each worker: covers a dispatch round trip.
const LOOKAHEAD_NS: f64 = 500_000.0;

/// Below this time per chunk (ns), work is too small to gain from more
/// workers than CPUs: only as many workers as CPUs get it at once.
const TINY_CHUNK_NS: f64 = 200_000.0;

/// The CPUs this process may run on, read once.
fn cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(crate::sys::process::cpu_count)
}

/// How many workers may have work in flight at once for `next`: all of
/// them, unless its job's own replies show its chunks to be tiny, when a
/// worker per CPU does the work with fewer wake-ups and context switches (a
/// `Pool(16)` on 2 cores runs tiny calls nearly as fast as a `Pool(2)`).
/// A job's first chunks, not yet measured, spread over every worker.
fn active_cap(next: &Chunk, workers: usize) -> usize {
    let chunk_ns = next.job.item_ns() * next.count as f64;
    if chunk_ns > 0.0 && chunk_ns < TINY_CHUNK_NS { cpus().min(workers) } else { workers }
}

/// Chunks in flight per worker: enough to cover [`LOOKAHEAD_NS`] of work at
/// the measured time per chunk (`chunk_ns`, 0 before any reply).
fn depth(chunk_ns: f64) -> usize {
    if chunk_ns <= 0.0 { INITIAL_DEPTH } else { ((LOOKAHEAD_NS / chunk_ns).ceil() as usize).clamp(2, MAX_DEPTH) }
}

/// Sends `batch` to `w` in one write (each chunk tagged from `next_tag`) and
/// records it in flight; whether the worker turned out lost.
fn send_batch(w: &mut Worker, mut batch: Vec<Chunk>, send_buf: &mut Vec<u8>, next_tag: &mut u32) -> bool {
    let Some(link) = w.link.clone() else { return false };
    for ch in &mut batch {
        ch.stamp(*next_tag);
        *next_tag = next_tag.wrapping_add(1).max(1);
    }
    if log::log_enabled!(target: "multiproc", log::Level::Trace) {
        let calls: usize = batch.iter().map(|ch| ch.count).sum();
        log::trace!(target: "multiproc", "pool: {} chunks ({calls} calls) to worker {}", batch.len(), w.pid);
    }
    let sent = if batch.len() == 1 {
        wire::send(link.as_fd(), &batch[0].frame, &batch[0].fds)
    } else {
        send_buf.clear();
        for ch in &batch {
            send_buf.extend_from_slice(&ch.frame);
        }
        wire::send(link.as_fd(), send_buf, &[])
    };
    let lost = sent.is_err();
    if lost {
        w.lost = true;
    }
    let now = Instant::now();
    for mut ch in batch {
        ch.sent = Some(now);
        w.inflight_bytes += ch.frame.len();
        w.sent_items += ch.count;
        w.inflight.push_back(ch);
    }
    lost
}

/// The order `dispatch` offers work to the workers: the busiest first while
/// the active-worker `cap` binds (tiny work stays on few workers), else the
/// least loaded first, so lone calls spread out.
fn visit_order(workers: &[Worker], cap: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..workers.len()).collect();
    if cap < workers.len() {
        order.sort_by_key(|&i| std::cmp::Reverse(workers[i].inflight.len()));
    } else {
        order.sort_by_key(|&i| workers[i].inflight.len());
    }
    order
}

impl Shared {
    /// Sends queued chunks to workers with room, spread evenly.
    pub(super) fn dispatch(&self, c: &mut Core) {
        let depth = depth(c.chunk_ns);
        let max_tasks = self.cfg.max_tasks;
        let fits = |w: &Worker, n: usize, items: usize, bytes: usize, next: &Chunk| {
            w.ready
                && !w.lost
                && w.link.is_some()
                && max_tasks.is_none_or(|m| w.sent_items + items < m)
                && w.inflight.len() + n < depth
                && !w.inflight.front().is_some_and(|c| c.suspect || c.lead)
                && (!(next.suspect || next.lead) || (w.inflight.is_empty() && n == 0))
                && ((w.inflight.is_empty() && n == 0)
                    || w.inflight_bytes + bytes + next.frame.len() <= MAX_INFLIGHT_BYTES)
        };
        let mut any_lost = false;
        loop {
            let Core { workers, queue, send_buf, outstanding, next_tag, .. } = &mut *c;
            let Some(front) = queue.front() else { break };
            let eligible = workers.iter().filter(|w| fits(w, 0, 0, 0, front)).count();
            if eligible == 0 {
                break;
            }
            let cap = active_cap(front, workers.len());
            // Shared among the workers that may take it: with tiny chunks on
            // a large pool, only `cap` of them, so each send carries a share
            // of the queue, not a sixteenth of it (a frame per call or two).
            let share = queue.len().div_ceil(eligible.min(cap)).max(1);
            let mut sent_any = false;
            let mut active = workers.iter().filter(|w| !w.inflight.is_empty()).count();
            for i in visit_order(workers, cap) {
                let w = &mut workers[i];
                if w.inflight.is_empty() && active >= cap {
                    continue;
                }
                let mut batch: Vec<Chunk> = Vec::new();
                let (mut taken, mut items, mut bytes) = (0, 0, 0);
                while taken < share {
                    let Some(next) = queue.front() else { break };
                    if let Some(last) = batch.last_mut()
                        && max_tasks.is_none_or(|m| w.sent_items + items + 1 < m)
                        && w.inflight_bytes + bytes + next.frame.len() <= MAX_INFLIGHT_BYTES
                    {
                        let before = last.frame.len();
                        if last.absorb(next) {
                            bytes = bytes + last.frame.len() - before; // `bytes` counts `before`
                            queue.pop_front();
                            *outstanding -= 1;
                            taken += 1;
                            items += 1;
                            continue;
                        }
                    }
                    if !fits(w, batch.len(), items, bytes, next) || (!batch.is_empty() && !next.fds.is_empty()) {
                        break;
                    }
                    let Some(chunk) = queue.pop_front() else { break };
                    taken += 1;
                    items += chunk.count;
                    bytes += chunk.frame.len();
                    let alone = !chunk.fds.is_empty() || chunk.suspect || chunk.lead;
                    batch.push(chunk);
                    if alone {
                        break;
                    }
                }
                if batch.is_empty() || w.link.is_none() {
                    continue;
                }
                active += usize::from(w.inflight.is_empty());
                any_lost |= send_batch(w, batch, send_buf, next_tag);
                sent_any = true;
            }
            if !sent_any {
                break;
            }
        }
        if any_lost {
            self.wake();
        }
    }

    /// Reads whatever the workers sent, hands results over, sends more work.
    /// Never blocks on a read. Returns whether anything arrived.
    pub(super) fn pump(&self, c: &mut Core, deferred: &mut Vec<Deferred>) -> bool {
        let mut progress = false;
        let mut any_lost = false;
        for i in 0..c.workers.len() {
            let w = &c.workers[i];
            // An idle worker (ready, nothing in flight) has nothing to say: its
            // end is seen by the pool's thread on its pidfd. Skipping it keeps
            // a pump one `recv` per busy worker in a large pool.
            if w.lost || (w.ready && w.inflight.is_empty()) {
                continue;
            }
            let Some(link) = c.workers[i].link.clone() else { continue };
            for _ in 0..64 {
                match c.workers[i].rx.fill(link.as_fd()) {
                    Ok(true) => progress = true,
                    Ok(false) => break,
                    Err(_) => {
                        c.workers[i].lost = true;
                        break;
                    }
                }
            }
            loop {
                match c.workers[i].rx.next_frame() {
                    Ok(Some(frame)) => self.handle_frame(c, i, frame, deferred),
                    Ok(None) => break,
                    Err(_) => {
                        c.workers[i].lost = true;
                        break;
                    }
                }
            }
            if c.workers[i].rx.eof {
                c.workers[i].lost = true;
            }
            any_lost |= c.workers[i].lost;
        }
        if any_lost {
            self.wake();
        }
        self.dispatch(c);
        progress
    }

    pub(super) fn handle_frame(&self, c: &mut Core, i: usize, frame: wire::Frame, deferred: &mut Vec<Deferred>) {
        match frame.body.first().copied() {
            Some(wire::READY) => {
                c.workers[i].ready = true;
                self.core_cv.notify_all();
            }
            Some(wire::INIT_FAILED) => {
                let err: Error = match codec::decode::<WireError>(&frame.body[1..], Vec::new(), "initializer error") {
                    Ok(w) => w.into(),
                    Err(e) => e,
                };
                let msg = format!("the pool's initializer failed: {err}");
                c.workers[i].lost = true;
                if c.start_error.is_none() && c.broken.is_none() {
                    c.start_error = Some(err);
                }
                c.broken = Some(msg.clone());
                self.fail_queue(c, deferred, &msg);
                self.core_cv.notify_all();
            }
            Some(wire::DONE | wire::DONE_SEQ | wire::DONE_VALUES) => {
                let w = &mut c.workers[i];
                let Some(chunk) = w.inflight.pop_front() else {
                    w.lost = true;
                    return;
                };
                w.inflight_bytes -= chunk.frame.len();
                let now = Instant::now();
                let since = chunk.sent.map_or(w.last_reply, |s| s.max(w.last_reply));
                let dt = now.saturating_duration_since(since).as_nanos() as f64;
                w.last_reply = now;
                let retire = self.cfg.max_tasks.is_some_and(|m| w.sent_items >= m) && w.inflight.is_empty();
                if retire {
                    // Closing the link tells the worker to exit; the background thread reaps it.
                    w.link = None;
                    w.lost = true;
                    self.wake();
                }
                let per_item = dt.max(1.0) / chunk.count.max(1) as f64;
                c.chunk_ns = ewma(c.chunk_ns, dt.max(1.0));
                chunk.job.record_item_ns(per_item);
                let (first, count) = (chunk.first, chunk.count);
                match ChunkResult::parse(first, count, frame.body, frame.fds) {
                    Ok(r) => {
                        let ran = r.len();
                        chunk.job.deliver(r, deferred);
                        if ran < count {
                            // The worker stopped early (a cancel, its memory): see to the rest.
                            return self.rest_of(c, &chunk, ran, deferred);
                        }
                        self.spares.keep(chunk.frame);
                    }
                    Err(e) => {
                        let msg = e.to_string();
                        fail_chunk(chunk, deferred, || Error::Decode { what: "task result", reason: msg.clone() });
                    }
                }
                c.outstanding -= 1;
                if c.outstanding == 0 {
                    self.core_cv.notify_all();
                }
            }
            _ => c.workers[i].lost = true,
        }
    }

    /// The calls of `chunk` after its first `ran`, which its worker did not
    /// run: cancelled with their job, or queued again (first, uncharged).
    fn rest_of(&self, c: &mut Core, chunk: &Chunk, ran: usize, deferred: &mut Vec<Deferred>) {
        let n = chunk.count - ran;
        let cancelled = chunk.job.cancelled();
        match chunk.sub(ran, n).filter(|_| !cancelled) {
            Some(rest) => c.queue.push_front(rest),
            None => {
                c.outstanding -= 1;
                let err = move || if cancelled { Error::Cancelled } else { Error::InvalidState(NO_DUP.into()) };
                chunk.job.deliver(ChunkResult::failed(chunk.first + ran, n, err), deferred);
                if c.outstanding == 0 {
                    self.core_cv.notify_all();
                }
            }
        }
    }

    /// Fails every queued chunk (the pool cannot run them).
    pub(super) fn fail_queue(&self, c: &mut Core, deferred: &mut Vec<Deferred>, msg: &str) {
        for chunk in c.queue.drain(..) {
            c.outstanding -= 1;
            fail_chunk(chunk, deferred, || Error::WorkersNotStarting { reason: msg.to_string() });
        }
        if c.outstanding == 0 {
            self.core_cv.notify_all();
        }
    }

    /// Pumps once from a waiting thread; returns whether anything arrived.
    pub(super) fn pump_once(&self) -> bool {
        let mut deferred = Vec::new();
        let progressed = {
            let mut c = self.lock();
            self.pump(&mut c, &mut deferred)
        };
        run_deferred(deferred);
        progressed
    }

    /// Waits until `cond` holds for `job` or `deadline` passes: spins (pumping the
    /// links itself, DESIGN.md Latency) while results keep coming, then parks.
    pub(crate) fn wait_job(
        &self,
        job: &JobShared,
        deadline: Option<Instant>,
        cond: &dyn Fn(&JobInner) -> bool,
    ) -> bool {
        if cond(&job.lock()) {
            return true;
        }
        self.watch.begin_pumping();
        let mut backoff = Backoff::new();
        let outcome = loop {
            let progressed = self.pump_once();
            if cond(&job.lock()) {
                break Some(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break Some(false);
            }
            if progressed {
                backoff.reset();
            } else if !backoff.snooze_until(deadline) {
                break None;
            }
        };
        if self.watch.end_pumping(outcome.is_none()) {
            self.wake(); // it reads the links for this parked waiter
        }
        if let Some(r) = outcome {
            return r;
        }
        let woken = self.park_job(job, deadline, cond);
        self.watch.end_park();
        woken
    }

    /// The park of [`Shared::wait_job`], once its spin found nothing.
    fn park_job(&self, job: &JobShared, deadline: Option<Instant>, cond: &dyn Fn(&JobInner) -> bool) -> bool {
        let mut g = job.lock();
        loop {
            if cond(&g) {
                return true;
            }
            let max = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    left.min(PARK)
                }
                None => PARK,
            };
            g = job.park(g, max);
            if !cond(&g) {
                // Nothing for a while: help once more, in case the pool's thread
                // is busy (starting a worker) or gone.
                drop(g);
                self.pump_once();
                g = job.lock();
            }
        }
    }
}

impl Driver for Shared {
    fn wait_job(&self, job: &JobShared, deadline: Option<Instant>, cond: &dyn Fn(&JobInner) -> bool) -> bool {
        Shared::wait_job(self, job, deadline, cond)
    }

    fn cancel(&self, job: &std::sync::Arc<JobShared>, running: bool) -> bool {
        Shared::cancel(self, job, running)
    }

    fn watch(&self) {
        self.wake();
    }
}
