//! A worker rank that dies in the middle of a map: the MPI job must end, with
//! a non-zero status and a message, in bounded time (never a hang).
//!
//! `mpirun -n 3 target/debug/examples/mpi_die`

#[multiproc::task]
fn doomed(x: u64) -> u64 {
    if x == 3 {
        std::process::abort();
    }
    x
}

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let pool = multiproc::Pool::mpi()?;
    let v = pool.with_chunksize(1).map(doomed, 0..1000u64)?;
    println!("unexpected: the map finished with sum {}", v.iter().sum::<u64>());
    Ok(())
}
