//! Queues between processes: the Python reference's queue example, a
//! producer/consumer with a sentinel, and a JoinableQueue of workers.
//!
//! Run it with `cargo run --release --example queues`. It prints:
//!
//! ```text
//! [42, None, 'hello']
//! sum of 0..1000 = 499500
//! all 10 tasks done; results: [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]
//! ```

use multiproc::{JoinableQueue, Process, Queue};

// ANCHOR: reference
#[multiproc::task]
fn f(q: Queue<(i32, Option<i32>, String)>) {
    q.put((42, None, "hello".to_string())).unwrap();
}
// ANCHOR_END: reference

// ANCHOR: producer
#[multiproc::task]
fn producer(q: Queue<Option<u64>>, n: u64) {
    for i in 0..n {
        q.put(Some(i)).unwrap();
    }
    q.put(None).unwrap(); // the sentinel: "no more items"
}
// ANCHOR_END: producer

// ANCHOR: joinable
#[multiproc::task]
fn worker(tasks: JoinableQueue<Option<u32>>, results: Queue<u32>) {
    while let Some(x) = tasks.get().unwrap() {
        results.put(x * 2).unwrap();
        tasks.task_done().unwrap();
    }
    tasks.task_done().unwrap(); // for the sentinel
}
// ANCHOR_END: joinable

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    // ANCHOR: reference_main
    let q = Queue::new()?;
    let mut p = Process::new(f, (q.clone(),))?;
    p.start()?;
    let (a, b, c) = q.get()?;
    println!("[{a}, {}, '{c}']", b.map_or("None".to_string(), |b| b.to_string())); // prints "[42, None, 'hello']"
    p.join()?;
    // ANCHOR_END: reference_main

    // ANCHOR: producer_main
    let q = Queue::new()?;
    let mut p = Process::new(producer, (q.clone(), 1000))?;
    p.start()?;
    let mut sum = 0;
    while let Some(i) = q.get()? {
        sum += i;
    }
    p.join()?;
    println!("sum of 0..1000 = {sum}");
    // ANCHOR_END: producer_main

    // ANCHOR: joinable_main
    let tasks = JoinableQueue::new()?;
    let results = Queue::new()?;
    let mut workers: Vec<Process> =
        (0..4).map(|_| Process::new(worker, (tasks.clone(), results.clone()))).collect::<Result<_, _>>()?;
    for w in &mut workers {
        w.start()?;
    }
    for i in 0..10 {
        tasks.put(Some(i))?;
    }
    tasks.join(); // returns once every item had its task_done()
    let mut out: Vec<u32> = (0..10).map(|_| results.get()).collect::<Result<_, _>>()?;
    out.sort();
    println!("all 10 tasks done; results: {out:?}");
    for _ in &workers {
        tasks.put(None)?;
    }
    for w in &mut workers {
        w.join()?;
    }
    // ANCHOR_END: joinable_main
    Ok(())
}
