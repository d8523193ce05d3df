//! `#[multiproc::managed]` on an `impl` block: parse → validate → emit.
//!
//! Keeps the impl as written and generates `<Type>Proxy`, whose methods have
//! the same names and arguments and return `multiproc::Result<_>` of the
//! original result, plus a `Managed` impl that dispatches calls by name.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, Pat, ReturnType, Type};

use crate::args::Args;

/// Expands `#[managed]` on an inherent `impl` block.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = Args::parse(args)?;
    let imp: ItemImpl = syn::parse2(item)?;
    let model = Model::parse(&imp)?;
    Ok(model.emit(&args, &imp))
}

struct Method<'a> {
    func: &'a ImplItemFn,
    mutable: bool,
    args: Vec<(Ident, &'a Type)>,
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
    /// Reads the impl block and reports every method that cannot be proxied, each on its own span.
    fn parse(imp: &'a ItemImpl) -> syn::Result<Model<'a>> {
        let mut errors = Vec::new();
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
        let self_ident = match &*imp.self_ty {
            // `impl Store<u32>` (one instantiation) is fine; `impl<T> Store<T>` was rejected above.
            Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|seg| seg.ident.clone()),
            other => {
                errors
                    .push(syn::Error::new_spanned(other, "#[multiproc::managed] needs a named type (`impl Counter`)"));
                None
            }
        };
        let mut methods = Vec::new();
        for item in &imp.items {
            let ImplItem::Fn(func) = item else { continue };
            let sig = &func.sig;
            let receiver = match sig.inputs.first() {
                Some(FnArg::Receiver(r)) => r,
                // Associated functions (constructors) stay local: nothing to proxy.
                _ => continue,
            };
            let mut ok = true;
            let mut fault = |span: &dyn quote::ToTokens, msg: &str| {
                errors.push(syn::Error::new_spanned(span, msg));
                ok = false;
            };
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
            if ok {
                methods.push(Method { func, mutable: receiver.mutability.is_some(), args });
            }
        }
        combine(errors)?;
        let self_ident = self_ident.unwrap_or_else(|| Ident::new("Unnamed", Span::call_site()));
        Ok(Model { self_ident, methods })
    }

    fn emit(&self, args: &Args, imp: &ItemImpl) -> TokenStream {
        let krate = &args.krate;
        let self_ty = &imp.self_ty;
        let ident = &self.self_ident;
        let proxy = format_ident!("{}Proxy", ident);
        let proxy_doc = format!(
            "Proxy for a [`{ident}`] served by a manager; made by `#[multiproc::managed]`. \
             Each method calls the one of the same name on the shared value and returns its result."
        );
        let mut proxy_methods = Vec::new();
        let mut arms = Vec::new();
        for m in &self.methods {
            let sig = &m.func.sig;
            let name = &sig.ident;
            let name_str = name.to_string();
            let vis = &m.func.vis;
            let docs = m.func.attrs.iter().filter(|a| a.path().is_ident("doc"));
            let names: Vec<&Ident> = m.args.iter().map(|(n, _)| n).collect();
            let tys: Vec<&Type> = m.args.iter().map(|(_, t)| *t).collect();
            let ret: Type = match &sig.output {
                ReturnType::Default => syn::parse_quote!(()),
                ReturnType::Type(_, t) => (**t).clone(),
            };
            let span = sig.span();
            proxy_methods.push(quote_spanned! {span=>
                #(#docs)*
                #[allow(dead_code, clippy::too_many_arguments)]
                #vis fn #name(&self, #(#names: #tys),*) -> #krate::Result<#ret> {
                    #krate::managers::Proxy::token(self).call(#name_str, &(#(#names,)*))
                }
            });
            let call = if m.mutable { quote!(self.#name(#(#names),*)) } else { quote!((&*self).#name(#(#names),*)) };
            arms.push(quote! {
                #name_str => {
                    let (#(#names,)*): (#(#tys,)*) = #krate::managers::__managed::decode_args(args)?;
                    #krate::managers::__managed::encode_result(&#call)
                }
            });
        }
        quote! {
            #imp

            #[doc = #proxy_doc]
            #[derive(Clone, Debug)]
            pub struct #proxy {
                token: #krate::managers::Token,
            }

            impl #proxy {
                #(#proxy_methods)*
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

            #[doc(hidden)]
            #[allow(non_upper_case_globals, clippy::all)]
            const _: () = {
                use #krate::__private::serde as __serde;

                impl __serde::Serialize for #proxy {
                    fn serialize<S: __serde::Serializer>(&self, s: S) -> ::core::result::Result<S::Ok, S::Error> {
                        __serde::Serialize::serialize(&self.token, s)
                    }
                }

                impl<'de> __serde::Deserialize<'de> for #proxy {
                    fn deserialize<D: __serde::Deserializer<'de>>(d: D) -> ::core::result::Result<Self, D::Error> {
                        ::core::result::Result::Ok(#proxy {
                            token: <#krate::managers::Token as __serde::Deserialize<'de>>::deserialize(d)?,
                        })
                    }
                }

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

                impl #krate::managers::Managed for #self_ty {
                    type Proxy = #proxy;
                    fn encode_for_server(
                        &self,
                    ) -> ::core::option::Option<#krate::Result<::std::vec::Vec<u8>>> {
                        #[allow(unused_imports)]
                        use #krate::managers::__managed::{ViaLocal as _, ViaSerde as _};
                        (&&#krate::managers::__managed::Probe::<Self>(::core::marker::PhantomData)).mp_encode(self)
                    }
                    const TYPE_NAME: &'static str = <#proxy as #krate::managers::Proxy>::KIND;
                    fn dispatch(&mut self, method: &str, args: &[u8]) -> #krate::Result<::std::vec::Vec<u8>> {
                        match method {
                            #(#arms)*
                            other => ::core::result::Result::Err(
                                #krate::managers::__managed::unknown_method(Self::TYPE_NAME, other),
                            ),
                        }
                    }
                }
            };
        }
    }
}
