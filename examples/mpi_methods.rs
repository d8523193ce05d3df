//! Every method of the MPI pool once, each printing `<method> <value>` for the tests
//! to check: starmap, imap, imap_unordered, apply, apply_async, map_async,
//! starmap_async, submit, as_completed, try_map, cancel, terminate, close and join.
//!
//! `mpirun -n 3 target/debug/examples/mpi_methods`

use multiproc::Pool;

#[multiproc::task]
fn square(x: u64) -> u64 {
    x * x
}

#[multiproc::task]
fn weighted(x: u64, w: u64) -> u64 {
    x * w
}

#[multiproc::task]
fn describe(name: String, n: u32) -> String {
    format!("{name}:{n}:{}", std::env::var("OMPI_COMM_WORLD_RANK").or_else(|_| std::env::var("PMI_RANK")).is_ok())
}

/// Large arguments and results (1 MiB each way): both sides send past MPI's eager limit at once.
#[multiproc::task]
fn bump(mut v: Vec<u8>) -> Vec<u8> {
    v.iter_mut().for_each(|b| *b = b.wrapping_add(1));
    v
}

/// A number, or the text that is not one.
#[multiproc::task]
fn parse(s: String) -> Result<u64, String> {
    s.parse().map_err(|_| s)
}

/// The MPI rank running the task (as the launcher told it).
#[multiproc::task]
fn rank_of(_x: u32) -> String {
    std::env::var("OMPI_COMM_WORLD_RANK").or_else(|_| std::env::var("PMI_RANK")).unwrap_or_default()
}

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let pool = Pool::mpi()?;
    println!("workers {}", pool.processes());

    let v = pool.starmap(weighted, (0..1000u64).map(|x| (x, x % 7)))?;
    println!("starmap {}", v.iter().sum::<u64>());

    let ordered: Vec<u64> = pool.imap(square, 0..500u64)?.collect::<multiproc::Result<_>>()?;
    let in_order = ordered.iter().enumerate().all(|(i, &y)| y == (i as u64) * (i as u64));
    println!("imap {} {in_order}", ordered.iter().sum::<u64>());

    let mut unordered: Vec<u64> = pool.imap_unordered(square, 0..500u64)?.collect::<multiproc::Result<_>>()?;
    unordered.sort_unstable();
    println!("imap_unordered {} {}", unordered.len(), unordered.iter().sum::<u64>());

    // A short imap of (possibly long) tasks is spread over every worker.
    let mut ranks: Vec<String> = pool.imap(rank_of, 0..8u32)?.collect::<multiproc::Result<_>>()?;
    ranks.sort();
    ranks.dedup();
    println!("imap_ranks {}", ranks.join(","));

    let pending: Vec<_> = (0..10u64).map(|x| pool.apply_async(weighted, (x, 3))).collect::<multiproc::Result<_>>()?;
    let got: Vec<u64> = pending.into_iter().map(|r| r.get()).collect::<multiproc::Result<_>>()?;
    println!("apply_async {}", got.iter().sum::<u64>());

    println!("apply {}", pool.apply(describe, ("bob".to_string(), 7))?);

    let big = pool.with_chunksize(1).map(bump, (0..24u8).map(|i| vec![i; 1 << 20]))?;
    let big_ok = big.iter().enumerate().all(|(i, v)| v.len() == 1 << 20 && v.iter().all(|&b| b == i as u8 + 1));
    println!("big {} {big_ok}", big.len());

    let squares = pool.map_async(square, 0..300u64)?;
    let products = pool.starmap_async(weighted, (0..300u64).map(|x| (x, 2)))?;
    println!("map_async {} {}", squares.get()?.iter().sum::<u64>(), products.get()?.iter().sum::<u64>());

    // A second pool, terminated with work outstanding; the first one is unaffected.
    let other = Pool::mpi()?;
    let doomed = other.map_async(square, 0..100_000u64)?;
    other.terminate();
    println!("terminated {} {}", doomed.get().is_err(), other.apply(square, (2u64,)).is_err());

    // Futures-style submission, fallible tasks, cancellation (issue 13).
    let futs: Vec<_> = (0..20u64).map(|x| pool.submit(square, (x,))).collect::<multiproc::Result<_>>()?;
    let done: u64 = multiproc::as_completed(futs).map(|r| r.unwrap_or(0)).sum();
    println!("as_completed {done}");
    let parsed = pool.try_map(parse, vec!["1".to_string(), "x".into(), "3".into()]);
    println!("try_map {}", matches!(parsed, Err(multiproc::Error::Task { index: 1, .. })));
    let many = pool.with_chunksize(1).map_async(square, 0..100_000u64)?;
    let cancelled = many.cancel();
    println!("cancel {cancelled} {}", matches!(many.get(), Err(multiproc::Error::Cancelled)));

    let late = pool.apply_async(square, (12u64,))?;
    pool.close();
    println!("closed_submit_fails {}", pool.map(square, 0..3u64).is_err());
    pool.join()?;
    println!("after_join_ready {}", late.ready());
    println!("late {}", late.get()?);
    Ok(())
}
