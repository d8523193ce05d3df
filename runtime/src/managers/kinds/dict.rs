//! `dict`: an insertion-ordered map of encoded keys to encoded values.

use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Bytes, decode_all, decode_opt, lock};
use crate::error::Result;
use crate::managers::protocol::protocol;
use crate::managers::proxy::proxy_type;
use crate::managers::server::{Caller, Object, de, en};

const KIND: &str = "dict";

protocol! {
    fn insert(key: Bytes, value: Bytes) -> Option<Bytes>;
    fn get(key: Bytes) -> Option<Bytes>;
    fn remove(key: Bytes) -> Option<Bytes>;
    fn len() -> u64;
    fn contains_key(key: Bytes) -> bool;
    fn keys() -> Vec<Bytes>;
    fn values() -> Vec<Bytes>;
    fn items() -> Vec<(Bytes, Bytes)>;
    fn clear() -> ();
    fn update(items: Vec<(Bytes, Bytes)>) -> ();
    fn setdefault(key: Bytes, value: Bytes) -> Bytes;
}

struct Dict(Mutex<IndexMap<Bytes, Bytes>>);

pub(super) fn new(items: Vec<(Bytes, Bytes)>) -> Arc<dyn Object> {
    Arc::new(Dict(Mutex::new(items.into_iter().collect())))
}

impl Object for Dict {
    fn kind(&self) -> &str {
        KIND
    }

    fn call(&self, caller: &Caller<'_>, call: &[u8]) -> Result<Vec<u8>> {
        serve(KIND, self, caller, call)
    }
}

impl Serve for Dict {
    fn insert(&self, _: &Caller<'_>, key: Bytes, value: Bytes) -> Result<Option<Bytes>> {
        Ok(lock(&self.0).insert(key, value))
    }
    fn get(&self, _: &Caller<'_>, key: Bytes) -> Result<Option<Bytes>> {
        Ok(lock(&self.0).get(&key).cloned())
    }
    fn remove(&self, _: &Caller<'_>, key: Bytes) -> Result<Option<Bytes>> {
        Ok(lock(&self.0).shift_remove(&key))
    }
    fn len(&self, _: &Caller<'_>) -> Result<u64> {
        Ok(lock(&self.0).len() as u64)
    }
    fn contains_key(&self, _: &Caller<'_>, key: Bytes) -> Result<bool> {
        Ok(lock(&self.0).contains_key(&key))
    }
    fn keys(&self, _: &Caller<'_>) -> Result<Vec<Bytes>> {
        Ok(lock(&self.0).keys().cloned().collect())
    }
    fn values(&self, _: &Caller<'_>) -> Result<Vec<Bytes>> {
        Ok(lock(&self.0).values().cloned().collect())
    }
    fn items(&self, _: &Caller<'_>) -> Result<Vec<(Bytes, Bytes)>> {
        Ok(lock(&self.0).iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
    fn clear(&self, _: &Caller<'_>) -> Result<()> {
        lock(&self.0).clear();
        Ok(())
    }
    fn update(&self, _: &Caller<'_>, items: Vec<(Bytes, Bytes)>) -> Result<()> {
        lock(&self.0).extend(items);
        Ok(())
    }
    fn setdefault(&self, _: &Caller<'_>, key: Bytes, value: Bytes) -> Result<Bytes> {
        Ok(lock(&self.0).entry(key).or_insert(value).clone())
    }
}

proxy_type! {
    /// A `HashMap`-like dictionary in a manager (Python's `manager.dict()`);
    /// keeps insertion order. Keys are compared by their encoded bytes, so use
    /// key types whose encoding is canonical (integers, strings, tuples of
    /// them — not `HashMap`).
    ///
    /// Values are copies: `d.get(&k)?` returns the value, and changing it
    /// changes nothing in the manager until you `insert` it again. To share a
    /// mutable inner container, store a proxy (e.g. a [`ListProxy`](super::ListProxy)) as the value.
    ///
    /// A child process that receives the proxy writes to the same dictionary:
    ///
    /// ```
    /// use multiproc::managers::DictProxy;
    ///
    /// #[multiproc::task]
    /// fn square_into(d: DictProxy<u64, u64>, x: u64) {
    ///     d.insert(x, x * x).unwrap();
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let manager = multiproc::Manager::start()?;
    ///     let d = manager.dict::<u64, u64>()?;
    ///     let mut p = multiproc::Process::new(square_into, (d.clone(), 7))?;
    ///     p.start()?;
    ///     p.join()?;
    ///     assert_eq!(d.get(&7)?, Some(49));
    ///     Ok(())
    /// }
    /// ```
    DictProxy [K, V] KIND
}

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> DictProxy<K, V> {
    /// Sets `key` to `value`; returns the previous value (Python's `d[key] = value`).
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) or a connection error if the manager cannot be reached.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let d = manager.dict::<String, u64>()?;
    /// assert_eq!(d.insert("a".into(), 1)?, None);
    /// assert_eq!(d.insert("a".into(), 2)?, Some(1));
    /// assert_eq!(d.get(&"a".into())?, Some(2));
    /// # Ok(())
    /// # }
    /// ```
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>> {
        decode_opt(Client(&self.token).insert(en(&key)?, en(&value)?)?)
    }

    /// The value for `key`, if any (Python's `d.get(key)`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let d = manager.dict_from([("a".to_string(), 1u64)])?;
    /// assert_eq!(d.get(&"a".into())?, Some(1));
    /// assert_eq!(d.get(&"b".into())?, None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        decode_opt(Client(&self.token).get(en(key)?)?)
    }

