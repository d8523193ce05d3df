//! Tasks whose names (and argument names) match names the generated code uses
//! internally must still expand: the expansion must not capture them.

#[multiproc::task]
fn input(out: u64, count: u64) -> u64 {
    out + count
}

#[multiproc::task]
fn describe(name: String, n: u32) -> String {
    format!("{name}:{n}")
}

#[multiproc::task]
fn out(input: Vec<u8>) -> usize {
    input.len()
}

#[multiproc::task]
fn fds(describe: String) -> String {
    describe
}

fn main() {
    assert_eq!(input(1, 2), 3);
    assert_eq!(describe("a".into(), 1), "a:1");
    assert_eq!(out(vec![1]), 1);
    assert_eq!(fds("x".into()), "x");
}
