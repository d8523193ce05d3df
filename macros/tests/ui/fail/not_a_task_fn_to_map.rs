//! A function without `#[multiproc::task]` passed to `Pool::map`.

fn square(x: u64) -> u64 {
    x * x
}

fn main() -> multiproc::Result<()> {
    let pool = multiproc::Pool::new(2)?;
    let _ = pool.map(square, 0..10u64)?;
    Ok(())
}
