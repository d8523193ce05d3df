struct Store {
    items: Vec<String>,
}

#[multiproc::managed]
impl Store {
    fn first(&self) -> &String {
        &self.items[0]
    }

    fn all(&self) -> &[String] {
        &self.items
    }
}

fn main() {}
