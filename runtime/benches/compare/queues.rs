//! Queue, lock and shared-state cases: small and 1 MiB queue messages, an
//! uncontended Lock vs a raw CAS lock, two processes contending on a Value,
//! Value increment, SharedMemory create+attach+unlink.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use multiproc::{Lock, Queue, SharedMemory, StartMethod, Value, get_context};

use crate::table::{Figure, Table, python, time_per_op};

#[multiproc::task]
fn produce_small(q: Queue<u64>, n: u64) {
    for i in 0..n {
        q.put(i).expect("put");
    }
}

#[multiproc::task]
fn produce_big(q: Queue<Vec<u8>>, n: u64) {
    let msg = vec![7u8; 1 << 20];
    for _ in 0..n {
        q.put_bytes(&msg).expect("put");
    }
}

#[multiproc::task]
fn produce_typed(q: Queue<Vec<u8>>, n: u64) {
    for _ in 0..n {
        q.put(vec![7u8; 1 << 20]).expect("put");
    }
}

#[multiproc::task]
fn produce_bulk(q: Queue<multiproc::Bytes>, n: u64) {
    for _ in 0..n {
        q.put(multiproc::Bytes(vec![7u8; 1 << 20])).expect("put");
    }
}

#[multiproc::task]
fn add(counter: Value<u64>, times: u64) {
    for _ in 0..times {
        *counter.lock().expect("lock") += 1;
    }
}

/// Messages per second from the first get to the last.
fn small(n: u64) -> f64 {
    let q = Queue::new().expect("queue");
    let mut p = get_context(StartMethod::Fork).process(produce_small, (q.clone(), n)).expect("process");
    p.start().expect("start");
    q.get().expect("get");
    let t = Instant::now();
    for _ in 1..n {
        std::hint::black_box(q.get().expect("get"));
    }
    let rate = (n - 1) as f64 / t.elapsed().as_secs_f64();
    p.join().expect("join");
    rate
}

/// Bytes per second of 1 MiB messages from the first get to the last.
fn big(n: u64) -> f64 {
    let q: Queue<Vec<u8>> = Queue::new().expect("queue");
    let mut p = get_context(StartMethod::Fork).process(produce_big, (q.clone(), n)).expect("process");
    p.start().expect("start");
    let mut buf = Vec::new();
    q.get_bytes_into(&mut buf).expect("get");
    let t = Instant::now();
    for _ in 1..n {
        std::hint::black_box(q.get_bytes_into(&mut buf).expect("get"));
    }
    let rate = (n - 1) as f64 * (1u64 << 20) as f64 / t.elapsed().as_secs_f64();
    p.join().expect("join");
    rate
}

/// Bytes per second of 1 MiB `Vec<u8>` items through `put`/`get`, as a user
/// writes them (`bulk`: the same through `multiproc::Bytes`).
fn typed(n: u64, bulk: bool) -> f64 {
    let (qv, qb) = (Queue::<Vec<u8>>::new().expect("queue"), Queue::<multiproc::Bytes>::new().expect("queue"));
    let ctx = get_context(StartMethod::Fork);
    let mut p =
        if bulk { ctx.process(produce_bulk, (qb.clone(), n)) } else { ctx.process(produce_typed, (qv.clone(), n)) }
            .expect("process");
    p.start().expect("start");
    let get = || if bulk { qb.get().expect("get").len() } else { qv.get().expect("get").len() };
    get();
    let t = Instant::now();
    for _ in 1..n {
        std::hint::black_box(get());
    }
    let rate = (n - 1) as f64 * (1u64 << 20) as f64 / t.elapsed().as_secs_f64();
    p.join().expect("join");
    rate
}

fn memcpy_rate() -> f64 {
    let src = vec![1u8; 1 << 20];
    let mut dst = vec![0u8; 1 << 20];
    let d = time_per_op(3, 300, || {
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
    });
    (1u64 << 20) as f64 / d.as_secs_f64()
}

