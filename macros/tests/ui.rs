//! Compile-time promises of the macros: what must compile, and the errors
//! (with their spans) for what must not. `TRYBUILD=overwrite` regenerates
//! the `.stderr` files; review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
