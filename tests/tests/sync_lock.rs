//! Lock, RLock and Semaphore across processes, including dead holders (PARITY §6).

use std::time::{Duration, Instant};

use multiproc::{BoundedSemaphore, Error, Event, Lock, Process, RLock, Semaphore, StartMethod, Value, get_context};
use tests::{DEADLINE, METHODS, leak_guard};

#[multiproc::test]
fn lock_acquire_release_and_locked() {
    let _g = leak_guard();
    let l = Lock::new().unwrap();
    assert!(l.acquire(true, None).unwrap());
    assert!(l.locked());
    assert!(!l.acquire(false, None).unwrap());
    l.release().unwrap();
    assert!(!l.locked());
    assert!(matches!(l.release(), Err(Error::InvalidState(_))), "releasing an unlocked lock must fail");
    {
        let g = l.lock().unwrap();
        assert_eq!(g.owner_died(), None);
        assert!(l.try_lock().is_none());
    }
    assert!(l.try_lock().is_some());
    assert_eq!(format!("{:?}", Lock::new().unwrap()), "<Lock(owner=None)>");
}

#[multiproc::test]
fn lock_timeout_waits_then_fails() {
    let _g = leak_guard();
    let l = Lock::new().unwrap();
    let _held = l.lock().unwrap();
    let t = Instant::now();
    assert!(!l.acquire(true, Some(Duration::from_millis(100))).unwrap());
    assert!(t.elapsed() >= Duration::from_millis(100));
    assert!(l.lock_timeout(Duration::from_millis(10)).is_none());
}

#[multiproc::task]
fn take_and_signal(l: Lock, r: RLock, taken: Event, done: Event) {
    l.acquire(true, None).unwrap();
    r.acquire(true, None).unwrap();
    taken.set();
    done.wait(None);
    // Lock: released by the parent. RLock: released here, by its owner.
    r.release().unwrap();
}

#[multiproc::test]
fn lock_state_is_visible_across_processes_and_any_process_may_release() {
    let _g = leak_guard();
    for m in METHODS {
        let (l, r) = (Lock::new().unwrap(), RLock::new().unwrap());
        let (taken, done) = (Event::new().unwrap(), Event::new().unwrap());
        let mut p =
            get_context(m).process(take_and_signal, (l.clone(), r.clone(), taken.clone(), done.clone())).unwrap();
        p.start().unwrap();
        assert!(taken.wait(Some(DEADLINE)));
        assert!(l.locked() && r.locked(), "{m:?}");
        assert_eq!(l.owner(), p.pid());
        assert!(matches!(r.release(), Err(Error::InvalidState(_))), "{m:?}: non-owner released an RLock");
        l.release().unwrap();
        assert!(!l.locked());
        done.set();
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
        assert!(!r.locked());
    }
}

#[multiproc::test]
fn rlock_is_reentrant() {
    let _g = leak_guard();
    let r = RLock::new().unwrap();
    for _ in 0..3 {
        assert!(r.acquire(true, None).unwrap());
    }
    r.release().unwrap();
    r.release().unwrap();
    assert!(r.locked());
    r.release().unwrap();
    assert!(!r.locked());
    assert!(matches!(r.release(), Err(Error::InvalidState(_))));
    let g1 = r.lock().unwrap();
    let g2 = r.lock().unwrap();
    drop(g1);
    assert!(r.is_owned());
    drop(g2);
    assert!(!r.locked());
}

#[multiproc::task]
fn die_holding(l: Lock, r: RLock, taken: Event) {
    std::mem::forget(l.lock().unwrap());
    std::mem::forget(r.lock().unwrap());
    taken.set();
    loop {
        std::thread::park();
    }
}

/// Starts a `die_holding` child under `m` and waits until it holds both locks;
/// returns the locks and the child (still running, for the caller to kill).
fn start_dead_holder(m: StartMethod) -> (Lock, RLock, Process) {
    let (l, r) = (Lock::new().unwrap(), RLock::new().unwrap());
    let taken = Event::new().unwrap();
    let mut p = get_context(m).process(die_holding, (l.clone(), r.clone(), taken.clone())).unwrap();
    p.start().unwrap();
    assert!(taken.wait(Some(DEADLINE)), "{m:?}: the child never took the locks");
    (l, r, p)
}

