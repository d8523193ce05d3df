//! Stopping calls (issue 13): per-task timeouts, cancellation, memory limits,
//! and the crash accounting under them — a dead worker charges only the call
//! it was running; calls that had not started are never failed.

use std::future::Future;
use std::time::{Duration, Instant};

use multiproc::{Error, Pool, Queue};
use tests::{DEADLINE, METHODS, leak_guard, outcome};

/// Sleeps `ms` milliseconds, then returns `x`.
#[multiproc::task]
fn nap(arg: (u64, u64)) -> u64 {
    std::thread::sleep(Duration::from_millis(arg.1));
    arg.0
}

/// Records `x` in `ran` (the call ran), sleeps `ms`, returns `x`.
#[multiproc::task]
fn noted(ran: Queue<u64>, x: u64, ms: u64) -> u64 {
    ran.put(x).unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    x
}

/// Kills its own worker at `x == at`.
#[multiproc::task]
fn die_at(x: u64, at: u64) -> u64 {
    if x == at {
        let _ = std::process::Command::new("kill").args(["-KILL", &std::process::id().to_string()]).status();
    }
    x * 10
}

/// Holds on to `mib` MiB for the rest of the worker's life.
#[multiproc::task]
fn bloat(mib: usize) -> u32 {
    let v: Vec<u8> = vec![1u8; mib << 20];
    std::hint::black_box(&v);
    Box::leak(v.into_boxed_slice());
    std::process::id()
}

fn drain(q: &Queue<u64>) -> Vec<u64> {
    let mut v = Vec::new();
    while let Ok(x) = q.get_nowait() {
        v.push(x);
    }
    v.sort();
    v
}

#[multiproc::test]
fn a_call_past_the_pool_timeout_fails_alone_and_its_worker_is_replaced() {
    let _g = leak_guard();
    for m in METHODS {
        let pool =
            Pool::builder().processes(2).start_method(m).task_timeout(Duration::from_millis(300)).build().unwrap();
        let before = pool.worker_pids();
        // One slow call among quick ones in the same chunks: only it fails;
        // the other calls of its chunk run elsewhere.
        let calls: Vec<(u64, u64)> = (0..12).map(|x| (x, if x == 5 { 10_000 } else { 1 })).collect();
        let t0 = Instant::now();
        let results: Vec<_> = pool.with_chunksize(4).imap(nap, calls).unwrap().collect();
        assert!(t0.elapsed() < Duration::from_secs(5), "{m}: took {:?}", t0.elapsed());
        for (x, r) in results.into_iter().enumerate() {
            match (x, r) {
                (5, Err(Error::TaskTimeout { task, after })) => {
                    assert!(task.ends_with("nap"), "{m}: {task}");
                    assert_eq!(after, Duration::from_millis(300), "{m}");
                }
                (x, r) => assert_eq!(r.unwrap(), x as u64, "{m}: item {x}"),
            }
        }
        let after = pool.worker_pids();
        assert_eq!(after.len(), 2, "{m}");
        assert_ne!(before, after, "{m}: the timed-out worker was replaced");
        assert_eq!(pool.apply(nap, ((7, 1),)).unwrap(), 7, "{m}");
        pool.close();
        pool.join().unwrap();
    }
}

#[multiproc::test]
fn a_call_timeout_holds_for_that_call_alone() {
    let _g = leak_guard();
    for m in METHODS {
        let pool = Pool::builder().processes(1).start_method(m).build().unwrap();
        let t0 = Instant::now();
        let r = pool.apply_async(nap, ((1, 10_000),)).unwrap().timeout(Duration::from_millis(100));
        let e = r.get().unwrap_err();
        assert!(matches!(e, Error::TaskTimeout { after, .. } if after == Duration::from_millis(100)), "{m}: {e}");
        assert!(t0.elapsed() < Duration::from_secs(3), "{m}: took {:?}", t0.elapsed());
        assert!(e.to_string().contains("timeout"), "{e}");
        // A timeout set while the call already runs holds too; one that is long
        // enough changes nothing; a zero one is no limit.
        let r = pool.apply_async(nap, ((2, 10_000),)).unwrap();
        let r = r.timeout(Duration::from_millis(50));
        assert!(matches!(r.get(), Err(Error::TaskTimeout { .. })), "{m}");
        assert_eq!(pool.apply_async(nap, ((3, 10),)).unwrap().timeout(Duration::from_secs(30)).get().unwrap(), 3);
        assert_eq!(pool.apply_async(nap, ((4, 10),)).unwrap().timeout(Duration::ZERO).get().unwrap(), 4);
        pool.close();
        pool.join().unwrap();
    }
}

