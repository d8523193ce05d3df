// As in Python's managers, a method whose name starts with `_` is not offered
// by the proxy (it stays callable on the value itself, in the server).

struct Counter {
    n: u64,
}

#[multiproc::managed]
impl Counter {
    fn get(&self) -> u64 {
        self.n
    }

    fn _reset(&mut self) {
        self.n = 0;
    }
}

fn reset(c: &CounterProxy) -> multiproc::Result<()> {
    c._reset()
}

fn main() {
    let _ = reset;
}
