// `exposed` must name methods of the impl block.

struct Counter {
    n: u64,
}

#[multiproc::managed(exposed = "get, gett")]
impl Counter {
    fn get(&self) -> u64 {
        self.n
    }
}

fn main() {}