#[multiproc::test]
fn cancelled_calls_never_run() {
    let _g = leak_guard();
    for m in METHODS {
        let pool = Pool::builder().processes(1).start_method(m).build().unwrap();
        let ran: Queue<u64> = Queue::new().unwrap();
        let busy = pool.apply_async(noted, (ran.clone(), 1, 300)).unwrap();
        // Sent to the busy worker already (several chunks are in flight per
        // worker), or still queued: either way it never runs.
        let waiting = pool.apply_async(noted, (ran.clone(), 2, 0)).unwrap();
        assert!(waiting.cancel(), "{m}");
        assert!(!waiting.cancel(), "{m}: cancelling twice is a no-op");
        assert!(waiting.cancelled(), "{m}");
        assert!(matches!(waiting.get(), Err(Error::Cancelled)), "{m}");
        assert_eq!(busy.get().unwrap(), 1, "{m}");
        // Cancelling a finished call does nothing: its result stays.
        let done = pool.apply_async(noted, (ran.clone(), 3, 0)).unwrap();
        done.wait();
        assert!(!done.cancel(), "{m}");
        assert_eq!(done.get().unwrap(), 3, "{m}");
        // A map cancelled part-way: its first call ran, the rest never do.
        let started: Queue<u64> = Queue::new().unwrap();
        let many =
            pool.with_chunksize(1).starmap_async(noted, (0..50).map(|x| (started.clone(), 100 + x, 20))).unwrap();
        assert_eq!(started.get().unwrap(), 100, "{m}");
        assert!(many.cancel(), "{m}");
        assert!(matches!(many.get(), Err(Error::Cancelled)), "{m}");
        pool.close();
        pool.join().unwrap();
        let seen = drain(&ran);
        assert_eq!(seen, vec![1, 3], "{m}");
        let of_map = drain(&started).len() + 1;
        assert!(of_map < 10, "{m}: {of_map} calls of the cancelled map ran");
    }
}

#[multiproc::test]
fn cancel_running_stops_a_running_call() {
    let _g = leak_guard();
    for m in METHODS {
        let pool = Pool::builder().processes(1).start_method(m).build().unwrap();
        let started: Queue<u64> = Queue::new().unwrap();
        let long = pool.apply_async(noted, (started.clone(), 1, 30_000)).unwrap();
        let behind = pool.apply_async(nap, ((2, 1),)).unwrap();
        assert_eq!(started.get().unwrap(), 1, "{m}");
        let t0 = Instant::now();
        assert!(long.cancel_running(), "{m}");
        assert!(matches!(long.get(), Err(Error::Cancelled)), "{m}");
        assert!(t0.elapsed() < Duration::from_secs(5), "{m}: took {:?}", t0.elapsed());
        // The call behind it ran on the replacement worker.
        assert_eq!(behind.get().unwrap(), 2, "{m}");
        pool.close();
        pool.join().unwrap();
    }
}

#[multiproc::test]
fn dropping_an_imap_iterator_cancels_the_rest() {
    let _g = leak_guard();
    for m in METHODS {
        let pool = Pool::builder().processes(2).start_method(m).build().unwrap();
        let ran: Queue<u64> = Queue::new().unwrap();
        {
            let mut it = pool.imap(noted_one, (0..40).map(|x| (ran.clone(), x, 100))).unwrap();
            assert!(it.next().unwrap().is_ok(), "{m}");
        }
        // The next map does not wait for the 40 × 100 ms of the dropped one.
        let t0 = Instant::now();
        assert_eq!(pool.map(nap, [(5, 1)]).unwrap(), vec![5], "{m}");
        assert!(t0.elapsed() < Duration::from_millis(1500), "{m}: waited {:?}", t0.elapsed());
        pool.close();
        pool.join().unwrap();
        let n = drain(&ran).len();
        assert!(n < 40, "{m}: all {n} calls of the dropped iterator ran");
    }
}

/// [`noted`] with one argument (for `imap`).
#[multiproc::task]
fn noted_one(arg: (Queue<u64>, u64, u64)) -> u64 {
    noted(arg.0, arg.1, arg.2)
}

