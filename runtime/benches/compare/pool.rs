//! Pool cases: throughput of tiny tasks (default chunking, chunk size 1,
//! imap_unordered), 64 KiB `Vec<u8>` items, `apply_async` round trip, CPU-bound
//! speed-up, pool start-up.
//! Pool(2), fork start method (as CPython's side), warmed up, best of 3.

use std::time::{Duration, Instant};

use multiproc::{Pool, StartMethod, get_context};

use crate::table::{Figure, Table, python};

#[multiproc::task]
fn sqr(x: u64) -> u64 {
    x * x
}

/// The CPU-bound work, one function that the workers, the serial loop and
/// rayon all call: inlined into each caller instead, its loop (bound by a
/// store and a reload through `black_box`) ran up to 1.5x slower in the
/// task's wrapper than in `main`, which measured code layout, not the pool.
#[inline(never)]
fn squares(bounds: (u64, u64)) -> u64 {
    let mut s = 0u64;
    for i in bounds.0..bounds.1 {
        s = s.wrapping_add(std::hint::black_box(i).wrapping_mul(i));
    }
    s
}

#[multiproc::task]
fn sum_squares(bounds: (u64, u64)) -> u64 {
    squares(bounds)
}

#[multiproc::task]
fn byte_len(v: Vec<u8>) -> usize {
    v.len()
}

/// Bytes per second of `pool.map(byte_len, items)` over 1,000 `Vec<u8>` of 64 KiB,
/// as a user writes it; best of 3 (each round maps its own copy of the items,
/// made before the clock starts, as CPython's side maps a ready list).
fn bytes_map(pool: &Pool) -> f64 {
    let items = vec![vec![7u8; 1 << 16]; 1000];
    let mut best = 0.0f64;
    for _ in 0..3 {
        let round = items.clone();
        let t = Instant::now();
        let lens = pool.map(byte_len, round).expect("map");
        best = best.max((1000usize << 16) as f64 / t.elapsed().as_secs_f64());
        assert!(lens.iter().all(|&n| n == 1 << 16));
    }
    best
}

fn best_rate(n: usize, run: impl FnMut()) -> f64 {
    best_rate_of(3, n, run)
}

/// The best of `rounds` runs of `run`, in items per second.
fn best_rate_of(rounds: usize, n: usize, mut run: impl FnMut()) -> f64 {
    let mut best = 0.0f64;
    for _ in 0..rounds {
        let t = Instant::now();
        run();
        best = best.max(n as f64 / t.elapsed().as_secs_f64());
    }
    best
}

fn apply_rtt(pool: &Pool) -> Duration {
    apply_rtt_of(3, pool)
}

/// The best of `rounds` rounds of 2,000 apply round trips, after a warm-up.
fn apply_rtt_of(rounds: usize, pool: &Pool) -> Duration {
    for _ in 0..500 {
        pool.apply_async(sqr, (7,)).expect("apply").get().expect("get");
    }
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..2000 {
            pool.apply_async(sqr, (7,)).expect("apply").get().expect("get");
        }
        best = best.min(t.elapsed() / 2000);
    }
    best
}

/// Speed-ups over serial of the pool and of a 2-thread rayon pool, on 8 equal
/// chunks of a sum of squares up to `n`. Serial, pool and rayon runs take turns
/// for 5 rounds and each keeps its best time (noise only ever slows a run
/// down), so all three share one serial baseline taken in the same conditions.
fn cpu_speedups(pool: &Pool, n: u64) -> (f64, f64) {
    use rayon::prelude::*;
    let bounds: Vec<(u64, u64)> = (0..8).map(|i| (i * n / 8, (i + 1) * n / 8)).collect();
    let threads = rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("rayon");
    // Through an opaque fn pointer to the one `squares` the workers call too.
    let f: fn((u64, u64)) -> u64 = std::hint::black_box(squares);
    let (mut t_serial, mut t_pool, mut t_rayon) = (f64::MAX, f64::MAX, f64::MAX);
    let timed = |best: &mut f64, run: &mut dyn FnMut() -> Vec<u64>| {
        let t = Instant::now();
        let out = run();
        *best = best.min(t.elapsed().as_secs_f64());
        out
    };
    for _ in 0..5 {
        let serial = timed(&mut t_serial, &mut || bounds.iter().map(|b| f(*b)).collect());
        let ours = timed(&mut t_pool, &mut || pool.with_chunksize(1).map(sum_squares, bounds.clone()).expect("map"));
        let rayon =
            timed(&mut t_rayon, &mut || threads.install(|| bounds.par_iter().with_max_len(1).map(|b| f(*b)).collect()));
        assert_eq!(serial, ours);
        assert_eq!(serial, rayon);
    }
    (t_serial / t_pool, t_serial / t_rayon)
}

fn start_time(method: StartMethod) -> Duration {
    let ctx = get_context(method);
    let warm = ctx.pool(2).expect("pool");
    warm.map(sqr, 0..4).expect("map");
    drop(warm);
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let p = ctx.pool(2).expect("pool");
        p.map(sqr, 0..4).expect("map");
        best = best.min(t.elapsed());
        drop(p);
    }
    best
}

