//! A plain closure passed to `Pool::apply_async`.

fn main() -> multiproc::Result<()> {
    let pool = multiproc::Pool::new(2)?;
    let r = pool.apply_async(|x: u64| x + 1, (1u64,))?;
    let _ = r.get()?;
    Ok(())
}
