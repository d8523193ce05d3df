//! Benchmarks against CPython (filled in below).
fn main() {}
