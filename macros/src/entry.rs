//! `#[multiproc::main]` and `#[multiproc::test]`: wrap the body so a process
//! started by multiproc takes its child role before any user code runs.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;

use crate::args::Args;

/// Checks what both entry points require of the function.
fn validate(func: &ItemFn, what: &str) -> syn::Result<()> {
    let sig = &func.sig;
    let mut errors: Vec<syn::Error> = Vec::new();
    if let Some(a) = &sig.asyncness {
        errors.push(syn::Error::new_spanned(
            a,
            format!("#[multiproc::{what}] does not support `async fn`; start your async runtime inside the body"),
        ));
    }
    if !sig.inputs.is_empty() {
        errors.push(syn::Error::new_spanned(&sig.inputs, format!("#[multiproc::{what}] takes no arguments")));
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(&sig.generics, format!("#[multiproc::{what}] cannot be generic")));
    }
    match errors.into_iter().reduce(|mut a, b| {
        a.combine(b);
        a
    }) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The parsed entry function, its runtime path and the body as a closure
/// `move || -> R { body }` (shared by both entry points).
struct Entry {
    krate: syn::Path,
    func: ItemFn,
    closure: TokenStream,
}

fn parse(args: TokenStream, item: TokenStream, what: &str) -> syn::Result<Entry> {
    let krate = Args::parse(args)?.krate;
    let func: ItemFn = syn::parse2(item)?;
    validate(&func, what)?;
    let ret = match &func.sig.output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };
    let block = &func.block;
    let closure = quote!(move || -> #ret #block);
    Ok(Entry { krate, func, closure })
}

/// `fn main() -> R { body }` → `fn main() -> R { __private::main_entry(move || -> R { body }) }`.
pub(crate) fn expand_main(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let Entry { krate, func, closure } = parse(args, item, "main")?;
    let ItemFn { attrs, vis, sig, .. } = &func;
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            #krate::__private::main_entry(#closure)
        }
    })
}

/// `#[multiproc::test] fn t() { body }` → a `#[test]` whose body runs through
/// `__private::test_entry`, so a child re-running this test takes its role.
pub(crate) fn expand_test(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let Entry { krate, func, closure } = parse(args, item, "test")?;
    let ItemFn { attrs, vis, sig, .. } = &func;
    let ident = &sig.ident;
    Ok(quote! {
        #[::core::prelude::v1::test]
        #(#attrs)*
        #vis #sig {
            #krate::__private::test_entry(
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                #closure,
            )
        }
    })
}
