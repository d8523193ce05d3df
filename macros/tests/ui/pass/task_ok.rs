//! Every shape of task the macros accept.

use multiproc::{Connection, Task};

#[multiproc::task]
fn nothing() {}

#[multiproc::task]
fn square(x: u64) -> u64 {
    x * x
}

#[multiproc::task]
fn eight(a: u8, b: u16, c: u32, d: u64, e: i64, f: String, g: Vec<u8>, h: (bool, char)) -> usize {
    usize::from(a) + usize::from(b) + c as usize + d as usize + e as usize + f.len() + g.len() + usize::from(h.0)
        + h.1.len_utf8()
}

#[multiproc::task]
fn with_conn(conn: Connection<String>, name: String) -> Result<(), String> {
    conn.send(&name).map_err(|e| e.to_string())
}

#[multiproc::task]
pub fn public_task(items: Vec<Option<String>>) -> Vec<String> {
    items.into_iter().flatten().collect()
}

mod nested {
    #[multiproc::task]
    pub(crate) fn in_module(x: [u32; 4]) -> u32 {
        x.iter().sum()
    }
}

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    // A task stays an ordinary, directly callable function.
    nothing();
    assert_eq!(square(7), 49);
    assert_eq!(eight(1, 2, 3, 4, 5, "six".into(), vec![7], (true, 'x')), 21);
    assert_eq!(public_task(vec![Some("a".into()), None]), vec!["a".to_string()]);
    assert_eq!(nested::in_module([1, 2, 3, 4]), 10);
    let (a, b) = multiproc::pipe()?;
    with_conn(b, "bob".into()).unwrap();
    assert_eq!(a.recv()?, "bob");

    // And runs in a child process under every start method.
    for m in [multiproc::StartMethod::Fork, multiproc::StartMethod::Spawn, multiproc::StartMethod::ForkServer] {
        let (a, b) = multiproc::pipe()?;
        let mut p = multiproc::get_context(m).process(with_conn, (b, m.to_string()))?;
        p.start()?;
        assert_eq!(a.recv()?, m.name());
        p.join()?;
        assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
    }

    let k = 5u64;
    let add = multiproc::lambda!(move [k: u64] |x: u64| x + k);
    assert_eq!(add.call((1,)), 6);
    let mul = multiproc::lambda!(|x: u64, y: u64| x * y);
    assert_eq!(mul.call((6, 7)), 42);
    Ok(())
}
