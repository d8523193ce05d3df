//! Helper for `tests/process_lifecycle.rs`: things that need a fresh process
//! (the child's stderr, a CPU affinity set by `taskset`).
//!
//! `lifecycle_helper panic <method>`: runs a panicking task and prints its exit status.
//! `lifecycle_helper error <method>`: runs a task returning `Err` and prints its exit status.
//! `lifecycle_helper cpu_count <method>`: prints `parent N child M`.
//! `lifecycle_helper quiet <method>`: runs a task that prints on stdout and
//! stderr; exits with 0 if it ended with code 0, else 1 (run it with stdio closed).

use multiproc::{Connection, StartMethod, pipe};

#[multiproc::task]
fn panics() {
    panic!("deliberate panic in a helper task");
}

#[multiproc::task]
fn fails() -> Result<(), String> {
    Err("deliberate error from a helper task".into())
}

#[multiproc::task]
fn cpu_count(conn: Connection<usize>) {
    conn.send(&multiproc::cpu_count()).unwrap();
}

#[multiproc::task]
fn chatty() {
    println!("to stdout");
    eprintln!("to stderr");
}

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(method)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: lifecycle_helper panic|error|cpu_count|quiet fork|spawn|forkserver");
        std::process::exit(2);
    };
    let ctx = multiproc::get_context(StartMethod::from_name(method)?);
    match mode.as_str() {
        "panic" => {
            let mut p = ctx.process(panics, ())?;
            p.start()?;
            p.join()?;
            println!("exitcode {:?}", p.exitcode());
        }
        "error" => {
            let mut p = ctx.process(fails, ())?;
            p.start()?;
            p.join()?;
            println!("exitcode {:?}", p.exitcode());
        }
        "cpu_count" => {
            let (a, b) = pipe()?;
            let mut p = ctx.process(cpu_count, (b,))?;
            p.start()?;
            let child = a.recv()?;
            p.join()?;
            println!("parent {} child {child}", multiproc::cpu_count());
        }
        "quiet" => {
            let mut p = ctx.process(chatty, ())?;
            p.start()?;
            p.join()?;
            std::process::exit(if p.exitcode() == Some(multiproc::ExitStatus::Code(0)) { 0 } else { 1 });
        }
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    }
    Ok(())
}
