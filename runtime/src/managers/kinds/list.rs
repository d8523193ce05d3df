//! `list`: a vector of encoded values.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Bytes, decode_all, decode_opt, lock};
use crate::error::{Error, Result};
use crate::managers::protocol::protocol;
use crate::managers::proxy::proxy_type;
use crate::managers::server::{Caller, Object, de, en};

const KIND: &str = "list";

protocol! {
    fn push(value: Bytes) -> ();
    fn get(index: u64) -> Bytes;
    fn set(index: u64, value: Bytes) -> ();
    fn insert(index: u64, value: Bytes) -> ();
    fn remove(index: u64) -> Bytes;
    fn len() -> u64;
    fn pop() -> Option<Bytes>;
    fn extend(items: Vec<Bytes>) -> ();
    fn snapshot() -> Vec<Bytes>;
    fn reverse() -> ();
    fn clear() -> ();
    fn replace_if(expected: Vec<Bytes>, items: Vec<Bytes>) -> bool;
}

struct List(Mutex<Vec<Bytes>>);

pub(super) fn new(items: Vec<Bytes>) -> Arc<dyn Object> {
    Arc::new(List(Mutex::new(items)))
}

fn out_of_range(i: u64, len: usize) -> Error {
    Error::Remote(format!("list index {i} out of range (length {len})"))
}

impl Object for List {
    fn kind(&self) -> &str {
        KIND
    }

    fn call(&self, caller: &Caller<'_>, call: &[u8]) -> Result<Vec<u8>> {
        serve(KIND, self, caller, call)
    }
}

impl Serve for List {
    fn push(&self, _: &Caller<'_>, value: Bytes) -> Result<()> {
        lock(&self.0).push(value);
        Ok(())
    }
    fn get(&self, _: &Caller<'_>, index: u64) -> Result<Bytes> {
        let l = lock(&self.0);
        l.get(index as usize).cloned().ok_or_else(|| out_of_range(index, l.len()))
    }
    fn set(&self, _: &Caller<'_>, index: u64, value: Bytes) -> Result<()> {
        let mut l = lock(&self.0);
        let len = l.len();
        *l.get_mut(index as usize).ok_or_else(|| out_of_range(index, len))? = value;
        Ok(())
    }
    fn insert(&self, _: &Caller<'_>, index: u64, value: Bytes) -> Result<()> {
        let mut l = lock(&self.0);
        if index as usize > l.len() {
            return Err(out_of_range(index, l.len()));
        }
        l.insert(index as usize, value);
        Ok(())
    }
    fn remove(&self, _: &Caller<'_>, index: u64) -> Result<Bytes> {
        let mut l = lock(&self.0);
        if index as usize >= l.len() {
            return Err(out_of_range(index, l.len()));
        }
        Ok(l.remove(index as usize))
    }
    fn len(&self, _: &Caller<'_>) -> Result<u64> {
        Ok(lock(&self.0).len() as u64)
    }
    fn pop(&self, _: &Caller<'_>) -> Result<Option<Bytes>> {
        Ok(lock(&self.0).pop())
    }
    fn extend(&self, _: &Caller<'_>, items: Vec<Bytes>) -> Result<()> {
        lock(&self.0).extend(items);
        Ok(())
    }
    fn snapshot(&self, _: &Caller<'_>) -> Result<Vec<Bytes>> {
        Ok(lock(&self.0).clone())
    }
    fn reverse(&self, _: &Caller<'_>) -> Result<()> {
        lock(&self.0).reverse();
        Ok(())
    }
    fn clear(&self, _: &Caller<'_>) -> Result<()> {
        lock(&self.0).clear();
        Ok(())
    }
    fn replace_if(&self, _: &Caller<'_>, expected: Vec<Bytes>, items: Vec<Bytes>) -> Result<bool> {
        let mut l = lock(&self.0);
        if *l != expected {
            return Ok(false);
        }
        *l = items;
        Ok(true)
    }
}

