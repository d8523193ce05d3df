//! `#[multiproc::managed]` on an `impl` block: parse → validate → emit.
//!
//! Keeps the impl as written and generates, from the one list of methods:
//! `<Type>Proxy`, whose methods have the same names and arguments and return
//! `multiproc::Result<_>` of the original result; a private serde request
//! enum with one variant per method (what the proxy sends); and a `Managed`
//! impl whose `serve` matches that enum (calls by name are decoded into it
//! too), so the proxy and the dispatcher cannot disagree.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, Pat, ReturnType, Type};

use crate::args::Args;

/// Expands `#[managed]` on an inherent `impl` block.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = Args::parse_with_exposed(args)?;
    let imp: ItemImpl = syn::parse2(item)?;
    let model = Model::parse(&imp, &args)?;
    Ok(model.emit(&args, &imp))
}

struct Method<'a> {
    func: &'a ImplItemFn,
    mutable: bool,
    args: Vec<(Ident, &'a Type)>,
    /// Listed in `method_to_typeid`: the result is shared and comes back as its proxy.
    shares: bool,
}

struct Model<'a> {
    self_ident: Ident,
    methods: Vec<Method<'a>>,
}

fn combine(errors: Vec<syn::Error>) -> syn::Result<()> {
    match errors.into_iter().reduce(|mut a, b| {
        a.combine(b);
        a
    }) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn has_ref(ty: &Type) -> bool {
    match ty {
        Type::Reference(_) | Type::Ptr(_) | Type::ImplTrait(_) | Type::TraitObject(_) => true,
        Type::Paren(p) => has_ref(&p.elem),
        Type::Group(g) => has_ref(&g.elem),
        Type::Tuple(t) => t.elems.iter().any(has_ref),
        Type::Array(a) => has_ref(&a.elem),
        Type::Slice(_) => true,
        _ => false,
    }
}

impl<'a> Model<'a> {
    /// Reads the impl block and reports every method that cannot be proxied,
    /// each on its own span. The proxy offers the `exposed` methods, or else
    /// every method whose name does not start with `_` (as Python's managers
    /// hide them).
    fn parse(imp: &'a ItemImpl, args: &Args) -> syn::Result<Model<'a>> {
        let exposed = args.exposed.as_ref();
        let mut errors = Vec::new();
        let self_ident = check_impl(imp, &mut errors)?;
        let mut methods = Vec::new();
        let offered = |name: &str| match exposed {
            Some((names, _)) => names.iter().any(|n| n == name),
            None => !name.starts_with('_'),
        };
        for item in &imp.items {
            let ImplItem::Fn(func) = item else { continue };
            if !offered(&func.sig.ident.to_string()) {
                continue;
            }
            if let Some(m) = parse_method(func, &mut errors) {
                methods.push(m);
            }
        }
        if let Some((names, span)) = exposed {
            for n in names.iter().filter(|n| !methods.iter().any(|m| m.func.sig.ident == n.as_str())) {
                errors.push(syn::Error::new(
                    *span,
                    format!("`exposed` names `{n}`, which is not a method of this impl block"),
                ));
            }
        }
        if let Some((names, span)) = &args.method_to_typeid {
            mark_sharing(&mut methods, names, *span, &mut errors);
        }
        combine(errors)?;
        let self_ident = self_ident.unwrap_or_else(|| Ident::new("Unnamed", Span::call_site()));
        Ok(Model { self_ident, methods })
    }

    fn emit(&self, args: &Args, imp: &ItemImpl) -> TokenStream {
        let krate = &args.krate;
        let self_ty = &imp.self_ty;
        let ident = &self.self_ident;
        let request = self.emit_request(krate);
        let managed = self.emit_managed(krate, self_ty, args);
        let registry = emit_registry(krate, self_ty);
        let creatable = args.create_method.then(|| quote!(impl #krate::managers::Creatable for #self_ty {}));
        // A `proxytype` of the user's: no proxy is generated; its `KIND` must be the type's name.
        let Some(user_proxy) = &args.proxytype else {
            let proxy = format_ident!("{}Proxy", ident);
            let generated = self.emit_proxy(krate, &proxy);
            let methods = self.emit_proxy_methods(krate);
            let support = emit_proxy_serde(krate, &proxy);
            return quote! {
                #imp
                #generated
                #[doc(hidden)]
                #[allow(non_upper_case_globals, clippy::all)]
                const _: () = {
                    #request
                    impl #proxy {
                        #(#methods)*
                    }
                    #managed
                    #support
                    #registry
                    #creatable
                };
            };
        };
        quote! {
            #imp
            #[doc(hidden)]
            #[allow(non_upper_case_globals, clippy::all)]
            const _: () = {
                #request
                #managed
                #registry
                #creatable
                ::core::assert!(
                    #krate::managers::__managed::same_kind(
                        <#user_proxy as #krate::managers::Proxy>::KIND,
                        <#self_ty as #krate::managers::Managed>::TYPE_NAME,
                    ),
                    "a `proxytype`'s `Proxy::KIND` must be `<Type as Managed>::TYPE_NAME`",
                );
            };
        }
    }

    /// The generated `<Type>Proxy`: the struct and its `Proxy` impl.
    fn emit_proxy(&self, krate: &syn::Path, proxy: &Ident) -> TokenStream {
        let ident = &self.self_ident;
        let proxy_doc = format!(
            "Proxy for a [`{ident}`] served by a manager; made by `#[multiproc::managed]`. \
             Each method calls the one of the same name on the shared value and returns its result."
        );
        quote! {
            #[doc = #proxy_doc]
            #[derive(Clone, Debug)]
            pub struct #proxy {
                token: #krate::managers::Token,
            }

            impl #krate::managers::Proxy for #proxy {
                const KIND: &'static str = ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident));
                fn from_token(token: #krate::managers::Token) -> Self {
                    #proxy { token }
                }
                fn token(&self) -> &#krate::managers::Token {
                    &self.token
                }
            }
        }
    }

    /// The request enum (a variant per method, its fields the arguments) and
    /// its decoder for calls by name (the arguments as one tuple).
    fn emit_request(&self, krate: &syn::Path) -> TokenStream {
        let serde_path = quote!(#krate::__private::serde).to_string().replace(' ', "");
        let variants = self.methods.iter().map(|m| {
            let (name, names, tys) = (&m.func.sig.ident, m.names(), m.tys());
            quote!(#name { #(#names: #tys),* })
        });
        let named = self.methods.iter().map(|m| {
            let (name, names, tys) = (&m.func.sig.ident, m.names(), m.tys());
            let name_str = name.to_string();
            quote! {
                #name_str => ::core::option::Option::Some(
                    #krate::managers::__managed::decode_args::<(#(#tys,)*)>(args)
                        .map(|(#(#names,)*)| __MultiprocRequest::#name { #(#names),* }),
                ),
            }
        });
        quote! {
            #[allow(non_camel_case_types)]
            #[derive(#krate::__private::serde::Serialize, #krate::__private::serde::Deserialize)]
            #[serde(crate = #serde_path)]
            enum __MultiprocRequest {
                #(#variants,)*
            }

            /// A call by name: the request it stands for (`None`: no such method).
            fn __multiproc_named(
                method: &str,
                args: &[u8],
            ) -> ::core::option::Option<#krate::Result<__MultiprocRequest>> {
                match method {
                    #(#named)*
                    _ => ::core::option::Option::None,
                }
            }
        }
    }

    /// The proxy's methods: each sends its own request variant.
    fn emit_proxy_methods(&self, krate: &syn::Path) -> Vec<TokenStream> {
        self.methods
            .iter()
            .map(|m| {
                let sig = &m.func.sig;
                let (name, vis, names, tys, ret) = (&sig.ident, &m.func.vis, m.names(), m.tys(), m.ret());
                let docs = m.func.attrs.iter().filter(|a| a.path().is_ident("doc"));
                if m.shares {
                    return quote_spanned! {sig.span()=>
                        #(#docs)*
                        #[allow(dead_code, clippy::too_many_arguments)]
                        #vis fn #name(&self, #(#names: #tys),*)
                            -> #krate::Result<<#ret as #krate::managers::Managed>::Proxy>
                        {
                            #krate::managers::__managed::request::<_, #krate::managers::__managed::Shared>(
                                #krate::managers::Proxy::token(self),
                                &__MultiprocRequest::#name { #(#names),* },
                            )
                            .map(#krate::managers::__managed::adopt)
                        }
                    };
                }
                quote_spanned! {sig.span()=>
                    #(#docs)*
                    #[allow(dead_code, clippy::too_many_arguments)]
                    #vis fn #name(&self, #(#names: #tys),*) -> #krate::Result<#ret> {
                        #krate::managers::__managed::request(
                            #krate::managers::Proxy::token(self),
                            &__MultiprocRequest::#name { #(#names),* },
                        )
                    }
                }
            })
            .collect()
    }

    /// `impl Managed`: `serve` matches the request enum and runs the method.
    fn emit_managed(&self, krate: &syn::Path, self_ty: &Type, args: &Args) -> TokenStream {
        let arms = self.methods.iter().map(|m| {
            let (name, names) = (&m.func.sig.ident, m.names());
            let name_str = name.to_string();
            let call = if m.mutable { quote!(self.#name(#(#names),*)) } else { quote!((&*self).#name(#(#names),*)) };
            let reply = if m.shares {
                quote!(#krate::managers::__managed::share(#call))
            } else {
                quote!(#krate::managers::__managed::encode_result(&#call))
            };
            quote! {
                __MultiprocRequest::#name { #(#names),* } => {
                    #krate::managers::__managed::calling(#name_str);
                    #reply
                }
            }
        });
        let ident = &self.self_ident;
        let (proxy, type_name) = match &args.proxytype {
            Some(p) => (quote!(#p), quote!(::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)))),
            None => {
                let p = format_ident!("{}Proxy", ident);
                (quote!(#p), quote!(<#p as #krate::managers::Proxy>::KIND))
            }
        };
        quote! {
            impl #krate::managers::Managed for #self_ty {
                type Proxy = #proxy;
                fn encode_for_server(
                    &self,
                ) -> ::core::option::Option<#krate::Result<::std::vec::Vec<u8>>> {
                    #[allow(unused_imports)]
                    use #krate::managers::__managed::{ViaLocal as _, ViaSerde as _};
                    (&&#krate::managers::__managed::Probe::<Self>(::core::marker::PhantomData)).mp_encode(self)
                }
                const TYPE_NAME: &'static str = #type_name;
                #[allow(unreachable_code)]
                fn serve(&mut self, call: &[u8]) -> #krate::Result<::std::vec::Vec<u8>> {
                    let request = #krate::managers::__managed::decode_call::<Self, __MultiprocRequest>(
                        call,
                        __multiproc_named,
                    )?;
                    match request {
                        #(#arms)*
                    }
                }
            }
        }
    }
}

/// The generated proxy's serde (as its token).
fn emit_proxy_serde(krate: &syn::Path, proxy: &Ident) -> TokenStream {
    quote! {
        impl #krate::__private::serde::Serialize for #proxy {
            fn serialize<S: #krate::__private::serde::Serializer>(
                &self,
                s: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                #krate::__private::serde::Serialize::serialize(&self.token, s)
            }
        }

        impl<'de> #krate::__private::serde::Deserialize<'de> for #proxy {
            fn deserialize<D: #krate::__private::serde::Deserializer<'de>>(
                d: D,
            ) -> ::core::result::Result<Self, D::Error> {
                ::core::result::Result::Ok(#proxy {
                    token: <#krate::managers::Token as #krate::__private::serde::Deserialize<'de>>::deserialize(d)?,
                })
            }
        }
    }
}

