//! `multiproc::lambda!(|x: u64| ...)` and `lambda!(move [k] |x: u64| ...)`:
//! lift an inline closure into a registered task.
//!
//! The closure's tokens are emitted twice: once inside the registry entry
//! (a plain `fn` pointer the child process finds by name) and once as the
//! value the parent uses. A capture list travels with every call as the
//! task's first argument, so the child rebuilds the same environment.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::visit::Visit;
use syn::{ExprClosure, Ident, Pat, Token, Type, bracketed};

use crate::task::submit_entry;

/// A captured variable, optionally typed: `k` or `k: u64`.
struct Capture {
    ident: Ident,
    ty: Option<Type>,
}

impl Parse for Capture {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let ident: Ident = input.parse()?;
        let ty = if input.peek(Token![:]) {
            input.parse::<Token![:]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(Capture { ident, ty })
    }
}

/// `[move [captures]] closure`.
struct Lambda {
    captures: Vec<Capture>,
    closure: ExprClosure,
}

impl Parse for Lambda {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut captures = Vec::new();
        if input.peek(Token![move]) && input.peek2(syn::token::Bracket) {
            input.parse::<Token![move]>()?;
            let content;
            bracketed!(content in input);
            captures = Punctuated::<Capture, Token![,]>::parse_terminated(&content)?.into_iter().collect();
        }
        let closure: ExprClosure = input.parse()?;
        Ok(Lambda { captures, closure })
    }
}

/// Names a closure body uses but neither binds nor receives: its captures.
#[derive(Default)]
struct FreeVars {
    bound: BTreeSet<String>,
    used: Vec<Ident>,
}

impl<'ast> Visit<'ast> for FreeVars {
    fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
        self.bound.insert(p.ident.to_string());
        syn::visit::visit_pat_ident(self, p);
    }
    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        // `f(x)`: `f` is most likely a function item, not a capture.
        if !matches!(&*call.func, syn::Expr::Path(_)) {
            self.visit_expr(&call.func);
        }
        for arg in &call.args {
            self.visit_expr(arg);
        }
    }
    fn visit_expr_path(&mut self, p: &'ast syn::ExprPath) {
        if p.qself.is_none() && p.path.segments.len() == 1 {
            let ident = &p.path.segments[0].ident;
            let s = ident.to_string();
            if s.chars().next().is_some_and(|c| c.is_lowercase() || c == '_') && s != "self" {
                self.used.push(ident.clone());
            }
        }
        syn::visit::visit_expr_path(self, p);
    }
    fn visit_macro(&mut self, _: &'ast syn::Macro) {}
}

/// Expands `lambda!(...)`.
pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let text = input.to_string();
    let Lambda { captures, closure } = syn::parse2(input)?;
    if let Some(a) = &closure.asyncness {
        return Err(syn::Error::new_spanned(a, "a task cannot be async"));
    }
    let (params, tys) = typed_params(&closure)?;
    check_captures(&captures, &closure, &params)?;
    Ok(emit(&text, &captures, &closure, &params, &tys))
}

/// The closure's parameter patterns and their types; each must be annotated.
fn typed_params(closure: &ExprClosure) -> syn::Result<(Vec<Pat>, Vec<Type>)> {
    let mut params = Vec::new();
    let mut tys = Vec::new();
    for input in &closure.inputs {
        match input {
            Pat::Type(pt) => {
                params.push((*pt.pat).clone());
                tys.push((*pt.ty).clone());
            }
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "annotate the type of each closure parameter, e.g. `|x: u64|`: it is decoded in the child process",
                ));
            }
        }
    }
    Ok((params, tys))
}

/// Rejects a body that uses a variable of the enclosing frame the capture
/// list does not name, with the `move [..]` list to write instead.
fn check_captures(captures: &[Capture], closure: &ExprClosure, params: &[Pat]) -> syn::Result<()> {
    let mut free = FreeVars::default();
    for p in params {
        free.visit_pat(p);
    }
    free.visit_expr(&closure.body);
    let listed: BTreeSet<String> = captures.iter().map(|c| c.ident.to_string()).collect();
    let mut missing: Vec<Ident> = Vec::new();
    for id in free.used {
        let s = id.to_string();
        if !free.bound.contains(&s) && !listed.contains(&s) && !missing.iter().any(|m| m == &id) {
            missing.push(id);
        }
    }
    let Some(first) = missing.first() else { return Ok(()) };
    let names: Vec<String> = missing.iter().map(|m| m.to_string()).collect();
    let params_txt: Vec<String> = closure.inputs.iter().map(|p| quote!(#p).to_string().replace(" : ", ": ")).collect();
    let msg = format!(
        "a lambda! closure cannot capture {}: a child process cannot see this stack frame; \
         list the captures explicitly so they travel with each call: \
         lambda!(move [{}] |{}| ...) (each captured value must be serde)",
        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
        names.iter().map(|n| format!("{n}: Type")).collect::<Vec<_>>().join(", "),
        params_txt.join(", "),
    );
    Err(syn::Error::new_spanned(first, msg))
}

/// The registry entry and the `Lambda` value: the closure's tokens twice,
/// under a name made from their hash and the call site.
fn emit(text: &str, captures: &[Capture], closure: &ExprClosure, params: &[Pat], tys: &[Type]) -> TokenStream {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    let tag = format!("{{closure#{:016x}}}", hasher.finish());
    let name = quote! {
        ::core::concat!(::core::module_path!(), "::", #tag, "@", ::core::line!(), ":", ::core::column!())
    };
    let krate = quote!(::multiproc);
    let body = &closure.body;
    let ret = match &closure.output {
        syn::ReturnType::Default => quote!(),
        syn::ReturnType::Type(_, ty) => quote!(-> #ty),
    };
    if captures.is_empty() {
        let f = quote!(|#(#params: #tys),*| #ret #body);
        let lifted = quote!(#krate::__private::Lambda::new(#name, #f));
        let submit = submit_entry(&krate, "new", quote!(#name,), &lifted, &quote!((#(#tys,)*)));
        return quote! {{
            #submit
            #krate::__private::Lambda::new(#name, #f)
        }};
    }
    let cap_idents: Vec<&Ident> = captures.iter().map(|c| &c.ident).collect();
    let cap_tys: Vec<TokenStream> = captures
        .iter()
        .map(|c| match &c.ty {
            Some(t) => quote!(#t),
            None => quote!(_),
        })
        .collect();
    let caps = format_ident!("__multiproc_captures");
    let f = quote!(|#caps: (#(#cap_tys,)*), #(#params: #tys),*| #ret {
        let (#(#cap_idents,)*) = #caps;
        #body
    });
    let lifted = quote!(#krate::__private::Lambda::new(#name, #f));
    let submit = submit_entry(&krate, "new", quote!(#name,), &lifted, &quote!(((#(#cap_tys,)*), #(#tys,)*)));
    quote! {{
        #submit
        #krate::__private::Lambda::with_captures(#name, (#(#cap_idents.clone(),)*), #f)
    }}
}
