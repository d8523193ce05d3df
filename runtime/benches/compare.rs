//! One table: multiproc vs CPython's `multiprocessing` doing the same work in
//! the same run, vs the raw OS floor where one exists.
//!
//! `cargo bench -p multiproc --bench compare` (add `-- <filter>` to run only the
//! cases whose group name contains the filter: core, pool, futures, queues, managers;
//! `mpi` needs `--features mpi` and mpirun, see compare/mpi.rs).
//! The Python counterparts live in `benches/python/` and run with `python3`.
//! `benches/compare-loads.sh [filter]` runs a group idle, pinned to one CPU
//! and beside one busy loop per core, in one invocation.

#[path = "compare/core.rs"]
mod core_cases;
#[path = "compare/futures.rs"]
mod futures_cases;
#[path = "compare/managers.rs"]
mod managers;
#[cfg(feature = "mpi")]
#[path = "compare/mpi.rs"]
mod mpi_cases;
#[path = "compare/pool.rs"]
mod pool_cases;
#[path = "compare/queues.rs"]
mod queues;
#[path = "compare/table.rs"]
mod table;

#[multiproc::main]
fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wants = |group: &str| filter.as_deref().is_none_or(|f| group.contains(f));
    // Other load skews every ratio: show it with the table.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    let mut t = table::Table::default();
    if wants("core") {
        core_cases::run(&mut t);
    }
    if wants("pool") {
        pool_cases::run(&mut t);
    }
    if wants("futures") {
        futures_cases::run(&mut t);
    }
    #[cfg(feature = "mpi")]
    if wants("mpi") {
        mpi_cases::run(&mut t);
    }
    if wants("managers") {
        managers::run(&mut t);
    }
    if wants("queues") {
        queues::run(&mut t);
    }
    t.print();
}
