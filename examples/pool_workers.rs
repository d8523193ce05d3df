//! "Using a pool of workers", the Python reference's first Pool example, ported.
//!
//! Run it with `cargo run --release --example pool_workers`.

use std::time::Duration;

use multiproc::{Connection, Error};

// ANCHOR: all
#[multiproc::task]
fn f(x: u64) -> u64 {
    x * x
}

#[multiproc::task]
fn getpid() -> u32 {
    std::process::id()
}

/// Python's `time.sleep(10)`: waits up to 10 s for a message that never comes.
#[multiproc::task]
fn nap(conn: Connection<()>) {
    let _ = conn.recv_timeout(Duration::from_secs(10));
}

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let second = Duration::from_secs(1);
    {
        let pool = multiproc::Pool::new(4)?;
        // prints "[0, 1, 4,..., 81]"
        println!("{:?}", pool.map(f, 0..10)?);
        // prints the same numbers in arbitrary order
        for i in pool.imap_unordered(f, 0..10)? {
            println!("{}", i?);
        }
        // evaluate "f(20)" asynchronously; runs in *only* one process
        let res = pool.apply_async(f, (20,))?;
        println!("{}", res.get_timeout(second)?); // prints "400"
        // evaluate "getpid()" asynchronously
        let res = pool.apply_async(getpid, ())?;
        println!("{}", res.get_timeout(second)?); // prints the pid of that process
        // launching multiple evaluations asynchronously *may* use more processes
        let multiple: Vec<_> = (0..4).map(|_| pool.apply_async(getpid, ())).collect::<Result<_, _>>()?;
        let pids: Vec<u32> = multiple.iter().map(|r| r.get_timeout(second)).collect::<Result<_, _>>()?;
        println!("{pids:?}");
        // make a single worker sleep for 10 seconds
        let (_keep, there) = multiproc::pipe::<()>()?;
        let res = pool.apply_async(nap, (there,))?;
        match res.get_timeout(second) {
            Err(Error::Timeout(_)) => println!("We lacked patience and got a multiproc::Error::Timeout"),
            other => println!("{other:?}"),
        }
        println!("For the moment, the pool remains available for more work");
    } // dropping the pool has stopped it
    println!("Now the pool is closed and no longer available");
    Ok(())
}
// ANCHOR_END: all