/// The best rates of a chunksize=1 map of `n` tiny calls on `small` and on
/// `large`, taken in alternating rounds (best of 3 each), so that the ratio
/// of the two is not a drift of the machine's speed between two separate
/// measurements (seconds apart, on a VM whose speed varies ~2x over seconds).
fn map1_pair(small: &Pool, large: &Pool, n: u64) -> (f64, f64) {
    let (mut a, mut b) = (0.0f64, 0.0f64);
    for _ in 0..3 {
        a = a.max(best_rate_of(1, n as usize, || drop(small.with_chunksize(1).map(sqr, 0..n).expect("map"))));
        b = b.max(best_rate_of(1, n as usize, || drop(large.with_chunksize(1).map(sqr, 0..n).expect("map"))));
    }
    (a, b)
}

/// The best apply round trips on `small` and on `large`, in alternating
/// rounds (as [`map1_pair`]).
fn apply_pair(small: &Pool, large: &Pool) -> (Duration, Duration) {
    let (mut a, mut b) = (Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        a = a.min(apply_rtt_of(1, small));
        b = b.min(apply_rtt_of(1, large));
    }
    (a, b)
}

/// Adds the oversubscription rows: `Pool(8 × cores)` beside `pool`
/// (`Pool(2)`): tiny calls (chunk size 1) and the apply round trip, against
/// CPython's pool of the same size; the floor column is `pool`'s own figure
/// from the same alternating rounds, so "vs floor" is the share it keeps.
fn oversubscribed(t: &mut Table, pool: &Pool, n: u64) {
    let size = 8 * multiproc::cpu_count();
    let large = get_context(StartMethod::Fork).pool(size).expect("pool");
    large.map(sqr, 0..1000u64).expect("warm-up");
    let (of_small, ours) = map1_pair(pool, &large, n);
    let (of_small, ours) = (Figure::Rate(of_small), Figure::Rate(ours));
    let arg = size.to_string();
    let py = python("pool.py", &["map1", &arg]).map(|s| ours.like(s));
    t.row(&format!("pool map chunksize=1, 20k items, Pool({size})"), ours, py, Some(("Pool(2)", of_small)));
    let (of_small, ours) = apply_pair(pool, &large);
    let (of_small, ours) = (Figure::Time(of_small), Figure::Time(ours));
    let py = python("pool.py", &["apply", &arg]).map(|s| ours.like(s));
    t.row(&format!("pool apply_async(..).get() round trip, Pool({size})"), ours, py, Some(("Pool(2)", of_small)));
}

pub(crate) fn run(t: &mut Table) {
    let pool = get_context(StartMethod::Fork).pool(2).expect("pool");
    pool.map(sqr, 0..1000u64).expect("warm-up");

    // A map this size takes ~1-2 ms: best of 20 rounds (as on CPython's side).
    let n = 100_000u64;
    let ours = Figure::Rate(best_rate_of(20, n as usize, || {
        pool.map(sqr, 0..n).expect("map");
    }));
    let py = python("pool.py", &["map"]).map(|s| ours.like(s));
    t.row("pool map x*x, 100k items, default chunks, Pool(2)", ours, py, None);

    let n = 20_000u64;
    let map1 = Figure::Rate(best_rate(n as usize, || {
        pool.with_chunksize(1).map(sqr, 0..n).expect("map");
    }));
    let py = python("pool.py", &["map1"]).map(|s| map1.like(s));
    t.row("pool map chunksize=1, 20k items", map1, py, None);

    let ours = Figure::Rate(best_rate(n as usize, || {
        let k = pool.with_chunksize(1).imap_unordered(sqr, 0..n).expect("imap").filter(|r| r.is_ok()).count();
        assert_eq!(k, n as usize);
    }));
    let py = python("pool.py", &["imap1"]).map(|s| ours.like(s));
    t.row("pool imap_unordered chunksize=1, 20k items", ours, py, None);

    let ours = Figure::Bytes(bytes_map(&pool));
    let py = python("pool.py", &["bytes_map"]).map(|s| ours.like(s));
    t.row("pool map len(Vec<u8>), 1,000 x 64 KiB items", ours, py, None);

    let apply2 = Figure::Time(apply_rtt(&pool));
    let py = python("pool.py", &["apply"]).map(|s| apply2.like(s));
    t.row("pool apply_async(..).get() round trip", apply2, py, None);
    oversubscribed(t, &pool, n);

    // ~0.3 s of serial work in Rust; CPython gets a smaller n (it is ~50x slower per step).
    let (ours, rayon) = cpu_speedups(&pool, 300_000_000);
    let (ours, rayon) = (Figure::Factor(ours), Figure::Factor(rayon));
    let py = python("pool.py", &["cpu", "8000000"]).map(|s| ours.like(s));
    t.row("pool CPU-bound speed-up over serial, 8 chunks, Pool(2)", ours, py, Some(("rayon, 2 threads", rayon)));
    drop(pool);

    for method in [StartMethod::Spawn, StartMethod::ForkServer] {
        let ours = Figure::Time(start_time(method));
        let py = python("pool.py", &["start", method.name()]).map(|s| ours.like(s));
        t.row(&format!("Pool(2) start + first map ({method})"), ours, py, None);
    }
}
