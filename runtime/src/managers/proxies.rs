//! Typed proxies for the built-in shared objects.
//!
//! The server stores encoded values and never needs their types; each proxy
//! encodes arguments and decodes results with its own type parameters. A
//! proxy is `Clone`, `Send` and `Sync`, and a valid task argument under every
//! start method: it travels as its [`Token`] and reconnects on first use.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::client::{Token, owner_token};
use super::server::{de, en};
use crate::error::Result;

/// A handle to an object that lives in a manager. Implemented by every proxy
/// type, including the ones `#[multiproc::managed]` generates.
pub trait Proxy: Sized {
    /// The kind of object the proxy drives: `dict`, `queue`, … or a managed type's path.
    const KIND: &'static str;
    /// The proxy for the object `token` names.
    fn from_token(token: Token) -> Self;
    /// The token naming this proxy's object.
    fn token(&self) -> &Token;
}

fn micros(t: Option<Duration>) -> Option<u64> {
    t.map(|d| d.as_micros().min(u128::from(u64::MAX)) as u64)
}

fn decode_opt<T: DeserializeOwned>(b: Option<Vec<u8>>) -> Result<Option<T>> {
    b.map(|b| de(&b)).transpose()
}

fn decode_all<T: DeserializeOwned>(items: Vec<Vec<u8>>) -> Result<Vec<T>> {
    items.iter().map(|b| de(b)).collect()
}

macro_rules! proxy_type {
    ($(#[$doc:meta])* $name:ident [$($g:ident),*] $kind:literal) => {
        $(#[$doc])*
        pub struct $name<$($g),*> {
            token: Token,
            _marker: PhantomData<fn() -> ($($g,)*)>,
        }

        impl<$($g),*> Clone for $name<$($g),*> {
            fn clone(&self) -> Self {
                $name { token: self.token.clone(), _marker: PhantomData }
            }
        }

        impl<$($g),*> fmt::Debug for $name<$($g),*> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($name)).field(&self.token).finish()
            }
        }

        impl<$($g),*> Serialize for $name<$($g),*> {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                self.token.serialize(s)
            }
        }

        impl<'de, $($g),*> Deserialize<'de> for $name<$($g),*> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                Ok($name { token: Token::deserialize(d)?, _marker: PhantomData })
            }
        }

        impl<$($g),*> Proxy for $name<$($g),*> {
            const KIND: &'static str = $kind;
            fn from_token(token: Token) -> Self {
                $name { token, _marker: PhantomData }
            }
            fn token(&self) -> &Token {
                &self.token
            }
        }
    };
}

proxy_type! {
    /// A `HashMap`-like dictionary in a manager (Python's `manager.dict()`);
    /// keeps insertion order. Keys are compared by their encoded bytes, so use
    /// key types whose encoding is canonical (integers, strings, tuples of
    /// them — not `HashMap`).
    ///
    /// Values are copies: `d.get(&k)?` returns the value, and changing it
    /// changes nothing in the manager until you `insert` it again. To share a
    /// mutable inner container, store a proxy (e.g. a [`ListProxy`]) as the value.
    DictProxy [K, V] "dict"
}

impl<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned> DictProxy<K, V> {
    /// Sets `key` to `value`; returns the previous value (`d[key] = value`).
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) or a connection error if the manager cannot be reached.
    pub fn insert(&self, key: K, value: V) -> Result<Option<V>> {
        decode_opt(self.token.call("insert", &(en(&key)?, en(&value)?))?)
    }

    /// The value for `key`, if any.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        decode_opt(self.token.call("get", &en(key)?)?)
    }

    /// Removes `key`; returns its value, if it was there.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn remove(&self, key: &K) -> Result<Option<V>> {
        decode_opt(self.token.call("remove", &en(key)?)?)
    }

    /// Sets `key` to `value` unless present; returns the value now stored (Python's `setdefault`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn setdefault(&self, key: K, value: V) -> Result<V> {
        let b: Vec<u8> = self.token.call("setdefault", &(en(&key)?, en(&value)?))?;
        de(&b)
    }

    /// The number of entries.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn len(&self) -> Result<usize> {
        Ok(self.token.call::<_, u64>("len", &())? as usize)
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
        self.token.call("contains_key", &en(key)?)
    }

    /// The keys, in insertion order (a snapshot).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn keys(&self) -> Result<Vec<K>> {
        decode_all(self.token.call("keys", &())?)
    }

    /// The values, in insertion order (a snapshot).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn values(&self) -> Result<Vec<V>> {
        decode_all(self.token.call("values", &())?)
    }

    /// The `(key, value)` pairs, in insertion order (a snapshot; Python's `items()` / `copy()`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn items(&self) -> Result<Vec<(K, V)>> {
        let raw: Vec<(Vec<u8>, Vec<u8>)> = self.token.call("items", &())?;
        raw.iter().map(|(k, v)| Ok((de(k)?, de(v)?))).collect()
    }

    /// Removes every entry.
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn clear(&self) -> Result<()> {
        self.token.call("clear", &())
    }

    /// Inserts every pair, in one round trip (Python's `update`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert).
    pub fn update(&self, items: impl IntoIterator<Item = (K, V)>) -> Result<()> {
        let raw = items.into_iter().map(|(k, v)| Ok((en(&k)?, en(&v)?))).collect::<Result<Vec<_>>>()?;
        self.token.call("update", &raw)
    }
}

