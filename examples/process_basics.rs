//! The reference's first examples: a process saying hello, and the process ids involved.
//!
//! `cargo run --example process_basics`

use multiproc::{Process, current_process, parent_process};

// ANCHOR: hello
#[multiproc::task]
fn f(name: String) {
    println!("hello {name}");
}
// ANCHOR_END: hello

// ANCHOR: info
fn info(title: &str) {
    println!("{title}");
    println!("process name: {}", current_process().name);
    println!("parent process: {}", parent_process().map_or(std::os::unix::process::parent_id(), |p| p.pid));
    println!("process id: {}", std::process::id());
}

#[multiproc::task]
fn g(name: String) {
    info("function g");
    println!("hello {name}");
}
// ANCHOR_END: info

// ANCHOR: main
#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let mut p = Process::new(f, ("bob".to_string(),))?;
    p.start()?;
    p.join()?;

    info("main line");
    let mut p = Process::new(g, ("bob".to_string(),))?;
    p.start()?;
    p.join()?;
    Ok(())
}
// ANCHOR_END: main
