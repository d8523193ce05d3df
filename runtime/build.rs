//! No build-time work: `links = "multiproc"` only guards against two copies of the registry in one binary.
fn main() {}