proxy_type! {
    /// A `Vec`-like list in a manager (Python's `manager.list()`). Elements are
    /// copies, as for [`DictProxy`]; iterate over a [`snapshot`](Self::snapshot).
    ListProxy [T] "list"
}

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    /// Appends `value` (Python's `append`).
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) or a connection error if the manager cannot be reached.
    pub fn push(&self, value: T) -> Result<()> {
        self.token.call("push", &en(&value)?)
    }

    /// The element at `index`, if in range.
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn get(&self, index: usize) -> Result<Option<T>> {
        decode_opt(self.token.call("get", &(index as u64))?)
    }

    /// Replaces the element at `index` (`l[index] = value`).
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) if `index` is out of range; as [`push`](Self::push).
    pub fn set(&self, index: usize, value: T) -> Result<()> {
        self.token.call("set", &(index as u64, en(&value)?))
    }

    /// Inserts `value` at `index`, shifting later elements.
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) if `index > len`; as [`push`](Self::push).
    pub fn insert(&self, index: usize, value: T) -> Result<()> {
        self.token.call("insert", &(index as u64, en(&value)?))
    }

    /// Removes and returns the element at `index`.
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) if `index` is out of range; as [`push`](Self::push).
    pub fn remove(&self, index: usize) -> Result<T> {
        de(&self.token.call::<_, Vec<u8>>("remove", &(index as u64))?)
    }

    /// The number of elements.
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn len(&self) -> Result<usize> {
        Ok(self.token.call::<_, u64>("len", &())? as usize)
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
        decode_opt(self.token.call("pop", &())?)
    }

    /// Appends every element, in one round trip.
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn extend(&self, items: impl IntoIterator<Item = T>) -> Result<()> {
        let raw = items.into_iter().map(|v| en(&v)).collect::<Result<Vec<_>>>()?;
        self.token.call("extend", &raw)
    }

    /// Reverses the list in place.
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn reverse(&self) -> Result<()> {
        self.token.call("reverse", &())
    }

    /// Removes every element.
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn clear(&self) -> Result<()> {
        self.token.call("clear", &())
    }

    /// A copy of the whole list (Python's `l[:]`), in one round trip.
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn snapshot(&self) -> Result<Vec<T>> {
        decode_all(self.token.call("snapshot", &())?)
    }

    /// Iterates over a [`snapshot`](Self::snapshot).
    ///
    /// # Errors
    /// As [`push`](Self::push).
    pub fn iter(&self) -> Result<std::vec::IntoIter<T>> {
        Ok(self.snapshot()?.into_iter())
    }
}

proxy_type! {
    /// One value in a manager (Python's `manager.Value`).
    ValueProxy [T] "value"
}

impl<T: Serialize + DeserializeOwned> ValueProxy<T> {
    /// The current value.
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) or a connection error if the manager cannot be reached.
    pub fn get(&self) -> Result<T> {
        de(&self.token.call::<_, Vec<u8>>("get", &())?)
    }

    /// Replaces the value.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn set(&self, value: T) -> Result<()> {
        self.token.call("set", &en(&value)?)
    }

    /// Replaces the value and returns the old one, atomically.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn replace(&self, value: T) -> Result<T> {
        de(&self.token.call::<_, Vec<u8>>("replace", &en(&value)?)?)
    }
}

proxy_type! {
    /// Named fields of serde values (Python's `manager.Namespace()`); each field
    /// may have its own type.
    NamespaceProxy [] "namespace"
}

impl NamespaceProxy {
    /// The field `name`, if set.
    ///
    /// # Errors
    /// [`Error::Decode`](crate::Error::Decode) if it holds another type; or a connection error.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        decode_opt(self.token.call("get", name)?)
    }

    /// Sets the field `name` (`ns.name = value`).
    ///
    /// # Errors
    /// [`Error::Encode`](crate::Error::Encode) or a connection error.
    pub fn set<T: Serialize + ?Sized>(&self, name: &str, value: &T) -> Result<()> {
        self.token.call("set", &(name, en(value)?))
    }

    /// Deletes the field `name`; whether it was set (`del ns.name`).
    ///
    /// # Errors
    /// A connection error.
    pub fn remove(&self, name: &str) -> Result<bool> {
        self.token.call("remove", name)
    }

    /// The field names, in the order they were first set.
    ///
    /// # Errors
    /// A connection error.
    pub fn names(&self) -> Result<Vec<String>> {
        self.token.call("names", &())
    }
}

