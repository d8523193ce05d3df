//! One import switches a program between processes and threads: Python's
//! `multiprocessing.dummy`. The program below runs its workers on threads;
//! change `use multiproc::dummy as mp;` to `use multiproc as mp;` and the same
//! code runs them in processes, with the same output.
//!
//! Run it with `cargo run --example dummy_switch`.

// ANCHOR: all
use multiproc::dummy as mp; // or: use multiproc as mp;

#[multiproc::task]
fn worker(jobs: mp::JoinableQueue<u64>, total: mp::Value<u64>) {
    while let Ok(x) = jobs.get() {
        if x == 0 {
            jobs.task_done().unwrap();
            break;
        }
        *total.lock().unwrap() += x * x;
        jobs.task_done().unwrap();
    }
}

#[multiproc::task]
fn square(x: u64) -> u64 {
    x * x
}

#[multiproc::main]
fn main() -> mp::Result<()> {
    let (jobs, total) = (mp::JoinableQueue::new()?, mp::Value::new(0u64)?);
    let mut workers = Vec::new();
    for i in 0..2 {
        let mut p = mp::Process::builder(worker, (jobs.clone(), total.clone())).name(format!("worker-{i}")).build()?;
        p.start()?;
        workers.push(p);
    }
    println!("running: {:?}", mp::active_children().iter().map(|p| p.name().to_string()).collect::<Vec<_>>());
    for x in (1..=10).chain([0, 0]) {
        jobs.put(x)?;
    }
    jobs.join();
    for p in &mut workers {
        p.join()?;
    }
    println!("sum of squares: {}", total.get());

    let pool = mp::Pool::builder().processes(2).build()?;
    println!("pool.map: {:?}", pool.map(square, 1..=5)?);
    Ok(())
}
// ANCHOR_END: all
