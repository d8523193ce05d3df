//! Condition, Event and Barrier across processes (PARITY §6).

use std::time::{Duration, Instant};

use multiproc::{Barrier, Condition, Error, Event, Lock, Queue, Value, get_context};
use tests::{DEADLINE, METHODS, leak_guard, wait_until};

#[multiproc::task]
fn cond_waiter(c: Condition, woken: Queue<u32>, id: u32, ready: Value<u32>) {
    c.acquire(true, None).unwrap();
    *ready.lock().unwrap() += 1;
    c.wait().unwrap();
    c.release().unwrap();
    woken.put(id).unwrap();
}

#[multiproc::test]
fn notify_wakes_exactly_n_and_notify_all_the_rest() {
    let _g = leak_guard();
    for m in METHODS {
        let c = Condition::new().unwrap();
        let woken = Queue::new().unwrap();
        let ready = Value::new(0u32).unwrap();
        let mut ps: Vec<_> = (0..6)
            .map(|i| get_context(m).process(cond_waiter, (c.clone(), woken.clone(), i, ready.clone())).unwrap())
            .collect();
        for p in &mut ps {
            p.start().unwrap();
        }
        wait_until(|| ready.get() >= 6, "the waiters to get ready");
        // Every waiter registered under the lock before bumping `ready`; taking the
        // lock here means each has released it inside wait().
        {
            let _l = c.lock().unwrap();
            c.notify(2);
        }
        woken.get_timeout(DEADLINE).unwrap();
        woken.get_timeout(DEADLINE).unwrap();
        assert!(
            matches!(woken.get_timeout(Duration::from_millis(200)), Err(Error::Empty)),
            "{m:?}: notify(2) woke more"
        );
        {
            let _l = c.lock().unwrap();
            c.notify_all();
        }
        for _ in 0..4 {
            woken.get_timeout(DEADLINE).unwrap();
        }
        {
            let _l = c.lock().unwrap();
            c.notify(3);
        }
        for p in &mut ps {
            p.join().unwrap();
        }
    }
}

#[multiproc::test]
fn condition_wait_timeout_and_ownership() {
    let _g = leak_guard();
    let c = Condition::with_lock(Lock::new().unwrap()).unwrap();
    assert!(matches!(c.wait_timeout(Duration::from_millis(10)), Err(Error::InvalidState(_))));
    let _l = c.lock().unwrap();
    let t = Instant::now();
    assert!(!c.wait_timeout(Duration::from_millis(100)).unwrap());
    assert!(t.elapsed() >= Duration::from_millis(100));
    assert!(!c.wait_timeout(Duration::ZERO).unwrap());
}

#[multiproc::task]
fn set_state(c: Condition, state: Value<u32>) {
    for i in 1..=3 {
        let _l = c.lock().unwrap();
        state.set(i);
        c.notify_all();
    }
}

#[multiproc::test]
fn wait_for_sees_a_predicate_made_true_by_a_child() {
    let _g = leak_guard();
    for m in METHODS {
        let c = Condition::new().unwrap();
        let state = Value::new(0u32).unwrap();
        let mut p = get_context(m).process(set_state, (c.clone(), state.clone())).unwrap();
        let _l = c.lock().unwrap();
        p.start().unwrap();
        assert!(c.wait_for(|| state.get() == 3, Some(DEADLINE)).unwrap(), "{m:?}");
        let t = Instant::now();
        assert!(!c.wait_for(|| state.get() == 4, Some(Duration::from_millis(100))).unwrap());
        assert!(t.elapsed() >= Duration::from_millis(100));
        drop(_l);
        p.join().unwrap();
    }
}

#[multiproc::task]
fn set_event(e: Event) {
    e.set();
}

#[multiproc::test]
fn event_set_by_child_wakes_parent() {
    let _g = leak_guard();
    let e = Event::new().unwrap();
    assert!(!e.is_set());
    assert!(!e.wait(Some(Duration::ZERO)));
    let t = Instant::now();
    assert!(!e.wait(Some(Duration::from_millis(100))));
    assert!(t.elapsed() >= Duration::from_millis(100));
    e.set();
    assert!(e.wait(None) && e.wait(Some(Duration::from_millis(100))));
    assert_eq!(format!("{e:?}"), "<Event(set)>");
    for m in METHODS {
        e.clear();
        assert_eq!(format!("{e:?}"), "<Event(unset)>");
        let mut p = get_context(m).process(set_event, (e.clone(),)).unwrap();
        p.start().unwrap();
        assert!(e.wait(Some(DEADLINE)), "{m:?}");
        p.join().unwrap();
    }
}

