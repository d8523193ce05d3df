//! Queue, SimpleQueue and JoinableQueue across processes (PARITY §4).

use std::time::{Duration, Instant};

use multiproc::{Error, JoinableQueue, Queue, SimpleQueue, get_context};
use tests::{DEADLINE, METHODS, leak_guard};

#[multiproc::task]
fn producer(q: Queue<Option<u64>>, n: u64) {
    for i in 0..n {
        q.put(Some(i)).unwrap();
    }
    q.put(None).unwrap();
}

/// Lengths that cover empty, odd, ring-sized and streamed (larger than the
/// 1 MiB ring) items.
const BULK_LENGTHS: [usize; 6] = [0, 1, 7, 4097, 1 << 20, (3 << 20) + 1];

#[multiproc::task]
fn bulk_producer(bytes: Queue<Vec<u8>>, floats: Queue<Vec<f64>>, text: Queue<String>, ints: Queue<Box<[i32]>>) {
    for n in BULK_LENGTHS {
        bytes.put((0..n).map(|i| (i % 253) as u8).collect()).unwrap();
        floats.put((0..n / 8).map(|i| i as f64 / 3.0).collect()).unwrap();
        text.put((0..n / 4).map(|i| ['x', 'ß', '€', '𝄞'][i % 4]).collect()).unwrap();
        ints.put((0..n / 4).map(|i| i as i32 - 1000).collect()).unwrap();
    }
}

/// `_TestQueue.test_put`/`test_get` with the item types that skip serde: each
/// arrives whole and in order from a child, short or streamed through the ring.
#[multiproc::test]
fn test_queue_bulk_items_from_a_child() {
    let _g = leak_guard();
    for m in METHODS {
        let (b, f, t, i) = (Queue::new().unwrap(), Queue::new().unwrap(), Queue::new().unwrap(), Queue::new().unwrap());
        let mut p = get_context(m).process(bulk_producer, (b.clone(), f.clone(), t.clone(), i.clone())).unwrap();
        p.start().unwrap();
        for n in BULK_LENGTHS {
            let want: Vec<u8> = (0..n).map(|i| (i % 253) as u8).collect();
            assert_eq!(b.get_timeout(DEADLINE).unwrap(), want, "{m:?}: {n} bytes");
            let want: Vec<f64> = (0..n / 8).map(|i| i as f64 / 3.0).collect();
            assert_eq!(f.get_timeout(DEADLINE).unwrap(), want, "{m:?}: {n} floats");
            let want: String = (0..n / 4).map(|i| ['x', 'ß', '€', '𝄞'][i % 4]).collect();
            assert_eq!(t.get_timeout(DEADLINE).unwrap(), want, "{m:?}: {n} chars");
            let want: Box<[i32]> = (0..n / 4).map(|i| i as i32 - 1000).collect();
            assert_eq!(i.get_timeout(DEADLINE).unwrap(), want, "{m:?}: {n} ints");
        }
        p.join().unwrap();
    }
}

#[multiproc::test]
fn test_queue_bulk_item_that_is_not_utf8_is_a_decode_error() {
    let _g = leak_guard();
    let q: Queue<String> = Queue::new().unwrap();
    // The bytes of a `Vec<u8>` [0xff] (length, then the byte): not a string.
    q.put_bytes(&[1, 0, 0, 0, 0, 0, 0, 0, 0xff]).unwrap();
    assert!(matches!(q.get(), Err(Error::Decode { .. })));
    let big = [&((3u64 << 20) + 1).to_le_bytes()[..], &vec![0xffu8; (3 << 20) + 1]].concat();
    // Larger than the ring: streamed, so it needs a reader while it is put.
    let putter = {
        let q = q.clone();
        std::thread::spawn(move || q.put_bytes(&big))
    };
    assert!(matches!(q.get(), Err(Error::Decode { .. })), "a streamed item is checked too");
    putter.join().unwrap().unwrap();
    q.put("still works".into()).unwrap();
    assert_eq!(q.get().unwrap(), "still works");
}

#[multiproc::test]
fn contract_producer_sends_everything_in_order() {
    let _g = leak_guard();
    for m in METHODS {
        let q = Queue::new().unwrap();
        let mut p = get_context(m).process(producer, (q.clone(), 1000)).unwrap();
        p.start().unwrap();
        let mut expected = 0;
        while let Some(i) = q.get_timeout(DEADLINE).unwrap() {
            assert_eq!(i, expected, "{m:?}: out of order");
            expected += 1;
        }
        assert_eq!(expected, 1000, "{m:?}");
        p.join().unwrap();
    }
}

