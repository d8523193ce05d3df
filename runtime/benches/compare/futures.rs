//! Futures and stopping cases (issue 13): `submit` + `as_completed`
//! throughput against CPython's `ProcessPoolExecutor` (2 workers, fork, in
//! the same run), and what `task_timeout` costs a default-chunk `map` of tiny
//! calls (its overhead, as a ratio to the same map without it: the floor).

use std::time::Duration;

use multiproc::{Pool, StartMethod};

use crate::table::{Figure, Table, python};

#[multiproc::task]
fn sqr(x: u64) -> u64 {
    x * x
}

/// The best of three, in items per second.
fn best_rate(n: usize, mut run: impl FnMut()) -> f64 {
    let mut best = 0.0f64;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        run();
        best = best.max(n as f64 / t.elapsed().as_secs_f64());
    }
    best
}

fn submit_as_completed(pool: &Pool, n: u64) {
    let futs: Vec<_> = (0..n).map(|x| pool.submit(sqr, (x,)).expect("submit")).collect();
    let total: u64 = multiproc::as_completed(futs).map(|r| r.expect("result")).sum();
    std::hint::black_box(total);
}

pub(crate) fn run(t: &mut Table) {
    let pool = Pool::builder().processes(2).start_method(StartMethod::Fork).build().expect("pool");
    let n = 20_000u64;
    submit_as_completed(&pool, 2_000);
    let ours = Figure::Rate(best_rate(n as usize, || submit_as_completed(&pool, n)));
    let py = python("futures.py", &["submit"]).map(|s| ours.like(s));
    t.row("submit + as_completed, 20k tiny calls", ours, py, None);

    let timed = Pool::builder()
        .processes(2)
        .start_method(StartMethod::Fork)
        .task_timeout(Duration::from_secs(10))
        .build()
        .expect("pool");
    let items = 1_000_000u64;
    for p in [&pool, &timed] {
        p.map(sqr, 0..100_000u64).expect("map");
    }
    // Alternate, so that both see the same machine; each keeps its best.
    let (mut plain, mut with) = (0.0f64, 0.0f64);
    for _ in 0..3 {
        plain = plain.max(best_rate(items as usize, || drop(pool.map(sqr, 0..items).expect("map"))));
        with = with.max(best_rate(items as usize, || drop(timed.map(sqr, 0..items).expect("map"))));
    }
    t.row(
        "map(x*x) 1M default chunks, task_timeout set",
        Figure::Rate(with),
        None,
        Some(("same map, no timeout", Figure::Rate(plain))),
    );
}
