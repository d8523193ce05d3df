// The proxy's methods are the impl's: a misspelt call is a compile error, not a
// runtime `Error::Remote` from the server.

struct Counter {
    n: u64,
}

#[multiproc::managed]
impl Counter {
    fn incr(&mut self, by: u64) -> u64 {
        self.n += by;
        self.n
    }
}

fn bump(c: &CounterProxy) -> multiproc::Result<u64> {
    c.incrr(1)
}

fn main() {
    let _ = bump;
}
