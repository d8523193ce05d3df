#[multiproc::task]
unsafe fn deref(p: u64) -> u64 {
    p
}

fn main() {}