proxy_type! {
    /// A FIFO queue in a manager (Python's `manager.Queue()`), optionally bounded.
    QueueProxy [T] "queue"
}

impl<T: Serialize + DeserializeOwned> QueueProxy<T> {
    /// Puts `item`, waiting while the queue is full.
    ///
    /// # Errors
    /// A connection error.
    pub fn put(&self, item: T) -> Result<()> {
        self.token.call("put", &(en(&item)?, true, None::<u64>))
    }

    /// Puts `item`, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`Error::Full`](crate::Error::Full) if there was no room in time.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<()> {
        self.token.call("put", &(en(&item)?, true, micros(Some(timeout))))
    }

    /// Puts `item` if there is room now.
    ///
    /// # Errors
    /// [`Error::Full`](crate::Error::Full) if there is none.
    pub fn put_nowait(&self, item: T) -> Result<()> {
        self.token.call("put", &(en(&item)?, false, None::<u64>))
    }

    /// Takes the oldest item, waiting until there is one.
    ///
    /// # Errors
    /// A connection error.
    pub fn get(&self) -> Result<T> {
        de(&self.token.call::<_, Vec<u8>>("get", &(true, None::<u64>))?)
    }

    /// Takes the oldest item, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`Error::Empty`](crate::Error::Empty) if nothing arrived in time.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
        de(&self.token.call::<_, Vec<u8>>("get", &(true, micros(Some(timeout))))?)
    }

    /// Takes the oldest item if there is one now.
    ///
    /// # Errors
    /// [`Error::Empty`](crate::Error::Empty) if the queue is empty.
    pub fn get_nowait(&self) -> Result<T> {
        de(&self.token.call::<_, Vec<u8>>("get", &(false, None::<u64>))?)
    }

    /// The number of items.
    ///
    /// # Errors
    /// A connection error.
    pub fn qsize(&self) -> Result<usize> {
        Ok(self.token.call::<_, u64>("qsize", &())? as usize)
    }

    /// Whether the queue is empty.
    ///
    /// # Errors
    /// A connection error.
    pub fn empty(&self) -> Result<bool> {
        self.token.call("empty", &())
    }

    /// Whether the queue is at its bound.
    ///
    /// # Errors
    /// A connection error.
    pub fn full(&self) -> Result<bool> {
        self.token.call("full", &())
    }
}

macro_rules! lock_methods {
    ($name:ident) => {
        impl $name {
            /// Acquires the lock, waiting as long as it takes; returns `true`.
            ///
            /// # Errors
            /// A connection error.
            pub fn acquire(&self) -> Result<bool> {
                self.token.call("acquire", &(owner_token(), true, None::<u64>))
            }

            /// Acquires the lock, waiting at most `timeout`; whether it was acquired.
            ///
            /// # Errors
            /// A connection error.
            pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
                self.token.call("acquire", &(owner_token(), true, micros(Some(timeout))))
            }

            /// Acquires the lock if it is free now; whether it was acquired.
            ///
            /// # Errors
            /// A connection error.
            pub fn try_acquire(&self) -> Result<bool> {
                self.token.call("acquire", &(owner_token(), false, None::<u64>))
            }

            /// Releases the lock.
            ///
            /// # Errors
            /// [`Error::Remote`](crate::Error::Remote) if it is not held (by this thread, for a re-entrant lock).
            pub fn release(&self) -> Result<()> {
                self.token.call("release", &owner_token())
            }
        }
    };
}

proxy_type! {
    /// A lock in a manager (Python's `manager.Lock()`). Any thread may release it.
    LockProxy [] "lock"
}
lock_methods!(LockProxy);

impl LockProxy {
    /// Whether the lock is held.
    ///
    /// # Errors
    /// A connection error.
    pub fn locked(&self) -> Result<bool> {
        self.token.call("locked", &())
    }
}

proxy_type! {
    /// A re-entrant lock in a manager (Python's `manager.RLock()`), owned by
    /// one thread of one process at a time.
    RLockProxy [] "rlock"
}
lock_methods!(RLockProxy);

proxy_type! {
    /// A counting semaphore in a manager (Python's `manager.Semaphore(n)`).
    SemaphoreProxy [] "semaphore"
}

impl SemaphoreProxy {
    /// Takes one unit, waiting as long as it takes; returns `true`.
    ///
    /// # Errors
    /// A connection error.
    pub fn acquire(&self) -> Result<bool> {
        self.token.call("acquire", &(true, None::<u64>))
    }

