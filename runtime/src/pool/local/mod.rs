//! The local backend of `Pool`: worker processes on this machine (the façade is `pool/mod.rs`).
//!
//! One lock (`Core`) guards the workers, the queue of encoded chunks and every
//! link's receive buffer. Whoever holds it may *pump*: read what the workers
//! sent (never blocking), hand results to their jobs, and send queued chunks to
//! workers with room. Three kinds of thread pump:
//!
//! 1. a submitting thread, right after queueing (so `apply_async` goes out at
//!    once), unless what it queued is large: then the background thread sends
//!    it while the submitter encodes the next chunk;
//! 2. a thread waiting for a result, which spins and pumps for a short while
//!    (DESIGN.md, Latency) before it parks;
//! 3. the pool's background thread, which sleeps in `poll` on the links (unless
//!    waiters read them), the workers' pidfds (through one epoll fd) and a
//!    wake-up socket, and which
//!    alone blocks: it reaps lost workers, fails or retries their chunks, and
//!    starts replacements.
//!
//! A round trip (`apply_async(..).get()`) wakes nobody but the worker: the
//! waiter pumps the reply itself, and the background thread leaves the links
//! to waiters while they come (`watch.rs`). Woken on every reply and again
//! when each waiter left, the thread took a CPU from the two ends twice per
//! call: an idle `Pool(2)` apply took 31-46 µs, now 12-16 µs.
//!
//! Writes never block while the lock is held, except for a chunk sent to a worker
//! with nothing in flight (which is then only reading): a worker with chunks in
//! flight only gets more while they fit in its socket buffer. So a worker blocked
//! writing a large reply and the parent writing a large request never wait on
//! each other.
//!
//! Files, one concept each: `encode.rs` (chunks and their frames), `dispatch.rs`
//! (sending, pumping replies, waiting), `lifecycle.rs` (starting, reaping and
//! replacing workers; retrying the calls of a lost one), `stop.rs` (timeouts
//! and cancellation), `background.rs` (the pool's thread), `watch.rs` (who
//! reads the links), `spare.rs` (large frame buffers kept for reuse).

mod background;
mod dispatch;
mod encode;
mod lifecycle;
mod spare;
mod stop;
mod watch;

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::job::{ChunkResult, Deferred, run_deferred};
use super::signal::Signal;
use super::wire::{self, RecvBuf};
use crate::callmark::{CancelTable, Mark, MarkCell};
use crate::context::StartMethod;
use crate::error::{Error, IoContext, Result};
use crate::process::Process;
use crate::sys;

use self::encode::Chunk;
pub(crate) use self::encode::submit_items;
use self::lifecycle::reap;
use super::state::{RunState, Stopped};

/// Bound on each park, so a lost wake-up only costs time.
const PARK: Duration = Duration::from_millis(50);
/// How long a worker that should exit gets before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(5);
/// Chunks of at least this many bytes are sent by the pool's thread, not by
/// the caller that submits them: sending a large frame takes as long as
/// encoding it, so the caller goes on encoding the next chunk meanwhile.
const HANDOFF_BYTES: usize = 1 << 20;

/// How a pool is configured.
pub(crate) struct Config {
    pub(crate) processes: usize,
    pub(crate) method: StartMethod,
    pub(crate) initializer: Option<(String, Vec<u8>)>,
    pub(crate) init_fds: Vec<OwnedFd>,
    pub(crate) max_tasks: Option<usize>,
    pub(crate) retries: u32,
    /// Longest one call may run (a job's own limit wins).
    pub(crate) task_timeout: Option<Duration>,
    /// Replace a worker whose resident memory exceeds this after a call.
    pub(crate) max_memory: Option<u64>,
}

/// Why the pool killed a worker: the call it was running ends with this.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// The call ran longer than its timeout.
    Timeout { mark: Mark, after: Duration },
    /// The call's job was cancelled with `cancel_running`.
    Cancelled { mark: Mark },
}

struct Worker {
    proc: Option<Process>,
    pid: u32,
    link: Option<Arc<OwnedFd>>,
    pidfd: Arc<OwnedFd>,
    rx: RecvBuf,
    inflight: VecDeque<Chunk>,
    inflight_bytes: usize,
    sent_items: usize,
    ready: bool,
    /// Gone or going: to be reaped by the background thread.
    lost: bool,
    last_reply: Instant,
    /// Which call it runs (see `callmark`).
    mark: MarkCell,
    /// The running call's mark, and when it was first seen (for timeouts).
    seen: Option<(Mark, Instant)>,
    /// Killed by the pool: what the running call ends with.
    killed: Option<Kill>,
}

