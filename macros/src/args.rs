//! `key = value` arguments shared by the attribute macros.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Lit, LitStr, MetaNameValue, Token};

/// Parsed attribute arguments: `crate = "path"`, and for `#[managed]` the
/// options of Python's `BaseManager.register`.
pub(crate) struct Args {
    /// Path of the runtime crate (`::multiproc` unless overridden).
    pub(crate) krate: syn::Path,
    /// `#[managed(exposed = "a, b")]`: the methods a proxy offers (Python's
    /// `exposed=`), with the span to report a wrong name on.
    pub(crate) exposed: Option<(Vec<String>, Span)>,
    /// `#[managed(method_to_typeid = "a, b")]`: the methods whose result is
    /// shared as a new object and comes back as its proxy.
    pub(crate) method_to_typeid: Option<(Vec<String>, Span)>,
    /// `#[managed(create_method = false)]`: `Manager::create` does not accept the type.
    pub(crate) create_method: bool,
    /// `#[managed(proxytype = "path")]`: the user's proxy type instead of a generated one.
    pub(crate) proxytype: Option<syn::Path>,
    /// The first `#[managed]`-only key given, for `Args::parse` to reject.
    managed_only: Option<syn::Path>,
}

const KEYS: &str = "the valid keys are `crate` and, for #[managed], `exposed`, `method_to_typeid`, \
                    `create_method` and `proxytype`";

fn string<'a>(nv: &'a MetaNameValue, example: &str) -> syn::Result<&'a LitStr> {
    match &nv.value {
        Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => Ok(s),
        other => Err(syn::Error::new_spanned(other, format!("expected a string: {example}"))),
    }
}

fn names(s: &LitStr) -> (Vec<String>, Span) {
    (s.value().split(',').map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect(), s.span())
}

fn once<T>(slot: &Option<T>, nv: &MetaNameValue) -> syn::Result<()> {
    match slot {
        Some(_) => Err(syn::Error::new_spanned(&nv.path, "argument set multiple times")),
        None => Ok(()),
    }
}

impl Args {
    /// Parses `crate = "path"`; rejects repeats and unknown keys.
    pub(crate) fn parse(tokens: TokenStream) -> syn::Result<Args> {
        let args = Args::parse_with_exposed(tokens)?;
        if let Some(path) = &args.managed_only {
            return Err(syn::Error::new_spanned(path, "this is an argument of #[multiproc::managed] only"));
        }
        Ok(args)
    }

    /// Parses `crate`, `exposed`, `method_to_typeid`, `create_method` and
    /// `proxytype`; rejects repeats and unknown keys.
    pub(crate) fn parse_with_exposed(tokens: TokenStream) -> syn::Result<Args> {
        let (mut krate, mut exposed, mut to_typeid, mut create, mut proxytype) = (None, None, None, None, None);
        let mut managed_only = None;
        let list = Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(tokens)?;
        for nv in list {
            let key = nv.path.get_ident().map(ToString::to_string).unwrap_or_default();
            if key != "crate" && managed_only.is_none() {
                managed_only = Some(nv.path.clone());
            }
            match key.as_str() {
                "exposed" => {
                    once(&exposed, &nv)?;
                    exposed = Some(names(string(&nv, "exposed = \"method, method\"")?));
                }
                "method_to_typeid" => {
                    once(&to_typeid, &nv)?;
                    to_typeid = Some(names(string(&nv, "method_to_typeid = \"method, method\"")?));
                }
                "create_method" => {
                    once(&create, &nv)?;
                    let Expr::Lit(ExprLit { lit: Lit::Bool(b), .. }) = &nv.value else {
                        return Err(syn::Error::new_spanned(&nv.value, "expected a bool: create_method = false"));
                    };
                    create = Some(b.value);
                }
                "proxytype" => {
                    once(&proxytype, &nv)?;
                    proxytype = Some(string(&nv, "proxytype = \"MyProxy\"")?.parse::<syn::Path>()?);
                }
                "crate" => {
                    once(&krate, &nv)?;
                    krate = Some(string(&nv, "crate = \"path\"")?.parse::<syn::Path>()?);
                }
                _ => return Err(syn::Error::new_spanned(&nv.path, format!("unknown argument; {KEYS}"))),
            }
        }
        Ok(Args {
            krate: krate.unwrap_or_else(|| syn::parse_quote!(::multiproc)),
            exposed,
            method_to_typeid: to_typeid,
            create_method: create.unwrap_or(true),
            proxytype,
            managed_only,
        })
    }
}
