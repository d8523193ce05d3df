//! Shared state between processes: the Python reference's Value/Array and
//! Lock examples, a counter incremented by four processes, a named
//! SharedMemory segment, and a ShareableList.
//!
//! Run it with `cargo run --release --example shared_state`. It prints
//! (the ten "hello world" lines in any order):
//!
//! ```text
//! 3.1415927
//! [0, -1, -2, -3, -4, -5, -6, -7, -8, -9]
//! hello world 0
//! …
//! hello world 9
//! counter = 40000
//! howdy
//! [2, 4, 6]
//! ```

use multiproc::{Array, Lock, Process, ShareableList, SharedMemory, Value};

// ANCHOR: value_array
#[multiproc::task]
fn f(n: Value<f64>, a: Array<i32>) {
    #[allow(clippy::approx_constant)] // the value Python's example stores
    n.set(3.1415927);
    for x in a.lock().unwrap().iter_mut() {
        *x = -*x;
    }
}
// ANCHOR_END: value_array

// ANCHOR: lock
#[multiproc::task]
fn hello(l: Lock, i: u32) {
    let _guard = l.lock().unwrap(); // released when `_guard` drops
    println!("hello world {i}");
}
// ANCHOR_END: lock

// ANCHOR: counter
#[multiproc::task]
fn add(counter: Value<u64>, times: u64) {
    for _ in 0..times {
        *counter.lock().unwrap() += 1;
    }
}
// ANCHOR_END: counter

// ANCHOR: shm
#[multiproc::task]
fn write_howdy(shm: SharedMemory) {
    shm.write_at(0, b"howdy").unwrap();
}

#[multiproc::task]
fn double(list: ShareableList<i64>) {
    for i in 0..list.len() {
        list.set(i, list.get(i).unwrap_or(0) * 2).unwrap();
    }
}
// ANCHOR_END: shm

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    // ANCHOR: value_array_main
    let num = Value::new(0.0f64)?;
    let arr = Array::from_slice(&(0..10).collect::<Vec<i32>>())?;
    let mut p = Process::new(f, (num.clone(), arr.clone()))?;
    p.start()?;
    p.join()?;
    println!("{}", num.get());
    println!("{:?}", arr.to_vec());
    // ANCHOR_END: value_array_main

    // ANCHOR: lock_main
    let lock = Lock::new()?;
    let mut ps: Vec<Process> = (0..10).map(|i| Process::new(hello, (lock.clone(), i))).collect::<Result<_, _>>()?;
    for p in &mut ps {
        p.start()?;
    }
    for p in &mut ps {
        p.join()?;
    }
    // ANCHOR_END: lock_main

    // ANCHOR: counter_main
    let counter = Value::new(0u64)?;
    let mut ps: Vec<_> = (0..4).map(|_| Process::new(add, (counter.clone(), 10_000))).collect::<Result<_, _>>()?;
    for p in &mut ps {
        p.start()?;
    }
    for p in &mut ps {
        p.join()?;
    }
    assert_eq!(counter.get(), 40_000);
    println!("counter = {}", counter.get());
    // ANCHOR_END: counter_main

    // ANCHOR: shm_main
    let shm = SharedMemory::create(64)?;
    let mut p = Process::new(write_howdy, (shm.clone(),))?;
    p.start()?;
    p.join()?;
    let mut howdy = [0u8; 5];
    shm.read_at(0, &mut howdy)?;
    println!("{}", String::from_utf8_lossy(&howdy));
    shm.unlink()?; // or let the tracker unlink it when this process ends

    let list = ShareableList::new(&[1i64, 2, 3])?;
    let mut p = Process::new(double, (list.clone(),))?;
    p.start()?;
    p.join()?;
    println!("{:?}", list.to_vec());
    list.unlink()?;
    // ANCHOR_END: shm_main
    Ok(())
}
