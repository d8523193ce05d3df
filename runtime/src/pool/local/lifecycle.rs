//! Worker lifecycle: starting a worker, reaping one, and what happens to the
//! calls a lost worker held.

use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Instant;

use super::dispatch::NO_DUP;
use super::{Chunk, Core, EXIT_GRACE, Kill, RunState, Shared, Worker, fail_chunk};
use crate::callmark::{MarkCell, WorkerBoard};
use crate::error::{Error, ExitStatus, IoContext, Result};
use crate::pool::job::{ChunkResult, Deferred, run_deferred};
use crate::pool::wire::{Link, RecvBuf};
use crate::pool::worker::{WorkerConfig, pool_worker};
use crate::process::Process;
use crate::sys;

/// Times a chunk may be held by a dying worker without ever running (beyond
/// the pool's retries) before it fails: a frame that kills its worker before
/// the first call starts (say, while its arguments are decoded) cannot loop.
const MAX_BYSTANDER: u32 = 3;

/// Cuts `chunk` around its call `k` (counted from its first call to run):
/// the calls before it, the call itself (keeping the chunk's attempts if it
/// ran alone already), the calls after it. The chunk back when its handles
/// could not be duplicated.
type Cut = (Option<Chunk>, Chunk, Option<Chunk>);
fn cut_at(chunk: Chunk, k: usize) -> std::result::Result<Cut, Box<Chunk>> {
    if chunk.count <= 1 {
        return Ok((None, chunk, None));
    }
    let rest = chunk.count - k - 1;
    let before = if k > 0 { chunk.sub(0, k) } else { None };
    let culprit = chunk.sub(k, 1);
    let after = if rest > 0 { chunk.sub(k + 1, rest) } else { None };
    match culprit {
        Some(culprit) if (k == 0) == before.is_none() && (rest == 0) == after.is_none() => Ok((before, culprit, after)),
        _ => Err(Box::new(chunk)),
    }
}

/// Waits for a worker to exit (killing it after a grace period); its status.
pub(super) fn reap(w: &mut Worker) -> ExitStatus {
    w.link = None;
    let Some(mut p) = w.proc.take() else { return ExitStatus::Code(0) };
    let status = match p.join_timeout(EXIT_GRACE) {
        Ok(Some(s)) => s,
        _ => {
            log::warn!(target: "multiproc", "pool: worker {} did not exit in {EXIT_GRACE:?}; killed", w.pid);
            let _ = p.kill();
            let _ = p.join();
            p.exitcode().unwrap_or(ExitStatus::Signal(libc::SIGKILL))
        }
    };
    log::info!(target: "multiproc", "pool: worker {} exited ({status})", w.pid);
    status
}

/// Starts one worker process.
pub(super) fn spawn_worker(sh: &Shared, id: usize) -> Result<Worker> {
    let (mine, theirs) = sys::fd::socketpair().ctx("socketpair")?;
    sys::fd::set_socket_buffers(mine.as_fd(), 4 << 20);
    sys::fd::set_socket_buffers(theirs.as_fd(), 4 << 20);
    let mut init_fds = Vec::new();
    for f in &sh.cfg.init_fds {
        init_fds.push(Link(sys::fd::dup(f.as_fd()).ctx("dup")?));
    }
    let mark = MarkCell::new()?;
    let board = WorkerBoard { mark: mark.clone(), cancels: sh.cancels.clone(), max_rss: sh.cfg.max_memory };
    let config = WorkerConfig { initializer: sh.cfg.initializer.clone(), init_fds, board: Some(board) };
    let mut p = Process::builder(pool_worker, (Link(theirs), config))
        .name(format!("PoolWorker-{id}"))
        .daemon(true)
        .start_method(sh.cfg.method)
        .build()?;
    p.start()?;
    let pid = p.pid().unwrap_or(0);
    log::info!(target: "multiproc", "pool: worker {id} started (pid {pid})");
    let pidfd = sys::fd::dup(p.sentinel()?).ctx("dup")?;
    sh.ended.add(pidfd.as_fd(), u64::from(pid)).ctx("epoll_ctl")?;
    Ok(Worker {
        proc: Some(p),
        pid,
        link: Some(Arc::new(mine)),
        pidfd: Arc::new(pidfd),
        rx: RecvBuf::new(),
        inflight: VecDeque::new(),
        inflight_bytes: 0,
        sent_items: 0,
        ready: false,
        lost: false,
        last_reply: Instant::now(),
        mark,
        seen: None,
        killed: None,
    })
}

