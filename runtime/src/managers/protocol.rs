//! One list of methods per kind of shared object, from which [`protocol!`]
//! generates both sides of every call, so the proxy and the server cannot
//! disagree on a method's name, arguments or result type:
//!
//! - `Request`, a serde enum with one variant per method (what a proxy sends);
//! - `Serve`, the trait the server-side object implements (one fn per method),
//!   and `serve`, which decodes a [`Call`] and runs the matching fn;
//! - `Client`, the typed calls a proxy makes (one fn per method).
//!
//! A misspelt method is a compile error on both sides. Calls by name
//! ([`Token::call`](super::Token::call), the generic escape hatch) are
//! decoded into the same `Request`, with the method's arguments as a tuple.

use serde::de::DeserializeOwned;

use super::server::{Call, de};
use crate::error::{Error, Result};

/// The error for a method name the kind does not have.
pub(crate) fn no_method(kind: &str, method: &str) -> Error {
    Error::Remote(format!("`{kind}` has no method `{method}`"))
}

/// Decodes the bytes of a [`Call`] into a kind's request: a typed call as is,
/// a named call through `named` (`None`: no method of that name, reported
/// by `unknown`).
pub(crate) fn decode_call<Q: DeserializeOwned>(
    call: &[u8],
    named: impl FnOnce(&str, &[u8]) -> Option<Result<Q>>,
    unknown: impl FnOnce(&str) -> Error,
) -> Result<Q> {
    match de::<Call<Q>>(call)? {
        Call::Typed(request) => Ok(request),
        Call::Named { method, args } => named(&method, &args).unwrap_or_else(|| Err(unknown(&method))),
    }
}

/// Generates a kind's `Request`, `Serve`, `serve` and `Client` from one list
/// of `fn name(arg: Type, …) -> Result;` (see the module docs).
macro_rules! protocol {
    ($( fn $method:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty; )*) => {
        /// One call on this kind: a variant per method, with its arguments.
        #[allow(non_camel_case_types)]
        #[derive(Debug, serde::Serialize, serde::Deserialize)]
        pub(crate) enum Request {
            $( $method { $($arg: $ty),* }, )*
        }

        /// A call by name: the arguments are the method's, encoded as a tuple
        /// (`None`: no method of that name).
        fn named_request(method: &str, args: &[u8]) -> Option<$crate::error::Result<Request>> {
            match method {
                $( stringify!($method) => Some(
                    $crate::managers::server::de::<($($ty,)*)>(args)
                        .map(|($($arg,)*)| Request::$method { $($arg),* })
                ), )*
                _ => None,
            }
        }

        /// The server side of this kind: one fn per request.
        pub(crate) trait Serve {
            $( fn $method(
                &self,
                caller: &$crate::managers::server::Caller<'_>,
                $($arg: $ty),*
            ) -> $crate::error::Result<$ret>; )*
        }

        /// Decodes `call` and runs it on `object` (of `kind`, for errors); the encoded `Reply::Ok` of its result.
        pub(crate) fn serve(
            kind: &str,
            object: &(impl Serve + ?Sized),
            caller: &$crate::managers::server::Caller<'_>,
            call: &[u8],
        ) -> $crate::error::Result<Vec<u8>> {
            let request = $crate::managers::protocol::decode_call(call, named_request, |m| {
                $crate::managers::protocol::no_method(kind, m)
            })?;
            match request {
                $( Request::$method { $($arg),* } => {
                    $crate::managers::server::calling(stringify!($method));
                    $crate::managers::server::ok_reply(&object.$method(caller, $($arg),*)?)
                } )*
            }
        }

        /// The client side of this kind: one typed call per request.
        pub(crate) struct Client<'a>(pub(crate) &'a $crate::managers::Token);

        impl Client<'_> {
            $( pub(crate) fn $method(&self, $($arg: $ty),*) -> $crate::error::Result<$ret> {
                self.0.request(&Request::$method { $($arg),* })
            } )*
        }
    };
}

pub(crate) use protocol;
