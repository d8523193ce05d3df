//! `mpi_pool` with the MPI pool asked for explicitly (`Pool::mpi()`): the sum of the squares of 0..N (N = 1 000 000,
//! or the first argument).
//!
//! `cargo build --release --features mpi --example mpi_check`, then
//! `mpirun -n 3 target/release/examples/mpi_check` (one coordinator, two workers).

// ANCHOR: all
#[multiproc::task]
fn square(x: u64) -> u64 {
    x * x
}

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let pool = multiproc::Pool::mpi()?;
    let v = pool.map(square, 0..n)?;
    println!("{}", v.iter().sum::<u64>());
    Ok(())
}
// ANCHOR_END: all
