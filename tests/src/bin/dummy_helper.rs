//! Helper for `tests/dummy_dropin.rs`: what the end of `#[multiproc::main]`
//! does with `multiproc::dummy` threads still running.
//!
//! `dummy_helper`: starts a daemon thread that never ends and a non-daemon
//! thread that prints after a pause, then returns from `main` at once. Python
//! joins the non-daemon thread at exit and leaves the daemon one; so must we.

use std::time::Duration;

use multiproc::dummy as mp;

#[multiproc::task]
fn forever(never: mp::Event) {
    never.wait(None);
}

#[multiproc::task]
fn late() {
    // Long enough that a `main` that did not wait would exit first.
    std::thread::sleep(Duration::from_millis(200));
    println!("non-daemon thread done");
}

#[multiproc::main]
fn main() -> mp::Result<()> {
    let never = mp::Event::new()?;
    mp::Process::builder(forever, (never,)).daemon(true).build()?.start()?;
    mp::Process::new(late, ())?.start()?;
    println!("main returns");
    Ok(())
}