#[multiproc::task]
fn barrier_rounds(b: Barrier, rounds: u32, out: Queue<(u32, u32)>) {
    for r in 0..rounds {
        let idx = b.wait().unwrap();
        out.put((r, idx)).unwrap();
    }
}

#[multiproc::test]
fn barrier_passes_in_lockstep_and_one_party_gets_zero() {
    let _g = leak_guard();
    for m in METHODS {
        let b = Barrier::with_timeout(5, DEADLINE).unwrap();
        let out = Queue::new().unwrap();
        let mut ps: Vec<_> =
            (0..4).map(|_| get_context(m).process(barrier_rounds, (b.clone(), 10, out.clone())).unwrap()).collect();
        for p in &mut ps {
            p.start().unwrap();
        }
        let mut zeros = [0u32; 10];
        for r in 0..10 {
            let idx = b.wait().unwrap();
            if idx == 0 {
                zeros[r as usize] += 1;
            }
        }
        for _ in 0..40 {
            let (r, idx) = out.get_timeout(DEADLINE).unwrap();
            if idx == 0 {
                zeros[r as usize] += 1;
            }
        }
        assert_eq!(zeros, [1; 10], "{m:?}: exactly one party per round gets index 0");
        for p in &mut ps {
            p.join().unwrap();
        }
        assert_eq!(b.n_waiting(), 0);
        assert!(!b.broken());
    }
}

#[multiproc::task]
fn barrier_wait_result(b: Barrier, out: Queue<bool>) {
    out.put(matches!(b.wait(), Err(Error::BrokenBarrier))).unwrap();
}

#[multiproc::test]
fn barrier_timeout_abort_and_reset_break_every_waiter() {
    let _g = leak_guard();
    for m in METHODS {
        // Timeout: the parent waits 100 ms for a party that never comes; everyone breaks.
        let b = Barrier::new(3).unwrap();
        let out = Queue::new().unwrap();
        let mut p = get_context(m).process(barrier_wait_result, (b.clone(), out.clone())).unwrap();
        p.start().unwrap();
        assert!(matches!(b.wait_timeout(Duration::from_millis(100)), Err(Error::BrokenBarrier)));
        assert!(out.get_timeout(DEADLINE).unwrap(), "{m:?}: the other waiter was not broken");
        assert!(b.broken());
        assert!(matches!(b.wait(), Err(Error::BrokenBarrier)));
        p.join().unwrap();
        // Reset makes it usable again.
        b.reset();
        assert!(!b.broken());
        // Abort wakes a waiter with BrokenBarrier.
        let mut p = get_context(m).process(barrier_wait_result, (b.clone(), out.clone())).unwrap();
        p.start().unwrap();
        wait_until(|| b.n_waiting() > 0, format_args!("{m:?}: a party to wait"));
        b.abort();
        assert!(out.get_timeout(DEADLINE).unwrap(), "{m:?}: abort did not break the waiter");
        p.join().unwrap();
        b.reset();
        // Reset while a party waits breaks that party, and the barrier works after.
        let mut p = get_context(m).process(barrier_wait_result, (b.clone(), out.clone())).unwrap();
        p.start().unwrap();
        wait_until(|| b.n_waiting() > 0, format_args!("{m:?}: a party to wait"));
        b.reset();
        assert!(out.get_timeout(DEADLINE).unwrap(), "{m:?}: reset did not break the waiter");
        p.join().unwrap();
        let one = Barrier::new(1).unwrap();
        assert_eq!(one.wait().unwrap(), 0);
        assert_eq!(one.wait().unwrap(), 0);
    }
}

#[multiproc::task]
fn timed_waiter(c: Condition, out: Queue<bool>) {
    c.acquire(true, None).unwrap();
    let woken = c.wait_timeout(Duration::from_millis(100)).unwrap();
    c.release().unwrap();
    out.put(woken).unwrap();
}

#[multiproc::test]
fn timed_out_waiters_leave_no_registration_behind() {
    let _g = leak_guard();
    for m in METHODS {
        let c = Condition::new().unwrap();
        let out = Queue::new().unwrap();
        let mut ps: Vec<_> =
            (0..3).map(|_| get_context(m).process(timed_waiter, (c.clone(), out.clone())).unwrap()).collect();
        for p in &mut ps {
            p.start().unwrap();
        }
        for _ in 0..3 {
            assert!(!out.get_timeout(DEADLINE).unwrap(), "{m:?}: nobody notified, yet a waiter was woken");
        }
        for p in &mut ps {
            p.join().unwrap();
        }
        assert!(format!("{c:?}").ends_with(", 0)>"), "{m:?}: stale registrations: {c:?}");
        // A notify now wakes nobody and leaves nothing for a later waiter.
        let _l = c.lock().unwrap();
        c.notify(3);
        assert!(!c.wait_timeout(Duration::from_millis(10)).unwrap());
    }
}

