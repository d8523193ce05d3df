//! Python's "Customized managers" example: a class whose methods run in the
//! manager, used through a proxy. Prints `7` then `56`.
//!
//! Run it with `cargo run --example custom_manager`.

// ANCHOR: all
struct MathsClass;

#[multiproc::managed]
impl MathsClass {
    fn add(&self, x: i64, y: i64) -> i64 {
        x + y
    }

    fn mul(&self, x: i64, y: i64) -> i64 {
        x * y
    }
}

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let manager = multiproc::Manager::start()?;
    let maths = manager.create(MathsClass)?; // a MathsClassProxy
    println!("{}", maths.add(4, 3)?); // prints 7
    println!("{}", maths.mul(7, 8)?); // prints 56
    manager.shutdown()
}
// ANCHOR_END: all
