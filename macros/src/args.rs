//! `key = value` arguments shared by the attribute macros.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, MetaNameValue, Token};

/// Parsed attribute arguments: `crate = "path"`, and for `#[managed]`,
/// `exposed = "a, b"`.
pub(crate) struct Args {
    /// Path of the runtime crate (`::multiproc` unless overridden).
    pub(crate) krate: syn::Path,
    /// `#[managed(exposed = "a, b")]`: the methods a proxy offers (Python's
    /// `exposed=`), with the span to report a wrong name on.
    pub(crate) exposed: Option<(Vec<String>, proc_macro2::Span)>,
}

impl Args {
    /// Parses `crate = "path"`; rejects repeats and unknown keys.
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Args> {
        let args = Args::parse_with_exposed(tokens)?;
        if let Some((_, span)) = args.exposed {
            return Err(syn::Error::new(span, "`exposed` is an argument of #[multiproc::managed] only"));
        }
        Ok(args)
    }

    /// Parses `crate = "path"` and `exposed = "a, b"`; rejects repeats and unknown keys.
    pub(crate) fn parse_with_exposed(tokens: TokenStream) -> syn::Result<Args> {
        let mut krate: Option<syn::Path> = None;
        let mut exposed = None;
        let list = Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(tokens)?;
        for nv in list {
            if nv.path.is_ident("exposed") {
                let Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) = &nv.value else {
                    return Err(syn::Error::new_spanned(&nv.value, "expected a string: exposed = \"method, method\""));
                };
                if exposed.is_some() {
                    return Err(syn::Error::new_spanned(&nv.path, "`exposed` set multiple times"));
                }
                let names = s.value().split(',').map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect();
                exposed = Some((names, s.span()));
            } else if nv.path.is_ident("crate") {
                if krate.is_some() {
                    return Err(syn::Error::new_spanned(&nv.path, "`crate` set multiple times"));
                }
                let Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) = &nv.value else {
                    return Err(syn::Error::new_spanned(&nv.value, "expected a string: crate = \"path\""));
                };
                krate = Some(s.parse()?);
            } else {
                return Err(syn::Error::new_spanned(
                    &nv.path,
                    "unknown argument; the valid keys are `crate` and, for #[managed], `exposed`",
                ));
            }
        }
        Ok(Args { krate: krate.unwrap_or_else(|| syn::parse_quote!(::multiproc)), exposed })
    }
}
