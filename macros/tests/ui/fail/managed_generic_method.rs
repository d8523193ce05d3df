struct Store {
    items: Vec<String>,
}

#[multiproc::managed]
impl Store {
    fn add<T: ToString>(&mut self, item: T) {
        self.items.push(item.to_string());
    }
}

fn main() {}
