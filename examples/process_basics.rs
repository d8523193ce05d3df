//! The reference's first examples (a process saying hello, the process ids
//! involved) and the basic example of seed 003 (two workers).
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

// ANCHOR: two
#[multiproc::task]
fn worker_function(name: String) {
    println!("Worker {name}: My process ID is {}", std::process::id());
}

fn two_workers() -> multiproc::Result<()> {
    println!("Main process ID: {}", std::process::id());
    // Create two Process objects
    let mut p1 = Process::new(worker_function, ("Alice".to_string(),))?;
    let mut p2 = Process::new(worker_function, ("Bob".to_string(),))?;
    // Start the processes
    p1.start()?;
    p2.start()?;
    // Wait for both processes to complete
    p1.join()?;
    p2.join()?;
    println!("All worker processes finished.");
    Ok(())
}
// ANCHOR_END: two

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

    two_workers()
}
// ANCHOR_END: main
