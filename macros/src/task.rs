//! `#[multiproc::task]`: parse → validate → emit.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Attribute, FnArg, ItemFn, Type};

use crate::args::Args;

/// Expands `#[task]` on a free function.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = Args::parse(args)?;
    let func: ItemFn = syn::parse2(item)?;
    validate(&func)?;
    Ok(emit(&args, &func))
}

/// Collects every reason the function cannot be a task, each on its own span.
fn validate(func: &ItemFn) -> syn::Result<()> {
    let sig = &func.sig;
    let mut errors: Vec<syn::Error> = Vec::new();
    let mut fault = |span: &dyn quote::ToTokens, msg: &str| errors.push(syn::Error::new_spanned(span, msg));
    if let Some(a) = &sig.asyncness {
        fault(a, "a task cannot be `async`; make it a plain fn (a child process calls it synchronously)");
    }
    if let Some(u) = &sig.unsafety {
        fault(u, "a task cannot be `unsafe`: a pool or child process calls it with no way to uphold its contract");
    }
    if let Some(a) = &sig.abi {
        fault(a, "a task cannot have an `extern` ABI; make it a plain Rust fn");
    }
    if !sig.generics.params.is_empty() {
        fault(
            &sig.generics,
            "a task cannot be generic: a child process finds it by name, so it needs one concrete signature; \
             write a non-generic wrapper and annotate that",
        );
    }
    if let Some(w) = &sig.generics.where_clause {
        fault(w, "a task cannot have a `where` clause; give it concrete argument types");
    }
    if let Some(v) = &sig.variadic {
        fault(v, "a task cannot be variadic");
    }
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => fault(
                r,
                "a task must be a free function, not a method: `self` cannot be sent to a child process; \
                 take the value as an ordinary argument instead",
            ),
            FnArg::Typed(pt) => check_arg_type(&pt.ty, &mut fault),
        }
    }
    if let syn::ReturnType::Type(_, ty) = &sig.output
        && contains_impl_trait(ty)
    {
        fault(ty, "a task cannot return `impl Trait`; name the concrete return type");
    }
    match errors.into_iter().reduce(|mut a, b| {
        a.combine(b);
        a
    }) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn check_arg_type(ty: &Type, fault: &mut dyn FnMut(&dyn quote::ToTokens, &str)) {
    match ty {
        Type::Reference(r) => fault(
            r,
            "a task argument must be an owned value: it is decoded in the child process; \
             take `String` instead of `&str`, `Vec<T>` instead of `&[T]`, `T` instead of `&T`",
        ),
        Type::ImplTrait(i) => fault(i, "a task argument cannot be `impl Trait`; name a concrete serde type"),
        Type::Paren(p) => check_arg_type(&p.elem, fault),
        Type::Group(g) => check_arg_type(&g.elem, fault),
        Type::Tuple(t) => t.elems.iter().for_each(|e| check_arg_type(e, fault)),
        Type::Array(a) => check_arg_type(&a.elem, fault),
        Type::Slice(s) => fault(s, "a task argument cannot be an unsized slice; use `Vec<T>`"),
        Type::TraitObject(t) => fault(t, "a task argument cannot be a trait object; name a concrete serde type"),
        Type::Ptr(p) => fault(p, "a task argument cannot be a raw pointer: it means nothing in another process"),
        _ => {}
    }
}

fn contains_impl_trait(ty: &Type) -> bool {
    match ty {
        Type::ImplTrait(_) => true,
        Type::Paren(p) => contains_impl_trait(&p.elem),
        Type::Group(g) => contains_impl_trait(&g.elem),
        Type::Tuple(t) => t.elems.iter().any(contains_impl_trait),
        _ => false,
    }
}

