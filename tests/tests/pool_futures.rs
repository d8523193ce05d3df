//! Futures-style submission and fallible tasks (issue 13): `submit`,
//! `as_completed`, `wait_results`, `try_map` and friends, `pool_map`.

use std::time::Duration;

use multiproc::{Error, Pool, PoolIterator, ReturnWhen, get_context};
use tests::{METHODS, leak_guard};

#[multiproc::task]
fn crunch(n: u64) -> u64 {
    (0..n).sum()
}

#[multiproc::task]
fn parse(line: String) -> Result<u64, String> {
    line.trim().parse().map_err(|e| format!("{line:?}: {e}"))
}

/// Sleeps `ms`, then returns `x`; panics for `x == 666`.
#[multiproc::task]
fn nap(x: u64, ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    assert_ne!(x, 666, "the beast");
    x
}

/// The program of the issue, as written (in a test instead of `main`).
#[multiproc::test]
fn the_issue_program_runs_under_every_start_method() {
    let _g = leak_guard();
    for m in METHODS {
        multiproc::set_start_method(m, true).unwrap();
        let run = || -> multiproc::Result<()> {
            let pool = multiproc::Pool::builder()
                .processes(2)
                .task_timeout(Duration::from_secs(2))
                .max_memory_per_child(512 << 20)
                .build()?;
            let r = pool.apply_async(crunch, (10,))?.timeout(Duration::from_millis(100));
            let futs: Vec<_> = (0..100u64).map(|n| pool.submit(crunch, (n,))).collect::<multiproc::Result<_>>()?;
            let mut sums = Vec::new();
            for done in multiproc::as_completed(futs) {
                sums.push(done?);
            }
            sums.sort();
            let mut want: Vec<u64> = (0..100u64).map(|n| (0..n).sum()).collect();
            want.sort();
            assert_eq!(sums, want);
            let nums: Vec<u64> = pool.try_map(parse, vec!["1".into(), "2".into()])?;
            assert_eq!(nums, vec![1, 2]);
            assert_eq!(r.get()?, 45);
            Ok(())
        };
        run().unwrap_or_else(|e| panic!("{m}: {e}"));
    }
}

#[multiproc::test]
fn as_completed_yields_in_completion_order() {
    let _g = leak_guard();
    for m in METHODS {
        let pool = get_context(m).pool(3).unwrap();
        let futs = vec![
            pool.submit(nap, (1, 600)).unwrap(),
            pool.submit(nap, (2, 300)).unwrap(),
            pool.submit(nap, (3, 1)).unwrap(),
        ];
        let order: Vec<u64> = multiproc::as_completed(futs).map(|r| r.unwrap()).collect();
        assert_eq!(order, vec![3, 2, 1], "{m}");
        // Errors come through in their place.
        let futs = vec![pool.submit(nap, (666, 1)).unwrap(), pool.submit(nap, (4, 200)).unwrap()];
        let mut it = multiproc::as_completed(futs);
        assert_eq!(it.size_hint(), (2, Some(2)));
        assert!(matches!(it.next(), Some(Err(Error::TaskPanicked { .. }))), "{m}");
        assert_eq!(it.next().unwrap().unwrap(), 4, "{m}");
        assert!(it.next().is_none());
        assert_eq!(multiproc::as_completed(Vec::<multiproc::AsyncResult<u64>>::new()).count(), 0);
        pool.close();
        pool.join().unwrap();
    }
}

#[multiproc::test]
fn dropped_submissions_never_run() {
    let _g = leak_guard();
    for m in METHODS {
        let pool = get_context(m).pool(1).unwrap();
        let busy = pool.submit(nap, (1, 300)).unwrap();
        let dropped: Vec<_> = (0..20).map(|x| pool.submit(nap, (100 + x, 100)).unwrap()).collect();
        drop(dropped);
        assert_eq!(busy.get().unwrap(), 1, "{m}");
        // The 20 × 100 ms dropped calls do not hold up the next one.
        let t0 = std::time::Instant::now();
        assert_eq!(pool.apply(nap, (2, 1)).unwrap(), 2, "{m}");
        assert!(t0.elapsed() < Duration::from_millis(1000), "{m}: waited {:?}", t0.elapsed());
        pool.close();
        pool.join().unwrap();
    }
}

