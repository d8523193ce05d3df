//! Lambdas in a pool: the `multiprocess` (dill) README example, ported.
//!
//! ```python
//! >>> p = Pool(4)
//! >>> result = p.map_async(f, range(10))
//! >>> print (result.get(timeout=1))
//! [0, 1, 4, 9, 16, 25, 36, 49, 64, 81]
//! >>> print (p.map(lambda x: (lambda y:y**2)(x) + x, xrange(10)))
//! [0, 2, 6, 12, 20, 30, 42, 56, 72, 90]
//! ```
//!
//! Run it with `cargo run --release --example lambda`.

// The Python original calls an inline lambda; so does this port.
#![allow(clippy::redundant_closure_call)]

use std::time::Duration;

// ANCHOR: all
#[multiproc::task]
fn f(x: u64) -> u64 {
    x * x
}

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let p = multiproc::Pool::new(4)?;
    let result = p.map_async(f, 0..10)?;
    println!("{:?}", result.get_timeout(Duration::from_secs(1))?);

    // A closure lifted into a registered task; the inner closure is plain Rust.
    let squares_plus = multiproc::lambda!(|x: u64| (|y: u64| y.pow(2))(x) + x);
    println!("{:?}", p.map(squares_plus, 0..10)?);

    // Captured values are listed, and travel with each call.
    let k = 100u64;
    println!("{:?}", p.map(multiproc::lambda!(move [k: u64] |x: u64| x + k), 0..3)?);
    Ok(())
}
// ANCHOR_END: all
