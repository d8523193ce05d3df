// The proxy's arguments have the method's types: the request it sends is the
// method's own variant, so a wrong argument type does not compile.

struct Store {
    names: Vec<String>,
}

#[multiproc::managed]
impl Store {
    fn add(&mut self, name: String) -> usize {
        self.names.push(name);
        self.names.len()
    }
}

fn add(s: &StoreProxy) -> multiproc::Result<usize> {
    s.add(42u32)
}

fn main() {
    let _ = add;
}