struct Core {
    state: RunState,
    joined: bool,
    workers: Vec<Worker>,
    queue: VecDeque<Chunk>,
    /// Chunks queued or in flight.
    outstanding: usize,
    /// Workers being started by the background thread.
    spawning: usize,
    /// Why no more work can run (initializer or start-up failure).
    broken: Option<String>,
    /// The first start-up error, for the constructor.
    start_error: Option<Error>,
    /// Workers in a row that died before they reported ready.
    early_deaths: usize,
    /// Exponential average of a chunk's service time, in ns.
    chunk_ns: f64,
    send_buf: Vec<u8>,
    next_id: usize,
    /// The tag of the next chunk sent (never 0).
    next_tag: u32,
}

/// State shared by the pool handle, its results and its background thread.
pub(crate) struct Shared {
    core: Mutex<Core>,
    core_cv: Signal,
    wake_rx: OwnedFd,
    wake_tx: OwnedFd,
    wake_pending: AtomicBool,
    /// The workers' pidfds, each reported by its worker's pid when it ends.
    ended: sys::fd::ReadySet,
    /// Who reads the links: waiters or the background thread.
    watch: watch::Watch,
    cfg: Config,
    bg: Mutex<Option<JoinHandle<()>>>,
    /// The ids of cancelled jobs, read by every worker.
    cancels: CancelTable,
    /// Large frames kept for the next chunks to be encoded into.
    spares: spare::Spares,
}

/// The owning handle: dropping it terminates the pool.
pub(crate) struct LocalPool {
    pub(crate) shared: Arc<Shared>,
}

impl LocalPool {
    /// Starts the workers and waits until each has run its initializer.
    pub(crate) fn start(cfg: Config) -> Result<LocalPool> {
        let (wake_rx, wake_tx) = sys::fd::socketpair().ctx("socketpair")?;
        let processes = cfg.processes;
        let shared = Arc::new(Shared {
            core: Mutex::new(Core {
                state: RunState::Running,
                joined: false,
                workers: Vec::new(),
                queue: VecDeque::new(),
                outstanding: 0,
                spawning: 0,
                broken: None,
                start_error: None,
                early_deaths: 0,
                chunk_ns: 0.0,
                send_buf: Vec::new(),
                next_id: 1,
                next_tag: 1,
            }),
            core_cv: Signal::default(),
            wake_rx,
            wake_tx,
            wake_pending: AtomicBool::new(false),
            ended: sys::fd::ReadySet::new().ctx("epoll_create")?,
            watch: watch::Watch::new(),
            cfg,
            bg: Mutex::new(None),
            cancels: CancelTable::new()?,
            spares: spare::Spares::default(),
        });
        let pool = LocalPool { shared: shared.clone() };
        // The pool's thread starts (and replaces) workers for the creating
        // thread: under #[multiproc::test] they re-run the same test.
        let test = crate::boot::this_test();
        let bg = std::thread::Builder::new()
            .name("multiproc-pool".into())
            .spawn(move || {
                crate::boot::set_this_test(test);
                background::background(shared)
            })
            .ctx("spawn the pool's thread")?;
        *pool.shared.bg.lock().unwrap_or_else(|p| p.into_inner()) = Some(bg);
        let deadline = Instant::now() + crate::boot::HANDSHAKE_TIMEOUT + Duration::from_secs(processes as u64);
        let failure = {
            let mut c = pool.shared.lock();
            loop {
                if let Some(e) = c.start_error.take() {
                    break Some(e);
                }
                if c.workers.iter().filter(|w| w.ready).count() >= processes {
                    break None;
                }
                if Instant::now() >= deadline {
                    break Some(Error::Handshake {
                        pid: 0,
                        reason: "the pool's workers did not report ready in time".into(),
                    });
                }
                c = pool.shared.core_cv.wait_timeout(c, PARK);
            }
        };
        match failure {
            None => {
                log::info!(target: "multiproc", "pool: {processes} workers ready");
                Ok(pool)
            }
            Some(e) => {
                log::warn!(target: "multiproc", "pool: cannot start: {e}");
                pool.shared.terminate();
                Err(e)
            }
        }
    }
}

