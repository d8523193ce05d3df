//! A function without `#[multiproc::task]` passed as a pool's initializer.

fn setup() {}

fn main() -> multiproc::Result<()> {
    let _pool = multiproc::Pool::builder().processes(2).initializer(setup, ()).build()?;
    Ok(())
}