#[multiproc::test]
fn a_worker_above_its_memory_limit_is_replaced_and_nothing_is_lost() {
    let _g = leak_guard();
    for m in METHODS {
        let pool = Pool::builder().processes(1).start_method(m).max_memory_per_child(64 << 20).build().unwrap();
        let pids: Vec<u32> = pool.with_chunksize(1).map(bloat, vec![100usize; 3]).unwrap();
        assert_eq!(pids.len(), 3, "{m}");
        assert!(pids[0] != pids[1] && pids[1] != pids[2], "{m}: a bloated worker took another call: {pids:?}");
        // In one chunk: the worker stops after the call that bloats it.
        let pids: Vec<u32> = pool.with_chunksize(3).map(bloat, vec![100usize; 3]).unwrap();
        assert!(pids[0] != pids[1] && pids[1] != pids[2], "{m}: {pids:?}");
        pool.close();
        pool.join().unwrap();
    }
}

#[multiproc::test]
fn a_dead_worker_charges_only_its_running_call() {
    let _g = leak_guard();
    for m in METHODS {
        let pool = Pool::builder().processes(2).start_method(m).build().unwrap();
        // Calls in chunks of 8, one of which kills its worker: without
        // retries, it alone fails; its chunk's other calls and the chunks
        // behind it run again elsewhere.
        let results: Vec<_> = pool.with_chunksize(8).imap(die_at_one, (0..40).map(|x| (x, 13))).unwrap().collect();
        for (x, r) in results.into_iter().enumerate() {
            match (x, r) {
                (13, Err(Error::WorkerLost { .. })) => {}
                (13, other) => panic!("{m}: the culprit gave {}", outcome(&other)),
                (x, r) => assert_eq!(r.unwrap(), x as u64 * 10, "{m}: item {x}"),
            }
        }
        pool.close();
        pool.join().unwrap();
    }
}

/// [`die_at`] with one argument (for `imap`).
#[multiproc::task]
fn die_at_one(arg: (u64, u64)) -> u64 {
    die_at(arg.0, arg.1)
}

#[multiproc::test]
fn bad_limits_are_clear_errors() {
    let _g = leak_guard();
    let e = Pool::builder().processes(1).task_timeout(Duration::ZERO).build().unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)) && e.to_string().contains("task_timeout"), "{e}");
    let e = Pool::builder().processes(1).max_memory_per_child(0).build().unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)) && e.to_string().contains("max_memory_per_child"), "{e}");
    let _ = DEADLINE;
}

#[multiproc::test]
fn an_awaited_result_dropped_unfinished_is_cancelled() {
    let _g = leak_guard();
    for m in METHODS {
        let pool = Pool::builder().processes(1).start_method(m).build().unwrap();
        let ran: Queue<u64> = Queue::new().unwrap();
        let busy = pool.apply_async(noted, (ran.clone(), 1, 300)).unwrap();
        let mut fut = pool.apply_async(noted, (ran.clone(), 2, 0)).unwrap();
        // What a tokio `timeout()` does: poll once, then drop.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(std::pin::Pin::new(&mut fut).poll(&mut cx).is_pending(), "{m}");
        drop(fut);
        assert_eq!(busy.get().unwrap(), 1, "{m}");
        pool.close();
        pool.join().unwrap();
        assert_eq!(drain(&ran), vec![1], "{m}: the dropped future's call ran");
    }
}

/// Limits its own address space to what it uses plus 64 MiB, then asks for 1 GiB.
#[multiproc::task]
fn starve(_: ()) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let vm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let limit = (vm_kib << 10) + (64 << 20);
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_AS, limit, limit).unwrap();
    let v = vec![1u8; 1 << 30];
    std::hint::black_box(&v);
    v.len()
}

#[multiproc::test]
fn a_worker_killed_by_its_memory_limit_is_a_worker_lost_with_the_cause() {
    let _g = leak_guard();
    for m in METHODS {
        let pool = Pool::builder().processes(1).start_method(m).build().unwrap();
        let e = pool.apply(starve, ((),)).unwrap_err();
        assert!(matches!(e, Error::WorkerLost { status: multiproc::ExitStatus::Signal(6), .. }), "{m}: {e}");
        assert!(e.to_string().contains("RLIMIT_AS"), "{m}: the message names the likely cause: {e}");
        assert_eq!(pool.apply(nap, ((1, 0),)).unwrap(), 1, "{m}: a new worker took over");
        pool.close();
        pool.join().unwrap();
    }
}
