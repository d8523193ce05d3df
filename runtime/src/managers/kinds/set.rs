//! `set`: a set of encoded values (two values are the same when their
//! encodings are: right for numbers, strings, tuples, `Vec`s and structs of
//! them; not for a `HashMap` or `HashSet`, whose encodings follow their
//! iteration order, nor for floats' `-0.0`/`NaN`).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Bytes, decode_all, lock};
use crate::error::Result;
use crate::managers::protocol::protocol;
use crate::managers::proxy::proxy_type;
use crate::managers::server::{Caller, Object, en};

const KIND: &str = "set";

protocol! {
    fn add(value: Bytes) -> bool;
    fn discard(value: Bytes) -> bool;
    fn contains(value: Bytes) -> bool;
    fn len() -> u64;
    fn snapshot() -> Vec<Bytes>;
    fn clear() -> ();
}

struct Set(Mutex<BTreeSet<Bytes>>);

pub(super) fn new(items: Vec<Bytes>) -> Arc<dyn Object> {
    Arc::new(Set(Mutex::new(items.into_iter().collect())))
}

impl Object for Set {
    fn kind(&self) -> &str {
        KIND
    }

    fn call(&self, caller: &Caller<'_>, call: &[u8]) -> Result<Vec<u8>> {
        serve(KIND, self, caller, call)
    }
}

impl Serve for Set {
    fn add(&self, _: &Caller<'_>, value: Bytes) -> Result<bool> {
        Ok(lock(&self.0).insert(value))
    }
    fn discard(&self, _: &Caller<'_>, value: Bytes) -> Result<bool> {
        Ok(lock(&self.0).remove(&value))
    }
    fn contains(&self, _: &Caller<'_>, value: Bytes) -> Result<bool> {
        Ok(lock(&self.0).contains(&value))
    }
    fn len(&self, _: &Caller<'_>) -> Result<u64> {
        Ok(lock(&self.0).len() as u64)
    }
    fn snapshot(&self, _: &Caller<'_>) -> Result<Vec<Bytes>> {
        Ok(lock(&self.0).iter().cloned().collect())
    }
    fn clear(&self, _: &Caller<'_>) -> Result<()> {
        lock(&self.0).clear();
        Ok(())
    }
}

proxy_type! {
    /// A set in a manager (Python's `manager.set()`): values are the same when
    /// their encodings are (see the module's note: not for `HashMap` values).
    ///
    /// ```
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let manager = multiproc::Manager::start()?;
    ///     let s = manager.set_from(["a".to_string(), "b".into()])?;
    ///     assert!(s.add("c".into())?);
    ///     assert!(!s.add("a".into())?);
    ///     assert!(s.contains(&"b".into())?);
    ///     assert_eq!(s.len()?, 3);
    ///     manager.shutdown()
    /// }
    /// ```
    SetProxy [T] KIND
}

impl<T: Serialize + DeserializeOwned> SetProxy<T> {
    /// Adds `value`; whether it was not there yet (Python's `add`).
    ///
    /// # Errors
    /// [`Error::Encode`](crate::Error::Encode) for a value that cannot be
    /// encoded; a connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let s = manager.set::<u32>()?;
    /// assert!(s.add(7)?);
    /// assert!(!s.add(7)?);
    /// assert_eq!(s.len()?, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn add(&self, value: T) -> Result<bool> {
        Client(&self.token).add(en(&value)?)
    }

    /// Removes `value`; whether it was there (Python's `discard`, which also
    /// accepts a missing value).
    ///
    /// # Errors
    /// As [`add`](Self::add).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let s = manager.set_from([1, 2])?;
    /// assert!(s.discard(&1)?);
    /// assert!(!s.discard(&1)?);
    /// assert_eq!(s.snapshot()?, [2]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn discard(&self, value: &T) -> Result<bool> {
        Client(&self.token).discard(en(value)?)
    }

    /// Whether `value` is in the set (Python's `value in s`).
    ///
    /// # Errors
    /// As [`add`](Self::add).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let s = manager.set_from([(1, 'a')])?;
    /// assert!(s.contains(&(1, 'a'))?);
    /// assert!(!s.contains(&(1, 'b'))?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn contains(&self, value: &T) -> Result<bool> {
        Client(&self.token).contains(en(value)?)
    }

    /// The number of values (Python's `len(s)`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let s = manager.set_from([1, 2, 2, 3])?;
    /// assert_eq!(s.len()?, 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn len(&self) -> Result<usize> {
        Ok(Client(&self.token).len()? as usize)
    }

    /// Whether the set is empty (Python's `not s`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let s = manager.set::<String>()?;
    /// assert!(s.is_empty()?);
    /// s.add("x".into())?;
    /// assert!(!s.is_empty()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Removes every value (Python's `clear`).
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let s = manager.set_from(0..10u8)?;
    /// s.clear()?;
    /// assert!(s.is_empty()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn clear(&self) -> Result<()> {
        Client(&self.token).clear()
    }

    /// A copy of the values (in the order of their encodings), in one round trip.
    ///
    /// # Errors
    /// A connection error.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let s = manager.set_from([3u8, 1, 2, 1])?;
    /// assert_eq!(s.snapshot()?, [1, 2, 3]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn snapshot(&self) -> Result<Vec<T>> {
        decode_all(Client(&self.token).snapshot()?)
    }
}
