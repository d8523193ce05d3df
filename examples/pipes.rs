//! Pipes: the reference's `Pipe()` example, and `wait()` over several readers.
//!
//! `cargo run --example pipes`

use std::fmt;

use multiproc::connection::{Waitable, wait};
use multiproc::{Connection, Error, Process, current_process, pipe, pipe_oneway};

/// A Python-like value, so the output matches the reference's `[42, None, 'hello']`.
#[derive(serde::Serialize, serde::Deserialize)]
enum Item {
    Int(i64),
    None,
    Str(String),
}

impl fmt::Display for Item {
    // (Not `f`: that names the task below, a `const`, which a binding cannot shadow.)
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Item::Int(i) => write!(out, "{i}"),
            Item::None => write!(out, "None"),
            Item::Str(s) => write!(out, "'{s}'"),
        }
    }
}

// ANCHOR: pipe
#[multiproc::task]
fn f(mut conn: Connection<Vec<Item>>) {
    conn.send(&vec![Item::Int(42), Item::None, Item::Str("hello".into())]).unwrap();
    conn.close();
}
// ANCHOR_END: pipe

// ANCHOR: wait
#[multiproc::task]
fn foo(mut w: Connection<(u32, String)>) {
    for i in 0..10 {
        w.send(&(i, current_process().name)).unwrap();
    }
    w.close();
}
// ANCHOR_END: wait

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    // ANCHOR: pipe_main
    let (parent_conn, child_conn) = pipe()?;
    let mut p = Process::new(f, (child_conn,))?;
    p.start()?;
    let items = parent_conn.recv()?;
    println!("[{}]", items.iter().map(Item::to_string).collect::<Vec<_>>().join(", ")); // prints "[42, None, 'hello']"
    p.join()?;
    // ANCHOR_END: pipe_main

    // ANCHOR: wait_main
    let mut readers = Vec::new();
    let mut children = Vec::new();
    for _ in 0..4 {
        let (r, w) = pipe_oneway()?;
        readers.push(r);
        let mut p = Process::new(foo, (w,))?;
        p.start()?;
        children.push(p);
        // The parent's copy of `w` went into `Process::new` and is closed once the
        // child has started, so each reader sees end-of-file when its child is done.
    }
    while !readers.is_empty() {
        let objects: Vec<&dyn Waitable> = readers.iter().map(|r| r as &dyn Waitable).collect();
        let ready = wait(&objects, None)?;
        let mut done = Vec::new();
        for i in ready {
            match readers[i].recv() {
                Ok(msg) => println!("{msg:?}"),
                Err(Error::Closed(_)) => done.push(i),
                Err(e) => return Err(e),
            }
        }
        for i in done.into_iter().rev() {
            readers.remove(i);
        }
    }
    for mut p in children {
        p.join()?;
    }
    // ANCHOR_END: wait_main
    Ok(())
}