impl Drop for LocalPool {
    fn drop(&mut self) {
        self.shared.terminate();
    }
}

fn fail_chunk(chunk: Chunk, deferred: &mut Vec<Deferred>, err: impl Fn() -> Error) {
    chunk.job.deliver(ChunkResult::failed(chunk.first, chunk.count, err), deferred);
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the background thread.
    fn wake(&self) {
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            let _ = wire::send(self.wake_tx.as_fd(), &[1], &[]);
        }
    }

    /// The pids of the current workers.
    pub(crate) fn worker_pids(&self) -> Vec<u32> {
        self.lock().workers.iter().filter(|w| !w.lost).map(|w| w.pid).collect()
    }

    /// The configured number of workers.
    pub(crate) fn processes(&self) -> usize {
        self.cfg.processes
    }

    /// Queues chunks and sends what fits (large ones: see [`HANDOFF_BYTES`]).
    /// `continuing`: more chunks of a job that began before `close` (an
    /// `imap` still pulling its input).
    pub(crate) fn submit(&self, chunks: Vec<Chunk>, continuing: bool) -> Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let mut c = self.lock();
        match c.state {
            RunState::Closed if continuing && !c.joined => {}
            state => state.check()?,
        }
        if let Some(b) = &c.broken {
            return Err(Error::WorkersNotStarting { reason: b.clone() });
        }
        let bytes: usize = chunks.iter().map(|ch| ch.frame.len()).sum();
        c.outstanding += chunks.len();
        c.queue.extend(chunks);
        if bytes >= HANDOFF_BYTES {
            // The pool's thread sends them while this one encodes what comes next.
            drop(c);
            self.wake();
        } else {
            self.dispatch(&mut c);
            drop(c);
            if self.watch.unwatched() {
                self.wake();
            }
        }
        Ok(())
    }

    /// Stops taking work; work already submitted still runs.
    pub(crate) fn close(&self) {
        let mut c = self.lock();
        if c.state == RunState::Running {
            c.state = RunState::Closed;
            log::info!(target: "multiproc", "pool: closed ({} chunks outstanding)", c.outstanding);
        }
    }

    /// Kills the workers at once; unfinished calls fail. Idempotent.
    pub(crate) fn terminate(&self) {
        let (workers, queue) = {
            let mut c = self.lock();
            if c.state != RunState::Terminated {
                log::info!(target: "multiproc", "pool: terminating ({} chunks unfinished)", c.outstanding);
            }
            c.state = RunState::Terminated;
            c.outstanding = 0;
            (std::mem::take(&mut c.workers), std::mem::take(&mut c.queue))
        };
        let mut deferred = Vec::new();
        let terminated = || Error::from(Stopped::Terminated);
        for w in &workers {
            if let Some(p) = &w.proc {
                let _ = p.terminate();
            }
        }
        for chunk in queue {
            fail_chunk(chunk, &mut deferred, terminated);
        }
        for mut w in workers {
            for chunk in w.inflight.drain(..) {
                fail_chunk(chunk, &mut deferred, terminated);
            }
            reap(&mut w);
        }
        self.core_cv.notify_all();
        run_deferred(deferred);
        self.stop_background();
    }

    fn stop_background(&self) {
        self.wake();
        let handle = self.bg.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            if h.thread().id() == std::thread::current().id() {
                return; // a callback on the pool's own thread ended the pool
            }
            let _ = h.join();
        }
    }

    /// Waits for all submitted work, then lets the workers exit and reaps them.
    pub(crate) fn join(&self) -> Result<()> {
        let mut c = self.lock();
        if c.state == RunState::Running {
            return Err(Error::InvalidState(
                "the pool is still running; call close() or terminate() before join()".into(),
            ));
        }
        while c.state == RunState::Closed && c.outstanding > 0 {
            c = self.core_cv.wait_timeout(c, PARK);
        }
        c.joined = true;
        let mut workers = std::mem::take(&mut c.workers);
        log::info!(target: "multiproc", "pool: joining {} workers", workers.len());
        drop(c);
        // The pool's thread may hold the links (polling them): stop it first.
        self.stop_background();
        for w in &mut workers {
            w.link = None; // the worker sees the end of its link and exits
        }
        for mut w in workers {
            reap(&mut w);
        }
        Ok(())
    }
}
