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
    DictProxy [K, V] KIND
}

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> DictProxy<K, V> {
    /// Sets `key` to `value`; returns the previous value (`d[key] = value`).
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) or a connection error if the manager cannot be reached.
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>> {
        decode_opt(Client(&self.token).insert(en(&key)?, en(&value)?)?)
    }

    /// The value for `key`, if any.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        decode_opt(Client(&self.token).get(en(key)?)?)
    }

    /// Removes `key`; returns its value, if it was there.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        decode_opt(Client(&self.token).remove(en(key)?)?)
    }

    /// Sets `key` to `value` unless present; returns the value now stored (Python's `setdefault`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn setdefault(&self, key: K, value: V) -> Result<V> {
        let b: Vec<u8> = Client(&self.token).setdefault(en(&key)?, en(&value)?)?;
        de(&b)
    }

    /// The number of entries.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn len(&self) -> Result<usize> {
        Ok(Client(&self.token).len()? as usize)
    }

    /// Whether the dictionary is empty.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Whether `key` is present (`key in d`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn contains_key(&self, key: &K) -> Result<bool> {
        Client(&self.token).contains_key(en(key)?)
    }

    /// The keys, in insertion order (a snapshot).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn keys(&self) -> Result<Vec<K>> {
        decode_all(Client(&self.token).keys()?)
    }

    /// The values, in insertion order (a snapshot).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn values(&self) -> Result<Vec<V>> {
        decode_all(Client(&self.token).values()?)
    }

    /// The `(key, value)` pairs, in insertion order (a snapshot; Python's `items()` / `copy()`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn items(&self) -> Result<Vec<(K, V)>> {
        let raw: Vec<(Vec<u8>, Vec<u8>)> = Client(&self.token).items()?;
        raw.iter().map(|(k, v)| Ok((de(k)?, de(v)?))).collect()
    }

    /// Removes every entry.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn clear(&self) -> Result<()> {
        Client(&self.token).clear()
    }

    /// Inserts every pair, in one round trip (Python's `update`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn update(&self, items: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        let raw = items.into_iter().map(|(k, v)| Ok((en(&k)?, en(&v)?))).collect::<Result<Vec<_>>>()?;
        Client(&self.token).update(raw)
    }
}
