// A `proxytype`'s `Proxy::KIND` must be the type's `TYPE_NAME`, so `lookup` can check it.

use multiproc::managers::{Proxy, Token};

struct Cursor;

struct MyCursor {
    token: Token,
}

impl Proxy for MyCursor {
    const KIND: &'static str = "cursor";
    fn from_token(token: Token) -> Self {
        MyCursor { token }
    }
    fn token(&self) -> &Token {
        &self.token
    }
}

#[multiproc::managed(proxytype = "MyCursor")]
impl Cursor {}

fn main() {}
