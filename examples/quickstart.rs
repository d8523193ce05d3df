//! The quickstart: a task in a child process, talking back through a pipe.
//!
//! Run it with `cargo run --release --example quickstart`.

// ANCHOR: all
#[multiproc::task]
fn greet(name: String, conn: multiproc::Connection<String>) {
    conn.send(&format!("hello {name}")).unwrap();
}

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let (parent, child) = multiproc::pipe()?;
    let mut p = multiproc::Process::new(greet, ("bob".to_string(), child))?;
    p.start()?;
    println!("{}", parent.recv()?);
    p.join()?;
    assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
    Ok(())
}
// ANCHOR_END: all
