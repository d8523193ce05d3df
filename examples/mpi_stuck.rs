//! A worker rank that stops answering in the middle of a map (it runs
//! `kill -STOP` on itself, as an operator or a frozen node would): rank 0 gives
//! it up once it has said nothing for `MULTIPROC_MPI_TIMEOUT` seconds (30 by
//! default), its calls run on the other rank, and the map returns every
//! result. MPI_Finalize would wait for the stopped rank for ever, so once
//! `main` returns rank 0 SIGKILLs it (it runs on this machine) and the job
//! ends non-zero (status 5, or 137 as mpirun reports the killed rank).
//!
//! `mpirun -n 3 -x MULTIPROC_MPI_TIMEOUT=2 target/debug/examples/mpi_stuck /tmp/stall-marker`
//!
//! With `long` as the second argument, each task instead runs for 3 s without
//! a pause: a rank busy for longer than the timeout still sends heartbeats and
//! is not given up (`mpirun -n 3 -x MULTIPROC_MPI_TIMEOUT=1 … mpi_stuck - long`).

use std::time::{Duration, Instant};

/// Squares `x`; the first rank to get `x == 3` (the one that creates `marker`) stops itself first.
#[multiproc::task]
fn square_or_stall(x: u64, marker: String) -> u64 {
    if x == 3 && std::fs::OpenOptions::new().write(true).create_new(true).open(&marker).is_ok() {
        let me = std::process::id().to_string();
        let _ = std::process::Command::new("kill").args(["-STOP", &me]).status();
    }
    x * x
}

/// Busy (never sleeping) for three seconds, then `x`.
#[multiproc::task]
fn long_task(x: u64) -> u64 {
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        std::hint::spin_loop();
    }
    x
}

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let marker = std::env::args().nth(1).unwrap_or_else(|| "/tmp/multiproc-mpi-stall".into());
    let pool = multiproc::Pool::mpi()?;
    if std::env::args().nth(2).as_deref() == Some("long") {
        println!("sum {}", pool.with_chunksize(1).map(long_task, 0..4u64)?.iter().sum::<u64>());
        return Ok(());
    }
    let squares = pool.with_chunksize(1).starmap(square_or_stall, (0..40u64).map(|x| (x, marker.clone())))?;
    println!("sum {}", squares.iter().sum::<u64>());
    Ok(())
}
