//! Children die with their parent, even when the parent is SIGKILLed (issue 3, section 3).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tests::{DEADLINE, METHODS, exited, leak_guard};

#[multiproc::test]
fn children_exit_within_a_second_of_a_sigkilled_parent() {
    let _g = leak_guard();
    for m in METHODS {
        kill_maker_and_watch(m, false);
    }
}

#[multiproc::test]
fn grandchildren_exit_within_a_second_of_a_sigkilled_grandparent() {
    let _g = leak_guard();
    for m in METHODS {
        kill_maker_and_watch(m, true);
    }
}

/// Runs `orphan_maker` (3 children, each with a grandchild if `nested`),
/// SIGKILLs it, and checks every process it reported is gone within 1 s.
fn kill_maker_and_watch(m: tests::StartMethod, nested: bool) {
    let mut maker = Command::new(env!("CARGO_BIN_EXE_orphan_maker"))
        .args([m.name(), "3", if nested { "nested" } else { "flat" }])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = maker.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut pids = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap_or_default();
            if line == "ready" {
                break;
            }
            if let Some((_, pid)) = line.split_once(' ') {
                pids.push(pid.parse::<u32>().unwrap());
            }
        }
        let _ = tx.send(pids);
    });
    let pids = match rx.recv_timeout(DEADLINE) {
        Ok(pids) => pids,
        Err(_) => {
            let _ = maker.kill();
            let _ = maker.wait();
            panic!("{m}: orphan_maker did not get ready within {DEADLINE:?}");
        }
    };
    let _ = reader.join();
    let want = if nested { 6 } else { 3 } + usize::from(m == tests::StartMethod::ForkServer);
    assert_eq!(pids.len(), want, "{m}: expected 3 children (grandchildren, a fork server): {pids:?}");
    assert!(pids.iter().all(|p| !exited(*p)), "{m}: a child died early: {pids:?}");

    maker.kill().unwrap(); // SIGKILL
    let killed = Instant::now();
    maker.wait().unwrap();
    let mut alive = pids.clone();
    while !alive.is_empty() && killed.elapsed() < Duration::from_secs(1) {
        alive.retain(|p| !exited(*p));
        std::thread::yield_now();
    }
    alive.retain(|p| !exited(*p));
    assert!(alive.is_empty(), "{m}: still alive 1 s after their parent was killed: {alive:?}");
}