#[multiproc::test]
fn put_on_full_queue_fails_at_once_or_after_timeout() {
    let _g = leak_guard();
    let q: Queue<u32> = Queue::with_maxsize(6).unwrap();
    assert!(q.empty().unwrap());
    assert!(!q.full());
    q.put(1).unwrap();
    q.put_with(2, true, None).unwrap();
    q.put_with(3, false, None).unwrap();
    q.put_timeout(4, Duration::from_millis(10)).unwrap();
    q.put_nowait(5).unwrap();
    q.put(6).unwrap();
    assert!(q.full());
    assert_eq!(q.qsize(), 6);
    let t = Instant::now();
    assert!(matches!(q.put_nowait(7), Err(Error::Full)));
    assert!(matches!(q.put_with(7, false, Some(Duration::from_secs(5))), Err(Error::Full)));
    assert!(t.elapsed() < Duration::from_secs(1), "a non-blocking put must not wait");
    let t = Instant::now();
    assert!(matches!(q.put_timeout(7, Duration::from_millis(100)), Err(Error::Full)));
    assert!(t.elapsed() >= Duration::from_millis(100));
    for i in 1..=6 {
        assert_eq!(q.get().unwrap(), i);
    }
    assert!(q.empty().unwrap());
}

#[multiproc::test]
fn get_on_empty_queue_fails_at_once_or_after_timeout() {
    let _g = leak_guard();
    let q: Queue<u32> = Queue::new().unwrap();
    let t = Instant::now();
    assert!(matches!(q.get_nowait(), Err(Error::Empty)));
    assert!(matches!(q.get_with(false, Some(Duration::from_secs(5))), Err(Error::Empty)));
    assert!(t.elapsed() < Duration::from_secs(1));
    let t = Instant::now();
    assert!(matches!(q.get_timeout(Duration::from_millis(100)), Err(Error::Empty)));
    assert!(t.elapsed() >= Duration::from_millis(100), "get timed out early");
}

#[multiproc::test]
fn qsize_follows_puts_and_gets() {
    let _g = leak_guard();
    let q: Queue<u8> = Queue::new().unwrap();
    assert_eq!(q.qsize(), 0);
    q.put(1).unwrap();
    assert_eq!(q.qsize(), 1);
    q.put(2).unwrap();
    assert_eq!(q.qsize(), 2);
    q.get().unwrap();
    assert_eq!(q.qsize(), 1);
    q.get().unwrap();
    assert_eq!(q.qsize(), 0);
}

#[multiproc::task]
fn put_ten(q: Queue<u32>) {
    for i in 10..20 {
        q.put(i).unwrap();
    }
}

#[multiproc::test]
fn items_from_parent_then_child_all_arrive() {
    let _g = leak_guard();
    for m in METHODS {
        let q: Queue<u32> = Queue::new().unwrap();
        for i in 0..10 {
            q.put(i).unwrap();
        }
        let mut p = get_context(m).process(put_ten, (q.clone(),)).unwrap();
        p.start().unwrap();
        p.join().unwrap();
        let got: Vec<u32> = (0..20).map(|_| q.get_timeout(DEADLINE).unwrap()).collect();
        assert_eq!(got, (0..20).collect::<Vec<_>>(), "{m:?}");
        assert!(matches!(q.get_nowait(), Err(Error::Empty)));
    }
}

#[multiproc::test]
fn closed_queue_refuses_put_get_and_empty() {
    let _g = leak_guard();
    let q: Queue<u32> = Queue::new().unwrap();
    q.close();
    q.close();
    q.join_thread();
    assert!(matches!(q.put(1), Err(Error::Closed(_))));
    assert!(matches!(q.get_nowait(), Err(Error::Closed(_))));
    // `close` is a no-op for `empty` on a queue never put to (test_closed_queue_empty_exceptions).
    assert!(q.empty().unwrap());
}

/// Closes its handle, never used, and reports what `empty` says on it.
#[multiproc::task]
fn empty_after_unused_close(q: JoinableQueue<u32>, out: multiproc::Connection<String>) {
    q.close();
    out.send(&format!("{:?}", q.empty())).unwrap();
}

#[multiproc::test]
fn closed_queue_empty_exceptions() {
    let _g = leak_guard();
    let q: Queue<u32> = Queue::new().unwrap();
    q.close();
    q.join_thread();
    assert!(q.empty().unwrap(), "an unused closed Queue is empty");
    let q: JoinableQueue<u32> = JoinableQueue::new().unwrap();
    q.close();
    assert!(q.empty().unwrap(), "an unused closed JoinableQueue is empty");
    for used in [Queue::<u32>::new().unwrap(), Queue::with_maxsize(1).unwrap()] {
        used.put(1).unwrap();
        used.close();
        used.join_thread();
        assert!(matches!(used.empty(), Err(Error::Closed(_))), "used, then closed");
    }
    // A child's handle, closed before any put, still reports the parent's items.
    for m in METHODS {
        let q: JoinableQueue<u32> = JoinableQueue::new().unwrap();
        q.put(7).unwrap();
        let (rx, tx) = multiproc::pipe::<String>().unwrap();
        let mut p = get_context(m).process(empty_after_unused_close, (q.clone(), tx)).unwrap();
        p.start().unwrap();
        assert_eq!(rx.recv().unwrap(), "Ok(false)", "{m:?}");
        p.join().unwrap();
        assert_eq!(q.get().unwrap(), 7);
        q.task_done().unwrap();
    }
}

