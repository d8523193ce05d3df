// A managed impl with nothing to proxy (only a constructor): the generated
// request enum is empty, and the proxy and `Managed` impl still compile.

struct Empty;

#[multiproc::managed]
impl Empty {
    fn new() -> Self {
        Empty
    }
}

fn main() {
    let _: fn() -> Empty = Empty::new;
    let _ = |p: &EmptyProxy| multiproc::managers::Proxy::token(p).id();
}