#[multiproc::test]
fn lock_of_dead_holder_is_recovered() {
    let _g = leak_guard();
    for m in METHODS {
        let (l, r, mut p) = start_dead_holder(m);
        let pid = p.pid().unwrap();
        p.kill().unwrap();
        p.join().unwrap();
        let g = l.lock_timeout(DEADLINE).expect("the dead holder's lock was not recovered");
        assert_eq!(g.owner_died(), Some(pid), "{m:?}");
        drop(g);
        assert!(l.lock().unwrap().owner_died().is_none(), "the death is reported once");
        match r.acquire(true, Some(DEADLINE)) {
            Err(Error::OwnerDied { .. }) => {}
            other => panic!("{m:?}: expected OwnerDied, got {other:?}"),
        }
        assert!(r.is_owned());
        r.release().unwrap();
    }
}

#[multiproc::test]
fn lock_holder_killed_while_others_wait_unblocks_them() {
    let _g = leak_guard();
    for m in METHODS {
        let (l, _r, mut p) = start_dead_holder(m);
        let pid = p.pid();
        let waiter = std::thread::spawn({
            let l = l.clone();
            move || l.lock_timeout(DEADLINE).map(|g| g.owner_died())
        });
        p.kill().unwrap();
        p.join().unwrap();
        assert_eq!(waiter.join().unwrap(), Some(pid), "{m:?}: the waiter was not handed the lock");
    }
}

#[multiproc::task]
fn add(counter: Value<u64>, times: u64) {
    for _ in 0..times {
        *counter.lock().unwrap() += 1;
    }
}

#[multiproc::test]
fn contract_four_processes_increment_under_the_lock() {
    let _g = leak_guard();
    for m in METHODS {
        let counter = Value::new(0u64).unwrap();
        let ctx = get_context(m);
        let mut ps: Vec<_> =
            (0..4).map(|_| ctx.process(add, (counter.clone(), 10_000))).collect::<Result<_, _>>().unwrap();
        for p in &mut ps {
            p.start().unwrap();
        }
        for p in &mut ps {
            p.join().unwrap();
        }
        assert_eq!(counter.get(), 40_000, "{m:?}");
    }
}

#[multiproc::test]
fn semaphore_counts_and_may_exceed_its_start() {
    let _g = leak_guard();
    let s = Semaphore::new(2).unwrap();
    assert!(s.acquire(true, None));
    assert_eq!(s.get_value(), 1);
    assert!(s.acquire(true, None));
    assert_eq!(s.get_value(), 0);
    assert!(!s.acquire(false, None));
    s.release().unwrap();
    assert_eq!(s.get_value(), 1);
    s.release().unwrap();
    s.release().unwrap();
    s.release().unwrap();
    assert_eq!(s.get_value(), 4);
}

#[multiproc::test]
fn bounded_semaphore_refuses_over_release() {
    let _g = leak_guard();
    let s = BoundedSemaphore::new(2).unwrap();
    assert!(matches!(s.release(), Err(Error::InvalidState(m)) if m.contains("released too many times")));
    assert_eq!(s.get_value(), 2);
    {
        let _u = s.lock();
        assert_eq!(s.get_value(), 1);
    }
    assert_eq!(s.get_value(), 2);
}

#[multiproc::test]
fn semaphore_timeouts() {
    let _g = leak_guard();
    let s = Semaphore::new(0).unwrap();
    let t = Instant::now();
    assert!(!s.acquire(false, None));
    assert!(!s.acquire(false, Some(Duration::from_secs(5))));
    assert!(t.elapsed() < Duration::from_secs(1));
    let t = Instant::now();
    assert!(!s.acquire(true, Some(Duration::from_millis(100))));
    assert!(t.elapsed() >= Duration::from_millis(100));
}

#[multiproc::task]
fn release_after(s: Semaphore, started: Event) {
    started.set();
    s.release().unwrap();
}

#[multiproc::test]
fn semaphore_release_from_child_wakes_parent() {
    let _g = leak_guard();
    for m in METHODS {
        let s = Semaphore::new(0).unwrap();
        let started = Event::new().unwrap();
        let mut p = get_context(m).process(release_after, (s.clone(), started.clone())).unwrap();
        p.start().unwrap();
        assert!(s.acquire(true, Some(DEADLINE)), "{m:?}");
        p.join().unwrap();
    }
}
