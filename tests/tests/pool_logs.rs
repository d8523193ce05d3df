//! The pool tells an operator what happens to it through `log` (target
//! `multiproc`): workers started and exited, a worker lost and replaced,
//! retries, close and join — at `info`/`warn`, never per call above `trace`.

use std::sync::Mutex;

use log::{Level, Log, Metadata, Record};
use multiproc::{Error, Pool};
use tests::leak_guard;

/// Every record of target `multiproc` logged in this process.
static RECORDS: Mutex<Vec<(Level, String)>> = Mutex::new(Vec::new());

struct Capture;

impl Log for Capture {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        m.target() == "multiproc"
    }
    fn log(&self, r: &Record<'_>) {
        if self.enabled(r.metadata()) {
            RECORDS.lock().unwrap_or_else(|p| p.into_inner()).push((r.level(), r.args().to_string()));
        }
    }
    fn flush(&self) {}
}

static CAPTURE: Capture = Capture;

fn records() -> Vec<(Level, String)> {
    RECORDS.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

fn has(records: &[(Level, String)], level: Level, parts: &[&str]) -> bool {
    records.iter().any(|(l, m)| *l == level && parts.iter().all(|p| m.contains(p)))
}

#[multiproc::task]
fn add_one(x: u64) -> u64 {
    x + 1
}

#[multiproc::task]
fn exit_now(code: i32) -> u64 {
    std::process::exit(code)
}

#[multiproc::test]
fn the_pool_logs_its_workers_life_and_loss() {
    let _g = leak_guard();
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let pool = Pool::builder().processes(2).retries(1).build().unwrap();
    let pids = pool.worker_pids();
    assert_eq!(pool.map(add_one, 0..100u64).unwrap().len(), 100);
    assert!(matches!(pool.apply(exit_now, (7,)), Err(Error::WorkerLost { .. })));
    pool.close();
    pool.join().unwrap();
    let got = records();
    assert!(has(&got, Level::Info, &["2 workers ready"]), "{got:#?}");
    for pid in pids {
        assert!(has(&got, Level::Info, &["started", &format!("pid {pid})")]), "{pid}: {got:#?}");
    }
    assert!(has(&got, Level::Warn, &["lost", "a new one replaces it"]), "{got:#?}");
    assert!(has(&got, Level::Warn, &["retrying call 0 held by lost worker"]), "{got:#?}");
    assert!(has(&got, Level::Warn, &["call 0 failed with lost worker"]), "{got:#?}");
    assert!(has(&got, Level::Info, &["closed"]), "{got:#?}");
    assert!(has(&got, Level::Info, &["exited"]), "{got:#?}");
    assert!(has(&got, Level::Trace, &["chunks", "calls) to worker"]), "{got:#?}");
    // Per-call detail stays at trace; the map's 100 calls made few records above it.
    let loud = got.iter().filter(|(l, _)| *l <= Level::Info).count();
    assert!(loud < 20, "{loud} records at info or louder: {got:#?}");
}
