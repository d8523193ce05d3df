// Python's `register` options: `method_to_typeid` (a method's result comes
// back as a proxy), `create_method = false`, and a custom `proxytype`.

use multiproc::managers::{Managed, Proxy, Token};

struct Library;

struct Cursor {
    at: usize,
}

#[multiproc::managed(method_to_typeid = "open")]
impl Library {
    fn open(&self, at: usize) -> Cursor {
        Cursor { at }
    }
}

/// A hand-written proxy: its methods call the shared object by name.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct MyCursor {
    token: Token,
}

impl Proxy for MyCursor {
    const KIND: &'static str = <Cursor as Managed>::TYPE_NAME;
    fn from_token(token: Token) -> Self {
        MyCursor { token }
    }
    fn token(&self) -> &Token {
        &self.token
    }
}

impl MyCursor {
    fn position(&self) -> multiproc::Result<usize> {
        self.token.call("at", &())
    }
}

#[multiproc::managed(proxytype = "MyCursor", create_method = false)]
impl Cursor {
    fn at(&self) -> usize {
        self.at
    }
}

fn calls(manager: &multiproc::Manager) -> multiproc::Result<usize> {
    let library = manager.create(Library)?;
    let cursor: MyCursor = library.open(3)?;
    cursor.position()
}

fn main() {
    let _ = calls;
}