fn lock_pair() -> Duration {
    let l = Lock::new().expect("lock");
    time_per_op(5, 2_000_000, || {
        drop(std::hint::black_box(l.lock().expect("lock")));
    })
}

fn raw_cas_pair() -> Duration {
    let w = AtomicU32::new(0);
    time_per_op(5, 2_000_000, || {
        let w = std::hint::black_box(&w);
        while w.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_err() {}
        w.store(0, Ordering::Release);
    })
}

fn contended(n: u64) -> f64 {
    let counter = Value::new(0u64).expect("value");
    let ctx = get_context(StartMethod::Fork);
    let mut ps: Vec<_> = (0..2).map(|_| ctx.process(add, (counter.clone(), n)).expect("process")).collect();
    let t = Instant::now();
    for p in &mut ps {
        p.start().expect("start");
    }
    for p in &mut ps {
        p.join().expect("join");
    }
    let rate = (2 * n) as f64 / t.elapsed().as_secs_f64();
    assert_eq!(counter.get(), 2 * n, "lost increments");
    rate
}

fn value_incr() -> Duration {
    let v = Value::new(0u64).expect("value");
    time_per_op(3, 1_000_000, || {
        *v.lock().expect("lock") += 1;
    })
}

fn shm_cycle() -> Duration {
    time_per_op(3, 300, || {
        let a = SharedMemory::create(1 << 20).expect("create");
        let b = SharedMemory::attach(a.name()).expect("attach");
        b.close();
        a.unlink().expect("unlink");
        a.close();
    })
}

/// Adds the queue, lock and shared-state rows.
pub(crate) fn run(t: &mut Table) {
    let ours = Figure::Rate(small(100_000));
    let py = python("queues.py", &["small"]).map(|s| ours.like(s));
    t.row("queue 100k small ints, producer -> parent", ours, py, None);

    let memcpy = Figure::Bytes(memcpy_rate());
    let ours = Figure::Bytes(typed(1000, false));
    let py = python("queues.py", &["big"]).map(|s| ours.like(s));
    t.row("queue 1 MiB Vec<u8>, put/get, producer -> parent", ours, py, Some(("memcpy 1 MiB", memcpy)));

    let ours = Figure::Bytes(typed(1000, true));
    let py = python("queues.py", &["big"]).map(|s| ours.like(s));
    t.row("queue 1 MiB multiproc::Bytes, put/get", ours, py, Some(("memcpy 1 MiB", memcpy)));

    let ours = Figure::Bytes(big(1000));
    let py = python("queues.py", &["big"]).map(|s| ours.like(s));
    t.row("queue 1 MiB, bytes-only (put_bytes/get_bytes_into)", ours, py, Some(("memcpy 1 MiB", memcpy)));

    let (lock, cas) = (lock_pair(), raw_cas_pair());
    println!("  (Lock pair {:.2} ns, raw CAS pair {:.2} ns)", lock.as_secs_f64() * 1e9, cas.as_secs_f64() * 1e9);
    let ours = Figure::Time(lock);
    let py = python("queues.py", &["lock"]).map(|s| ours.like(s));
    t.row("Lock acquire+release, uncontended", ours, py, Some(("raw CAS lock+unlock", Figure::Time(cas))));

    let ours = Figure::Rate(contended(2_000_000));
    let py = python("queues.py", &["contended"]).map(|s| ours.like(s));
    t.row("2 processes, Value += 1 under its lock", ours, py, None);

    let v = value_incr();
    println!("  (Value += 1 under its lock: {:.2} ns)", v.as_secs_f64() * 1e9);
    let ours = Figure::Time(v);
    let py = python("queues.py", &["value"]).map(|s| ours.like(s));
    t.row("Value += 1 under its lock, one process", ours, py, None);

    let ours = Figure::Time(shm_cycle());
    let py = python("queues.py", &["shm"]).map(|s| ours.like(s));
    t.row("SharedMemory 1 MiB create+attach+close+unlink", ours, py, None);
}
