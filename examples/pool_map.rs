//! A process pool over registered tasks: `map`, `starmap`, `apply_async`, `imap_unordered`.
//!
//! Run it with `cargo run --release --example pool_map`.

// ANCHOR: all
#[multiproc::task]
fn square(x: u64) -> u64 {
    x * x
}

#[multiproc::task]
fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let pool = multiproc::Pool::new(4)?;
    assert_eq!(pool.map(square, 0..10)?, vec![0, 1, 4, 9, 16, 25, 36, 49, 64, 81]);
    assert_eq!(pool.starmap(add, vec![(1, 2), (3, 4)])?, vec![3, 7]);
    let r = pool.apply_async(square, (7,))?;
    assert_eq!(r.get()?, 49);
    for x in pool.imap_unordered(square, 0..1_000_000)? {
        let _ = x?;
    }
    pool.close();
    pool.join()?;
    println!("ok");
    Ok(())
}
// ANCHOR_END: all
