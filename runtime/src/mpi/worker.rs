//! What each rank runs under `#[multiproc::main]` ([`run_main`]): rank 0 runs
//! `main`; every other rank runs the worker loop: receive a chunk, run each
//! item, send the outcomes.
//!
//! A panic in a task is caught; a panic hook records its message and location
//! (instead of printing them) so rank 0 gets `Error::TaskPanicked` for that item
//! and the rank goes on. Results leave through non-blocking sends, so a worker
//! never blocks on a send while rank 0 is sending it the next chunk.
//!
//! While a chunk runs, a second thread sends rank 0 a heartbeat every
//! [`HEARTBEAT`] (when MPI allows calls from two threads), so that rank 0 can
//! tell a long task from a rank that stopped (`world.rs`). Both threads make
//! their MPI calls under one lock.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use mpi::environment::Threading;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;

use super::wire::{FAILED, OK, PANICKED, Reader, Writer};
use super::world::{self, ACK_TAG, HEARTBEAT, HEARTBEAT_TAG, Idle, STOP_TAG, abort_job};
use crate::error::Result;
use crate::registry;
use crate::sys;
use crate::sys::mpi::{OwnedSend, isend};

/// Serialises this worker rank's MPI calls (the loop's and the heartbeat's).
static MPI_CALLS: Mutex<()> = Mutex::new(());

fn mpi_calls() -> MutexGuard<'static, ()> {
    MPI_CALLS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether a chunk is running, and whether the heartbeat should end.
#[derive(Default)]
struct Beat {
    busy: bool,
    stop: bool,
}

/// The heartbeat thread: while a chunk runs, tells rank 0 every [`HEARTBEAT`].
struct Heartbeat {
    state: Arc<(Mutex<Beat>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeat {
    /// Starts the thread (none if MPI allows calls from one thread only).
    fn start(serialized: bool) -> Heartbeat {
        let state = Arc::new((Mutex::new(Beat::default()), Condvar::new()));
        let shared = state.clone();
        let thread = serialized.then(|| std::thread::spawn(move || Self::run(&shared)));
        Heartbeat { state, thread }
    }

    fn run(state: &(Mutex<Beat>, Condvar)) {
        let world = SimpleCommunicator::world();
        let mut sends: Vec<OwnedSend> = Vec::new();
        let mut beat = state.0.lock().unwrap_or_else(|p| p.into_inner());
        while !beat.stop {
            beat = state.1.wait_timeout(beat, HEARTBEAT).unwrap_or_else(|p| p.into_inner()).0;
            if beat.busy && !beat.stop {
                let _mpi = mpi_calls();
                sends.retain_mut(|s| !s.test());
                sends.push(isend(&world, 0, HEARTBEAT_TAG, vec![0]));
            }
        }
        drop(beat);
        let _mpi = mpi_calls();
        sends.retain_mut(|s| !s.test());
    }

    fn set_busy(&self, busy: bool) {
        self.state.0.lock().unwrap_or_else(|p| p.into_inner()).busy = busy;
    }

    /// Ends the thread (before the rank acknowledges STOP: nothing follows the ack).
    fn stop(mut self) {
        self.state.0.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        self.state.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves rank 0 until it says stop.
pub(crate) fn serve(world: &SimpleCommunicator, serialized: bool) {
    let root = world.process_at_rank(0);
    let mut sends: Vec<OwnedSend> = Vec::new();
    let mut idle = Idle::default();
    let heartbeat = Heartbeat::start(serialized);
    // Who this rank is (see `world::hello`), sent once, blocking: it must be
    // on its way before a task can stop this rank.
    root.send_with_tag(&world::hello()[..], HEARTBEAT_TAG);
    loop {
        let (bytes, status) = loop {
            let received = {
                let _mpi = mpi_calls();
                sends.retain_mut(|s| !s.test());
                root.immediate_matched_probe().map(|p| p.matched_receive_vec::<u8>())
            };
            if let Some(r) = received {
                break r;
            }
            idle.pause();
        };
        idle.reset();
        if status.tag() == STOP_TAG {
            heartbeat.stop();
            root.send_with_tag(&[0u8][..], ACK_TAG);
            break;
        }
        heartbeat.set_busy(true);
        let out = run_chunk(&bytes);
        heartbeat.set_busy(false);
        match out {
            Ok(out) if out.len() <= i32::MAX as usize => sends.push({
                let _mpi = mpi_calls();
                isend(world, 0, status.tag(), out)
            }),
            Ok(out) => abort_job(world, 3, &format!("results of {} bytes exceed MPI's 2 GiB message limit", out.len())),
            Err(e) => abort_job(world, 3, &format!("malformed chunk from rank 0: {e}")),
        }
    }
    while !sends.is_empty() {
        sends.retain_mut(|s| !s.test());
        idle.pause();
    }
}

/// Runs every item of one chunk; the outcome of each goes into the reply.
fn run_chunk(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut r = Reader::new(bytes, 0);
    let job = r.u64("chunk")?;
    let first = r.u64("chunk")?;
    let name = r.str("chunk")?;
    let count = r.u32("chunk")?;
    let mut w = Writer { buf: Vec::with_capacity(bytes.len()) };
    w.u64(job);
    w.u64(first);
    w.u32(count);
    let entry = registry::lookup(name);
    for _ in 0..count {
        let args = r.bytes("chunk")?;
        let entry = match &entry {
            Ok(e) => *e,
            Err(e) => {
                w.u8(FAILED);
                w.bytes(e.to_string().as_bytes())?;
                continue;
            }
        };
        match crate::unwind::catch(|| entry.invoke(args, Vec::new())) {
            Ok(Ok(p)) if p.fds.is_empty() => {
                w.u8(OK);
                w.bytes(&p.bytes)?;
            }
            Ok(Ok(_)) => {
                w.u8(FAILED);
                w.bytes(b"the result holds file descriptors (a Queue, Connection, Lock...), which cannot cross MPI")?;
            }
            Ok(Err(e)) => {
                w.u8(FAILED);
                w.bytes(e.to_string().as_bytes())?;
            }
            Err(crate::unwind::Panic { message, location }) => {
                w.u8(PANICKED);
                w.bytes(message.as_bytes())?;
                w.bytes(location.as_bytes())?;
            }
        }
    }
    if !r.is_empty() {
        return Err(crate::error::Error::Decode { what: "chunk", reason: "trailing bytes".into() });
    }
    Ok(w.buf)
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
        let serialized = matches!(level, Threading::Serialized | Threading::Multiple);
        if let Err(crate::unwind::Panic { message, location }) = crate::unwind::catch(|| serve(&world, serialized)) {
            abort_job(&world, 3, &format!("the worker loop panicked at {location}: {message}"));
        }
        drop(universe); // MPI_Finalize
        sys::process::flush_stdio();
        sys::process::exit_now(0);
    }
    world::begin(&world, level);
    let out = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(out) => out,
        // The panic hook has printed the message. MPI_Finalize would wait for the
        // workers forever; MPI_Abort ends every rank at once.
        Err(_) => abort_job(&world, 101, "`main` panicked on rank 0"),
    };
    world::end(&world);
    drop(universe); // MPI_Finalize
    out
}