#[multiproc::test]
fn unencodable_item_leaves_the_queue_usable() {
    let _g = leak_guard();
    let q: Queue<Result<bool, multiproc::Connection<u8>>> = Queue::with_maxsize(1).unwrap();
    let (a, _b) = multiproc::pipe::<u8>().unwrap();
    assert!(matches!(q.put(Err(a)), Err(Error::Encode { .. })));
    assert_eq!(q.qsize(), 0);
    q.put(Ok(true)).unwrap();
    assert!(matches!(q.get().unwrap(), Ok(true)));
    assert!(q.empty().unwrap());
}

#[multiproc::task]
fn simple_child(q: SimpleQueue<String>) {
    q.put("a".into()).unwrap();
    q.put("b".into()).unwrap();
}

#[multiproc::test]
fn simple_queue_sees_child_puts_in_order() {
    let _g = leak_guard();
    for m in METHODS {
        let q: SimpleQueue<String> = SimpleQueue::new().unwrap();
        assert!(q.empty().unwrap());
        let mut p = get_context(m).process(simple_child, (q.clone(),)).unwrap();
        p.start().unwrap();
        p.join().unwrap();
        assert!(!q.empty().unwrap());
        assert_eq!(q.get().unwrap(), "a");
        assert_eq!(q.get().unwrap(), "b");
        q.close();
        q.close();
        assert!(matches!(q.empty(), Err(Error::Closed(_))));
    }
}

#[multiproc::task]
fn worker(q: JoinableQueue<Option<u32>>, out: Queue<u32>) {
    while let Some(x) = q.get().unwrap() {
        out.put(x * 2).unwrap();
        q.task_done().unwrap();
    }
    q.task_done().unwrap();
}

#[multiproc::test]
fn joinable_queue_join_waits_for_every_task_done() {
    let _g = leak_guard();
    for m in METHODS {
        let q: JoinableQueue<Option<u32>> = JoinableQueue::new().unwrap();
        let out: Queue<u32> = Queue::new().unwrap();
        let mut ps: Vec<_> =
            (0..4).map(|_| get_context(m).process(worker, (q.clone(), out.clone())).unwrap()).collect();
        for p in &mut ps {
            p.start().unwrap();
        }
        for i in 0..10 {
            q.put(Some(i)).unwrap();
        }
        assert!(q.join_timeout(DEADLINE), "{m:?}: join did not return");
        assert_eq!(q.unfinished(), 0);
        let mut got: Vec<u32> = (0..10).map(|_| out.get_timeout(DEADLINE).unwrap()).collect();
        got.sort();
        assert_eq!(got, (0..10).map(|i| i * 2).collect::<Vec<_>>());
        for _ in 0..4 {
            q.put(None).unwrap();
        }
        for p in &mut ps {
            p.join().unwrap();
        }
        assert!(matches!(q.task_done(), Err(Error::InvalidState(_))), "task_done beyond puts must fail");
    }
}

/// Reports what `get` and `put` give on `q` once `go` is set, after telling the
/// parent it is about to wait (PARITY 60: "both locally and from a child").
#[multiproc::task]
fn get_after_shutdown(q: Queue<u32>, waiting: multiproc::Event, out: multiproc::Connection<String>) {
    waiting.set();
    let got = tests::outcome(&q.get());
    let put = tests::outcome(&q.put(1));
    out.send(&format!("{got} {put}")).unwrap();
}

