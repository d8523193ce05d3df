//! `Value`, `Array`, `RawValue`, `RawArray`: plain-old-data in shared memory.

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use bytemuck::Pod;

use crate::error::{Error, Result};
use crate::region::{Kind, Region};
use crate::sync::{Lock, LockGuard};

/// Data starts one cache line into the region, so `T` may be aligned up to 64.
const DATA: usize = 64;

/// A short fingerprint of `T` (size and type name), checked when a handle is decoded.
fn type_tag<T>() -> u64 {
    let name = std::any::type_name::<T>();
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    (size_of::<T>() as u64 & 0xffff_ffff) | (u64::from(h) << 32)
}

fn check_type<T: Pod>() -> Result<()> {
    if align_of::<T>() > DATA {
        return Err(Error::InvalidArgument(format!("alignment of {} exceeds 64", std::any::type_name::<T>())));
    }
    Ok(())
}

/// The untyped storage of `n` values of `T`.
#[derive(Clone)]
struct Cells<T> {
    region: Arc<Region>,
    len: usize,
    _marker: PhantomData<fn(T) -> T>,
}

impl<T: Pod> Cells<T> {
    fn new(init: &[T]) -> Result<Cells<T>> {
        check_type::<T>()?;
        let bytes = std::mem::size_of_val(init);
        let region = Region::create(Kind::Value, DATA + bytes, type_tag::<T>())?;
        region.u64(0).store(init.len() as u64, std::sync::atomic::Ordering::Release);
        region.bytes_mut(DATA, bytes).copy_from_slice(bytemuck::cast_slice(init));
        Ok(Cells { region, len: init.len(), _marker: PhantomData })
    }

    fn zeroed(len: usize) -> Result<Cells<T>> {
        check_type::<T>()?;
        let bytes = len.checked_mul(size_of::<T>()).ok_or_else(|| Error::InvalidArgument("array too large".into()))?;
        let region = Region::create(Kind::Value, DATA + bytes, type_tag::<T>())?;
        region.u64(0).store(len as u64, std::sync::atomic::Ordering::Release);
        Ok(Cells { region, len, _marker: PhantomData })
    }

    fn from_region(region: Arc<Region>) -> Result<Cells<T>> {
        check_type::<T>()?;
        if region.param() != type_tag::<T>() {
            return Err(Error::Decode {
                what: "shared value",
                reason: format!("it does not hold {}", std::any::type_name::<T>()),
            });
        }
        let bytes = region.len().saturating_sub(DATA);
        let len = usize::try_from(region.u64(0).load(std::sync::atomic::Ordering::Acquire)).unwrap_or(usize::MAX);
        if region.len() < DATA || len.checked_mul(size_of::<T>()) != Some(bytes) {
            return Err(Error::Decode { what: "shared value", reason: "size is not a multiple of the element".into() });
        }
        Ok(Cells { region, len, _marker: PhantomData })
    }

    #[inline]
    fn slice(&self) -> &[T] {
        bytemuck::cast_slice(self.region.bytes(DATA, self.len * size_of::<T>()))
    }

    #[allow(clippy::mut_from_ref)]
    #[inline]
    fn slice_mut(&self) -> &mut [T] {
        bytemuck::cast_slice_mut(self.region.bytes_mut(DATA, self.len * size_of::<T>()))
    }
}

impl<T> serde::Serialize for Cells<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        crate::region::serialize(&self.region, Kind::Value, s)
    }
}

impl<'de, T: Pod> serde::Deserialize<'de> for Cells<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let region = crate::region::deserialize(d, Kind::Value)?;
        Cells::from_region(region).map_err(serde::de::Error::custom)
    }
}

// ------------------------------------------------------------------ RawValue / RawArray

/// One `T` in shared memory, without a lock (Python's `RawValue`).
///
/// Reads and writes from several processes are not synchronised: use
/// [`Value`] (or your own [`Lock`]) when more than one process writes.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(bound(serialize = "", deserialize = "T: Pod"))]
pub struct RawValue<T> {
    cells: Cells<T>,
}

impl<T: Pod> RawValue<T> {
    /// A new shared value holding `value`.
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created; [`Error::InvalidArgument`]
    /// if `T` is aligned to more than 64 bytes.
    pub fn new(value: T) -> Result<RawValue<T>> {
        Ok(RawValue { cells: Cells::new(std::slice::from_ref(&value))? })
    }

    /// A copy of the value.
    pub fn get(&self) -> T {
        self.cells.slice()[0]
    }

