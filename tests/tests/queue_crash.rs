//! Queues under contention and under SIGKILL (PARITY §4, §6 item 91).

use std::collections::BTreeSet;

use multiproc::{Event, Queue, get_context};
use tests::{DEADLINE, METHODS, leak_guard, wait_until};

#[multiproc::task]
fn produce(q: Queue<Option<(u32, u32)>>, id: u32, n: u32) {
    for i in 0..n {
        q.put(Some((id, i))).unwrap();
    }
}

/// Forwards items to `out` until a `None`; counts per-producer order violations.
#[multiproc::task]
fn consume(q: Queue<Option<(u32, u32)>>, out: Queue<(u32, u32)>, bad: Queue<u32>) {
    let mut last = std::collections::HashMap::new();
    let mut violations = 0;
    while let Some((id, i)) = q.get().unwrap() {
        if last.insert(id, i).is_some_and(|prev| prev >= i) {
            violations += 1;
        }
        out.put((id, i)).unwrap();
    }
    bad.put(violations).unwrap();
}

#[multiproc::test]
fn many_producers_and_consumers_lose_and_duplicate_nothing() {
    let _g = leak_guard();
    const PRODUCERS: u32 = 4;
    const CONSUMERS: usize = 3;
    const N: u32 = 3000;
    for m in METHODS {
        let ctx = get_context(m);
        let q = Queue::new().unwrap();
        let out = Queue::new().unwrap();
        let bad = Queue::new().unwrap();
        let mut cons: Vec<_> =
            (0..CONSUMERS).map(|_| ctx.process(consume, (q.clone(), out.clone(), bad.clone())).unwrap()).collect();
        let mut prods: Vec<_> = (0..PRODUCERS).map(|id| ctx.process(produce, (q.clone(), id, N)).unwrap()).collect();
        for p in cons.iter_mut().chain(prods.iter_mut()) {
            p.start().unwrap();
        }
        let mut seen = BTreeSet::new();
        for _ in 0..PRODUCERS * N {
            let item = out.get_timeout(DEADLINE).unwrap();
            assert!(seen.insert(item), "{m:?}: duplicate {item:?}");
        }
        for p in &mut prods {
            p.join().unwrap();
        }
        for _ in 0..CONSUMERS {
            q.put(None).unwrap();
        }
        for _ in 0..CONSUMERS {
            assert_eq!(bad.get_timeout(DEADLINE).unwrap(), 0, "{m:?}: a producer's items arrived out of order");
        }
        for p in &mut cons {
            p.join().unwrap();
        }
        assert_eq!(seen.len() as u32, PRODUCERS * N);
        assert!(out.empty().unwrap());
    }
}

#[multiproc::task]
fn send_big(q: Queue<Vec<u8>>, sizes: Vec<usize>) {
    for n in sizes {
        let v: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
        q.put_bytes(&v).unwrap();
        q.put(v).unwrap();
    }
}

#[multiproc::test]
fn messages_larger_than_the_ring_arrive_whole() {
    let _g = leak_guard();
    let sizes = vec![0, 1, 2047, 2048, 4096, 100_000, 1 << 20];
    for m in METHODS {
        let q: Queue<Vec<u8>> = Queue::with_ring_size(0, 4096).unwrap();
        let mut p = get_context(m).process(send_big, (q.clone(), sizes.clone())).unwrap();
        p.start().unwrap();
        for &n in &sizes {
            let expect: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            assert_eq!(q.get_bytes().unwrap(), expect, "{m:?}: raw message of {n} bytes");
            assert_eq!(q.get_timeout(DEADLINE).unwrap(), expect, "{m:?}: typed message of {n} bytes");
        }
        p.join().unwrap();
    }
}

#[multiproc::task]
fn stuck_big_put(q: Queue<Vec<u8>>, started: Event) {
    started.set();
    q.put_bytes(&vec![7u8; 1 << 20]).unwrap();
}

#[multiproc::task]
fn put_ok(q: Queue<Vec<u8>>) {
    q.put_bytes(b"ok").unwrap();
}

#[multiproc::test]
fn producer_killed_mid_message_does_not_corrupt_the_queue() {
    let _g = leak_guard();
    for m in METHODS {
        let ctx = get_context(m);
        let q: Queue<Vec<u8>> = Queue::with_ring_size(0, 4096).unwrap();
        let started = Event::new().unwrap();
        let mut p = ctx.process(stuck_big_put, (q.clone(), started.clone())).unwrap();
        p.start().unwrap();
        assert!(started.wait(Some(DEADLINE)));
        // The ring (4 KiB) fills with the first chunks of a 1 MiB message, then the put blocks.
        wait_until(|| q.pending_bytes() > 0, "the first chunk");
        assert_eq!(q.qsize(), 0, "a partial message is not an item");
        p.kill().unwrap();
        p.join().unwrap();
        let mut p2 = ctx.process(put_ok, (q.clone(),)).unwrap();
        p2.start().unwrap();
        assert_eq!(q.get_bytes().unwrap(), b"ok", "{m:?}: the partial message must be dropped");
        p2.join().unwrap();
        q.put_bytes(b"after").unwrap();
        assert_eq!(q.get_bytes().unwrap(), b"after");
    }
}