/// The type's entry in the registry the server process builds serde values from.
fn emit_registry(krate: &syn::Path, self_ty: &Type) -> TokenStream {
    quote! {
        #krate::__private::inventory::submit! {
            #krate::managers::__managed::ManagedEntry {
                name: <#self_ty as #krate::managers::Managed>::TYPE_NAME,
                builder: || {
                    #[allow(unused_imports)]
                    use #krate::managers::__managed::{ViaLocal as _, ViaSerde as _};
                    (&&#krate::managers::__managed::Probe::<#self_ty>(::core::marker::PhantomData)).mp_builder()
                },
            }
        }
    }
}

impl Method<'_> {
    fn names(&self) -> Vec<&Ident> {
        self.args.iter().map(|(n, _)| n).collect()
    }

    fn tys(&self) -> Vec<&Type> {
        self.args.iter().map(|(_, t)| *t).collect()
    }

    fn ret(&self) -> Type {
        match &self.func.sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, t) => (**t).clone(),
        }
    }
}

/// Rejects trait and generic impls; the self type's name, if it has one.
fn check_impl(imp: &ItemImpl, errors: &mut Vec<syn::Error>) -> syn::Result<Option<Ident>> {
    if let Some((_, path, _)) = &imp.trait_ {
        return Err(syn::Error::new_spanned(
            path,
            "#[multiproc::managed] goes on an inherent `impl Type { … }` block, not a trait impl",
        ));
    }
    if !imp.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &imp.generics,
            "a managed impl cannot be generic: the manager serves one concrete type; \
             annotate an impl of one instantiation instead (`impl Store<u32> { … }`)",
        ));
    }
    Ok(match &*imp.self_ty {
        // `impl Store<u32>` (one instantiation) is fine; `impl<T> Store<T>` was rejected above.
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|seg| seg.ident.clone()),
        other => {
            errors.push(syn::Error::new_spanned(other, "#[multiproc::managed] needs a named type (`impl Counter`)"));
            None
        }
    })
}

