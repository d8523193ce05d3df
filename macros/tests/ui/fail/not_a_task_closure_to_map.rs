//! A plain closure passed to `Pool::map`.

fn main() -> multiproc::Result<()> {
    let pool = multiproc::Pool::new(2)?;
    let _ = pool.map(|x: u64| x * x, 0..10u64)?;
    Ok(())
}
