// `create_method = false`: `Manager::create` does not take the type (Python's
// `register(create_method=False)`); another object's `method_to_typeid` makes it.

struct Cursor {
    at: usize,
}

#[multiproc::managed(create_method = false)]
impl Cursor {
    fn at(&self) -> usize {
        self.at
    }
}

fn make(manager: &multiproc::Manager) -> multiproc::Result<CursorProxy> {
    manager.create(Cursor { at: 0 })
}

fn main() {
    let _ = make;
}
