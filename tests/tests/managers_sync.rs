//! The SyncManager types, each used from a child process under every start
//! method (PARITY 107-108): event, lock, rlock, semaphore, condition,
//! barrier, queue, value and namespace.

use std::time::Duration;

use multiproc::managers::{
    BarrierProxy, ConditionProxy, EventProxy, LockProxy, NamespaceProxy, QueueProxy, RLockProxy, SemaphoreProxy,
    ValueProxy,
};
use multiproc::{Error, ExitStatus, Manager, Process, StartMethod};
use tests::{DEADLINE, METHODS, leak_guard};

fn run<A>(m: StartMethod, task: impl multiproc::Task<A>, args: A) -> Process
where
    A: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let mut p = Process::builder(task, args).start_method(m).build().unwrap();
    p.start().unwrap();
    p
}

fn joined_ok(mut p: Process) {
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)));
}

#[multiproc::task]
fn event_child(ready: EventProxy, go: EventProxy) {
    ready.set().unwrap();
    assert!(go.wait(Some(DEADLINE)).unwrap());
}

#[multiproc::test]
fn event_set_wait_clear_across_processes() {
    let _g = leak_guard();
    for m in METHODS {
        let manager = Manager::builder().start_method(m).start().unwrap();
        let (ready, go) = (manager.event().unwrap(), manager.event().unwrap());
        assert!(!go.is_set().unwrap());
        assert!(!go.wait(Some(Duration::from_millis(10))).unwrap());
        let p = run(m, event_child, (ready.clone(), go.clone()));
        assert!(ready.wait(Some(DEADLINE)).unwrap(), "{m:?}");
        go.set().unwrap();
        joined_ok(p);
        go.clear().unwrap();
        assert!(!go.is_set().unwrap());
        manager.shutdown().unwrap();
    }
}

#[multiproc::task]
fn lock_child(lock: LockProxy, r: RLockProxy, held: EventProxy, release: EventProxy) {
    assert!(lock.acquire().unwrap());
    assert!(r.acquire().unwrap());
    assert!(r.acquire().unwrap());
    held.set().unwrap();
    assert!(release.wait(Some(DEADLINE)).unwrap());
    r.release().unwrap();
    r.release().unwrap();
    lock.release().unwrap();
}

#[multiproc::test]
fn lock_and_rlock_state_is_visible_across_processes() {
    let _g = leak_guard();
    for m in METHODS {
        let manager = Manager::builder().start_method(m).start().unwrap();
        let (lock, r) = (manager.lock().unwrap(), manager.rlock().unwrap());
        let (held, release) = (manager.event().unwrap(), manager.event().unwrap());
        let p = run(m, lock_child, (lock.clone(), r.clone(), held.clone(), release.clone()));
        assert!(held.wait(Some(DEADLINE)).unwrap());
        assert!(lock.locked().unwrap());
        assert!(!lock.try_acquire().unwrap());
        assert!(!r.try_acquire().unwrap(), "an rlock held by another process is not ours");
        assert!(r.locked().unwrap(), "held by the child");
        assert!(matches!(r.release(), Err(Error::Remote(_))), "releasing another owner's rlock fails");
        release.set().unwrap();
        assert!(lock.acquire_timeout(DEADLINE).unwrap(), "{m:?}");
        lock.release().unwrap();
        assert!(matches!(lock.release(), Err(Error::Remote(_))), "a double release is an error");
        assert!(r.acquire_timeout(DEADLINE).unwrap());
        r.release().unwrap();
        assert!(!r.locked().unwrap());
        joined_ok(p);
        manager.shutdown().unwrap();
    }
}

#[multiproc::task]
fn semaphore_child(s: SemaphoreProxy, done: QueueProxy<u32>) {
    assert!(s.acquire().unwrap());
    done.put(1).unwrap();
}

#[multiproc::test]
fn semaphore_counts_units_across_processes() {
    let _g = leak_guard();
    for m in METHODS {
        let manager = Manager::builder().start_method(m).start().unwrap();
        let s = manager.semaphore(1).unwrap();
        let done = manager.queue::<u32>().unwrap();
        assert!(s.try_acquire().unwrap());
        assert_eq!(s.value().unwrap(), 0);
        let p = run(m, semaphore_child, (s.clone(), done.clone()));
        assert!(matches!(done.get_timeout(Duration::from_millis(50)), Err(Error::Empty)), "the child must wait");
        s.release().unwrap();
        assert_eq!(done.get_timeout(DEADLINE).unwrap(), 1, "{m:?}");
        joined_ok(p);
        manager.shutdown().unwrap();
    }
}

