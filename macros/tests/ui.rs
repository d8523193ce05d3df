//! Compile-time diagnostics of the macros (trybuild). Regenerate the `.stderr`
//! files with `TRYBUILD=overwrite cargo test -p multiproc-macros --test ui` and
//! review the diff: the messages are part of the user interface.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
