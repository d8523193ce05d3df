//! Python's "Server process" example: a child fills a shared dict and reverses
//! a shared list; the parent prints both. Prints (in insertion order, as
//! CPython 3.7+ does):
//!
//! ```text
//! {1: '1', '2': 2, 0.25: None}
//! [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
//! {'a', 'b'}
//! ```
//!
//! Run it with `cargo run --example manager_dict_list`.

use std::fmt;

use multiproc::managers::{DictProxy, ListProxy};
use serde::{Deserialize, Serialize};

// ANCHOR: types
/// Python dict keys of mixed types, as one Rust enum. The manager compares
/// keys by their encoded bytes, so even a float key works.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Key {
    Int(i64),
    Str(String),
    Float(f64),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Val {
    Int(i64),
    Str(String),
    None,
}
// ANCHOR_END: types

// (The formatter is not `f`: that names the task below, a `const`, which a binding cannot shadow.)
impl fmt::Display for Key {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(i) => write!(out, "{i}"),
            Key::Str(s) => write!(out, "'{s}'"),
            Key::Float(x) => write!(out, "{x}"),
        }
    }
}

impl fmt::Display for Val {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Int(i) => write!(out, "{i}"),
            Val::Str(s) => write!(out, "'{s}'"),
            Val::None => write!(out, "None"),
        }
    }
}

// ANCHOR: main
#[multiproc::task]
fn f(d: DictProxy<Key, Val>, l: ListProxy<i32>, s: DictProxy<String, ()>) {
    d.insert(Key::Int(1), Val::Str("1".into())).unwrap();
    d.insert(Key::Str("2".into()), Val::Int(2)).unwrap();
    d.insert(Key::Float(0.25), Val::None).unwrap();
    l.reverse().unwrap();
    s.insert("a".into(), ()).unwrap(); // a set: a dict with `()` values
    s.insert("b".into(), ()).unwrap();
}

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let manager = multiproc::Manager::start()?;
    let d = manager.dict::<Key, Val>()?;
    let l = manager.list_from(0..10)?;
    let s = manager.dict::<String, ()>()?;

    let mut p = multiproc::Process::new(f, (d.clone(), l.clone(), s.clone()))?;
    p.start()?;
    p.join()?;

    let items: Vec<String> = d.items()?.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    println!("{{{}}}", items.join(", "));
    println!("{:?}", l.snapshot()?);
    let members: Vec<String> = s.keys()?.iter().map(|k| format!("'{k}'")).collect();
    println!("{{{}}}", members.join(", "));
    manager.shutdown()
}
// ANCHOR_END: main
