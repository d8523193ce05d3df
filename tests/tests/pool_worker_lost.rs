//! Workers that die never hang a pool (PARITY.md section 3, items 48-50):
//! their calls fail with `WorkerLost` (or are retried), the worker is replaced,
//! everything else completes, and no zombie is left.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use multiproc::{Error, ExitStatus, Pool, get_context};
use tests::{DEADLINE, METHODS, child_pids, leak_guard};

#[multiproc::task]
fn sqr(x: u64) -> u64 {
    x * x
}

/// Dies in the way `how` says when `x == 3`.
#[multiproc::task]
fn die_at_3(arg: (u64, String)) -> u64 {
    let (x, how) = arg;
    if x == 3 {
        match how.as_str() {
            "abort" => std::process::abort(),
            "exit" => std::process::exit(99),
            _ => kill(std::process::id()),
        }
    }
    x * x
}

/// SIGKILLs its own worker when `x == at`.
#[multiproc::task]
fn die_at(arg: (u64, u64)) -> u64 {
    let (x, at) = arg;
    if x == at {
        kill(std::process::id());
    }
    x + 1
}

/// Kills itself the first time it runs (marked by a file), returns 7 after that.
#[multiproc::task]
fn die_once(marker: String) -> u64 {
    if std::fs::OpenOptions::new().write(true).create_new(true).open(&marker).is_ok() {
        kill(std::process::id());
    }
    7
}

/// A little CPU work, so a kill lands while calls are in flight.
#[multiproc::task]
fn busy(x: u64) -> u64 {
    let mut acc = x;
    for i in 0..20_000u64 {
        acc = acc.wrapping_mul(6364136223846793005).wrapping_add(i);
    }
    std::hint::black_box(acc);
    x * 2
}

/// Sends SIGKILL to `pid` (through kill(1): no `unsafe` outside the runtime's sys/).
fn kill(pid: u32) {
    let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
}

#[multiproc::test]
fn a_dying_worker_fails_only_its_calls() {
    let _g = leak_guard();
    for m in METHODS {
        for (how, status) in [
            ("kill", ExitStatus::Signal(libc::SIGKILL)),
            ("abort", ExitStatus::Signal(libc::SIGABRT)),
            ("exit", ExitStatus::Code(99)),
        ] {
            let pool = get_context(m).pool(2).unwrap();
            let args: Vec<(u64, String)> = (0..10).map(|x| (x, how.to_string())).collect();
            let t0 = Instant::now();
            let results: Vec<_> = pool.with_chunksize(1).imap(die_at_3, args.clone()).unwrap().collect();
            assert!(t0.elapsed() < DEADLINE, "{m} {how}: took {:?}", t0.elapsed());
            assert_eq!(results.len(), 10);
            assert!(matches!(results[3], Err(Error::WorkerLost { .. })), "{m} {how}: {:?}", results[3]);
            // Without retries, only the call that was running when its worker
            // died fails; the calls it held but had not started run elsewhere.
            for (x, r) in results.into_iter().enumerate() {
                match (x, r) {
                    (3, Err(Error::WorkerLost { pid, status: s })) => {
                        assert!(pid > 0);
                        assert_eq!(s, status, "{m} {how}");
                    }
                    (3, other) => panic!("{m} {how}: item 3: {other:?}"),
                    (x, r) => assert_eq!(r.unwrap(), (x * x) as u64, "{m} {how}: item {x}"),
                }
            }
            // With retries, calls held together are run again alone: only the
            // culprit fails.
            let careful = Pool::builder().processes(2).start_method(m).retries(1).build().unwrap();
            let results: Vec<_> = careful.with_chunksize(1).imap(die_at_3, args).unwrap().collect();
            for (x, r) in results.into_iter().enumerate() {
                match (x, r) {
                    (3, Err(Error::WorkerLost { status: s, .. })) => assert_eq!(s, status, "{m} {how}"),
                    (3, other) => panic!("{m} {how}: item 3: {other:?}"),
                    (x, r) => assert_eq!(r.unwrap(), (x * x) as u64, "{m} {how}: item {x}"),
                }
            }
            drop(careful);
            // The worker was replaced: the pool still has two and still works.
            assert_eq!(pool.map(sqr, 0..10).unwrap()[9], 81, "{m} {how}");
            let t1 = Instant::now();
            while pool.worker_pids().len() < 2 {
                assert!(t1.elapsed() < DEADLINE, "{m} {how}: the lost worker was never replaced");
                std::thread::yield_now();
            }
            let lost = pool.apply(die_at_3, ((3, how.to_string()),)).unwrap_err();
            assert!(lost.to_string().contains("was lost"), "{m} {how}: the error names the lost worker: {lost}");
            pool.close();
            pool.join().unwrap();
        }
    }
}

