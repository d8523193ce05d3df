//! `value`: one encoded value.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Bytes, lock};
use crate::error::Result;
use crate::managers::protocol::protocol;
use crate::managers::proxy::proxy_type;
use crate::managers::server::{Caller, Object, de, en};

const KIND: &str = "value";

protocol! {
    fn get() -> Bytes;
    fn set(value: Bytes) -> ();
    fn replace(value: Bytes) -> Bytes;
}

struct Value(Mutex<Bytes>);

pub(super) fn new(value: Bytes) -> Arc<dyn Object> {
    Arc::new(Value(Mutex::new(value)))
}

impl Object for Value {
    fn kind(&self) -> &str {
        KIND
    }

    fn call(&self, caller: &Caller<'_>, call: &[u8]) -> Result<Vec<u8>> {
        serve(KIND, self, caller, call)
    }
}

impl Serve for Value {
    fn get(&self, _: &Caller<'_>) -> Result<Bytes> {
        Ok(lock(&self.0).clone())
    }
    fn set(&self, _: &Caller<'_>, value: Bytes) -> Result<()> {
        *lock(&self.0) = value;
        Ok(())
    }
    fn replace(&self, _: &Caller<'_>, value: Bytes) -> Result<Bytes> {
        Ok(std::mem::replace(&mut *lock(&self.0), value))
    }
}

proxy_type! {
    /// One value in a manager (Python's `manager.Value`). Every call is one
    /// round trip; use [`replace`](Self::replace) (or a lock) for a
    /// read-modify-write that others must not interleave with.
    ///
    /// ```
    /// use multiproc::managers::ValueProxy;
    ///
    /// #[multiproc::task]
    /// fn publish(v: ValueProxy<String>) {
    ///     v.set("from the child".into()).unwrap();
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let manager = multiproc::Manager::start()?;
    ///     let v = manager.value(String::new())?;
    ///     let mut p = multiproc::Process::new(publish, (v.clone(),))?;
    ///     p.start()?;
    ///     p.join()?;
    ///     assert_eq!(v.get()?, "from the child");
    ///     Ok(())
    /// }
    /// ```
    ValueProxy [T] KIND
}

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    /// The current value (Python's `v.value`).
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) or a connection error if the manager cannot be reached.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let v = manager.value(42i64)?;
    /// assert_eq!(v.get()?, 42);
    /// # Ok(())
    /// # }
    /// ```
    pub fn get(&self) -> Result<T> {
        de(&Client(&self.token).get()?)
    }

    /// Replaces the value (Python's `v.value = value`).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let v = manager.value(0u32)?;
    /// v.set(7)?;
    /// assert_eq!(v.get()?, 7);
    /// # Ok(())
    /// # }
    /// ```
    pub fn set(&self, value: T) -> Result<()> {
        Client(&self.token).set(en(&value)?)
    }

    /// Replaces the value and returns the old one, atomically.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let v = manager.value(vec![1u8])?;
    /// assert_eq!(v.replace(vec![2, 3])?, [1]);
    /// assert_eq!(v.get()?, [2, 3]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn replace(&self, value: T) -> Result<T> {
        de(&Client(&self.token).replace(en(&value)?)?)
    }
}
