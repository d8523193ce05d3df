//! The MPI world as rank 0 sees it: opened and closed around `main`
//! ([`begin`], [`end`]), the one lock that serialises this process's MPI calls,
//! the tags, and how a rank waits for messages.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread::ThreadId;

use mpi::Tag;
use mpi::environment::Threading;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;

use crate::error::{Error, Result};
use crate::sys;

/// Rank 0 → worker: finish what you hold, acknowledge, and leave.
pub(crate) const STOP_TAG: Tag = 1;
/// Worker → rank 0: stopped; nothing more will come from this rank.
pub(crate) const ACK_TAG: Tag = 2;
/// Pools use tags from here on, one per pool.
pub(crate) const FIRST_POOL_TAG: Tag = 16;

/// What rank 0 knows about the MPI job.
pub(crate) struct WorldInfo {
    /// Number of ranks, rank 0 included.
    pub(crate) size: i32,
    /// Whether MPI granted MPI_THREAD_SERIALIZED (or better): any thread may call
    /// MPI as long as calls do not overlap. Otherwise only `main_thread` may.
    serialized: bool,
    main_thread: ThreadId,
}

static WORLD: OnceLock<WorldInfo> = OnceLock::new();
/// True on rank 0 between MPI_Init and the shut-down at the end of `main`.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static MPI_LOCK: Mutex<()> = Mutex::new(());

/// The world, if this is rank 0 of a running MPI job.
pub(crate) fn info() -> Result<&'static WorldInfo> {
    match WORLD.get() {
        Some(w) if ACTIVE.load(Ordering::Acquire) => Ok(w),
        Some(_) => Err(Error::InvalidState("MPI has been shut down: `main` has returned".into())),
        None => Err(Error::InvalidState(
            "this program was not launched under MPI (start it with mpirun or srun, built with the \
             `mpi` feature, and annotate `fn main` with #[multiproc::main])"
                .into(),
        )),
    }
}

/// Serialises MPI calls across threads; fails if MPI is down or this thread may not call it.
pub(crate) fn lock() -> Result<MutexGuard<'static, ()>> {
    let w = info()?;
    if !w.serialized && std::thread::current().id() != w.main_thread {
        return Err(Error::InvalidState(
            "this MPI library only allows MPI calls from the main thread (no MPI_THREAD_SERIALIZED); \
             use the pool from `main`'s thread"
                .into(),
        ));
    }
    let guard = MPI_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if !ACTIVE.load(Ordering::Acquire) {
        return Err(Error::InvalidState("MPI has been shut down: `main` has returned".into()));
    }
    Ok(guard)
}

/// How a rank waits for MPI messages: MPI has no file descriptor to block on,
/// so it polls, as the one wait policy ([`crate::backoff`]) says for a wait
/// with nothing to park on: it looks, yielding the CPU between looks, for
/// [`POLL_BUDGET`](crate::backoff::POLL_BUDGET) (a prompt answer costs no
/// wake-up), then [naps](crate::backoff::Backoff::nap) for a short, growing time, so that an idle rank 0 or
/// an idle worker does not take a core from busy ranks on an oversubscribed
/// node. The nap bounds the extra latency of the first message after a long
/// idle period.
pub(crate) struct Idle {
    backoff: crate::backoff::Backoff,
}

impl Default for Idle {
    fn default() -> Self {
        Idle { backoff: crate::backoff::Backoff::with_budget(crate::backoff::POLL_BUDGET) }
    }
}

impl Idle {
    /// Something arrived: poll eagerly again.
    pub(crate) fn reset(&mut self) {
        self.backoff.reset();
    }

    /// Nothing arrived: spin or yield, or nap when idle for a while.
    pub(crate) fn pause(&mut self) {
        if !self.backoff.snooze() {
            self.backoff.nap();
        }
    }
}

/// Prints `msg` and ends the whole MPI job (every rank) with `code`.
pub(crate) fn abort_job(world: &SimpleCommunicator, code: i32, msg: &str) -> ! {
    eprintln!("multiproc (MPI rank {}): {msg}; aborting the MPI job", world.rank());
    sys::process::flush_stdio();
    world.abort(code)
}

/// Rank 0 after MPI_Init: records the world and opens it for the pools.
pub(crate) fn begin(world: &SimpleCommunicator, level: Threading) {
    let serialized = matches!(level, Threading::Serialized | Threading::Multiple);
    let _ = WORLD.set(WorldInfo { size: world.size(), serialized, main_thread: std::thread::current().id() });
    ACTIVE.store(true, Ordering::Release);
}

/// Rank 0 at the end of `main`: closes the world to the pools, then stops
/// every worker (before MPI_Finalize).
pub(crate) fn end(world: &SimpleCommunicator) {
    let _g = MPI_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    ACTIVE.store(false, Ordering::Release);
    stop_workers(world);
}

/// Tells every worker to stop, and drains results still addressed to rank 0
/// (of dropped pools) until every worker has acknowledged; MPI keeps messages
/// from one sender in order, so nothing of a worker's is left after its ack.
fn stop_workers(world: &SimpleCommunicator) {
    for r in 1..world.size() {
        world.process_at_rank(r).send_with_tag(&[0u8][..], STOP_TAG);
    }
    let mut acked = 1;
    while acked < world.size() {
        let (_bytes, status) = world.any_process().matched_probe().matched_receive_vec::<u8>();
        if status.tag() == ACK_TAG {
            acked += 1;
        }
    }
}