    /// Takes one unit, waiting at most `timeout`; whether it got one.
    ///
    /// # Errors
    /// A connection error.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        self.token.call("acquire", &(true, micros(Some(timeout))))
    }

    /// Takes one unit if one is free now.
    ///
    /// # Errors
    /// A connection error.
    pub fn try_acquire(&self) -> Result<bool> {
        self.token.call("acquire", &(false, None::<u64>))
    }

    /// Gives one unit back.
    ///
    /// # Errors
    /// A connection error.
    pub fn release(&self) -> Result<()> {
        self.token.call("release", &1u64)
    }

    /// The number of free units.
    ///
    /// # Errors
    /// A connection error.
    pub fn value(&self) -> Result<u64> {
        self.token.call("value", &())
    }
}

proxy_type! {
    /// A condition variable with its own re-entrant lock (Python's `manager.Condition()`).
    ConditionProxy [] "condition"
}
lock_methods!(ConditionProxy);

impl ConditionProxy {
    /// Releases the lock, waits for a notification (or `timeout`), re-acquires
    /// the lock; whether it was notified. The caller must hold the lock.
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) if the lock is not held by this thread.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        self.token.call("wait", &(owner_token(), micros(timeout)))
    }

    /// Waits until `predicate()` holds, re-checking after each notification;
    /// returns its last value (false after `timeout`).
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub fn wait_for(&self, mut predicate: impl FnMut() -> bool, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        loop {
            if predicate() {
                return Ok(true);
            }
            let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return Ok(false);
            }
            self.wait(left)?;
        }
    }

    /// Wakes up to `n` waiters. The caller must hold the lock.
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) if the lock is not held by this thread.
    pub fn notify(&self, n: usize) -> Result<()> {
        self.token.call("notify", &(owner_token(), n as u64))
    }

    /// Wakes every waiter. The caller must hold the lock.
    ///
    /// # Errors
    /// As [`notify`](Self::notify).
    pub fn notify_all(&self) -> Result<()> {
        self.token.call("notify_all", &owner_token())
    }
}

proxy_type! {
    /// An event flag in a manager (Python's `manager.Event()`).
    EventProxy [] "event"
}

impl EventProxy {
    /// Sets the flag and wakes every waiter.
    ///
    /// # Errors
    /// A connection error.
    pub fn set(&self) -> Result<()> {
        self.token.call("set", &())
    }

    /// Clears the flag.
    ///
    /// # Errors
    /// A connection error.
    pub fn clear(&self) -> Result<()> {
        self.token.call("clear", &())
    }

    /// Whether the flag is set.
    ///
    /// # Errors
    /// A connection error.
    pub fn is_set(&self) -> Result<bool> {
        self.token.call("is_set", &())
    }

    /// Waits until the flag is set (or `timeout`); whether it is set.
    ///
    /// # Errors
    /// A connection error.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        self.token.call("wait", &micros(timeout))
    }
}

proxy_type! {
    /// A barrier for `parties` threads or processes (Python's `manager.Barrier(n)`).
    BarrierProxy [] "barrier"
}

impl BarrierProxy {
    /// Waits until every party has arrived; returns this party's arrival index (0..parties).
    ///
    /// # Errors
    /// [`Error::BrokenBarrier`](crate::Error::BrokenBarrier) if the barrier was
    /// reset, aborted, or `timeout` passed (which breaks it for everyone).
    pub fn wait(&self, timeout: Option<Duration>) -> Result<usize> {
        Ok(self.token.call::<_, u64>("wait", &micros(timeout))? as usize)
    }

    /// Returns the barrier to its initial state; current waiters get `BrokenBarrier`.
    ///
    /// # Errors
    /// A connection error.
    pub fn reset(&self) -> Result<()> {
        self.token.call("reset", &())
    }

    /// Breaks the barrier: current and future waiters get `BrokenBarrier` until a reset.
    ///
    /// # Errors
    /// A connection error.
    pub fn abort(&self) -> Result<()> {
        self.token.call("abort", &())
    }

    /// The number of parties.
    ///
    /// # Errors
    /// A connection error.
    pub fn parties(&self) -> Result<usize> {
        Ok(self.token.call::<_, u64>("parties", &())? as usize)
    }

    /// How many parties are waiting now.
    ///
    /// # Errors
    /// A connection error.
    pub fn n_waiting(&self) -> Result<usize> {
        Ok(self.token.call::<_, u64>("n_waiting", &())? as usize)
    }

    /// Whether the barrier is broken.
    ///
    /// # Errors
    /// A connection error.
    pub fn broken(&self) -> Result<bool> {
        self.token.call("broken", &())
    }
}
