//! Tasks whose names (and argument names) match names the generated code uses
//! internally must still expand: the expansion must not capture them. (A
//! task's name is a `const` in its module, so a binding of the same name in
//! that module would be read as a pattern: the tasks sit in their own modules.)

mod a {
    #[multiproc::task]
    pub fn input(out: u64, count: u64, __mp_arg0: u64) -> u64 {
        out + count + __mp_arg0
    }
}

mod b {
    #[multiproc::task]
    pub fn describe(name: String, n: u32) -> String {
        format!("{name}:{n}")
    }
}

mod c {
    #[multiproc::task]
    pub fn out(input: Vec<u8>, __mp_input: u8) -> usize {
        input.len() + usize::from(__mp_input)
    }
}

mod d {
    #[multiproc::task]
    pub fn fds(describe: String) -> String {
        describe
    }

    #[multiproc::task]
    pub fn __MP_FN(call: u8) -> u8 {
        call
    }
}

fn main() {
    assert_eq!(a::input(1, 2, 3), 6);
    assert_eq!(b::describe("a".into(), 1), "a:1");
    assert_eq!(c::out(vec![1], 1), 2);
    assert_eq!(d::fds("x".into()), "x");
    assert_eq!(d::__MP_FN(7), 7);
}