/// Once a job's first calls have been measured, its next consecutive lone
/// calls (`chunksize=1`) travel several to a frame; a worker lost with such a
/// frame in flight still charges only the call that killed it.
#[multiproc::test]
fn retries_single_out_the_culprit_among_merged_calls() {
    let _g = leak_guard();
    for m in METHODS {
        let pool = Pool::builder().processes(2).start_method(m).retries(1).build().unwrap();
        let n = 3000u64;
        let calls: Vec<(u64, u64)> = (0..n).map(|x| (x, 1500)).collect();
        let results: Vec<_> = pool.with_chunksize(1).imap(die_at, calls).unwrap().collect();
        assert_eq!(results.len(), n as usize, "{m}");
        for (x, r) in results.into_iter().enumerate() {
            match (x, r) {
                (1500, Err(Error::WorkerLost { .. })) => {}
                (1500, other) => panic!("{m}: the culprit gave {other:?}"),
                (x, r) => assert_eq!(r.unwrap(), x as u64 + 1, "{m}: item {x}"),
            }
        }
    }
}

#[multiproc::test]
fn retries_run_a_lost_call_again() {
    let _g = leak_guard();
    let dir = std::env::temp_dir().join(format!("multiproc-pool-retry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for m in METHODS {
        let marker = dir.join(format!("{m}")).display().to_string();
        let _ = std::fs::remove_file(&marker);
        let pool = Pool::builder().processes(2).start_method(m).retries(1).build().unwrap();
        assert_eq!(pool.apply(die_once, (marker.clone(),)).unwrap(), 7, "{m}");
        let _ = std::fs::remove_file(&marker);
        let pool0 = Pool::builder().processes(2).start_method(m).build().unwrap();
        assert!(matches!(pool0.apply(die_once, (marker.clone(),)), Err(Error::WorkerLost { .. })), "{m}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Kills random workers with SIGKILL during large maps, many times over:
/// no hang, every item a value or a reported error, no zombie.
#[multiproc::test]
fn random_sigkills_never_hang_the_pool() {
    let _g = leak_guard();
    for m in METHODS {
        let rounds = if m == multiproc::StartMethod::Spawn { 3 } else { 6 };
        for round in 0..rounds {
            let pool = Arc::new(get_context(m).pool(3).unwrap());
            let n = 3000u64;
            let received = Arc::new(AtomicUsize::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let unordered = round % 2 == 0;
            // The killer waits for progress events, never for time.
            let killer = {
                let (pool, received, stop) = (pool.clone(), received.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut kills = 0;
                    let mut next_at = 300;
                    let mut seed = 0x9e37_79b9_u64 ^ round as u64;
                    while !stop.load(Ordering::Acquire) && kills < 4 {
                        if received.load(Ordering::Acquire) >= next_at {
                            let pids = pool.worker_pids();
                            if !pids.is_empty() {
                                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                                kill(pids[(seed >> 33) as usize % pids.len()]);
                                kills += 1;
                            }
                            next_at += 500;
                        }
                        std::thread::yield_now();
                    }
                    kills
                })
            };
            let t0 = Instant::now();
            let (mut ok, mut lost) = (0, 0);
            let mut check = |r: multiproc::Result<u64>| match r {
                Ok(v) => {
                    assert_eq!(v % 2, 0);
                    ok += 1;
                    received.fetch_add(1, Ordering::AcqRel);
                }
                Err(Error::WorkerLost { .. }) => {
                    lost += 1;
                    received.fetch_add(1, Ordering::AcqRel);
                }
                Err(e) => panic!("{m}: unexpected error {e}"),
            };
            if unordered {
                for r in pool.with_chunksize(1).imap_unordered(busy, 0..n).unwrap() {
                    check(r);
                }
            } else {
                for r in pool.with_chunksize(4).imap(busy, 0..n).unwrap() {
                    check(r);
                }
            }
            stop.store(true, Ordering::Release);
            let kills = killer.join().unwrap();
            assert!(t0.elapsed() < DEADLINE * 2, "{m}: round {round} took {:?}", t0.elapsed());
            assert_eq!(ok + lost, n as usize, "{m}: round {round}: every item is a value or an error");
            assert!(kills == 0 || ok > 0, "{m}");
            // A map after the carnage is complete and correct.
            assert_eq!(pool.map(sqr, 0..100).unwrap()[99], 99 * 99, "{m}");
            pool.close();
            pool.join().unwrap();
            assert!(child_pids().is_empty(), "{m}: round {round}: children left {:?}", child_pids());
        }
    }
}

#[multiproc::task]
fn exit_at_start() {
    std::process::exit(3);
}

#[multiproc::test]
fn workers_that_die_before_they_start_break_the_pool_instead_of_respawning_forever() {
    let _g = leak_guard();
    for m in METHODS {
        let started = Instant::now();
        let r = Pool::builder().processes(2).start_method(m).initializer(exit_at_start, ()).build();
        match r {
            Err(Error::Handshake { reason, .. }) => {
                assert!(reason.contains("keep dying before they start"), "{m}: {reason}");
                assert!(reason.contains("exit code 3"), "{m}: {reason}");
            }
            other => panic!("{m}: expected a start-up failure, got {other:?}"),
        }
        assert!(started.elapsed() < DEADLINE, "{m}: took {:?}", started.elapsed());
    }
}

/// The figure: `kill -9` of a random worker every 50 ms on `Pool(4)`
/// with 20,000 calls and `retries(3)`. Only a call that was itself running
/// at four kills may fail, so none should; before per-call marks, a whole
/// chunk of up to 256 calls was charged at each kill (1,280–2,304 losses).
#[multiproc::test]
fn kills_under_load_charge_only_the_running_calls() {
    let _g = leak_guard();
    for m in METHODS {
        let pool = Arc::new(Pool::builder().processes(4).start_method(m).retries(3).build().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let killer = {
            let (pool, stop) = (pool.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut kills, mut seed) = (0u32, 0x2545_f491_u64);
                // Load, not synchronisation: a kill every 50 ms while the map runs.
                while !stop.load(Ordering::Acquire) && kills < 40 {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    let pids = pool.worker_pids();
                    if !pids.is_empty() {
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        kill(pids[(seed >> 33) as usize % pids.len()]);
                        kills += 1;
                    }
                }
                kills
            })
        };
        let t0 = Instant::now();
        let results: Vec<_> = pool.imap(busy, 0..20_000u64).unwrap().collect();
        stop.store(true, Ordering::Release);
        let kills = killer.join().unwrap();
        let lost = results.iter().filter(|r| matches!(r, Err(Error::WorkerLost { .. }))).count();
        eprintln!("{m}: 20000 calls, {kills} kills, {lost} lost, {:?}", t0.elapsed());
        assert_eq!(results.len(), 20_000, "{m}");
        for (x, r) in results.into_iter().enumerate() {
            match r {
                Ok(v) => assert_eq!(v, 2 * x as u64, "{m}: item {x}"),
                Err(Error::WorkerLost { .. }) => {}
                Err(e) => panic!("{m}: item {x}: {e}"),
            }
        }
        assert!(lost <= 1, "{m}: {lost} calls lost to {kills} kills");
        pool.close();
        pool.join().unwrap();
    }
}
