//! `multiproc::dummy::Pool`: the pool API on threads (PARITY.md item 51).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use multiproc::Error;
use multiproc::dummy::Pool;

#[test]
fn dummy_pool_has_the_pool_api() {
    let pool = Pool::new(4).unwrap();
    assert_eq!(pool.map(|x: u64| x * x, 0..10).unwrap(), (0..10).map(|x| x * x).collect::<Vec<u64>>());
    assert_eq!(pool.starmap(|a: u64, b: u64| a + b, vec![(1, 2), (3, 4)]).unwrap(), vec![3, 7]);
    assert_eq!(pool.apply(|x: u64| x + 1, (1,)).unwrap(), 2);
    assert_eq!(pool.apply_async(|x: u64| x * 7, (7,)).unwrap().get().unwrap(), 49);
    let got: Vec<u64> = pool.imap(|x: u64| x * 2, 0..100).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(got, (0..100).map(|x| x * 2).collect::<Vec<_>>());
    let mut got: Vec<u64> = pool.imap_unordered(|x: u64| x * 2, 0..100).unwrap().map(|r| r.unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (0..100).map(|x| x * 2).collect::<Vec<_>>());
    assert!(pool.map(|x: u64| x, Vec::new()).unwrap().is_empty());
    assert_eq!(pool.map_async(|x: u64| x, 0..3).unwrap().get().unwrap(), vec![0, 1, 2]);
    pool.close();
    pool.join().unwrap();
}

#[test]
fn dummy_pool_takes_capturing_closures_and_non_serde_values() {
    let pool = Pool::new(2).unwrap();
    let shared = Arc::new(AtomicUsize::new(0));
    let s = shared.clone();
    // `Arc<AtomicUsize>` is not serde: only a thread pool can take it.
    let out = pool.map(move |x: usize| s.fetch_add(x, Ordering::SeqCst), 1..=4).unwrap();
    assert_eq!(out.len(), 4);
    assert_eq!(shared.load(Ordering::SeqCst), 10);
    let rc_free: Vec<Arc<str>> = pool.map(|s: String| Arc::<str>::from(s), vec!["a".to_string()]).unwrap();
    assert_eq!(&*rc_free[0], "a");
}

#[test]
fn dummy_pool_errors_come_back_unwrapped() {
    let pool = Pool::new(2).unwrap();
    // The task's own error type travels unchanged.
    let r: Result<u64, std::num::ParseIntError> = pool.apply(|s: String| s.parse::<u64>(), ("x".to_string(),)).unwrap();
    assert!(r.is_err());
    match pool.apply(|_: u64| -> u64 { panic!("RuntimeError") }, (1,)) {
        Err(Error::TaskPanicked { message, location, .. }) => {
            assert_eq!(message, "RuntimeError");
            assert!(location.contains("pool_dummy.rs"), "{location}");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    // The thread survived the panic.
    assert_eq!(pool.apply(|x: u64| x, (5,)).unwrap(), 5);
}

#[test]
fn dummy_pool_lifecycle_matches_the_process_pool() {
    assert!(matches!(Pool::new(0), Err(Error::InvalidArgument(_))));
    let pool = Pool::new(1).unwrap();
    assert!(matches!(pool.join(), Err(Error::InvalidState(_))));
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = std::sync::Mutex::new(rx); // a task is `Sync`
    let blocked = pool
        .apply_async(move |_: u64| rx.lock().is_ok_and(|rx| rx.recv_timeout(Duration::from_secs(20)).is_ok()), (0,))
        .unwrap();
    let queued = pool.apply_async(|x: u64| x, (1,)).unwrap();
    assert!(matches!(queued.get_timeout(Duration::from_millis(50)), Err(Error::Timeout(_))));
    let calls = Arc::new(AtomicUsize::new(0));
    let (c1, c2) = (calls.clone(), calls.clone());
    let cb = pool
        .apply_async(|x: u64| x, (3,))
        .unwrap()
        .callback(move |v| {
            assert_eq!(*v, 3);
            c1.fetch_add(1, Ordering::SeqCst);
        })
        .error_callback(move |_| {
            c2.fetch_add(100, Ordering::SeqCst);
        });
    tx.send(()).unwrap();
    assert!(blocked.get().unwrap());
    assert_eq!(queued.get_timeout(Duration::from_secs(20)).unwrap(), 1);
    assert_eq!(cb.get().unwrap(), 3);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    pool.close();
    assert!(matches!(pool.apply_async(|x: u64| x, (1,)), Err(Error::InvalidState(_))));
    pool.join().unwrap();
    let pool = Pool::new(1).unwrap();
    let (_tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = std::sync::Mutex::new(rx);
    let _running = pool
        .apply_async(move |_: u64| rx.lock().is_ok_and(|rx| rx.recv_timeout(Duration::from_millis(200)).is_ok()), (0,))
        .unwrap();
    let dropped = pool.apply_async(|x: u64| x, (1,)).unwrap();
    pool.terminate();
    assert!(matches!(dropped.get(), Err(Error::InvalidState(_))));
}