/// One method to proxy, or `None` for an associated fn (a constructor stays
/// local) or a method that cannot be proxied (its faults go to `errors`).
fn parse_method<'a>(func: &'a ImplItemFn, errors: &mut Vec<syn::Error>) -> Option<Method<'a>> {
    let sig = &func.sig;
    let Some(FnArg::Receiver(receiver)) = sig.inputs.first() else { return None };
    let before = errors.len();
    let mut fault = |span: &dyn quote::ToTokens, msg: &str| errors.push(syn::Error::new_spanned(span, msg));
    if receiver.reference.is_none() {
        fault(
            receiver,
            "a managed method must take `&self` or `&mut self`: the value stays in the manager, \
             so it cannot be moved out by a call",
        );
    }
    if !sig.generics.params.is_empty() {
        fault(
            &sig.generics,
            "a managed method cannot be generic: its proxy sends arguments as one concrete type; \
             write a non-generic method per type",
        );
    }
    if let Some(a) = &sig.asyncness {
        fault(a, "a managed method cannot be `async`");
    }
    if let Some(v) = &sig.variadic {
        fault(v, "a managed method cannot be variadic");
    }
    if let ReturnType::Type(_, ty) = &sig.output
        && has_ref(ty)
    {
        fault(
            ty,
            "a managed method cannot return a reference or `impl Trait`: the result is copied to \
             the caller's process; return an owned value (`String`, `Vec<T>`, `T`)",
        );
    }
    let mut args = Vec::new();
    for (i, input) in sig.inputs.iter().skip(1).enumerate() {
        let FnArg::Typed(pt) = input else { continue };
        if has_ref(&pt.ty) {
            fault(
                &pt.ty,
                "a managed method argument must be an owned serde value: it is decoded in the manager; \
                 take `String` instead of `&str`, `Vec<T>` instead of `&[T]`",
            );
        }
        let name = match &*pt.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() => p.ident.clone(),
            _ => format_ident!("arg{}", i),
        };
        args.push((name, &*pt.ty));
    }
    (errors.len() == before).then_some(Method { func, mutable: receiver.mutability.is_some(), args, shares: false })
}

/// Marks the `method_to_typeid` methods; a name that is not an offered method,
/// or a method returning nothing, is an error.
fn mark_sharing(methods: &mut [Method<'_>], names: &[String], span: Span, errors: &mut Vec<syn::Error>) {
    for n in names {
        let Some(m) = methods.iter_mut().find(|m| m.func.sig.ident == n.as_str()) else {
            errors.push(syn::Error::new(
                span,
                format!("`method_to_typeid` names `{n}`, which is not a method the proxy offers"),
            ));
            continue;
        };
        if matches!(m.func.sig.output, ReturnType::Default) {
            errors.push(syn::Error::new_spanned(
                &m.func.sig,
                "a `method_to_typeid` method must return a `#[multiproc::managed]` value: it is shared \
                 as a new object and the caller gets its proxy",
            ));
        }
        m.shares = true;
    }
}
