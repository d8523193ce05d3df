//! Issue 7's example: `Pool::auto()` runs on MPI ranks under `mpirun` (built with
//! `--features mpi`) and on local worker processes otherwise.
//!
//! `cargo run --release --features mpi --example mpi_pool`, or
//! `mpirun -n 8 target/release/examples/mpi_pool`.

// ANCHOR: all
#[multiproc::task]
fn square(x: u64) -> u64 {
    x * x
}
#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let pool = multiproc::Pool::auto()?;
    let v = pool.map(square, 0..1_000_000)?;
    println!("{}", v.iter().sum::<u64>());
    Ok(())
}
// ANCHOR_END: all