/// The log of the barrier action test: named after the test's process, which
/// is the process itself or its parent.
fn barrier_log() -> std::path::PathBuf {
    let root = multiproc::parent_process().map_or(std::process::id(), |p| p.pid);
    std::env::temp_dir().join(format!("multiproc-barrier-{root}"))
}

/// The barrier action of the tests: records which process ran it.
#[multiproc::task]
fn note_round() {
    let mut f = std::fs::OpenOptions::new().append(true).create(true).open(barrier_log()).unwrap();
    std::io::Write::write_all(&mut f, format!("{}\n", std::process::id()).as_bytes()).unwrap();
}

/// A barrier action that panics.
#[multiproc::task]
fn bad_action() {
    panic!("the action failed");
}

/// CPython's `_TestBarrier.test_action`: the last to arrive runs the action
/// once per round, before anyone is released.
#[multiproc::test]
fn a_barrier_action_runs_once_a_round_before_the_release() {
    let _g = leak_guard();
    let log = barrier_log();
    for m in METHODS {
        let _ = std::fs::remove_file(&log);
        let b = Barrier::with_action(3, note_round, Some(DEADLINE)).unwrap();
        let out: Queue<(u32, u32)> = Queue::new().unwrap();
        let mut kids: Vec<_> =
            (0..2).map(|_| get_context(m).process(barrier_rounds, (b.clone(), 2, out.clone())).unwrap()).collect();
        kids.iter_mut().for_each(|k| k.start().unwrap());
        for round in 1..=2 {
            b.wait().unwrap();
            // Released: the action of this round has run, exactly once.
            let ran = std::fs::read_to_string(&log).unwrap_or_default().lines().count();
            assert!(ran >= round, "{m}: round {round}: the action ran {ran} times");
        }
        kids.iter_mut().for_each(|k| k.join().unwrap());
        assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2, "{m}");
        let _ = std::fs::remove_file(&log);
    }
    // An action that fails: its party gets the error, the barrier breaks.
    let b = Barrier::with_action(1, bad_action, None).unwrap();
    assert!(matches!(b.wait(), Err(Error::TaskPanicked { .. })));
    assert!(b.broken());
    let sem = multiproc::Semaphore::new(1).unwrap();
    assert!(!sem.locked());
    let _held = sem.lock();
    assert!(sem.locked());
}

/// A waiter SIGKILLed inside `wait` neither swallows a later `notify` nor
/// leaves a wake-up behind for the next waiter (which used to wake at once,
/// without any notify).
#[multiproc::test]
fn a_waiter_killed_while_waiting_is_forgotten() {
    let _g = leak_guard();
    for m in METHODS {
        let c = Condition::new().unwrap();
        let woken = Queue::new().unwrap();
        let ready = Value::new(0u32).unwrap();
        let mut doomed = get_context(m).process(cond_waiter, (c.clone(), woken.clone(), 0, ready.clone())).unwrap();
        doomed.start().unwrap();
        wait_until(|| ready.get() >= 1, "the doomed waiter to wait");
        drop(c.lock().unwrap()); // it has released the lock inside wait()
        doomed.kill().unwrap();
        doomed.join().unwrap();
        {
            // A notify with only the dead waiter registered wakes nobody and
            // leaves nothing behind.
            let _l = c.lock().unwrap();
            c.notify(1);
            let t = Instant::now();
            assert!(!c.wait_timeout(Duration::from_millis(100)).unwrap(), "{m:?}: woken without a notify");
            assert!(t.elapsed() >= Duration::from_millis(100));
        }
        // A live waiter after a dead one gets the one notify.
        let mut live = get_context(m).process(cond_waiter, (c.clone(), woken.clone(), 1, ready.clone())).unwrap();
        let mut doomed = get_context(m).process(cond_waiter, (c.clone(), woken.clone(), 2, ready.clone())).unwrap();
        doomed.start().unwrap();
        wait_until(|| ready.get() >= 2, "the second doomed waiter to wait");
        drop(c.lock().unwrap());
        doomed.kill().unwrap();
        doomed.join().unwrap();
        live.start().unwrap();
        wait_until(|| ready.get() >= 3, "the live waiter to wait");
        {
            let _l = c.lock().unwrap();
            c.notify(1);
        }
        assert_eq!(woken.get_timeout(DEADLINE).unwrap(), 1, "{m:?}");
        live.join().unwrap();
        assert!(format!("{c:?}").ends_with(", 0)>"), "{m:?}: stale registrations: {c:?}");
    }
}
