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
    /// A proxy compares equal to a `Vec` holding the same elements (Python's
    /// `l == [1, 2, 3]`).
    ///
    /// Children that receive the proxy append to the same list:
    ///
    /// ```
    /// use multiproc::managers::ListProxy;
    ///
    /// #[multiproc::task]
    /// fn append(l: ListProxy<String>, who: String) {
    ///     l.push(who).unwrap();
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let manager = multiproc::Manager::start()?;
    ///     let l = manager.list::<String>()?;
    ///     let mut p = multiproc::Process::new(append, (l.clone(), "child".to_string()))?;
    ///     p.start()?;
    ///     p.join()?;
    ///     assert!(l == vec!["child".to_string()]);
    ///     Ok(())
    /// }
    /// ```
    ListProxy [T] KIND
}

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// Appends `value` (Python's `append`).
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) or a connection error if the manager cannot be reached.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.list::<u32>()?;
    /// l.push(1)?;
    /// l.push(2)?;
    /// assert_eq!(l.snapshot()?, [1, 2]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn push(&self, value: T) -> Result<()> {
        Client(&self.token).push(en(&value)?)
    }

    /// The element at `index` (Python's `l[index]`).
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) if `index` is out of range
    /// (Python's `IndexError`); as [`push`](Self::push).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.list_from(['a', 'b'])?;
    /// assert_eq!(l.get(1)?, 'b');
    /// assert!(matches!(l.get(2), Err(multiproc::Error::Remote(_))));
    /// # Ok(())
    /// # }
    /// ```
    pub fn get(&self, index: usize) -> Result<T> {
        de(&Client(&self.token).get(index as u64)?)
    }

    /// Replaces the element at `index` (Python's `l[index] = value`).
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) if `index` is out of range; as [`push`](Self::push).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.list_from([1, 2, 3])?;
    /// l.set(0, 10)?;
    /// assert_eq!(l.snapshot()?, [10, 2, 3]);
    /// assert!(l.set(3, 4).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn set(&self, index: usize, value: T) -> Result<()> {
        Client(&self.token).set(index as u64, en(&value)?)
    }

    /// Inserts `value` at `index`, shifting later elements (Python's `insert`;
    /// `index == len` appends).
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) if `index > len`; as [`push`](Self::push).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.list_from([1, 3])?;
    /// l.insert(1, 2)?;
    /// l.insert(3, 4)?;
    /// assert_eq!(l.snapshot()?, [1, 2, 3, 4]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn insert(&self, index: usize, value: T) -> Result<()> {
        Client(&self.token).insert(index as u64, en(&value)?)
    }

    /// Removes and returns the element at `index` (Python's `pop(index)`).
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) if `index` is out of range; as [`push`](Self::push).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.list_from(['a', 'b', 'c'])?;
    /// assert_eq!(l.remove(0)?, 'a');
    /// assert_eq!(l.snapshot()?, ['b', 'c']);
    /// # Ok(())
    /// # }
    /// ```
    pub fn remove(&self, index: usize) -> Result<T> {
        de(&Client(&self.token).remove(index as u64)?)
    }

    /// The number of elements (Python's `len(l)`).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.list_from(0..5)?;
    /// assert_eq!(l.len()?, 5);
    /// # Ok(())
    /// # }
    /// ```
    pub fn len(&self) -> Result<usize> {
        Ok(Client(&self.token).len()? as usize)
    }

    /// Whether the list is empty (Python's `not l`).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.list::<u8>()?;
    /// assert!(l.is_empty()?);
    /// l.push(0)?;
    /// assert!(!l.is_empty()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Removes and returns the last element, if any (Python's `pop()`, which
    /// raises on an empty list; this returns `None`).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.list_from([1, 2])?;
    /// assert_eq!(l.pop()?, Some(2));
    /// assert_eq!(l.pop()?, Some(1));
    /// assert_eq!(l.pop()?, None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn pop(&self) -> Result<Option<T>> {
        decode_opt(Client(&self.token).pop()?)
    }

    /// Appends every element, in one round trip (Python's `extend`).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.list_from([1])?;
    /// l.extend(2..=4)?;
    /// assert_eq!(l.snapshot()?, [1, 2, 3, 4]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn extend(&self, items: impl IntoIterator<Item = T>) -> Result<()> {
        // Kept until the call is made: a proxy among them must keep its object alive until the list holds it.
        let items: Vec<T> = items.into_iter().collect();
        let raw = items.iter().map(en).collect::<Result<Vec<_>>>()?;
        Client(&self.token).extend(raw)
    }

    /// Reverses the list in place (Python's `reverse`).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.list_from([1, 2, 3])?;
    /// l.reverse()?;
    /// assert_eq!(l.snapshot()?, [3, 2, 1]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn reverse(&self) -> Result<()> {
        Client(&self.token).reverse()
    }

    /// Removes every element (Python's `clear`).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.list_from([1, 2, 3])?;
    /// l.clear()?;
    /// assert!(l.is_empty()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn clear(&self) -> Result<()> {
        Client(&self.token).clear()
    }

    /// A copy of the whole list (Python's `l[:]`), in one round trip; later
    /// changes to the list do not change the copy.
    ///
    /// # Errors
    /// As [`push`](Self::push).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.list_from(["a".to_string()])?;
    /// let copy = l.snapshot()?;
    /// l.push("b".into())?;
    /// assert_eq!(copy, ["a"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn snapshot(&self) -> Result<Vec<T>> {
        decode_all(Client(&self.token).snapshot()?)
    }

    /// How many elements equal `value` (Python's `count`).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.list_from([1, 2, 1, 1])?;
    /// assert_eq!(l.count(&1)?, 3);
    /// assert_eq!(l.count(&5)?, 0);
    /// # Ok(())
    /// # }
    /// ```
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
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.list_from(['x', 'y', 'y'])?;
    /// assert_eq!(l.index(&'y')?, 1);
    /// assert!(matches!(l.index(&'z'), Err(multiproc::Error::InvalidArgument(_))));
    /// # Ok(())
    /// # }
    /// ```
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
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.list_from([3, 1, 2])?;
    /// l.sort()?;
    /// assert_eq!(l.snapshot()?, [1, 2, 3]);
    /// # Ok(())
    /// # }
    /// ```
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
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.list_from(["ccc".to_string(), "a".into(), "bb".into()])?;
    /// l.sort_by(|a, b| b.len().cmp(&a.len()))?;
    /// assert_eq!(l.snapshot()?, ["ccc", "bb", "a"]);
    /// # Ok(())
    /// # }
    /// ```
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

    /// Iterates over a [`snapshot`](Self::snapshot) (Python's `for x in l`).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.list_from([1u64, 2, 3])?;
    /// let total: u64 = l.iter()?.sum();
    /// assert_eq!(total, 6);
    /// # Ok(())
    /// # }
    /// ```
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
