//! A worker that dies does not hang the pool: Python's `Pool.map` waits forever
//! here; multiproc fails the call the worker was running and carries on.
//!
//! Run it with `cargo run --release --example pool_crash`.

// ANCHOR: all
use multiproc::Error;

#[multiproc::task]
fn fragile(x: u64) -> u64 {
    if x == 3 {
        std::process::abort(); // a segfault, an OOM kill or `exit` look the same
    }
    x * 10
}

#[multiproc::task]
fn unlucky(x: u64) -> u64 {
    assert!(x != 5, "five is unlucky");
    x
}

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let pool = multiproc::Pool::new(2)?;

    // Each result is a value, or `WorkerLost` for the call the dead worker was
    // running; the calls it held but had not started run on another worker.
    for (x, r) in pool.with_chunksize(1).imap(fragile, 0..6)?.enumerate() {
        match r {
            Ok(v) => println!("{x}: {v}"),
            Err(Error::WorkerLost { pid, status }) => println!("{x}: worker {pid} was lost ({status})"),
            Err(e) => println!("{x}: {e}"),
        }
    }

    // A panic fails only its call, with message and location.
    if let Err(e) = pool.map(unlucky, 0..10) {
        println!("map failed: {e}");
    }

    // The pool replaced the worker and still works.
    println!("{:?}", pool.map(fragile, vec![1, 2])?);

    // With retries, the call that killed its worker runs again, alone, up to
    // `retries` more times before it fails.
    let careful = multiproc::Pool::builder().processes(2).retries(1).build()?;
    let results: Vec<String> = careful
        .with_chunksize(1)
        .imap(fragile, 0..6)?
        .map(|r| r.map_or_else(|e| e.to_string(), |v| v.to_string()))
        .collect();
    println!("{results:?}");

    pool.close();
    pool.join()
}
// ANCHOR_END: all
