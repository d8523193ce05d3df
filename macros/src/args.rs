//! `key = value` arguments shared by the attribute macros.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, MetaNameValue, Token};

/// Parsed attribute arguments: today only `crate = "path"`.
pub(crate) struct Args {
    /// Path of the runtime crate (`::multiproc` unless overridden).
    pub(crate) krate: syn::Path,
}

impl Args {
    /// Parses `crate = "path"`; rejects repeats and unknown keys.
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Args> {
        let mut krate: Option<syn::Path> = None;
        let list = Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(tokens)?;
        for nv in list {
            if nv.path.is_ident("crate") {
                if krate.is_some() {
                    return Err(syn::Error::new_spanned(&nv.path, "`crate` set multiple times"));
                }
                let Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) = &nv.value else {
                    return Err(syn::Error::new_spanned(&nv.value, "expected a string: crate = \"path\""));
                };
                krate = Some(s.parse()?);
            } else {
                return Err(syn::Error::new_spanned(&nv.path, "unknown argument; the only valid key is `crate`"));
            }
        }
        Ok(Args { krate: krate.unwrap_or_else(|| syn::parse_quote!(::multiproc)) })
    }
}
