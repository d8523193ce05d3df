// The options of #[managed] are checked: types, repeats, unknown keys.

struct A;

#[multiproc::managed(create_method = "no")]
impl A {}

struct B;

#[multiproc::managed(proxytype = "BProxy", proxytype = "BProxy")]
impl B {}

struct C;

#[multiproc::managed(callable = "make_c")]
impl C {}

#[multiproc::task(exposed = "x")]
fn task() {}

fn main() {}
