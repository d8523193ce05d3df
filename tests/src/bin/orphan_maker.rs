//! Helper for `tests/process_parent_death.rs`: starts children that block
//! forever, prints their pids, then blocks itself until it is killed.
//!
//! `orphan_maker <method> <n> [nested]` prints `child <pid>` per child (with
//! `nested`, each child starts a grandchild: `grandchild <pid>`), `server <pid>`
//! for a fork server, then `ready`.

use std::io::Write;

use multiproc::{Connection, StartMethod, pipe};

/// Reports in, then waits for a message that never comes (its peer stays open
/// in the parent, which only dies).
#[multiproc::task]
fn block(conn: Connection<u32>) {
    conn.send(&0).unwrap();
    let _ = conn.recv();
}

/// Starts a blocking grandchild, reports its pid, then blocks like [`block`].
#[multiproc::task]
fn block_with_grandchild(method: StartMethod, conn: Connection<u32>) {
    let (a, b) = pipe::<u32>().unwrap();
    let mut p = multiproc::get_context(method).process(block, (b,)).unwrap();
    p.start().unwrap();
    a.recv().unwrap();
    conn.send(&p.pid().unwrap_or(0)).unwrap();
    let _ = conn.recv();
}

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let method = StartMethod::from_name(args.get(1).map_or("", String::as_str))?;
    let n: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(2);
    let nested = args.get(3).is_some_and(|a| a == "nested");
    let ctx = multiproc::get_context(method);
    let mut out = std::io::stdout().lock();
    let mut keep = Vec::new();
    for _ in 0..n {
        let (a, b) = pipe()?;
        let mut p = if nested { ctx.process(block_with_grandchild, (method, b))? } else { ctx.process(block, (b,))? };
        p.start()?;
        let grandchild = a.recv()?;
        writeln!(out, "child {}", p.pid().unwrap_or(0))?;
        if nested {
            writeln!(out, "grandchild {grandchild}")?;
        }
        keep.push((p, a));
    }
    for pid in multiproc::__private::runtime_pids() {
        writeln!(out, "server {pid}")?;
    }
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);
    // Block until killed: nobody ever writes to this pipe.
    let (a, _b) = pipe::<u32>()?;
    a.recv()?;
    Ok(())
}
