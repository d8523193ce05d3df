//! MPI cases (feature `mpi`): the pool on 3 ranks vs a raw rsmpi farm measured
//! in the same run, and the speed-up of coarse CPU-bound work.
//!
//! The group must run under mpirun (rank 0 measures; the other ranks serve):
//! ```text
//! cargo bench -p multiproc --features mpi --bench compare --no-run   # prints the binary's path
//! mpirun --allow-run-as-root --oversubscribe -n 3 target/release/deps/compare-<hash> mpi
//! mpirun ... --mca pml ob1 --mca btl tcp,self target/release/deps/compare-<hash> mpi   # TCP only
//! ```
//! The raw farm runs inside the same job: each worker rank takes a task
//! (`raw_farm_worker`) that answers plain `u64` messages with raw rsmpi
//! send/receive until told to stop, while rank 0 keeps `window` messages in
//! flight per worker. That is the floor the pool is measured against.

use std::time::{Duration, Instant};

use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use multiproc::Pool;

use crate::table::{Figure, Table};

/// MPI tag of the raw farm (pools use 16 and up).
const FARM_TAG: i32 = 5;
const STOP: u64 = u64::MAX;

#[multiproc::task]
fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

/// Coarse CPU-bound work: `n` rounds of an integer hash.
#[multiproc::task]
fn burn(n: u64) -> u64 {
    let mut h = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..n {
        h = (h ^ i).wrapping_mul(0xbf58_476d_1ce4_e5b9).rotate_left(17);
    }
    h
}

/// A worker rank's side of the raw farm; returns how many tasks it answered.
#[multiproc::task]
fn raw_farm_worker() -> u64 {
    let world = SimpleCommunicator::world();
    let root = world.process_at_rank(0);
    let mut served = 0;
    loop {
        let (x, _) = root.receive_with_tag::<u64>(FARM_TAG);
        if x == STOP {
            return served;
        }
        root.send_with_tag(&x.wrapping_mul(x), FARM_TAG);
        served += 1;
    }
}

/// Rank 0's side: `n` tasks, `window` in flight per worker. Tasks per second.
fn raw_farm(pool: &Pool, n: u64, window: u64) -> f64 {
    let workers = pool.processes();
    // An idle pool gives each of these to a different (the least loaded) worker.
    let served: Vec<_> = (0..workers).map(|_| pool.apply_async(raw_farm_worker, ()).expect("farm task")).collect();
    let world = SimpleCommunicator::world();
    let t = Instant::now();
    let mut sent = 0u64;
    for r in 1..=workers as i32 {
        for _ in 0..window.min(n / workers as u64) {
            world.process_at_rank(r).send_with_tag(&sent, FARM_TAG);
            sent += 1;
        }
    }
    let mut got = 0u64;
    while got < sent {
        let (_y, status) = world.any_process().receive_with_tag::<u64>(FARM_TAG);
        got += 1;
        if sent < n {
            world.process_at_rank(status.source_rank()).send_with_tag(&sent, FARM_TAG);
            sent += 1;
        }
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    for r in 1..=workers as i32 {
        world.process_at_rank(r).send_with_tag(&STOP, FARM_TAG);
    }
    let total: u64 = served.into_iter().map(|s| s.get().expect("farm result")).sum();
    assert_eq!(total, n, "the raw farm lost tasks");
    rate
}

/// Best of `rounds` of `f`, as a duration.
fn best(rounds: usize, mut f: impl FnMut()) -> Duration {
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

pub(crate) fn run(t: &mut Table) {
    if !multiproc::mpi::is_mpi_launch() {
        eprintln!(
            "mpi group skipped: it runs under mpirun, e.g. `mpirun -n 3 target/release/deps/compare-<hash> mpi` \
             (see runtime/benches/compare/mpi.rs)"
        );
        return;
    }
    let pool = match Pool::mpi() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mpi group skipped: {e}");
            return;
        }
    };
    let workers = pool.processes();
    let btl = std::env::var("OMPI_MCA_btl").unwrap_or_default();
    let net = if btl.contains("tcp") && !btl.contains("vader") && !btl.contains("sm") { "tcp" } else { "shm" };
    let ranks = workers + 1;

    // Small tasks: map of x*x.
    let n = 1_000_000u64;
    let check: u64 = (0..n).map(|x| x.wrapping_mul(x)).fold(0, u64::wrapping_add);
    pool.map(square, 0..10_000u64).expect("warm-up");
    let map_time = best(3, || {
        let v = pool.map(square, 0..n).expect("map");
        assert_eq!(v.iter().fold(0u64, |a, &b| a.wrapping_add(b)), check);
    });
    let map_rate = n as f64 / map_time.as_secs_f64();

    let farm_n = 200_000u64;
    let farm1 = raw_farm(&pool, farm_n / 4, 1);
    let farm32 = (0..2).map(|_| raw_farm(&pool, farm_n, 32)).fold(0.0, f64::max);
    t.row(
        &format!("mpi map x*x, 1M items, {ranks} ranks, {net}"),
        Figure::Rate(map_rate),
        None,
        Some(("raw rsmpi farm, 32 in flight/worker", Figure::Rate(farm32))),
    );
    t.row(
        &format!("raw rsmpi farm, 1 in flight/worker, {ranks} ranks, {net}"),
        Figure::Rate(farm1),
        None,
        Some(("raw rsmpi farm, 32 in flight/worker", Figure::Rate(farm32))),
    );

    // imap: lazy, chunks sized from the measured task rate.
    let imap_n = 100_000u64;
    let imap_time = best(2, || {
        let s = pool.imap(square, 0..imap_n).expect("imap").map(|r| r.expect("item")).fold(0u64, u64::wrapping_add);
        assert_eq!(s, (0..imap_n).map(|x| x * x).sum::<u64>());
    });
    t.row(
        &format!("mpi imap x*x (lazy), 100k items, {ranks} ranks, {net}"),
        Figure::Rate(imap_n as f64 / imap_time.as_secs_f64()),
        None,
        Some(("raw rsmpi farm, 32 in flight/worker", Figure::Rate(farm32))),
    );

    // apply round trip.
    let rtt = best(3, || {
        for x in 0..2000u64 {
            let _ = pool.apply(square, (x,)).expect("apply");
        }
    }) / 2000;
    t.row(&format!("mpi apply round trip, {net}"), Figure::Time(rtt), None, None);

    // Coarse CPU-bound work: 8 chunks, serial on rank 0 vs the pool.
    let rounds = 40_000_000u64;
    let inputs = vec![rounds; 8];
    let serial = best(2, || {
        let s = inputs.iter().map(|&r| burn(r)).fold(0u64, u64::wrapping_add);
        std::hint::black_box(s);
    });
    let parallel = best(2, || {
        let s =
            pool.with_chunksize(1).map(burn, inputs.clone()).expect("map").into_iter().fold(0u64, u64::wrapping_add);
        std::hint::black_box(s);
    });
    let speedup = serial.as_secs_f64() / parallel.as_secs_f64();
    println!("  measured mpi CPU-bound speed-up: {speedup:.2}× ({serial:?} serial, {parallel:?} on {workers} workers)");
    t.row(
        &format!("mpi CPU-bound 8 chunks, {workers} workers, {net} (time; floor = serial/{workers})"),
        Figure::Time(parallel),
        None,
        Some(("serial on rank 0 / workers", Figure::Time(serial / workers as u32))),
    );
}
