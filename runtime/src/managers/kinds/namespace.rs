//! `namespace`: named fields of encoded values, each of its own type.

use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Bytes, decode_opt, lock};
use crate::error::Result;
use crate::managers::protocol::protocol;
use crate::managers::proxy::proxy_type;
use crate::managers::server::{Caller, Object, en};

const KIND: &str = "namespace";

protocol! {
    fn get(name: String) -> Option<Bytes>;
    fn set(name: String, value: Bytes) -> ();
    fn remove(name: String) -> bool;
    fn names() -> Vec<String>;
}

struct Namespace(Mutex<IndexMap<String, Bytes>>);

pub(super) fn new() -> Arc<dyn Object> {
    Arc::new(Namespace(Mutex::new(IndexMap::new())))
}

impl Object for Namespace {
    fn kind(&self) -> &str {
        KIND
    }

    fn call(&self, caller: &Caller<'_>, call: &[u8]) -> Result<Vec<u8>> {
        serve(KIND, self, caller, call)
    }
}

impl Serve for Namespace {
    fn get(&self, _: &Caller<'_>, name: String) -> Result<Option<Bytes>> {
        Ok(lock(&self.0).get(&name).cloned())
    }
    fn set(&self, _: &Caller<'_>, name: String, value: Bytes) -> Result<()> {
        lock(&self.0).insert(name, value);
        Ok(())
    }
    fn remove(&self, _: &Caller<'_>, name: String) -> Result<bool> {
        Ok(lock(&self.0).shift_remove(&name).is_some())
    }
    fn names(&self, _: &Caller<'_>) -> Result<Vec<String>> {
        Ok(lock(&self.0).keys().cloned().collect())
    }
}

proxy_type! {
    /// Named fields of serde values (Python's `manager.Namespace()`); each field
    /// may have its own type.
    NamespaceProxy [] KIND
}

impl NamespaceProxy {
    /// The field `name`, if set.
    ///
    /// # Errors
    /// [`Error::Decode`](crate::Error::Decode) if it holds another type; or a connection error.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        decode_opt(Client(&self.token).get(name.to_string())?)
    }

    /// Sets the field `name` (`ns.name = value`).
    ///
    /// # Errors
    /// [`Error::Encode`](crate::Error::Encode) or a connection error.
    pub fn set<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<()> {
        Client(&self.token).set(name.to_string(), en(value)?)
    }

    /// Deletes the field `name`; whether it was set (`del ns.name`).
    ///
    /// # Errors
    /// A connection error.
    pub fn remove(&self, name: &str) -> Result<bool> {
        Client(&self.token).remove(name.to_string())
    }

    /// The field names, in the order they were first set.
    ///
    /// # Errors
    /// A connection error.
    pub fn names(&self) -> Result<Vec<String>> {
        Client(&self.token).names()
    }
}