impl Shared {
    /// Takes the lost workers out and counts the replacements to start (and
    /// counts them as starting); `None` once the pool is terminated or joined.
    pub(super) fn take_lost(&self) -> Option<(Vec<Worker>, usize)> {
        let mut c = self.lock();
        if c.state == RunState::Terminated || c.joined {
            return None;
        }
        let mut lost = Vec::new();
        let mut i = 0;
        while i < c.workers.len() {
            if c.workers[i].lost {
                lost.push(c.workers.swap_remove(i));
            } else {
                i += 1;
            }
        }
        let have = c.workers.len() + c.spawning;
        let want = if c.broken.is_some() { 0 } else { self.cfg.processes.saturating_sub(have) };
        c.spawning += want;
        Some((lost, want))
    }

    /// Reaps a lost worker and settles the calls it held: failed, or retried.
    pub(super) fn bury(&self, mut w: Worker) {
        self.ended.remove(w.pidfd.as_fd());
        let status = reap(&mut w);
        if w.inflight.is_empty() && matches!(status, ExitStatus::Code(0)) {
            log::info!(target: "multiproc", "pool: worker {} retired; a new one replaces it", w.pid);
        } else {
            log::warn!(target: "multiproc", "pool: worker {} lost ({status}) holding {} chunks; a new one replaces it", w.pid, w.inflight.len());
        }
        let mut deferred = Vec::new();
        {
            let mut c = self.lock();
            self.count_early_death(&mut c, &w, status, &mut deferred);
            self.settle_held(&mut c, &mut w, status, &mut deferred);
            if c.outstanding == 0 {
                self.core_cv.notify_all();
            }
            self.dispatch(&mut c);
        }
        run_deferred(deferred);
    }

    /// A worker that keeps dying before it is ready (a broken binary, a crash
    /// in start-up code) would otherwise be replaced for ever: after three per
    /// process in a row, the pool is broken.
    fn count_early_death(&self, c: &mut Core, w: &Worker, status: ExitStatus, deferred: &mut Vec<Deferred>) {
        if w.ready {
            c.early_deaths = 0;
            return;
        }
        c.early_deaths += 1;
        if c.early_deaths >= 3 * self.cfg.processes.max(1) && c.broken.is_none() {
            let msg =
                format!("pool workers keep dying before they start ({} in a row; the last: {status})", c.early_deaths);
            log::error!(target: "multiproc", "pool: broken: {msg}");
            if c.start_error.is_none() {
                c.start_error = Some(Error::Handshake { pid: w.pid, reason: msg.clone() });
            }
            self.fail_queue(c, deferred, &msg);
            c.broken = Some(msg);
            self.core_cv.notify_all();
        }
    }