    /// Replaces the value.
    pub fn set(&self, value: T) {
        self.cells.slice_mut()[0] = value;
    }

    /// The value in place, for reading (zero-copy; another process may write it meanwhile).
    pub fn get_ref(&self) -> &T {
        &self.cells.slice()[0]
    }

    /// The value in place, for writing (zero-copy; not synchronised with other processes).
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.cells.slice_mut()[0]
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawValue({:?})", self.get())
    }
}

/// A fixed-length array of `T` in shared memory, without a lock (Python's `RawArray`).
///
/// [`as_slice`](RawArray::as_slice) and [`as_mut_slice`](RawArray::as_mut_slice)
/// are views of the shared memory itself (no copy). Accesses from several
/// processes are not synchronised: use [`Array`] when more than one writes.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(bound(serialize = "", deserialize = "T: Pod"))]
pub struct RawArray<T> {
    cells: Cells<T>,
}

impl<T: Pod> RawArray<T> {
    /// A shared array holding a copy of `items`.
    ///
    /// # Errors
    /// As [`RawValue::new`].
    pub fn from_slice(items: &[T]) -> Result<RawArray<T>> {
        Ok(RawArray { cells: Cells::new(items)? })
    }

    /// A shared array of `len` zeroed elements (Python's `RawArray('i', 10)`).
    ///
    /// # Errors
    /// As [`RawValue::new`].
    pub fn zeroed(len: usize) -> Result<RawArray<T>> {
        Ok(RawArray { cells: Cells::zeroed(len)? })
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.cells.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.cells.len == 0
    }

    /// Element `i`, or `None` past the end.
    pub fn get(&self, i: usize) -> Option<T> {
        self.cells.slice().get(i).copied()
    }

    /// Sets element `i`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] past the end (Python's `IndexError`).
    pub fn set(&self, i: usize, value: T) -> Result<()> {
        let len = self.cells.len;
        *self.cells.slice_mut().get_mut(i).ok_or_else(|| index_error(i, len))? = value;
        Ok(())
    }

    /// The shared elements, in place.
    pub fn as_slice(&self) -> &[T] {
        self.cells.slice()
    }

    /// The shared elements, in place, for writing.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        self.cells.slice_mut()
    }

    /// A copy of the elements.
    pub fn to_vec(&self) -> Vec<T> {
        self.cells.slice().to_vec()
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for RawArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawArray").field(&self.as_slice()).finish()
    }
}

fn index_error(i: usize, len: usize) -> Error {
    Error::InvalidArgument(format!("index {i} out of range for length {len}"))
}

// ------------------------------------------------------------------ Value / Array

/// One `T` in shared memory with its own [`Lock`] (Python's `Value`).
///
/// [`lock`](Value::lock) gives a guard that derefs to `&mut T`;
/// [`get`](Value::get) and [`set`](Value::set) take the lock for one access.
/// Increments from many processes under the lock lose nothing.
///
/// ```no_run
/// #[multiproc::task]
/// fn add(counter: multiproc::Value<u64>, times: u64) {
///     for _ in 0..times { *counter.lock().unwrap() += 1; }
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let counter = multiproc::Value::new(0u64)?;
///     let mut p = multiproc::Process::new(add, (counter.clone(), 1000))?;
///     p.start()?;
///     p.join()?;
///     assert_eq!(counter.get(), 1000);
///     Ok(())
/// }
/// ```
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(bound(serialize = "", deserialize = "T: Pod"))]
pub struct Value<T> {
    lock: Lock,
    cells: Cells<T>,
}

/// Exclusive access to a [`Value`]'s data while its lock is held.
pub struct ValueGuard<'a, T> {
    guard: LockGuard<'a>,
    value: &'a mut T,
}

impl<T> ValueGuard<'_, T> {
    /// The pid of a previous holder that died holding the lock, if this
    /// acquisition took it over: the value may be half-updated.
    pub fn owner_died(&self) -> Option<u32> {
        self.guard.owner_died()
    }
}

impl<T> Deref for ValueGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.value
    }
}

impl<T> DerefMut for ValueGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for ValueGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.value, f)
    }
}

impl<T: Pod> Value<T> {
    /// A new shared value holding `value`, with a new lock.
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created; [`Error::InvalidArgument`]
    /// if `T` is aligned to more than 64 bytes.
    pub fn new(value: T) -> Result<Value<T>> {
        Value::with_lock(value, Lock::new()?)
    }

