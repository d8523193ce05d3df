//! CPU-bound work on a pool: the two `Pool` examples of the tutorial seed
//! ("The multiprocessing module in Python"), ported. Rust is ~50× faster per
//! step than CPython, so the heavy task runs 50× more steps to show the speed-up.
//!
//! Run it with `cargo run --release --example pool_cpu`.

use std::time::Instant;

// ANCHOR: primes
#[allow(clippy::manual_is_multiple_of)] // `is_multiple_of` is newer than our MSRV
#[multiproc::task]
fn is_prime(n: u64) -> bool {
    // Check primality (inefficient but CPU-heavy for demo)
    if n < 2 {
        return false;
    }
    (2..=n.isqrt()).all(|i| n % i != 0)
}
// ANCHOR_END: primes

// ANCHOR: heavy
#[multiproc::task]
fn heavy_task(n: u64) -> f64 {
    (1..n).map(|i| (i as f64).sqrt()).sum()
}

fn run_sequential(nums: &[u64]) -> Vec<f64> {
    nums.iter().map(|&n| heavy_task(n)).collect()
}

fn run_parallel(nums: &[u64]) -> multiproc::Result<Vec<f64>> {
    let p = multiproc::Pool::new(multiproc::cpu_count())?;
    p.map(heavy_task, nums.to_vec())
}
// ANCHOR_END: heavy

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    // ANCHOR: main
    let nums: Vec<u64> = (0..50).map(|i| 10_000_000 + i).collect();
    let start = Instant::now();
    let pool = multiproc::Pool::new(multiproc::cpu_count())?;
    let results = pool.map(is_prime, nums.clone())?;
    drop(pool);
    let found = results.iter().filter(|p| **p).count();
    println!("Found primes: {found} / {} in {:.2}s", nums.len(), start.elapsed().as_secs_f64());

    let nums = vec![100_000_000u64; 8]; // heavy tasks
    let t0 = Instant::now();
    let seq_results = run_sequential(&nums);
    let seq = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let par_results = run_parallel(&nums)?;
    let par = t1.elapsed().as_secs_f64();
    assert_eq!(seq_results, par_results);
    println!("Sequential: {seq:.2}s, Parallel: {par:.2}s ({:.2}x on {} CPUs)", seq / par, multiproc::cpu_count());
    // ANCHOR_END: main
    Ok(())
}
