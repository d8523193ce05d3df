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
    ///
    /// ```
    /// use multiproc::managers::NamespaceProxy;
    ///
    /// #[multiproc::task]
    /// fn report(ns: NamespaceProxy) {
    ///     ns.set("status", "done").unwrap();
    ///     ns.set("items", &3u32).unwrap();
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let manager = multiproc::Manager::start()?;
    ///     let ns = manager.namespace()?;
    ///     let mut p = multiproc::Process::new(report, (ns.clone(),))?;
    ///     p.start()?;
    ///     p.join()?;
    ///     assert_eq!(ns.get::<String>("status")?.as_deref(), Some("done"));
    ///     assert_eq!(ns.get::<u32>("items")?, Some(3));
    ///     Ok(())
    /// }
    /// ```
    NamespaceProxy [] KIND
}

impl NamespaceProxy {
    /// The field `name`, if set (Python's `ns.name`, which raises
    /// `AttributeError` where this returns `None`).
    ///
    /// # Errors
    /// [`Error::Decode`](crate::Error::Decode) if it holds another type; or a connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let ns = manager.namespace()?;
    /// ns.set("x", &1.5f64)?;
    /// assert_eq!(ns.get::<f64>("x")?, Some(1.5));
    /// assert_eq!(ns.get::<f64>("y")?, None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        decode_opt(Client(&self.token).get(name.to_string())?)
    }

    /// Sets the field `name` (Python's `ns.name = value`); the field may
    /// change type.
    ///
    /// # Errors
    /// [`Error::Encode`](crate::Error::Encode) or a connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let ns = manager.namespace()?;
    /// ns.set("value", &1u8)?;
    /// ns.set("value", "now a string")?;
    /// assert_eq!(ns.get::<String>("value")?.as_deref(), Some("now a string"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn set<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<()> {
        Client(&self.token).set(name.to_string(), en(value)?)
    }

    /// Deletes the field `name`; whether it was set (Python's `del ns.name`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let ns = manager.namespace()?;
    /// ns.set("tmp", &0u8)?;
    /// assert!(ns.remove("tmp")?);
    /// assert!(!ns.remove("tmp")?);
    /// assert_eq!(ns.get::<u8>("tmp")?, None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn remove(&self, name: &str) -> Result<bool> {
        Client(&self.token).remove(name.to_string())
    }

    /// The field names, in the order they were first set (Python's `vars(ns)`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let ns = manager.namespace()?;
    /// ns.set("b", &1u8)?;
    /// ns.set("a", &2u8)?;
    /// ns.set("b", &3u8)?;
    /// assert_eq!(ns.names()?, ["b", "a"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn names(&self) -> Result<Vec<String>> {
        Client(&self.token).names()
    }
}
