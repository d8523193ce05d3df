//! Procedural macros of [multiproc](https://docs.rs/multiproc).
//!
//! Use them through the `multiproc` crate (`#[multiproc::task]`,
//! `#[multiproc::main]`, `#[multiproc::test]`, `multiproc::lambda!`), never
//! directly: the generated code reaches the runtime through
//! `multiproc::__private`, which is not a stable API.

use proc_macro::TokenStream;

mod args;
mod entry;
mod lambda;
mod managed;
mod task;

/// Registers a free function as a task that child processes can run by name.
///
/// See `multiproc::task` for the full documentation.
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    output(task::expand(args.into(), item.clone().into()), item)
}

/// Makes `fn main` the entry point of multiproc child processes.
///
/// See `multiproc::main` for the full documentation.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    output(entry::expand_main(args.into(), item.clone().into()), item)
}

/// A `#[test]` whose child processes re-run exactly this test in their role.
///
/// See `multiproc::test` for the full documentation.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    output(entry::expand_test(args.into(), item.clone().into()), item)
}

/// Shares a type's methods through a manager: generates `<Type>Proxy`.
///
/// See `multiproc::managed` for the full documentation.
#[proc_macro_attribute]
pub fn managed(args: TokenStream, item: TokenStream) -> TokenStream {
    output(managed::expand(args.into(), item.clone().into()), item)
}

/// Lifts an inline closure into a registered task.
///
/// See `multiproc::lambda!` for the full documentation.
#[proc_macro]
pub fn lambda(input: TokenStream) -> TokenStream {
    match lambda::expand(input.into()) {
        Ok(ts) => ts.into(),
        Err(e) => e.into_compile_error().into(),
    }
}

/// On error, emit the untouched item beside the error so IDEs and later
/// diagnostics keep working (tokio's `token_stream_with_error`).
fn output(result: syn::Result<proc_macro2::TokenStream>, item: TokenStream) -> TokenStream {
    match result {
        Ok(ts) => ts.into(),
        Err(e) => {
            let mut out: proc_macro2::TokenStream = item.into();
            out.extend(e.into_compile_error());
            out.into()
        }
    }
}
