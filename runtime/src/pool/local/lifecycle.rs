//! Worker lifecycle: starting a worker, reaping one, and what happens to the
//! calls a lost worker held.

use std::collections::VecDeque;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Instant;

use super::{Chunk, Core, EXIT_GRACE, RunState, Shared, Worker, fail_chunk};
use crate::error::{Error, ExitStatus, IoContext, Result};
use crate::pool::job::{ChunkResult, Deferred, run_deferred};
use crate::pool::wire::{Link, RecvBuf};
use crate::pool::worker::{WorkerConfig, pool_worker};
use crate::process::Process;
use crate::sys;

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
    let config = WorkerConfig { initializer: sh.cfg.initializer.clone(), init_fds };
    let mut p = Process::builder(pool_worker, (Link(theirs), config))
        .name(format!("PoolWorker-{id}"))
        .daemon(true)
        .start_method(sh.cfg.method)
        .build()?;
    p.start()?;
    let pid = p.pid().unwrap_or(0);
    log::info!(target: "multiproc", "pool: worker {id} started (pid {pid})");
    let pidfd = sys::fd::dup(p.sentinel()?).ctx("dup")?;
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

    /// Without retries, every call the worker held fails (at most once). With
    /// retries, calls that were in flight together are run again, each alone,
    /// so that only the one that kills a worker by itself is charged an attempt.
    fn settle_held(&self, c: &mut Core, w: &mut Worker, status: ExitStatus, deferred: &mut Vec<Deferred>) {
        let running = c.state != RunState::Terminated && self.cfg.retries > 0;
        let mut held_chunks: Vec<Chunk> = Vec::new();
        for chunk in w.inflight.drain(..) {
            if !running || chunk.parts.is_empty() {
                held_chunks.push(chunk);
                continue;
            }
            // Merged lone calls are retried as the separate calls they are.
            let parts = chunk.parts.len();
            let job = chunk.job.clone();
            let (first, count) = (chunk.first, chunk.count);
            match chunk.split() {
                Ok(singles) => {
                    c.outstanding += parts - 1;
                    held_chunks.extend(singles);
                }
                Err(e) => {
                    let msg = e.to_string();
                    c.outstanding = c.outstanding.saturating_sub(1);
                    job.deliver(ChunkResult::failed(first, count, || Error::InvalidState(msg.clone())), deferred);
                }
            }
        }
        let held = held_chunks.len();
        let mut requeue = Vec::new();
        for mut chunk in held_chunks {
            if running && held > 1 && !chunk.suspect {
                chunk.suspect = true;
                chunk.sent = None;
                requeue.push(chunk);
            } else if running && chunk.attempts < self.cfg.retries {
                chunk.attempts += 1;
                chunk.suspect = true;
                chunk.sent = None;
                requeue.push(chunk);
            } else {
                c.outstanding = c.outstanding.saturating_sub(1);
                let pid = w.pid;
                log::warn!(target: "multiproc", "pool: {} calls failed with lost worker {pid} ({status})", chunk.count);
                fail_chunk(chunk, deferred, || Error::WorkerLost { pid, status });
            }
        }
        if !requeue.is_empty() {
            let calls: usize = requeue.iter().map(|ch| ch.count).sum();
            log::warn!(target: "multiproc", "pool: retrying {calls} calls held by lost worker {}", w.pid);
        }
        for chunk in requeue.into_iter().rev() {
            c.queue.push_front(chunk);
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
