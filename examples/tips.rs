//! Ports of the examples of the seed article "The multiprocessing module in
//! Python" (practical tips): a worker process, a producer/consumer queue,
//! `Value` and `Array` with a `Lock`, a `Manager` dict, and the start method.
//! (Its `Pool` examples are `pool_cpu.rs`.)
//!
//! `cargo run --example tips`

use multiproc::{Array, Lock, Manager, Process, Queue, Value, get_start_method};

// ANCHOR: worker
#[multiproc::task]
fn worker(name: String, iterations: u32) {
    for i in 0..iterations {
        println!("Worker {name}: iteration {i}");
    }
}
// ANCHOR_END: worker

// ANCHOR: queue
#[multiproc::task]
fn producer(q: Queue<Option<String>>, n: u32) {
    for i in 0..n {
        let item = format!("item-{i}");
        println!("Producer: putting {item}");
        q.put(Some(item)).unwrap();
    }
    q.put(None).unwrap(); // sentinel to signal consumer to stop
}

#[multiproc::task]
fn consumer(q: Queue<Option<String>>) {
    while let Some(item) = q.get().unwrap() {
        println!("Consumer: got {item}");
    }
}
// ANCHOR_END: queue

// ANCHOR: shared
#[multiproc::task]
fn increment(counter: Value<i32>, lock: Lock, times: u32) {
    for _ in 0..times {
        let _held = lock.lock().unwrap();
        counter.set(counter.get() + 1);
    }
}

#[multiproc::task]
fn update_array(arr: Array<i32>) {
    for i in 0..arr.len() {
        arr.set(i, arr.get(i).unwrap() + 1).unwrap();
    }
}
// ANCHOR_END: shared

// ANCHOR: manager
#[multiproc::task]
fn store(shared_dict: multiproc::managers::DictProxy<String, u64>, key: String, value: u64) {
    shared_dict.insert(key, value).unwrap();
}
// ANCHOR_END: manager

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    // ANCHOR: worker_main
    let mut p = Process::new(worker, ("A".to_string(), 3))?;
    p.start()?;
    println!("Main: waiting for worker to finish");
    p.join()?;
    println!("Main: worker finished");
    // ANCHOR_END: worker_main

    // ANCHOR: queue_main
    let q = Queue::new()?;
    let mut p = Process::new(producer, (q.clone(), 5))?;
    let mut c = Process::new(consumer, (q.clone(),))?;
    p.start()?;
    c.start()?;
    p.join()?;
    c.join()?;
    println!("Main: done");
    // ANCHOR_END: queue_main

    // ANCHOR: shared_main
    let lock = Lock::new()?;
    let counter = Value::new(0i32)?;
    let shared_arr = Array::from_slice(&[0i32, 0, 0])?;
    let mut p1 = Process::new(increment, (counter.clone(), lock.clone(), 1000))?;
    let mut p2 = Process::new(increment, (counter.clone(), lock.clone(), 1000))?;
    let mut a = Process::new(update_array, (shared_arr.clone(),))?;
    p1.start()?;
    p2.start()?;
    a.start()?;
    p1.join()?;
    p2.join()?;
    a.join()?;
    println!("Counter: {}", counter.get());
    println!("Array: {:?}", shared_arr.to_vec());
    // ANCHOR_END: shared_main

    // ANCHOR: manager_main
    let manager = Manager::start()?;
    let d = manager.dict::<String, u64>()?;
    let mut processes = Vec::new();
    for i in 0..5u64 {
        let mut p = Process::new(store, (d.clone(), format!("k{i}"), i * i))?;
        p.start()?;
        processes.push(p);
    }
    for p in &mut processes {
        p.join()?;
    }
    let mut items = d.items()?;
    items.sort();
    let shown: Vec<String> = items.iter().map(|(k, v)| format!("'{k}': {v}")).collect();
    println!("Shared dict: {{{}}}", shown.join(", "));
    manager.shutdown()?;
    // ANCHOR_END: manager_main

    // ANCHOR: start_method
    println!("Start method: {}", get_start_method());
    // ANCHOR_END: start_method
    Ok(())
}
