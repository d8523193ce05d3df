//! The comparison table: multiproc vs CPython (same run) vs the OS floor.

use std::process::Command;
use std::time::{Duration, Instant};

/// A measured figure.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Figure {
    /// Time per operation (lower is better).
    Time(Duration),
    /// Operations per second (higher is better).
    Rate(f64),
    /// Bytes per second (higher is better).
    Bytes(f64),
    /// A dimensionless factor such as a speed-up (higher is better).
    Factor(f64),
}

impl Figure {
    fn show(self) -> String {
        match self {
            Figure::Time(d) => {
                let s = d.as_secs_f64();
                if s >= 1e-3 {
                    format!("{:.2} ms", s * 1e3)
                } else if s >= 1e-6 {
                    format!("{:.2} µs", s * 1e6)
                } else {
                    format!("{:.1} ns", s * 1e9)
                }
            }
            Figure::Rate(r) if r >= 1e6 => format!("{:.2} M/s", r / 1e6),
            Figure::Rate(r) => format!("{:.1} k/s", r / 1e3),
            Figure::Bytes(b) => format!("{:.2} GB/s", b / 1e9),
            Figure::Factor(x) => format!("{x:.2}×"),
        }
    }

    /// How many times better `self` is than `other` (> 1: `self` wins).
    fn ratio(self, other: Figure) -> Option<f64> {
        match (self, other) {
            (Figure::Time(a), Figure::Time(b)) => Some(b.as_secs_f64() / a.as_secs_f64()),
            (Figure::Rate(a), Figure::Rate(b))
            | (Figure::Bytes(a), Figure::Bytes(b))
            | (Figure::Factor(a), Figure::Factor(b)) => Some(a / b),
            _ => None,
        }
    }

    /// Builds a figure of the same kind as `self` from a raw number
    /// (seconds per op for `Time`, per second otherwise).
    pub(crate) fn like(self, raw: f64) -> Figure {
        match self {
            Figure::Time(_) => Figure::Time(Duration::from_secs_f64(raw.max(0.0))),
            Figure::Rate(_) => Figure::Rate(raw),
            Figure::Bytes(_) => Figure::Bytes(raw),
            Figure::Factor(_) => Figure::Factor(raw),
        }
    }
}

struct Row {
    case: String,
    ours: Figure,
    python: Option<Figure>,
    floor: Option<(String, Figure)>,
}

/// Rows collected by each concept's `run`, printed at the end.
#[derive(Default)]
pub(crate) struct Table {
    rows: Vec<Row>,
}

impl Table {
    /// Adds a row. `python` is CPython's figure for the same work, `floor` the raw
    /// OS figure (with a short label) where one exists.
    pub(crate) fn row(&mut self, case: &str, ours: Figure, python: Option<Figure>, floor: Option<(&str, Figure)>) {
        println!("  measured {case}: {}", ours.show());
        self.rows.push(Row { case: case.into(), ours, python, floor: floor.map(|(l, f)| (l.to_string(), f)) });
    }

    /// Prints the table as Markdown.
    pub(crate) fn print(&self) {
        println!();
        println!("| case | multiproc | CPython | ratio (× better) | OS floor | vs floor |");
        println!("| --- | --- | --- | --- | --- | --- |");
        for r in &self.rows {
            let py = r.python.map(Figure::show).unwrap_or_else(|| "—".into());
            let ratio =
                r.python.and_then(|p| r.ours.ratio(p)).map(|x| format!("{x:.1}×")).unwrap_or_else(|| "—".into());
            let (floor, vs) = match &r.floor {
                Some((label, f)) => (
                    format!("{} ({label})", f.show()),
                    r.ours.ratio(*f).map(|x| format!("{x:.2}×")).unwrap_or_else(|| "—".into()),
                ),
                None => ("—".into(), "—".into()),
            };
            println!("| {} | {} | {py} | {ratio} | {floor} | {vs} |", r.case, r.ours.show());
        }
    }
}

/// Runs `python3 runtime/benches/python/<script> <args…>` and parses the last
/// line of its output as a number (seconds per op, or per-second rate).
/// `None` (with a note) if python3 is missing or fails.
pub(crate) fn python(script: &str, args: &[&str]) -> Option<f64> {
    let path = format!("{}/benches/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3").arg(&path).args(args).output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            text.lines().last().and_then(|l| l.trim().parse().ok())
        }
        Ok(o) => {
            eprintln!("python3 {script} {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
            None
        }
        Err(e) => {
            eprintln!("python3 not available ({e}); CPython column left empty");
            None
        }
    }
}

/// Best (lowest) time per iteration of `f` over `rounds` rounds of `iters` calls.
pub(crate) fn time_per_op(rounds: usize, iters: usize, mut f: impl FnMut()) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(t.elapsed() / iters as u32);
    }
    best
}
