//! A `#[task]` name is a value of a wrapper type: it still calls, derefs to a
//! fn pointer, is imported with `use`, keeps attributes and doc comments, and
//! runs in a pool.

#![deny(missing_docs, dead_code)]

mod tasks {
    /// Squares `x` (a doc comment moves to the task's const).
    #[multiproc::task]
    #[inline]
    #[allow(clippy::needless_return)]
    pub fn square(x: u64) -> u64 {
        return x * x;
    }

    pub(crate) mod deeper {
        /// Fails on zero.
        #[multiproc::task]
        pub fn checked(x: u64) -> Result<u64, String> {
            if x == 0 { Err("zero".into()) } else { Ok(100 / x) }
        }

        /// Recursion goes through the wrapper too.
        #[multiproc::task]
        pub fn fact(n: u64) -> u64 {
            if n == 0 { 1 } else { n * fact(n - 1) }
        }
    }

    /// No arguments.
    #[multiproc::task]
    pub fn answer() -> u32 {
        42
    }

    #[cfg(any())]
    #[multiproc::task]
    pub fn compiled_out(x: NoSuchType) {}
}

use tasks::deeper::{checked, fact};
use tasks::{answer, square};

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    assert_eq!(square(3), 9);
    assert_eq!(answer(), 42);
    assert_eq!(fact(5), 120);
    assert_eq!(checked(0), Err("zero".to_string()));
    let squares: Vec<u64> = (0..4).map(*square).collect();
    assert_eq!(squares, vec![0, 1, 4, 9]);
    let f: fn(u64) -> u64 = *square;
    assert_eq!(f(4), 16);

    let pool = multiproc::Pool::builder().processes(2).initializer(answer, ()).build()?;
    assert_eq!(pool.map(square, 0..4)?, squares);
    assert_eq!(pool.map(checked, 0..2)?, vec![Err("zero".to_string()), Ok(100)]);
    assert_eq!(pool.apply(answer, ())?, 42);
    let threads = multiproc::dummy::Pool::new(2)?;
    assert_eq!(threads.map(square, 0..4)?, squares);
    assert_eq!(threads.map(multiproc::lambda!(|x: u64| x + 1), 0..2)?, vec![1, 2]);
    Ok(())
}
