//! A task that never finishes in time: with `MULTIPROC_MPI_TIMEOUT=<seconds>`,
//! rank 0 aborts the MPI job (MPI_Abort) once no worker has answered for that long.
//!
//! `mpirun -n 3 -x MULTIPROC_MPI_TIMEOUT=2 target/debug/examples/mpi_stuck`

use std::time::{Duration, Instant};

#[multiproc::task]
fn stuck(x: u64) -> u64 {
    // Stands in for a hung task: busy for five minutes (bounded; it never sleeps).
    let until = Instant::now() + Duration::from_secs(300);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
    x
}

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let pool = multiproc::Pool::mpi()?;
    println!("unexpected: stuck returned {}", pool.apply(stuck, (1u64,))?);
    Ok(())
}
