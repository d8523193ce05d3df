//! Helper for `tests/dummy_dropin.rs`: what the end of `#[multiproc::main]`
//! does with `multiproc::dummy` threads still running.
//!
//! `dummy_helper`: starts a daemon thread that never ends and a non-daemon
//! thread that prints after a pause, then returns from `main` at once. Python
//! joins the non-daemon thread at exit and leaves the daemon one; so must we.

use multiproc::dummy as mp;

#[multiproc::task]
fn forever(never: mp::Event) {
    never.wait(None);
}

#[multiproc::task]
fn late(returned: mp::Event) {
    // Runs on only after `main` has returned: a `main` that did not join
    // non-daemon threads would exit before this prints.
    returned.wait(None);
    println!("non-daemon thread done");
}

#[multiproc::main]
fn main() -> mp::Result<()> {
    let never = mp::Event::new()?;
    mp::Process::builder(forever, (never,)).daemon(true).build()?.start()?;
    let returned = mp::Event::new()?;
    mp::Process::new(late, (returned.clone(),))?.start()?;
    println!("main returns");
    returned.set();
    Ok(())
}
