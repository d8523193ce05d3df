//! Past one machine: the pool on the ranks of an MPI job (cargo feature `mpi`).
//!
//! Every rank of an MPI job runs the same binary, so tasks are found by the same
//! registered names as in a spawned child. `#[multiproc::main]` notices an MPI
//! launch ([`is_mpi_launch`]) before any user code runs: with the `mpi` feature
//! it initialises MPI, rank 0 runs `main`, and every other rank becomes a
//! worker that never returns to user code and exits when `main` returns on
//! rank 0 (MPI_Finalize on every rank). Without the feature, a launch under
//! `mpirun` stops every rank with a clear error instead of running N copies of
//! the program.
//!
//! With the feature, `Pool::mpi` (or [`Pool::auto`](crate::Pool::auto))
//! is the pool over the worker ranks: the same `Pool`, with an MPI backend
//! (`pool/mpi.rs`). This module keeps the MPI mechanism: start-up and shut-down
//! (`world.rs`), the worker ranks' loop (`worker.rs`) and their messages (`wire.rs`).

#[cfg(feature = "mpi")]
pub(crate) mod wire;
#[cfg(feature = "mpi")]
mod worker;
#[cfg(feature = "mpi")]
pub(crate) mod world;

#[cfg(feature = "mpi")]
pub(crate) use worker::run_main;

/// Environment variable that overrides launch detection: `local` or `mpi`
/// (see [`is_mpi_launch`]).
///
/// ```
/// assert_eq!(multiproc::mpi::BACKEND_VAR, "MULTIPROC_BACKEND");
/// ```
pub const BACKEND_VAR: &str = "MULTIPROC_BACKEND";

/// Whether this process was started as a rank of an MPI job.
///
/// `MULTIPROC_BACKEND=mpi` or `=local` decides outright; otherwise a variable
/// that the launcher sets before `MPI_Init` does: `OMPI_COMM_WORLD_SIZE` (Open
/// MPI's `mpirun`), `PMI_SIZE` (MPICH's Hydra, Intel MPI, Slurm's `srun
/// --mpi=pmi2`) or `PMIX_RANK` (PMIx launchers: Open MPI 5, `srun --mpi=pmix`).
/// It only reads the environment, so it is cheap and works without the `mpi`
/// feature.
///
/// ```
/// // `cargo test` runs this without mpirun (and without MULTIPROC_BACKEND=mpi),
/// // so `Pool::auto` would start a local pool here.
/// assert!(!multiproc::mpi::is_mpi_launch());
/// ```
pub fn is_mpi_launch() -> bool {
    match std::env::var(BACKEND_VAR).as_deref() {
        Ok("mpi") => return true,
        Ok("local") => return false,
        _ => {}
    }
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"].iter().any(|v| std::env::var_os(v).is_some())
}

/// Without the `mpi` feature: if launched under MPI, every rank stops with a
/// clear error and exit code 2, rather than each running the whole program.
#[cfg(not(feature = "mpi"))]
pub(crate) fn refuse_launch_without_feature() {
    if is_mpi_launch() {
        let rank = ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"]
            .iter()
            .find_map(|v| std::env::var(v).ok())
            .unwrap_or_else(|| "?".into());
        eprintln!(
            "multiproc: error: this program was launched under MPI (rank {rank}), but it was built without \
             multiproc's `mpi` feature, so every rank would run the whole program. Rebuild with \
             `--features mpi` (multiproc = {{ features = [\"mpi\"] }}), or set {BACKEND_VAR}=local to run \
             each rank as a separate local program."
        );
        crate::sys::process::flush_stdio();
        crate::sys::process::exit_now(2);
    }
}
