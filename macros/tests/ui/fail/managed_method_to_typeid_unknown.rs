// `method_to_typeid` must name methods the proxy offers, which return a value.

struct Shop;

#[multiproc::managed(method_to_typeid = "browse, _hidden, nothing")]
impl Shop {
    fn browse(&self) -> Shop {
        Shop
    }

    fn _hidden(&self) -> Shop {
        Shop
    }

    fn nothing(&self) {}
}

fn main() {}
