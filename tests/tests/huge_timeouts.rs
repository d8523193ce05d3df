//! A timeout of `Duration::MAX` means "no limit": never an `Instant`
//! overflow panic inside the library.

use std::time::Duration;

use multiproc::{Event, Queue, ReturnWhen, get_context, wait_results};
use tests::{METHODS, leak_guard};

#[multiproc::task]
fn twice(x: u64) -> u64 {
    x * 2
}

#[multiproc::test]
fn duration_max_timeouts_wait_without_limit() {
    let _g = leak_guard();
    for m in METHODS {
        let pool = get_context(m).pool(1).unwrap();
        assert_eq!(pool.apply_async(twice, (2,)).unwrap().get_timeout(Duration::MAX).unwrap(), 4, "{m:?}");
        let mut it = pool.imap(twice, [1u64, 2]).unwrap();
        assert_eq!(it.next_timeout(Duration::MAX).unwrap().unwrap(), 2, "{m:?}");
        let futs = vec![pool.submit(twice, (5,)).unwrap()];
        let waited = wait_results(&futs, Some(Duration::MAX), ReturnWhen::AllCompleted);
        assert_eq!(waited.done.len(), 1, "{m:?}");
    }
    let threads = multiproc::dummy::Pool::new(1).unwrap();
    assert_eq!(threads.apply_async(twice, (3,)).unwrap().get_timeout(Duration::MAX).unwrap(), 6);
    let q = Queue::new().unwrap();
    q.put_timeout(1u8, Duration::MAX).unwrap();
    assert_eq!(q.get_timeout(Duration::MAX).unwrap(), 1);
    let e = Event::new().unwrap();
    e.set();
    assert!(e.wait(Some(Duration::MAX)));
    let manager = multiproc::Manager::start().unwrap();
    let c = manager.condition().unwrap();
    assert!(c.acquire().unwrap());
    assert!(c.wait_for(|| true, Some(Duration::MAX)).unwrap());
    c.release().unwrap();
}
