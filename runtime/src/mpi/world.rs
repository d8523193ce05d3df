//! MPI start-up and shut-down around `#[multiproc::main]`, and the one lock
//! that serialises this process's MPI calls.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

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
/// so it polls. It yields the CPU between polls for the first [`Idle::SPIN`]
/// (a prompt answer costs no wake-up), then parks for a short, growing nap, so
/// that an idle rank 0 or an idle worker does not take a core from busy ranks
/// on an oversubscribed node (Intel MPI's `I_MPI_WAIT_MODE`, Open MPI's
/// `mpi_yield_when_idle` do the same). The nap bounds the extra latency of the
/// first message after a long idle period to [`Idle::MAX_NAP`].
#[derive(Default)]
pub(crate) struct Idle {
    since: Option<Instant>,
}

impl Idle {
    const SPIN: Duration = Duration::from_millis(2);
    const MAX_NAP: Duration = Duration::from_millis(1);

    /// Something arrived: poll eagerly again.
    pub(crate) fn reset(&mut self) {
        self.since = None;
    }

    /// Nothing arrived: yield, or nap when idle for a while.
    pub(crate) fn pause(&mut self) {
        let idle = self.since.get_or_insert_with(Instant::now).elapsed();
        if idle < Self::SPIN {
            std::thread::yield_now();
        } else {
            std::thread::park_timeout((idle / 32).min(Self::MAX_NAP));
        }
    }
}

/// Prints `msg` and ends the whole MPI job (every rank) with `code`.
pub(crate) fn abort_job(world: &SimpleCommunicator, code: i32, msg: &str) -> ! {
    eprintln!("multiproc (MPI rank {}): {msg}; aborting the MPI job", world.rank());
    sys::process::flush_stdio();
    world.abort(code)
}

/// Runs `main` under MPI: rank 0 runs `body`; every other rank serves tasks
/// until rank 0 is done, then finalises MPI and exits 0 without returning.
pub(crate) fn run_main<R>(body: impl FnOnce() -> R) -> R {
    let Some((universe, level)) = mpi::initialize_with_threading(Threading::Serialized) else {
        eprintln!("multiproc: MPI was initialised before #[multiproc::main] could do it");
        sys::process::flush_stdio();
        sys::process::exit_now(2)
    };
    let world = universe.world();
    if world.rank() != 0 {
        // A panic of the loop itself (not of a task) must not unwind into
        // MPI_Finalize, which would wait for rank 0 forever: end the job instead.
        if let Err(crate::unwind::Panic { message, location }) = crate::unwind::catch(|| super::worker::serve(&world)) {
            abort_job(&world, 3, &format!("the worker loop panicked at {location}: {message}"));
        }
        drop(universe); // MPI_Finalize
        sys::process::flush_stdio();
        sys::process::exit_now(0);
    }
    let serialized = matches!(level, Threading::Serialized | Threading::Multiple);
    let _ = WORLD.set(WorldInfo { size: world.size(), serialized, main_thread: std::thread::current().id() });
    ACTIVE.store(true, Ordering::Release);
    let out = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(out) => out,
        // The panic hook has printed the message. MPI_Finalize would wait for the
        // workers forever; MPI_Abort ends every rank at once.
        Err(_) => abort_job(&world, 101, "`main` panicked on rank 0"),
    };
    {
        let _g = MPI_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        ACTIVE.store(false, Ordering::Release);
        stop_workers(&world);
    }
    drop(universe); // MPI_Finalize
    out
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