/// After a producer died mid-message with no consumer, the next producer
/// frees the ring it filled: `put_nowait` succeeds at once instead of `Full`.
#[multiproc::test]
fn a_dead_producers_partial_message_does_not_fill_the_queue() {
    let _g = leak_guard();
    for m in METHODS {
        let q: Queue<Vec<u8>> = Queue::with_ring_size(0, 4096).unwrap();
        let started = Event::new().unwrap();
        let mut p = get_context(m).process(stuck_big_put, (q.clone(), started.clone())).unwrap();
        p.start().unwrap();
        assert!(started.wait(Some(DEADLINE)));
        wait_until(|| q.pending_bytes() > 2048, "the ring to fill");
        p.kill().unwrap();
        p.join().unwrap();
        q.put_nowait(b"next".to_vec())
            .unwrap_or_else(|e| panic!("{m:?}: the dead producer's part still fills the ring: {e}"));
        assert_eq!(q.get_nowait().unwrap(), b"next");
        assert_eq!(q.qsize(), 0);
    }
}

/// `put_nowait` and `put_timeout` of an item larger than the ring return
/// `Full` when nobody reads, instead of blocking for ever; what they wrote is
/// dropped and the queue carries on.
#[multiproc::test]
fn timed_puts_of_items_larger_than_the_ring_give_up_when_nobody_reads() {
    let _g = leak_guard();
    let q: Queue<Vec<u8>> = Queue::new().unwrap();
    let big = vec![9u8; 4 << 20];
    let t = std::time::Instant::now();
    assert!(matches!(q.put_nowait(big.clone()), Err(multiproc::Error::Full)));
    assert!(matches!(q.put_timeout(big.clone(), std::time::Duration::from_millis(200)), Err(multiproc::Error::Full)));
    assert!(t.elapsed() < DEADLINE);
    q.put(b"small".to_vec()).unwrap();
    assert_eq!(q.get().unwrap(), b"small", "the abandoned parts must be dropped");
    assert_eq!(q.qsize(), 0);
}

#[multiproc::task]
fn drain_one(q: Queue<Vec<u8>>, out: Queue<usize>) {
    out.put(q.get().unwrap().len()).unwrap();
}

/// With a consumer reading, a timed put of an item four times the ring
/// streams through whole, even with a timeout shorter than the transfer.
#[multiproc::test]
fn a_timed_put_larger_than_the_ring_goes_through_while_a_consumer_reads() {
    let _g = leak_guard();
    for m in METHODS {
        let q: Queue<Vec<u8>> = Queue::new().unwrap();
        let out = Queue::new().unwrap();
        let mut p = get_context(m).process(drain_one, (q.clone(), out.clone())).unwrap();
        p.start().unwrap();
        q.put_timeout(vec![1u8; 4 << 20], std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(out.get_timeout(DEADLINE).unwrap(), 4 << 20, "{m:?}");
        p.join().unwrap();
    }
}

#[multiproc::task]
fn blocked_consumer(q: Queue<u32>, started: Event) {
    started.set();
    let _ = q.get();
}

#[multiproc::test]
fn consumer_killed_while_waiting_does_not_block_others() {
    let _g = leak_guard();
    for m in METHODS {
        let q: Queue<u32> = Queue::new().unwrap();
        let started = Event::new().unwrap();
        let mut p = get_context(m).process(blocked_consumer, (q.clone(), started.clone())).unwrap();
        p.start().unwrap();
        assert!(started.wait(Some(DEADLINE)));
        p.kill().unwrap();
        p.join().unwrap();
        q.put(42).unwrap();
        assert_eq!(q.get_timeout(DEADLINE).unwrap(), 42, "{m:?}");
    }
}

#[multiproc::task]
fn big_then_after(q: Queue<Vec<u8>>) {
    q.put_bytes(&vec![1u8; 1 << 20]).unwrap();
    q.put_bytes(b"after").unwrap();
}

#[multiproc::task]
fn get_one(q: Queue<Vec<u8>>) {
    let _ = q.get_bytes();
}

#[multiproc::test]
fn consumer_killed_mid_message_leaves_the_queue_usable() {
    let _g = leak_guard();
    for m in METHODS {
        let ctx = get_context(m);
        let q: Queue<Vec<u8>> = Queue::with_ring_size(0, 4096).unwrap();
        let mut producer = ctx.process(big_then_after, (q.clone(),)).unwrap();
        producer.start().unwrap();
        wait_until(|| q.pending_bytes() > 0, "the first chunk");
        let ppid = producer.pid().unwrap();
        // Freeze the producer mid-message, so the consumer stops mid-message too.
        tests::stop(ppid);
        let mut consumer = ctx.process(get_one, (q.clone(),)).unwrap();
        consumer.start().unwrap();
        wait_until(|| q.pending_bytes() == 0, "the consumer to take the first chunks");
        consumer.kill().unwrap();
        consumer.join().unwrap();
        tests::resume(ppid);
        // The rest of the big message is skipped; the next message arrives whole.
        assert_eq!(q.get_bytes().unwrap(), b"after", "{m:?}");
        producer.join().unwrap();
        assert_eq!(producer.exitcode(), Some(multiproc::ExitStatus::Code(0)));
    }
}

#[multiproc::task]
fn big_put_reports(q: Queue<Vec<u8>>, started: Event, out: multiproc::Connection<String>) {
    started.set();
    let r = q.put_bytes(&vec![7u8; 1 << 20]);
    out.send(&tests::outcome(&r)).unwrap();
}

/// An immediate shutdown while a large message is half streamed: the producer
/// is stopped mid-message (SIGSTOP) and a consumer waits for the rest. Both
/// the shutdown and the consumer return, and the producer's put reports
/// `ShutDown` once it runs again.
#[multiproc::test]
fn immediate_shutdown_mid_message_releases_everyone() {
    let _g = leak_guard();
    for m in METHODS {
        let q: Queue<Vec<u8>> = Queue::with_ring_size(0, 4096).unwrap();
        let started = Event::new().unwrap();
        let (rx, tx) = multiproc::pipe::<String>().unwrap();
        let mut p = get_context(m).process(big_put_reports, (q.clone(), started.clone(), tx)).unwrap();
        p.start().unwrap();
        assert!(started.wait(Some(DEADLINE)));
        wait_until(|| q.pending_bytes() > 0, "the first chunk");
        let pid = p.pid().unwrap();
        tests::stop(pid);
        std::thread::scope(|s| {
            let consumer = s.spawn(|| q.get_bytes());
            // The ring drained while the get has not returned: it waits mid-message.
            wait_until(|| q.pending_bytes() == 0, "the consumer to drain the ring");
            q.shutdown_immediate();
            assert!(matches!(consumer.join().unwrap(), Err(multiproc::Error::ShutDown)), "{m:?}");
        });
        tests::resume(pid);
        assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), "Err(ShutDown)", "{m:?}");
        p.join().unwrap();
    }
}

