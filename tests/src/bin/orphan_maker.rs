//! Helper for `tests/process_parent_death.rs`: starts children that block
//! forever, prints their pids, then blocks itself until it is killed.
//!
//! `orphan_maker <method> <n>` prints `child <pid>` per child, `server <pid>`
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

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let method = StartMethod::from_name(args.get(1).map_or("", String::as_str))?;
    let n: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(2);
    let ctx = multiproc::get_context(method);
    let mut out = std::io::stdout().lock();
    let mut keep = Vec::new();
    for _ in 0..n {
        let (a, b) = pipe()?;
        let mut p = ctx.process(block, (b,))?;
        p.start()?;
        a.recv()?;
        writeln!(out, "child {}", p.pid().unwrap_or(0))?;
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