#[multiproc::test]
fn wait_results_returns_when_asked() {
    let _g = leak_guard();
    for m in METHODS {
        let pool = get_context(m).pool(2).unwrap();
        let futs = vec![pool.submit(nap, (1, 1)).unwrap(), pool.submit(nap, (2, 2_000)).unwrap()];
        let w = multiproc::wait_results(&futs, None, ReturnWhen::FirstCompleted);
        assert_eq!(w.done, vec![0], "{m}");
        assert_eq!(w.not_done, vec![1], "{m}");
        let w = multiproc::wait_results(&futs, Some(Duration::from_millis(50)), ReturnWhen::AllCompleted);
        assert_eq!(w.not_done, vec![1], "{m}: the timeout holds");
        let w = multiproc::wait_results(&futs, None, ReturnWhen::AllCompleted);
        assert_eq!(w.done.len(), 2, "{m}");
        // FIRST_EXCEPTION: back at the first failure, not after the slow call.
        let futs = vec![pool.submit(nap, (666, 50)).unwrap(), pool.submit(nap, (3, 10_000)).unwrap()];
        let t0 = std::time::Instant::now();
        let w = multiproc::wait_results(&futs, None, ReturnWhen::FirstException);
        assert_eq!(w.done, vec![0], "{m}");
        assert!(t0.elapsed() < Duration::from_secs(5), "{m}");
        assert!(futs[1].cancel_running(), "{m}");
        let w = multiproc::wait_results(&Vec::<multiproc::AsyncResult<u64>>::new(), None, ReturnWhen::FirstCompleted);
        assert!(w.done.is_empty() && w.not_done.is_empty());
        drop(futs);
        pool.close();
        pool.join().unwrap();
    }
}

#[multiproc::test]
fn try_map_gives_the_first_task_error_with_its_index() {
    let _g = leak_guard();
    for m in METHODS {
        let pool = get_context(m).pool(2).unwrap();
        let lines: Vec<String> = vec!["1".into(), "2".into(), "x".into(), "4".into(), "y".into()];
        let e = pool.try_map(parse, lines.clone()).unwrap_err();
        match &e {
            Error::Task { task, index, message, .. } => {
                assert!(task.ends_with("parse"), "{m}: {task}");
                assert_eq!(*index, 2, "{m}");
                assert!(message.contains("\"x\""), "{m}: {message}");
            }
            other => panic!("{m}: {other}"),
        }
        assert_eq!(e.task_error::<String>().unwrap(), "\"x\": invalid digit found in string", "{m}");
        assert!(e.task_error::<u64>().is_none());
        // Plain `map` still gives every `Result`.
        let all: Vec<Result<u64, String>> = pool.map(parse, lines.clone()).unwrap();
        assert_eq!(all.iter().filter(|r| r.is_err()).count(), 2, "{m}");
        let ok: Vec<u64> = pool.with_chunksize(1).try_map(parse, vec!["5".to_string(); 20]).unwrap();
        assert_eq!(ok, vec![5; 20], "{m}");
        let star: Vec<u64> = pool.try_starmap(parse, vec![("6".to_string(),)]).unwrap();
        assert_eq!(star, vec![6]);
        // try_imap: values, then the error, then nothing.
        let got: Vec<_> = pool.try_imap(parse, lines).unwrap().collect();
        assert_eq!(got.len(), 3, "{m}");
        assert_eq!(*got[1].as_ref().unwrap(), 2);
        assert!(matches!(got[2], Err(Error::Task { index: 2, .. })), "{m}");
        pool.close();
        pool.join().unwrap();
    }
}

#[multiproc::test]
fn pool_map_streams_through_imap() {
    let _g = leak_guard();
    let pool = Pool::new(2).unwrap();
    let sums: Vec<u64> = (0..10u64).pool_map(&pool, crunch).unwrap().map(Result::unwrap).collect();
    assert_eq!(sums, (0..10u64).map(|n| (0..n).sum()).collect::<Vec<u64>>());
    let mut un: Vec<u64> =
        vec![3u64, 4].into_iter().pool_map_unordered(&pool, crunch).unwrap().map(Result::unwrap).collect();
    un.sort();
    assert_eq!(un, vec![3, 6]);
    pool.close();
    pool.join().unwrap();
}
