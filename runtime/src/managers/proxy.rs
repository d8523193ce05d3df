//! The [`Proxy`] trait, and the shape every built-in proxy shares.
//!
//! A proxy is `Clone`, `Send` and `Sync`, and a valid task argument under
//! every start method: it travels as its [`Token`] and reconnects on first use.

use super::client::Token;

/// A handle to an object that lives in a manager. Implemented by every proxy
/// type, including the ones `#[multiproc::managed]` generates; generic code
/// over proxies (and [`Manager::lookup`](super::Manager::lookup)) uses it.
///
/// ```
/// use multiproc::managers::{Proxy, QueueProxy};
///
/// /// Which kind of object, and which object, `p` drives.
/// fn describe<P: Proxy>(p: &P) -> String {
///     format!("{} #{}", P::KIND, p.token().id())
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let manager = multiproc::Manager::start()?;
///     let q: QueueProxy<u8> = manager.queue()?;
///     assert!(describe(&q).starts_with("queue #"));
///     Ok(())
/// }
/// ```
pub trait Proxy: Sized {
    /// The kind of object the proxy drives: `dict`, `queue`, … or a managed
    /// type's path ([`Token::kind`] of every token it accepts).
    const KIND: &'static str;
    /// The proxy for the object `token` names (no call is made: a wrong token
    /// fails at the first method call). [`Manager::lookup`](super::Manager::lookup)
    /// checks the kind first.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// use multiproc::managers::{ListProxy, Proxy};
    /// let l = manager.list_from([1u8, 2])?;
    /// let again = ListProxy::<u8>::from_token(l.token().clone());
    /// again.push(3)?;
    /// assert_eq!(l.snapshot()?, [1, 2, 3]);
    /// # Ok(())
    /// # }
    /// ```
    fn from_token(token: Token) -> Self;
    /// The token naming this proxy's object.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// use multiproc::managers::Proxy;
    /// let e = manager.event()?;
    /// assert_eq!(e.token().kind(), "event");
    /// assert_eq!(e.token().address(), manager.address());
    /// # Ok(())
    /// # }
    /// ```
    fn token(&self) -> &Token;
}

/// Defines a built-in proxy type: a [`Token`] with the value types as markers,
/// `Clone`, `Debug`, serde as its token, and [`Proxy`] of the given kind.
macro_rules! proxy_type {
    ($(#[$doc:meta])* $name:ident [$($g:ident),*] $kind:expr) => {
        $(#[$doc])*
        pub struct $name<$($g),*> {
            token: $crate::managers::Token,
            _marker: ::std::marker::PhantomData<fn() -> ($($g,)*)>,
        }

        impl<$($g),*> Clone for $name<$($g),*> {
            fn clone(&self) -> Self {
                $name { token: self.token.clone(), _marker: ::std::marker::PhantomData }
            }
        }

        impl<$($g),*> ::std::fmt::Debug for $name<$($g),*> {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.token).finish()
            }
        }

        impl<$($g),*> serde::Serialize for $name<$($g),*> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                serde::Serialize::serialize(&self.token, s)
            }
        }

        impl<'de, $($g),*> serde::Deserialize<'de> for $name<$($g),*> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let token = <$crate::managers::Token as serde::Deserialize>::deserialize(d)?;
                Ok($name { token, _marker: ::std::marker::PhantomData })
            }
        }

        impl<$($g),*> $crate::managers::Proxy for $name<$($g),*> {
            const KIND: &'static str = $kind;
            fn from_token(token: $crate::managers::Token) -> Self {
                $name { token, _marker: ::std::marker::PhantomData }
            }
            fn token(&self) -> &$crate::managers::Token {
                &self.token
            }
        }
    };
}

pub(crate) use proxy_type;