    /// Settles the calls a lost worker held. Its mark says which call was
    /// running: that call alone is charged (it fails — with the kill's reason,
    /// or [`Error::WorkerLost`] once out of retries — or runs again, alone).
    /// The calls before it in its chunk ran but their results were lost, and
    /// the calls after it and in the chunks behind it never started: all of
    /// them run again, uncharged. A chunk that keeps being held by dying
    /// workers without ever running fails after [`MAX_BYSTANDER`] + retries.
    fn settle_held(&self, c: &mut Core, w: &mut Worker, status: ExitStatus, deferred: &mut Vec<Deferred>) {
        let pid = w.pid;
        let lost = move || Error::WorkerLost { pid, status };
        let running = c.state != RunState::Terminated;
        let mark = w.mark.read();
        let mut requeue: Vec<Chunk> = Vec::new();
        for mut chunk in w.inflight.drain(..).collect::<Vec<_>>() {
            chunk.sent = None;
            let hit = mark.running && chunk.tag != 0 && mark.tag == chunk.tag;
            if !running || (!hit && chunk.bystander >= MAX_BYSTANDER + self.cfg.retries) {
                c.outstanding = c.outstanding.saturating_sub(1);
                fail_chunk(chunk, deferred, lost);
                continue;
            }
            if !hit {
                chunk.bystander += 1;
                requeue.push(chunk);
                continue;
            }
            let k = (mark.index as usize).saturating_sub(chunk.base).min(chunk.count.saturating_sub(1));
            let (before, mut culprit, after) = match cut_at(chunk, k) {
                Ok(cut) => cut,
                Err(chunk) => {
                    c.outstanding = c.outstanding.saturating_sub(1);
                    fail_chunk(*chunk, deferred, || Error::InvalidState(NO_DUP.into()));
                    continue;
                }
            };
            c.outstanding += usize::from(before.is_some()) + usize::from(after.is_some());
            requeue.extend(before);
            let outcome = match w.killed {
                Some(Kill::Timeout { mark: m, after: t }) if m == mark => {
                    Some(Error::TaskTimeout { task: culprit.task_name(), after: t })
                }
                Some(Kill::Cancelled { mark: m }) if m == mark => Some(Error::Cancelled),
                // The pool killed the worker for another call, which had just ended.
                Some(_) => None,
                _ if culprit.attempts >= self.cfg.retries => Some(lost()),
                _ => None,
            };
            match outcome {
                Some(err) => {
                    log::warn!(target: "multiproc", "pool: call {} failed with lost worker {pid}: {err}", culprit.first);
                    c.outstanding = c.outstanding.saturating_sub(1);
                    culprit.job.deliver(ChunkResult::one_error(culprit.first, err), deferred);
                }
                None => {
                    log::warn!(target: "multiproc", "pool: retrying call {} held by lost worker {pid} ({status})", culprit.first);
                    culprit.attempts += u32::from(w.killed.is_none());
                    culprit.suspect = true;
                    requeue.push(culprit);
                }
            }
            requeue.extend(after);
        }
        if !requeue.is_empty() {
            let calls: usize = requeue.iter().map(|ch| ch.count).sum();
            log::info!(target: "multiproc", "pool: re-queueing {calls} calls held by lost worker {pid}");
        }
        for chunk in requeue.into_iter().rev() {
            if chunk.job.cancelled() {
                c.outstanding = c.outstanding.saturating_sub(1);
                fail_chunk(chunk, deferred, || Error::Cancelled);
            } else {
                c.queue.push_front(chunk);
            }
        }
    }

    /// Starts `n` workers (counted as starting by [`Shared::take_lost`]).
    pub(super) fn start_replacements(&self, n: usize) {
        for _ in 0..n {
            let id = {
                let mut c = self.lock();
                c.next_id += 1;
                c.next_id - 1
            };
            log::debug!(target: "multiproc", "pool: starting worker {id}");
            let started = spawn_worker(self, id);
            let mut deferred = Vec::new();
            let mut extra = None;
            {
                let mut c = self.lock();
                c.spawning -= 1;
                match started {
                    Ok(w) if c.state == RunState::Terminated || c.joined => extra = Some(w),
                    Ok(w) => c.workers.push(w),
                    Err(e) => {
                        let msg = format!("cannot start a pool worker: {e}");
                        log::error!(target: "multiproc", "pool: {msg}");
                        if c.start_error.is_none() {
                            c.start_error = Some(e);
                        }
                        if c.workers.iter().all(|w| w.lost) && c.spawning == 0 {
                            c.broken = Some(msg.clone());
                            self.fail_queue(&mut c, &mut deferred, &msg);
                        }
                        self.core_cv.notify_all();
                    }
                }
            }
            if let Some(mut w) = extra {
                reap(&mut w);
            }
            run_deferred(deferred);
        }
    }
}