#[multiproc::task]
fn condition_child(c: ConditionProxy, state: ValueProxy<u32>) {
    assert!(c.acquire().unwrap());
    state.set(1).unwrap();
    c.notify_all().unwrap();
    assert!(c.wait_for(|| state.get().unwrap() == 2, Some(DEADLINE)).unwrap());
    c.release().unwrap();
}

#[multiproc::test]
fn condition_wait_and_notify_across_processes() {
    let _g = leak_guard();
    for m in METHODS {
        let manager = Manager::builder().start_method(m).start().unwrap();
        let c = manager.condition().unwrap();
        let state = manager.value(0u32).unwrap();
        assert!(matches!(c.notify(1), Err(Error::Remote(_))), "notify without the lock fails");
        assert!(c.acquire().unwrap());
        let p = run(m, condition_child, (c.clone(), state.clone()));
        assert!(c.wait_for(|| state.get().unwrap() == 1, Some(DEADLINE)).unwrap(), "{m:?}");
        state.set(2).unwrap();
        c.notify(1).unwrap();
        c.release().unwrap();
        joined_ok(p);
        manager.shutdown().unwrap();
    }
}

#[multiproc::task]
fn barrier_child(b: BarrierProxy, q: QueueProxy<usize>) {
    q.put(b.wait(Some(DEADLINE)).unwrap()).unwrap();
}

#[multiproc::test]
fn barrier_releases_all_parties_and_resets() {
    let _g = leak_guard();
    for m in METHODS {
        let manager = Manager::builder().start_method(m).start().unwrap();
        let b = manager.barrier(3).unwrap();
        let q = manager.queue::<usize>().unwrap();
        assert_eq!(b.parties().unwrap(), 3);
        let kids: Vec<Process> = (0..2).map(|_| run(m, barrier_child, (b.clone(), q.clone()))).collect();
        let mine = b.wait(Some(DEADLINE)).unwrap();
        let mut indices = vec![mine, q.get_timeout(DEADLINE).unwrap(), q.get_timeout(DEADLINE).unwrap()];
        indices.sort();
        assert_eq!(indices, vec![0, 1, 2], "{m:?}");
        kids.into_iter().for_each(joined_ok);
        assert!(matches!(b.wait(Some(Duration::from_millis(20))), Err(Error::BrokenBarrier)));
        assert!(b.broken().unwrap());
        b.reset().unwrap();
        assert!(!b.broken().unwrap());
        assert_eq!(b.n_waiting().unwrap(), 0);
        b.abort().unwrap();
        assert!(matches!(b.wait(None), Err(Error::BrokenBarrier)));
        manager.shutdown().unwrap();
    }
}

#[multiproc::task]
fn queue_child(q: QueueProxy<String>, n: u32) {
    for i in 0..n {
        q.put(format!("item {i}")).unwrap();
    }
}

#[multiproc::test]
fn bounded_queue_reports_size_full_and_empty() {
    let _g = leak_guard();
    for m in METHODS {
        let manager = Manager::builder().start_method(m).start().unwrap();
        let q = manager.queue_bounded::<String>(2).unwrap();
        assert!(q.empty().unwrap());
        let p = run(m, queue_child, (q.clone(), 3));
        assert_eq!(q.get_timeout(DEADLINE).unwrap(), "item 0", "{m:?}");
        assert_eq!(q.get_timeout(DEADLINE).unwrap(), "item 1");
        assert_eq!(q.get_timeout(DEADLINE).unwrap(), "item 2");
        joined_ok(p);
        q.put_nowait("a".into()).unwrap();
        q.put_nowait("b".into()).unwrap();
        assert!(q.full().unwrap());
        assert_eq!(q.qsize().unwrap(), 2);
        assert!(matches!(q.put_nowait("c".into()), Err(Error::Full)));
        assert!(matches!(q.put_timeout("c".into(), Duration::from_millis(10)), Err(Error::Full)));
        q.get_nowait().unwrap();
        q.get_nowait().unwrap();
        assert!(matches!(q.get_nowait(), Err(Error::Empty)));
        manager.shutdown().unwrap();
    }
}

#[multiproc::task]
fn namespace_child(ns: NamespaceProxy, v: ValueProxy<i32>) {
    let x: i32 = ns.get("x").unwrap().unwrap();
    ns.set("y", &format!("x was {x}")).unwrap();
    v.set(v.get().unwrap() + 1).unwrap();
}