#[multiproc::task]
fn big_typed_put(q: Queue<Vec<u8>>, started: Event) {
    started.set();
    q.put(vec![7u8; 1 << 20]).unwrap();
}

/// `get_timeout` keeps its deadline when the producer of a streamed message
/// stops mid-message (SIGSTOP): it returns `Empty` in time, keeping the part
/// it read, and the next `get` (here from another thread) finishes the same
/// message once the producer runs again — nothing lost, nothing duplicated —
/// whether it finishes as a typed `get` (the byte string's length read apart
/// from its bytes), `get_bytes` or `get_bytes_into` (the whole message).
#[multiproc::test]
fn get_timeout_holds_when_the_producer_stops_mid_message() {
    let _g = leak_guard();
    let length = (1u64 << 20).to_le_bytes();
    for (m, finish) in METHODS.into_iter().flat_map(|m| ["get", "get_bytes", "get_bytes_into"].map(|f| (m, f))) {
        let q: Queue<Vec<u8>> = Queue::with_ring_size(0, 4096).unwrap();
        let started = Event::new().unwrap();
        let mut p = get_context(m).process(big_typed_put, (q.clone(), started.clone())).unwrap();
        p.start().unwrap();
        assert!(started.wait(Some(DEADLINE)));
        wait_until(|| q.pending_bytes() > 2048, "the first chunks");
        let pid = p.pid().unwrap();
        tests::stop(pid);
        let t = std::time::Instant::now();
        let got = q.get_timeout(std::time::Duration::from_millis(300));
        let took = t.elapsed();
        assert!(matches!(got, Err(multiproc::Error::Empty)), "{m:?}: {:?}", got.map(|v| v.len()));
        assert!(took < std::time::Duration::from_secs(3), "{m:?}: get_timeout(300 ms) took {took:?}");
        tests::resume(pid);
        let q2 = q.clone();
        let whole = std::thread::spawn(move || match finish {
            "get" => q2.get(),
            "get_bytes" => q2.get_bytes(),
            _ => {
                let mut buf = Vec::new();
                q2.get_bytes_into(&mut buf).map(|_| buf)
            }
        });
        let mut whole = whole.join().unwrap().unwrap();
        if finish != "get" {
            assert_eq!(whole[..8], length, "{m:?} {finish}: the length prefix");
            whole.drain(..8);
        }
        assert_eq!(whole.len(), 1 << 20, "{m:?} {finish}");
        assert!(whole.iter().all(|&b| b == 7), "{m:?} {finish}: the message was not reassembled whole");
        p.join().unwrap();
    }
}