    /// Removes `key`; returns its value, if it was there (Python's `d.pop(key, None)`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let d = manager.dict_from([(1u8, "one".to_string())])?;
    /// assert_eq!(d.remove(&1)?, Some("one".into()));
    /// assert_eq!(d.remove(&1)?, None);
    /// assert!(d.is_empty()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        decode_opt(Client(&self.token).remove(en(key)?)?)
    }

    /// Sets `key` to `value` unless present; returns the value now stored
    /// (Python's `setdefault`), in one atomic step.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let d = manager.dict::<String, u64>()?;
    /// assert_eq!(d.setdefault("hits".into(), 0)?, 0);
    /// d.insert("hits".into(), 5)?;
    /// assert_eq!(d.setdefault("hits".into(), 0)?, 5);
    /// # Ok(())
    /// # }
    /// ```
    pub fn setdefault(&self, key: K, value: V) -> Result<V> {
        let b: Vec<u8> = Client(&self.token).setdefault(en(&key)?, en(&value)?)?;
        de(&b)
    }

    /// The number of entries (Python's `len(d)`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let d = manager.dict_from([(1u8, 'a'), (2, 'b')])?;
    /// assert_eq!(d.len()?, 2);
    /// d.insert(3, 'c')?;
    /// assert_eq!(d.len()?, 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn len(&self) -> Result<usize> {
        Ok(Client(&self.token).len()? as usize)
    }

    /// Whether the dictionary is empty (Python's `not d`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let d = manager.dict::<u8, u8>()?;
    /// assert!(d.is_empty()?);
    /// d.insert(1, 1)?;
    /// assert!(!d.is_empty()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Whether `key` is present (Python's `key in d`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let d = manager.dict_from([("a".to_string(), ())])?;
    /// assert!(d.contains_key(&"a".into())?);
    /// assert!(!d.contains_key(&"b".into())?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn contains_key(&self, key: &K) -> Result<bool> {
        Client(&self.token).contains_key(en(key)?)
    }

    /// The keys, in insertion order (a snapshot; Python's `list(d.keys())`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let d = manager.dict_from([('b', 2u8), ('a', 1)])?;
    /// assert_eq!(d.keys()?, ['b', 'a']);
    /// # Ok(())
    /// # }
    /// ```
    pub fn keys(&self) -> Result<Vec<K>> {
        decode_all(Client(&self.token).keys()?)
    }

    /// The values, in insertion order (a snapshot; Python's `list(d.values())`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let d = manager.dict_from([('b', 2u8), ('a', 1)])?;
    /// assert_eq!(d.values()?, [2, 1]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn values(&self) -> Result<Vec<V>> {
        decode_all(Client(&self.token).values()?)
    }

    /// The `(key, value)` pairs, in insertion order (a snapshot; Python's `items()` / `copy()`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let d = manager.dict::<String, u64>()?;
    /// d.insert("x".into(), 1)?;
    /// d.insert("y".into(), 2)?;
    /// assert_eq!(d.items()?, [("x".to_string(), 1), ("y".to_string(), 2)]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn items(&self) -> Result<Vec<(K, V)>> {
        let raw: Vec<(Vec<u8>, Vec<u8>)> = Client(&self.token).items()?;
        raw.iter().map(|(k, v)| Ok((de(k)?, de(v)?))).collect()
    }

    /// Removes every entry (Python's `clear`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let d = manager.dict_from([(1u8, 1u8), (2, 4)])?;
    /// d.clear()?;
    /// assert_eq!(d.len()?, 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn clear(&self) -> Result<()> {
        Client(&self.token).clear()
    }

    /// Inserts every pair, in one round trip (Python's `update`); a key
    /// already present keeps its place and takes the new value.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let d = manager.dict_from([('a', 1u8)])?;
    /// d.update([('b', 2), ('a', 10)])?;
    /// assert_eq!(d.items()?, [('a', 10), ('b', 2)]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn update(&self, items: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        // Kept until the call is made: a proxy among them must keep its object alive until the dict holds it.
        let items: Vec<(K, V)> = items.into_iter().collect();
        let raw = items.iter().map(|(k, v)| Ok((en(k)?, en(v)?))).collect::<Result<Vec<_>>>()?;
        Client(&self.token).update(raw)
    }
}
