struct Store {
    items: Vec<String>,
}

#[multiproc::managed]
impl Store {
    fn into_items(self) -> Vec<String> {
        self.items
    }

    fn find(&self, name: &str) -> bool {
        self.items.iter().any(|i| i == name)
    }
}

fn main() {}
