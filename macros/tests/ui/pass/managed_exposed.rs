// `exposed` chooses the proxy's methods (Python's `exposed=`), `_` ones included.

struct Counter {
    n: u64,
}

#[multiproc::managed(exposed = "get, _peek")]
impl Counter {
    fn get(&self) -> u64 {
        self.n
    }

    fn _peek(&self) -> u64 {
        self.n
    }

    #[allow(dead_code)]
    fn incr(&mut self) {
        self.n += 1;
    }
}

fn calls(c: &CounterProxy) -> multiproc::Result<u64> {
    Ok(c.get()? + c._peek()?)
}

fn main() {
    let _ = calls;
}