    /// A new shared value guarded by an existing `lock` (Python's `Value(…, lock=L)`).
    ///
    /// # Errors
    /// As [`Value::new`].
    pub fn with_lock(value: T, lock: Lock) -> Result<Value<T>> {
        Ok(Value { lock, cells: Cells::new(std::slice::from_ref(&value))? })
    }

    /// Locks the value; the guard derefs to `&mut T`.
    ///
    /// # Errors
    /// None today (see [`Lock::lock`]); a dead previous holder is reported on the guard.
    #[inline]
    pub fn lock(&self) -> Result<ValueGuard<'_, T>> {
        let guard = self.lock.lock()?;
        Ok(ValueGuard { guard, value: &mut self.cells.slice_mut()[0] })
    }

    /// A copy of the value, read under the lock.
    pub fn get(&self) -> T {
        match self.lock() {
            Ok(g) => *g,
            Err(_) => self.cells.slice()[0],
        }
    }

    /// Replaces the value under the lock.
    pub fn set(&self, value: T) {
        if let Ok(mut g) = self.lock() {
            *g = value;
        }
    }

    /// The lock guarding the value (Python's `get_lock`).
    pub fn get_lock(&self) -> &Lock {
        &self.lock
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value({:?})", self.cells.slice()[0])
    }
}

/// A fixed-length array of `T` in shared memory with its own [`Lock`] (Python's `Array`).
///
/// [`lock`](Array::lock) gives a guard that derefs to `&mut [T]` (zero-copy).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(bound(serialize = "", deserialize = "T: Pod"))]
pub struct Array<T> {
    lock: Lock,
    cells: Cells<T>,
}

/// Exclusive access to an [`Array`]'s elements while its lock is held.
pub struct ArrayGuard<'a, T> {
    guard: LockGuard<'a>,
    items: &'a mut [T],
}

impl<T> ArrayGuard<'_, T> {
    /// The pid of a previous holder that died holding the lock, if this
    /// acquisition took it over.
    pub fn owner_died(&self) -> Option<u32> {
        self.guard.owner_died()
    }
}

impl<T> Deref for ArrayGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.items
    }
}

impl<T> DerefMut for ArrayGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.items
    }
}

impl<T: fmt::Debug> fmt::Debug for ArrayGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.items, f)
    }
}

impl<T: Pod> Array<T> {
    /// A shared array holding a copy of `items`, with a new lock.
    ///
    /// # Errors
    /// As [`Value::new`].
    pub fn from_slice(items: &[T]) -> Result<Array<T>> {
        Ok(Array { lock: Lock::new()?, cells: Cells::new(items)? })
    }

    /// A shared array of `len` zeroed elements, with a new lock.
    ///
    /// # Errors
    /// As [`Value::new`].
    pub fn zeroed(len: usize) -> Result<Array<T>> {
        Ok(Array { lock: Lock::new()?, cells: Cells::zeroed(len)? })
    }

    /// A shared array holding a copy of `items`, guarded by `lock`.
    ///
    /// # Errors
    /// As [`Value::new`].
    pub fn with_lock(items: &[T], lock: Lock) -> Result<Array<T>> {
        Ok(Array { lock, cells: Cells::new(items)? })
    }

    /// Locks the array; the guard derefs to `&mut [T]`.
    ///
    /// # Errors
    /// None today; a dead previous holder is reported on the guard.
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>> {
        let guard = self.lock.lock()?;
        Ok(ArrayGuard { guard, items: self.cells.slice_mut() })
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.cells.len
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.cells.len == 0
    }

    /// Element `i` (read under the lock), or `None` past the end.
    pub fn get(&self, i: usize) -> Option<T> {
        self.lock().ok().and_then(|g| g.get(i).copied())
    }

    /// Sets element `i` under the lock.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] past the end (Python's `IndexError`).
    pub fn set(&self, i: usize, value: T) -> Result<()> {
        let mut g = self.lock()?;
        let len = g.len();
        *g.get_mut(i).ok_or_else(|| index_error(i, len))? = value;
        Ok(())
    }

    /// A copy of the elements, taken under the lock.
    pub fn to_vec(&self) -> Vec<T> {
        self.lock().map(|g| g.to_vec()).unwrap_or_default()
    }

    /// The lock guarding the array (Python's `get_lock`).
    pub fn get_lock(&self) -> &Lock {
        &self.lock
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Array").field(&self.cells.slice()).finish()
    }
}
