//! A plain `#[test]` that starts a spawn or forkserver child fails at once,
//! every time, with an error saying to use `#[multiproc::test]` — even when the
//! same binary holds annotated tests that already started children (a child
//! used to land in whichever annotated test the runtime knew, so the plain
//! test passed or failed by chance).

use std::process::Command;

use multiproc::{Error, StartMethod, get_context};
use tests::{leak_guard, run_bounded};

/// Set when this binary runs as the driven copy of [`plain_tests_fail_at_once_every_time`].
const DRIVEN: &str = "TESTS_PLAIN_TEST_DRIVEN";

#[multiproc::task]
fn double(x: u32) -> u32 {
    x * 2
}

fn assert_says_use_multiproc_test(e: &Error, what: &str) {
    assert!(matches!(e, Error::NotAnnotated { .. }), "{what}: {e:?}");
    let text = e.to_string();
    assert!(text.contains("use #[multiproc::test] instead of #[test]"), "{what}: {text}");
}

/// Runs first in the driven binary (libtest runs tests in name order with
/// one thread): an annotated test whose children work.
#[multiproc::test]
fn a_annotated_test_starts_children() {
    if std::env::var_os(DRIVEN).is_none() {
        return;
    }
    for m in [StartMethod::Spawn, StartMethod::ForkServer] {
        let pool = get_context(m).pool(1).unwrap();
        assert_eq!(pool.apply(double, (2,)).unwrap(), 4, "{m}");
    }
}

/// Runs second in the driven binary: a plain test must be refused.
#[test]
fn b_plain_test_starting_children_is_refused() {
    if std::env::var_os(DRIVEN).is_none() {
        return;
    }
    for m in [StartMethod::Spawn, StartMethod::ForkServer] {
        let e = get_context(m).pool(1).map(drop).unwrap_err();
        assert_says_use_multiproc_test(&e, &format!("{m} pool"));
        let mut p = get_context(m).process(double, (1,)).unwrap();
        assert_says_use_multiproc_test(&p.start().unwrap_err(), &format!("{m} process"));
    }
    println!("plain test: refused");
}

#[multiproc::test]
fn plain_tests_fail_at_once_every_time() {
    let _g = leak_guard();
    let exe = std::env::current_exe().unwrap();
    for run in 0..3 {
        let (status, out, err) = run_bounded(
            Command::new(&exe)
                .args(["a_annotated_test_starts_children", "b_plain_test_starting_children_is_refused"])
                .args(["--exact", "--test-threads=1", "--nocapture"])
                .env(DRIVEN, "1"),
        );
        assert!(status.success(), "run {run}: {status:?}\nstdout: {out}\nstderr: {err}");
        assert!(out.contains("plain test: refused") && out.contains("2 passed"), "run {run}: {out}");
    }
}

#[multiproc::test]
fn a_thread_of_an_annotated_test_is_refused_with_the_fix() {
    let _g = leak_guard();
    let e = std::thread::Builder::new()
        .name("helper".into())
        .spawn(|| get_context(StartMethod::Spawn).process(double, (1,)).unwrap().start().unwrap_err())
        .unwrap()
        .join()
        .unwrap();
    assert!(matches!(e, Error::NotAnnotated { .. }), "{e:?}");
    assert!(e.to_string().contains("start the children from the test's own thread"), "{e}");
    // A pool made on the test's thread replaces its workers from its own thread: fine.
    let pool = get_context(StartMethod::Spawn).pool(1).unwrap();
    assert_eq!(pool.apply(double, (4,)).unwrap(), 8);
}