proxy_type! {
    /// A `Vec`-like list in a manager (Python's `manager.list()`). Elements are
    /// copies, as for [`DictProxy`](super::DictProxy); iterate over a [`snapshot`](Self::snapshot).
    ListProxy [T] KIND
}

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// Appends `value` (Python's `append`).
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) or a connection error if the manager cannot be reached.
    pub fn push(&self, value: T) -> Result<()> {
        Client(&self.token).push(en(&value)?)
    }

    /// The element at `index` (Python's `l[index]`).
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) if `index` is out of range
    /// (Python's `IndexError`); as [`push`](Self::push).
    pub fn get(&self, index: usize) -> Result<T> {
        de(&Client(&self.token).get(index as u64)?)
    }

    /// Replaces the element at `index` (`l[index] = value`).
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) if `index` is out of range; as [`push`](Self::push).
    pub fn set(&self, index: usize, value: T) -> Result<()> {
        Client(&self.token).set(index as u64, en(&value)?)
    }

    /// Inserts `value` at `index`, shifting later elements.
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) if `index > len`; as [`push`](Self::push).
    pub fn insert(&self, index: usize, value: T) -> Result<()> {
        Client(&self.token).insert(index as u64, en(&value)?)
    }

    /// Removes and returns the element at `index`.
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) if `index` is out of range; as [`push`](Self::push).
    pub fn remove(&self, index: usize) -> Result<T> {
        de(&Client(&self.token).remove(index as u64)?)
    }

    /// The number of elements.
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn len(&self) -> Result<usize> {
        Ok(Client(&self.token).len()? as usize)
    }

    /// Whether the list is empty.
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Removes and returns the last element, if any.
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn pop(&self) -> Result<Option<T>> {
        decode_opt(Client(&self.token).pop()?)
    }

    /// Appends every element, in one round trip.
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn extend(&self, items: impl IntoIterator<Item = T>) -> Result<()> {
        let raw = items.into_iter().map(|v| en(&v)).collect::<Result<Vec<_>>>()?;
        Client(&self.token).extend(raw)
    }

    /// Reverses the list in place.
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn reverse(&self) -> Result<()> {
        Client(&self.token).reverse()
    }

    /// Removes every element.
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn clear(&self) -> Result<()> {
        Client(&self.token).clear()
    }

    /// A copy of the whole list (Python's `l[:]`), in one round trip.
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn snapshot(&self) -> Result<Vec<T>> {
        decode_all(Client(&self.token).snapshot()?)
    }

    /// How many elements equal `value` (Python's `count`).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn count(&self, value: &T) -> Result<usize>
    where
        T: PartialEq,
    {
        Ok(self.snapshot()?.iter().filter(|v| *v == value).count())
    }

    /// The index of the first element equal to `value` (Python's `index`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) if there is
    /// none (Python's `ValueError`); as [`push`](Self::push).
    pub fn index(&self, value: &T) -> Result<usize>
    where
        T: PartialEq + std::fmt::Debug,
    {
        self.snapshot()?
            .iter()
            .position(|v| v == value)
            .ok_or_else(|| Error::InvalidArgument(format!("{value:?} is not in the list")))
    }

    /// Sorts the list (Python's `sort()`), atomically: the elements are sorted
    /// here and put back only if nobody changed the list meanwhile (else it
    /// tries again).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn sort(&self) -> Result<()>
    where
        T: Ord,
    {
        self.sort_by(T::cmp)
    }

    /// As [`sort`](Self::sort), with a comparison (Python's `sort(key=...)`).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn sort_by(&self, mut compare: impl FnMut(&T, &T) -> std::cmp::Ordering) -> Result<()> {
        loop {
            let raw = Client(&self.token).snapshot()?;
            let mut items: Vec<T> = decode_all(raw.clone())?;
            items.sort_by(&mut compare);
            let sorted = items.iter().map(en).collect::<Result<Vec<_>>>()?;
            if Client(&self.token).replace_if(raw, sorted)? {
                return Ok(());
            }
        }
    }

    /// Iterates over a [`snapshot`](Self::snapshot).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn iter(&self) -> Result<std::vec::IntoIter<T>> {
        Ok(self.snapshot()?.into_iter())
    }
}

/// Python's `manager.list(...) == [1, 2, 3]`: compares a snapshot (a list that
/// cannot be read compares unequal).
impl<T: Serialize + DeserializeOwned + PartialEq> PartialEq<Vec<T>> for ListProxy<T> {
    fn eq(&self, other: &Vec<T>) -> bool {
        self.snapshot().is_ok_and(|v| v == *other)
    }
}