#[multiproc::test]
fn shutdown_lets_queued_items_drain_then_refuses() {
    let _g = leak_guard();
    let q: Queue<u32> = Queue::with_maxsize(3).unwrap();
    for i in 0..3 {
        q.put(i).unwrap();
    }
    assert!(!q.is_shut_down());
    q.shutdown();
    assert!(q.is_shut_down());
    assert!(matches!(q.put(9), Err(Error::ShutDown)));
    assert!(matches!(q.put_nowait(9), Err(Error::ShutDown)));
    assert!(matches!(q.put_timeout(9, Duration::from_millis(10)), Err(Error::ShutDown)));
    assert_eq!(q.qsize(), 3);
    assert_eq!(q.get().unwrap(), 0);
    assert_eq!(q.get_nowait().unwrap(), 1);
    assert_eq!(q.get_timeout(DEADLINE).unwrap(), 2);
    assert!(matches!(q.get(), Err(Error::ShutDown)));
    assert!(matches!(q.get_nowait(), Err(Error::ShutDown)));
    assert!(matches!(q.get_timeout(DEADLINE), Err(Error::ShutDown)));
    // A shutdown reaches a child blocked in `get` (or about to block: either way it wakes).
    for m in METHODS {
        let q: Queue<u32> = Queue::new().unwrap();
        let waiting = multiproc::Event::new().unwrap();
        let (rx, tx) = multiproc::pipe::<String>().unwrap();
        let mut p = get_context(m).process(get_after_shutdown, (q.clone(), waiting.clone(), tx)).unwrap();
        p.start().unwrap();
        assert!(waiting.wait(Some(DEADLINE)), "{m:?}");
        q.shutdown();
        assert_eq!(rx.recv().unwrap(), "Err(ShutDown) Err(ShutDown)", "{m:?}");
        p.join().unwrap();
    }
}

#[multiproc::test]
fn shutdown_wakes_a_put_waiting_for_room() {
    let _g = leak_guard();
    let q: Queue<u32> = Queue::with_maxsize(1).unwrap();
    q.put(1).unwrap();
    std::thread::scope(|s| {
        let blocked = s.spawn(|| q.put(2));
        // Whether the put is already waiting or not yet, it ends with ShutDown.
        q.shutdown();
        assert!(matches!(blocked.join().unwrap(), Err(Error::ShutDown)));
    });
    assert_eq!(q.get().unwrap(), 1);
    assert!(matches!(q.get(), Err(Error::ShutDown)));
}

#[multiproc::test]
fn immediate_shutdown_drops_items_and_releases_joiners() {
    let _g = leak_guard();
    let q: JoinableQueue<u32> = JoinableQueue::new().unwrap();
    for i in 0..3 {
        q.put(i).unwrap();
    }
    std::thread::scope(|s| {
        let joiner = s.spawn(|| q.join());
        q.shutdown_immediate();
        joiner.join().unwrap();
    });
    assert_eq!(q.qsize(), 0);
    assert_eq!(q.unfinished(), 0);
    assert!(matches!(q.get(), Err(Error::ShutDown)));
    assert!(matches!(q.get_nowait(), Err(Error::ShutDown)));
    assert!(matches!(q.put(5), Err(Error::ShutDown)));
    assert!(matches!(q.task_done(), Err(Error::InvalidState(_))), "an extra task_done is Python's ValueError");
    // A plain shutdown does not release `join` while items are unfinished.
    let q: JoinableQueue<u32> = JoinableQueue::new().unwrap();
    q.put(1).unwrap();
    q.shutdown();
    assert!(!q.join_timeout(Duration::from_millis(20)), "join must wait for task_done");
    assert_eq!(q.get().unwrap(), 1);
    q.task_done().unwrap();
    assert!(q.join_timeout(DEADLINE));
}

/// Takes one item, says so, and marks it done once `go` is set.
#[multiproc::task]
fn take_then_finish(q: JoinableQueue<u32>, taken: multiproc::Event, go: multiproc::Event) -> multiproc::Result<()> {
    q.get()?;
    taken.set();
    assert!(go.wait(Some(DEADLINE)), "the parent never said go");
    q.task_done()?;
    // The dropped items were counted done already: one more is one too many.
    assert!(matches!(q.task_done(), Err(Error::InvalidState(_))));
    Ok(())
}

#[multiproc::test]
fn shutdown_immediate_with_unfinished() {
    let _g = leak_guard();
    for m in METHODS {
        let q: JoinableQueue<u32> = JoinableQueue::new().unwrap();
        for i in 0..3 {
            q.put(i).unwrap();
        }
        let (taken, go) = (multiproc::Event::new().unwrap(), multiproc::Event::new().unwrap());
        let mut p = get_context(m).process(take_then_finish, (q.clone(), taken.clone(), go.clone())).unwrap();
        p.start().unwrap();
        assert!(taken.wait(Some(DEADLINE)), "{m:?}: the child did not take an item");
        q.shutdown_immediate();
        assert_eq!(q.qsize(), 0, "{m:?}");
        assert!(matches!(q.get_nowait(), Err(Error::ShutDown)), "{m:?}");
        assert_eq!(q.unfinished(), 1, "{m:?}: only the two dropped items count as done");
        assert!(!q.join_timeout(Duration::from_millis(20)), "{m:?}: join must wait for the taken item");
        std::thread::scope(|s| {
            let joiner = s.spawn(|| q.join_timeout(DEADLINE));
            go.set();
            assert!(joiner.join().unwrap(), "{m:?}: join must return after the child's task_done");
        });
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)), "{m:?}: the child's task_done failed");
        assert_eq!(q.unfinished(), 0);
    }
}