/// The user's function under a hidden name; under its own name a `const` of a
/// unique wrapper type that implements `Task` (and derefs to the function, so
/// calls still work); and its registry entry in an anonymous const.
fn emit(args: &Args, func: &ItemFn) -> TokenStream {
    let krate = &args.krate;
    let ident = &func.sig.ident;
    let vis = &func.vis;
    let hidden = format_ident!("__multiproc_task_{}", ident);
    let wrapper = format_ident!("__MultiprocTask_{}", ident);
    let tys: Vec<&Type> = func
        .sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(pt) => Some(&*pt.ty),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let (docs, cfgs, others) = split_attrs(&func.attrs);
    let mut inner = func.clone();
    inner.sig.ident = hidden.clone();
    inner.attrs = cfgs.iter().chain(&others).cloned().cloned().collect();
    let name = quote!(::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)));
    let submit = submit_entry(&quote!(#krate), "new", quote!(#name,), &quote!(#ident), &quote!((#(#tys,)*)));
    let impls = wrapper_impls(krate, &wrapper, &hidden, &tys, &func.sig.output, &cfgs, &name);
    let about = format!(
        " *A [`#[multiproc::task]`](https://docs.rs/multiproc/latest/multiproc/attr.task.html): \
         call it as `{ident}(..)`, or pass `{ident}` to a `Pool` or `Process`.*"
    );
    quote! {
        #[doc(hidden)]
        #[allow(non_snake_case)]
        #inner

        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug)]
        #vis struct #wrapper;

        #(#cfgs)*
        #(#docs)*
        #[doc = ""]
        #[doc = #about]
        #[allow(non_upper_case_globals)]
        #vis const #ident: #wrapper = #wrapper;

        #impls

        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_upper_case_globals, clippy::all)]
        const _: () = {
            #submit
        };
    }
}