#[multiproc::test]
fn namespace_and_value_are_shared() {
    let _g = leak_guard();
    for m in METHODS {
        let manager = Manager::builder().start_method(m).start().unwrap();
        let ns = manager.namespace().unwrap();
        let v = manager.value(1i32).unwrap();
        ns.set("x", &10i32).unwrap();
        let p = run(m, namespace_child, (ns.clone(), v.clone()));
        joined_ok(p);
        assert_eq!(ns.get::<String>("y").unwrap().as_deref(), Some("x was 10"), "{m:?}");
        assert_eq!(ns.names().unwrap(), vec!["x", "y"]);
        assert!(ns.remove("x").unwrap());
        assert_eq!(ns.get::<i32>("x").unwrap(), None);
        assert!(matches!(ns.get::<Vec<String>>("y"), Err(Error::Decode { .. })), "a field read as the wrong type");
        assert_eq!(v.get().unwrap(), 2);
        assert_eq!(v.replace(5).unwrap(), 2);
        manager.shutdown().unwrap();
    }
}

#[multiproc::task]
fn consume_all(q: QueueProxy<u32>, n: u32) {
    for _ in 0..n {
        q.get().unwrap();
        q.task_done().unwrap();
    }
}

/// Python's `manager.JoinableQueue()`, `BoundedSemaphore`, `set()`, `Array`.
#[multiproc::test]
fn joinable_queue_bounded_semaphore_set_and_array() {
    let _g = leak_guard();
    for m in METHODS {
        let manager = Manager::builder().start_method(m).start().unwrap();
        let q = manager.joinable_queue::<u32>().unwrap();
        for i in 0..5 {
            q.put(i).unwrap();
        }
        assert!(!q.join_timeout(Duration::from_millis(20)).unwrap(), "{m}: items not done yet");
        let p = run(m, consume_all, (q.clone(), 5));
        q.join().unwrap();
        joined_ok(p);
        assert!(matches!(q.task_done(), Err(Error::Remote(_))), "{m}: one task_done too many");

        let s = manager.bounded_semaphore(1).unwrap();
        assert!(s.acquire().unwrap());
        s.release().unwrap();
        assert!(matches!(s.release(), Err(Error::Remote(_))), "{m}: released above its bound");
        let plain = manager.semaphore(1).unwrap();
        plain.release().unwrap();
        assert_eq!(plain.value().unwrap(), 2);

        let set = manager.set_from([1u32, 2]).unwrap();
        assert!(set.add(3).unwrap());
        assert!(!set.add(1).unwrap());
        assert!(set.discard(&2).unwrap());
        assert!(!set.contains(&2).unwrap());
        assert_eq!(set.snapshot().unwrap(), vec![1, 3]);

        let a = manager.array([1.5f64, 2.5]).unwrap();
        a.set(1, 4.0).unwrap();
        assert_eq!(a.get(1).unwrap(), 4.0);
        assert_eq!(a.len().unwrap(), 2);
        manager.shutdown().unwrap();
    }
}

#[multiproc::task]
fn pool_square(x: u64) -> u64 {
    x * x
}

#[multiproc::task]
fn pool_host() -> u32 {
    std::process::id()
}

#[multiproc::task]
fn pool_explode(why: String) -> u64 {
    panic!("{why}")
}

#[multiproc::task]
fn use_pool(pool: multiproc::managers::PoolProxy, out: multiproc::managers::ListProxy<u64>) {
    out.extend(pool.map(pool_square, 0..10u64).unwrap()).unwrap();
}

#[multiproc::test]
fn test_pool_from_a_child() {
    let _g = leak_guard();
    for m in METHODS {
        let manager = multiproc::Manager::builder().start_method(m).start().unwrap();
        let pool = manager.pool(4).unwrap();
        assert_eq!(pool.processes().unwrap(), 4);
        let out = manager.list::<u64>().unwrap();
        let mut p = multiproc::get_context(m).process(use_pool, (pool.clone(), out.clone())).unwrap();
        p.start().unwrap();
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)), "{m:?}");
        assert_eq!(out.snapshot().unwrap(), (0..10u64).map(|x| x * x).collect::<Vec<_>>(), "{m:?}");
        assert_eq!(pool.apply(pool_host, ()).unwrap(), manager.pid().unwrap(), "{m:?}: runs in the server");
        match pool.apply(pool_explode, ("boom".to_string(),)) {
            Err(multiproc::Error::Remote(msg)) => {
                assert!(msg.contains("pool_explode") && msg.contains("boom"), "{msg}")
            }
            other => panic!("{m:?}: expected a remote error, got {other:?}"),
        }
        assert!(matches!(pool.join(), Err(multiproc::Error::Remote(msg)) if msg.contains("still running")));
        pool.close().unwrap();
        pool.join().unwrap();
        assert!(matches!(pool.apply(pool_square, (1,)), Err(multiproc::Error::Remote(_))), "{m:?}: closed");
        assert!(matches!(manager.pool(0), Err(multiproc::Error::Remote(_))), "{m:?}: Pool(0)");
        manager.shutdown().unwrap();
    }
}
