//! The quickstart: plain functions, annotated, run in worker processes.
//!
//! Run it with `cargo run --release --example quickstart`.

// ANCHOR: all
// ANCHOR: pool
#[multiproc::task]
fn square(x: u64) -> u64 {
    x * x
}
// ANCHOR_END: pool

// ANCHOR: process
#[multiproc::task]
fn greet(name: String, conn: multiproc::Connection<String>) {
    conn.send(&format!("hello {name}")).unwrap();
}
// ANCHOR_END: process

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    // ANCHOR: pool_main
    // A pool of worker processes (one per CPU) running a registered task.
    let pool = multiproc::Pool::new(multiproc::cpu_count())?;
    let squares = pool.map(square, 0..10)?;
    println!("{squares:?}");
    pool.close();
    pool.join()?;
    // ANCHOR_END: pool_main

    // ANCHOR: process_main
    // One process, talking back through a pipe.
    let (parent, child) = multiproc::pipe()?;
    let mut p = multiproc::Process::new(greet, ("bob".to_string(), child))?;
    p.start()?;
    println!("{}", parent.recv()?);
    p.join()?;
    assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
    // ANCHOR_END: process_main
    Ok(())
}
// ANCHOR_END: all