/// The wrapper type's impls: `Deref` to the function pointer, `Task` (named
/// `name`) and `ThreadTask`, each calling the hidden function `hidden`.
fn wrapper_impls(
    krate: &syn::Path,
    wrapper: &proc_macro2::Ident,
    hidden: &proc_macro2::Ident,
    tys: &[&Type],
    output: &syn::ReturnType,
    cfgs: &[&Attribute],
    name: &TokenStream,
) -> TokenStream {
    let vals: Vec<proc_macro2::Ident> = (0..tys.len()).map(|i| format_ident!("__mp_arg{i}")).collect();
    let ret = match output {
        syn::ReturnType::Default => quote!(()),
        syn::ReturnType::Type(_, ty) => quote!(#ty),
    };
    let mut bulk = bulk_hooks(krate, tys);
    if let syn::ReturnType::Type(_, ty) = output
        && lifetime_free(ty)
    {
        bulk.extend(quote! {
            fn bulk_output() -> ::core::option::Option<#krate::__private::TakeBulk<#ret>> {
                #krate::__private::bulk_taker::<#ret>()
            }
        });
    }
    quote! {
        #(#cfgs)*
        impl ::core::ops::Deref for #wrapper {
            type Target = fn(#(#tys),*) -> #ret;
            fn deref(&self) -> &Self::Target {
                const __MP_FN: fn(#(#tys),*) -> #ret = #hidden;
                &__MP_FN
            }
        }

        #(#cfgs)*
        impl #krate::Task<(#(#tys,)*)> for #wrapper {
            type Output = #ret;
            #[allow(clippy::unused_unit)]
            fn call(&self, (#(#vals,)*): (#(#tys,)*)) -> #ret {
                #hidden(#(#vals),*)
            }
            fn task_name(&self) -> #krate::Result<&'static str> {
                ::core::result::Result::Ok(#name)
            }
            #bulk
        }

        #(#cfgs)*
        impl #krate::ThreadTask<(#(#tys,)*)> for #wrapper {
            type Output = #ret;
            #[allow(clippy::unused_unit)]
            fn call_here(&self, (#(#vals,)*): (#(#tys,)*)) -> #ret {
                #hidden(#(#vals),*)
            }
        }
    }
}

/// The `Task` methods that let a single bulk argument (`Vec<u8>`, `String`,
/// `Vec<f64>`, …) cross in one copy. They need `'static` argument types, so
/// they are emitted only when no argument type names a lifetime or a
/// reference (the trait's defaults, which serde-encode, serve the rest).
fn bulk_hooks(krate: &syn::Path, tys: &[&Type]) -> TokenStream {
    if !tys.iter().all(|t| lifetime_free(t)) {
        return TokenStream::new();
    }
    quote! {
        fn put_bulk_args(&self, __mp_args: &(#(#tys,)*), __mp_buf: &mut ::std::vec::Vec<u8>) -> bool {
            #krate::__private::put_bulk(__mp_args, __mp_buf)
        }
        fn take_bulk_args(
            &self,
            __mp_bytes: &[u8],
        ) -> ::core::option::Option<::core::result::Result<((#(#tys,)*), usize), ::std::string::String>> {
            #krate::__private::take_bulk(__mp_bytes)
        }
    }
}

/// Whether `ty` is written without references, lifetimes (but `'static`),
/// `impl`/`dyn` types or `_`: then, having no generics, it is `'static`
/// (short of a path whose lifetime parameter is left out, such as `Cow<str>`,
/// which the `elided_lifetimes_in_paths` lint flags).
fn lifetime_free(ty: &Type) -> bool {
    use syn::visit::Visit;
    struct V(bool);
    impl<'ast> Visit<'ast> for V {
        fn visit_lifetime(&mut self, l: &'ast syn::Lifetime) {
            self.0 &= l.ident == "static";
        }
        fn visit_type(&mut self, t: &'ast Type) {
            match t {
                Type::Reference(_) | Type::ImplTrait(_) | Type::TraitObject(_) | Type::Infer(_) | Type::Macro(_) => {
                    self.0 = false
                }
                Type::Ptr(_) | Type::BareFn(_) | Type::Verbatim(_) => self.0 = false,
                _ => syn::visit::visit_type(self, t),
            }
        }
    }
    let mut v = V(true);
    v.visit_type(ty);
    v.0
}

/// The function's attributes: doc comments (they document the const),
/// `cfg`s (on every item emitted) and the rest (on the function).
fn split_attrs(attrs: &[Attribute]) -> (Vec<&Attribute>, Vec<&Attribute>, Vec<&Attribute>) {
    let (mut docs, mut cfgs, mut others) = (Vec::new(), Vec::new(), Vec::new());
    for a in attrs {
        if a.path().is_ident("doc") {
            docs.push(a);
        } else if a.path().is_ident("cfg") {
            cfgs.push(a);
        } else {
            others.push(a);
        }
    }
    (docs, cfgs, others)
}

/// The `inventory` submission of one task entry: `TaskEntry::#ctor(#head
/// invoker)` with its batch invoker and its process-target runner, all calling
/// `f` on argument tuple type `args`.
pub(crate) fn submit_entry(
    krate: &TokenStream,
    ctor: &str,
    head: TokenStream,
    f: &TokenStream,
    args: &TokenStream,
) -> TokenStream {
    let ctor = quote::format_ident!("{ctor}");
    quote! {
        #krate::__private::inventory::submit! {
            #krate::__private::TaskEntry::#ctor(
                #head
                |__mp_input, __mp_fds, __mp_out| #krate::__private::invoke::<_, #args>(#f, __mp_input, __mp_fds, __mp_out),
            )
            .with_seq(|__mp_input, __mp_count, __mp_out, __mp_describe| {
                #krate::__private::invoke_seq::<_, #args>(#f, __mp_input, __mp_count, __mp_out, __mp_describe)
            })
            .with_target(|__mp_input, __mp_fds| {
                #[allow(unused_imports)]
                use #krate::__private::{ReturnedErr as _, ReturnedValue as _};
                let __mp_returned = <_ as #krate::Task<#args>>::call_encoded(&#f, __mp_input, __mp_fds)?;
                ::core::result::Result::Ok((&#krate::__private::Returned(&__mp_returned)).failure())
            })
        }
    }
}
