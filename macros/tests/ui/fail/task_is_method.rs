struct Counter {
    n: u64,
}

impl Counter {
    #[multiproc::task]
    fn bump(&mut self, by: u64) -> u64 {
        self.n += by;
        self.n
    }
}

fn main() {}
