//! A task that panics on one input: that item is an error, the others complete.
//!
//! `mpirun -n 3 target/debug/examples/mpi_panic`

#[multiproc::task]
fn fragile(x: u64) -> u64 {
    if x == 7 {
        panic!("seven is not allowed");
    }
    x + 1
}

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let pool = multiproc::Pool::mpi()?;
    let mut ok = 0u64;
    for (i, r) in pool.imap(fragile, 0..20u64)?.enumerate() {
        match r {
            Ok(v) => ok += v,
            Err(e) => println!("item {i} failed: {e}"),
        }
    }
    println!("ok_sum {ok}");
    match pool.map(fragile, 0..20u64) {
        Ok(_) => println!("map succeeded"),
        Err(e) => println!("map failed: {e}"),
    }
    // The pool and the worker ranks are still usable.
    println!("after {}", pool.map(fragile, 8..12u64)?.iter().sum::<u64>());
    Ok(())
}
