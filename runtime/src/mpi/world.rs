//! The MPI world as rank 0 sees it: opened and closed around `main`
//! ([`begin`], [`end`]), the one lock that serialises this process's MPI calls
//! and guards what rank 0 knows of each rank's liveness ([`Ranks`]), the tags,
//! and how a rank waits for messages.
//!
//! # Liveness
//! A worker rank that runs a chunk sends rank 0 a heartbeat every
//! [`HEARTBEAT`] (from a thread of its own, so a long task does not silence
//! it). Rank 0 counts a rank as alive while results or heartbeats come; one
//! that holds chunks and says nothing for the pool's timeout (a stopped or
//! frozen rank) is *lost*: its chunks go to the other ranks and nothing more is
//! sent to it. MPI_Finalize would wait for a lost rank for ever, so a job that
//! lost one ends, once `main` has returned, with status [`LOST_EXIT`] (a lost
//! rank on rank 0's machine is SIGKILLed first: see [`end`]).

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
/// Worker → rank 0: still running its chunk (see the module docs).
pub(crate) const HEARTBEAT_TAG: Tag = 3;
/// How often a busy worker rank sends a heartbeat.
pub(crate) const HEARTBEAT: Duration = Duration::from_millis(200);
/// The job's exit status when a rank was lost (after `main` returned).
pub(crate) const LOST_EXIT: i32 = 5;
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
static MPI_LOCK: Mutex<Ranks> = Mutex::new(Ranks { heard: Vec::new(), lost: Vec::new(), hello: Vec::new() });

/// What rank 0 has heard from each worker rank; held under the MPI lock, since
/// it is updated by draining heartbeats (an MPI call).
pub(crate) struct Ranks {
    /// The last heartbeat of rank `i`, if any.
    heard: Vec<Option<Instant>>,
    /// Whether rank `i` was given up as lost.
    lost: Vec<bool>,
    /// What rank `i` said of itself at start ([`hello`]): its pid and host.
    hello: Vec<Option<Vec<u8>>>,
}

/// A worker rank's first heartbeat: its pid (u32 LE), then what tells its
/// machine and pid namespace apart (the boot id and the namespace's link), so
/// that rank 0 can end a lost rank that runs beside it.
pub(crate) fn hello() -> Vec<u8> {
    let mut out = std::process::id().to_le_bytes().to_vec();
    out.extend(host_identity());
    out
}

fn host_identity() -> Vec<u8> {
    let boot = std::fs::read("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let ns = std::fs::read_link("/proc/self/ns/pid").map(|p| p.into_os_string().into_encoded_bytes());
    [boot, ns.unwrap_or_default()].concat()
}

impl Ranks {
    /// Receives every heartbeat that has arrived.
    pub(crate) fn drain_heartbeats(&mut self, world: &SimpleCommunicator) {
        while let Some(probed) = world.any_process().immediate_matched_probe_with_tag(HEARTBEAT_TAG) {
            let (beat, status) = probed.matched_receive_vec::<u8>();
            let rank = status.source_rank() as usize;
            if self.heard.len() <= rank {
                self.heard.resize(rank + 1, None);
                self.hello.resize(rank + 1, None);
            }
            self.heard[rank] = Some(Instant::now());
            if beat.len() > 4 {
                self.hello[rank] = Some(beat);
            }
        }
    }

    /// When rank `rank` last sent a heartbeat.
    pub(crate) fn heard(&self, rank: usize) -> Option<Instant> {
        self.heard.get(rank).copied().flatten()
    }

    /// Whether rank `rank` was given up as lost.
    pub(crate) fn is_lost(&self, rank: usize) -> bool {
        self.lost.get(rank).copied().unwrap_or(false)
    }

    /// Gives rank `rank` up: no pool sends it anything again.
    pub(crate) fn mark_lost(&mut self, rank: usize) {
        if self.lost.len() <= rank {
            self.lost.resize(rank + 1, false);
        }
        self.lost[rank] = true;
    }
}

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

impl WorldInfo {
    /// Whether any thread may call MPI (one at a time).
    pub(crate) fn serialized(&self) -> bool {
        self.serialized
    }
}

/// Serialises MPI calls across threads; fails if MPI is down or this thread may not call it.
pub(crate) fn lock() -> Result<MutexGuard<'static, Ranks>> {
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
/// every worker (before MPI_Finalize). If a rank was lost, MPI_Finalize would
/// wait for it for ever: the job ends with status [`LOST_EXIT`] instead.
pub(crate) fn end(world: &SimpleCommunicator) {
    let mut ranks = MPI_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    ACTIVE.store(false, Ordering::Release);
    ranks.drain_heartbeats(world);
    stop_workers(world, &ranks);
    let lost: Vec<usize> = (1..world.size() as usize).filter(|&r| ranks.is_lost(r)).collect();
    if !lost.is_empty() {
        // Not MPI_Abort, and not left to mpirun alone: Open MPI 4.1's mpirun
        // can hang for good on a job with a stopped rank. A lost rank on this
        // machine is ended here (SIGKILL works on a stopped process); then rank
        // 0 exits without MPI_Finalize, and mpirun ends the job as for any
        // rank that fails.
        let here = host_identity();
        for &r in &lost {
            if let Some(Some(h)) = ranks.hello.get(r)
                && h[4..] == here[..]
            {
                let pid = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::SIGKILL);
            }
        }
        let names: Vec<String> = lost.iter().map(|r| r.to_string()).collect();
        eprintln!(
            "multiproc (MPI rank 0): `main` has returned, but rank(s) {} stopped answering and cannot be \
             finalised; ending the MPI job with status {LOST_EXIT}",
            names.join(", ")
        );
        sys::process::flush_stdio();
        sys::process::exit_now(LOST_EXIT);
    }
}

/// Tells every worker to stop, and drains results still addressed to rank 0
/// (of dropped pools) and heartbeats until every live worker has acknowledged;
/// MPI keeps messages from one sender in order, so nothing of a worker's is
/// left after its ack.
fn stop_workers(world: &SimpleCommunicator, ranks: &Ranks) {
    let mut waiting = 0;
    for r in 1..world.size() {
        if !ranks.is_lost(r as usize) {
            world.process_at_rank(r).send_with_tag(&[0u8][..], STOP_TAG);
            waiting += 1;
        }
    }
    while waiting > 0 {
        let (_bytes, status) = world.any_process().matched_probe().matched_receive_vec::<u8>();
        if status.tag() == ACK_TAG && !ranks.is_lost(status.source_rank() as usize) {
            waiting -= 1;
        }
    }
}
