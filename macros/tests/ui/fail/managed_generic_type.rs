struct Store<T> {
    items: Vec<T>,
}

#[multiproc::managed]
impl<T: Send + 'static> Store<T> {
    fn len(&self) -> usize {
        self.items.len()
    }
}

fn main() {}
