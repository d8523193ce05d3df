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
        let cells = Cells { region, len: init.len(), _marker: PhantomData };
        cells.copy_from(init);
        Ok(cells)
    }

    fn zeroed(len: usize) -> Result<Cells<T>> {
        check_type::<T>()?;
        let total = len
            .checked_mul(size_of::<T>())
            .and_then(|bytes| bytes.checked_add(DATA))
            .ok_or_else(|| Error::InvalidArgument("array too large".into()))?;
        let region = Region::create(Kind::Value, total, type_tag::<T>())?;
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

    fn bytes_len(&self) -> usize {
        self.len * size_of::<T>()
    }

    /// A copy of element `i` (`i < len`), safe against concurrent writers.
    fn get(&self, i: usize) -> T {
        let mut v = T::zeroed();
        self.region.read(DATA + i * size_of::<T>(), bytemuck::bytes_of_mut(&mut v));
        v
    }

    /// Writes element `i` (`i < len`), safe against concurrent readers and writers.
    fn set(&self, i: usize, value: T) {
        self.region.write(DATA + i * size_of::<T>(), bytemuck::bytes_of(&value));
    }

    /// A copy of every element.
    fn to_vec(&self) -> Vec<T> {
        let mut v = vec![T::zeroed(); self.len];
        self.region.read(DATA, bytemuck::cast_slice_mut(&mut v));
        v
    }

    /// Copies `items` (exactly `len` of them) in.
    fn copy_from(&self, items: &[T]) {
        self.region.write(DATA, bytemuck::cast_slice(items));
    }

    /// The elements in place, writable.
    ///
    /// # Safety
    /// The caller holds the only right to the elements while the slice lives:
    /// nothing else, in this process or another, reads or writes them.
    #[allow(clippy::mut_from_ref, unsafe_code)] // an in-place view: its contract is the caller's
    #[inline]
    unsafe fn slice_mut(&self) -> &mut [T] {
        // SAFETY: the region holds `len` elements of `T` at DATA (64-aligned, checked
        // against the type tag when attached); exclusivity is the caller's contract.
        bytemuck::cast_slice_mut(unsafe { self.region.bytes_mut(DATA, self.bytes_len()) })
    }

    /// The elements in place, read-only.
    ///
    /// # Safety
    /// Nothing writes the elements while the slice lives.
    #[allow(unsafe_code)] // an in-place view: its contract is the caller's
    #[inline]
    unsafe fn slice(&self) -> &[T] {
        // SAFETY: as in `slice_mut`; no writer meanwhile is the caller's contract.
        bytemuck::cast_slice(unsafe { self.region.bytes(DATA, self.bytes_len()) })
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
/// A `RawValue` is a valid task argument under every start method; clones
/// share the value.
///
/// ```
/// #[multiproc::task]
/// fn answer(v: multiproc::RawValue<f64>) { v.set(42.5); }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let v = multiproc::RawValue::new(0.0f64)?;
///     let mut p = multiproc::Process::new(answer, (v.clone(),))?;
///     p.start()?;
///     p.join()?;
///     assert_eq!(v.get(), 42.5); // written by the child
///     Ok(())
/// }
/// ```
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(bound(serialize = "", deserialize = "T: Pod"))]
pub struct RawValue<T> {
    cells: Cells<T>,
}

impl<T: Pod> RawValue<T> {
    /// A new shared value holding `value` (Python's `RawValue('d', 1.5)`); `T`
    /// is any plain-old-data type (`bytemuck::Pod`).
    ///
    /// ```
    /// let v = multiproc::RawValue::new(1.5f64)?;
    /// assert_eq!(v.get(), 1.5);
    /// let pair = multiproc::RawValue::new([1u32, 2])?;
    /// assert_eq!(pair.get(), [1, 2]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created; [`Error::InvalidArgument`]
    /// if `T` is aligned to more than 64 bytes.
    pub fn new(value: T) -> Result<RawValue<T>> {
        Ok(RawValue { cells: Cells::new(std::slice::from_ref(&value))? })
    }

    /// A copy of the value. Safe against writers in other threads and
    /// processes: a racing write can tear it (mix old and new bytes), as in Python.
    /// Python's `v.value`.
    ///
    /// ```
    /// let v = multiproc::RawValue::new(7u32)?;
    /// let other = v.clone();
    /// other.set(8);
    /// assert_eq!(v.get(), 8); // clones share the value
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn get(&self) -> T {
        self.cells.get(0)
    }

    /// Replaces the value (copied in; safe against concurrent readers and writers).
    /// Python's `v.value = x`.
    ///
    /// ```
    /// let v = multiproc::RawValue::new(0i64)?;
    /// v.set(-3);
    /// assert_eq!(v.get(), -3);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn set(&self, value: T) {
        self.cells.set(0, value);
    }

    /// A new shared value holding a copy of this one, in memory of its own
    /// (Python's `multiprocessing.sharedctypes.copy(obj)`): later writes to
    /// either leave the other alone.
    ///
    /// ```
    /// let v = multiproc::RawValue::new([2u64, 5])?;
    /// let w = v.copy()?;
    /// v.set([0, 0]);
    /// assert_eq!(w.get(), [2, 5]); // independent of the original
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created.
    pub fn copy(&self) -> Result<RawValue<T>> {
        RawValue::new(self.get())
    }

    /// The value in place, for reading (zero-copy).
    ///
    /// # Safety
    /// While the reference lives, nothing may write the value: no `set` or
    /// `get_mut` through any clone of this handle, in this process or another.
    /// Use [`get`](RawValue::get) (a copy) when that cannot be promised.
    ///
    /// ```
    /// let v = multiproc::RawValue::new([1u8; 32])?;
    /// // SAFETY: nothing writes `v` while `bytes` lives (no other handle exists).
    /// let bytes = unsafe { v.get_ref() };
    /// assert_eq!(bytes.iter().map(|&b| u32::from(b)).sum::<u32>(), 32);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    #[allow(unsafe_code)] // the documented in-place accessor (see Safety)
    pub unsafe fn get_ref(&self) -> &T {
        // SAFETY: no writer while the reference lives is this function's contract.
        let all = unsafe { self.cells.slice() };
        &all[0]
    }

    /// The value in place, for writing (zero-copy).
    ///
    /// # Safety
    /// While the reference lives, nothing else may read or write the value,
    /// through any clone of this handle, in this process or another. Use
    /// [`set`](RawValue::set) (a copy) when that cannot be promised.
    ///
    /// ```
    /// let mut v = multiproc::RawValue::new([0u16; 4])?;
    /// // SAFETY: no other handle of `v` exists, so nothing else uses it meanwhile.
    /// unsafe { v.get_mut()[2] = 9 };
    /// assert_eq!(v.get(), [0, 0, 9, 0]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    #[allow(unsafe_code)] // the documented in-place accessor (see Safety)
    pub unsafe fn get_mut(&mut self) -> &mut T {
        // SAFETY: exclusive use while the reference lives is this function's contract.
        let all = unsafe { self.cells.slice_mut() };
        &mut all[0]
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for RawValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawValue({:?})", self.get())
    }
}

/// A fixed-length array of `T` in shared memory, without a lock (Python's `RawArray`).
///
/// [`get`](RawArray::get), [`set`](RawArray::set), [`to_vec`](RawArray::to_vec)
/// and [`copy_from_slice`](RawArray::copy_from_slice) copy, and are safe against
/// concurrent use (a racing write can tear an element, as in Python). The
/// zero-copy views [`as_slice`](RawArray::as_slice) and
/// [`as_mut_slice`](RawArray::as_mut_slice) are `unsafe`: every clone of the
/// handle reaches the same memory, so only the caller can promise that nobody
/// writes it meanwhile. Use [`Array`] when more than one process writes.
///
/// A `RawArray` is a valid task argument under every start method; clones
/// share the elements:
///
/// ```
/// #[multiproc::task]
/// fn squares(a: multiproc::RawArray<u64>) -> multiproc::Result<()> {
///     for i in 0..a.len() {
///         a.set(i, (i * i) as u64)?;
///     }
///     Ok(())
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let a = multiproc::RawArray::<u64>::zeroed(4)?;
///     let mut p = multiproc::Process::new(squares, (a.clone(),))?;
///     p.start()?;
///     p.join()?;
///     assert_eq!(a.to_vec(), [0, 1, 4, 9]);
///     Ok(())
/// }
/// ```
///
/// ```compile_fail,E0133
/// // Two clones cannot both view the memory from safe code.
/// let mut a = multiproc::RawArray::<u64>::zeroed(4)?;
/// let b = a.clone();
/// let view = b.as_slice(); // error: call to unsafe function
/// a.as_mut_slice()[0] = 1;
/// assert_eq!(view[0], 1);
/// # Ok::<(), multiproc::Error>(())
/// ```
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(bound(serialize = "", deserialize = "T: Pod"))]
pub struct RawArray<T> {
    cells: Cells<T>,
}

impl<T: Pod> RawArray<T> {
    /// A shared array holding a copy of `items` (Python's `RawArray('i', [1, 2, 3])`).
    ///
    /// ```
    /// let a = multiproc::RawArray::from_slice(&[1i32, 2, 3])?;
    /// assert_eq!(a.to_vec(), [1, 2, 3]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`RawValue::new`].
    pub fn from_slice(items: &[T]) -> Result<RawArray<T>> {
        Ok(RawArray { cells: Cells::new(items)? })
    }

    /// A shared array of `len` zeroed elements (Python's `RawArray('i', 10)`).
    ///
    /// ```
    /// let a = multiproc::RawArray::<i32>::zeroed(10)?;
    /// assert_eq!(a.to_vec(), [0; 10]);
    /// assert!(multiproc::RawArray::<u8>::zeroed(usize::MAX).is_err()); // too large
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`RawValue::new`].
    pub fn zeroed(len: usize) -> Result<RawArray<T>> {
        Ok(RawArray { cells: Cells::zeroed(len)? })
    }

    /// The number of elements (Python's `len(arr)`).
    ///
    /// ```
    /// let a = multiproc::RawArray::<u8>::zeroed(5)?;
    /// assert_eq!(a.len(), 5);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.cells.len
    }

    /// Whether the array has no elements.
    ///
    /// ```
    /// assert!(multiproc::RawArray::<u8>::from_slice(&[])?.is_empty());
    /// assert!(!multiproc::RawArray::<u8>::zeroed(1)?.is_empty());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.cells.len == 0
    }

    /// A copy of element `i`, or `None` past the end (Python's `arr[i]`).
    ///
    /// ```
    /// let a = multiproc::RawArray::from_slice(&[10u32, 20])?;
    /// assert_eq!(a.get(1), Some(20));
    /// assert_eq!(a.get(2), None);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn get(&self, i: usize) -> Option<T> {
        (i < self.cells.len).then(|| self.cells.get(i))
    }

    /// Sets element `i` (copied in); Python's `arr[i] = x`.
    ///
    /// ```
    /// let a = multiproc::RawArray::<u32>::zeroed(2)?;
    /// a.set(0, 5)?;
    /// assert_eq!(a.to_vec(), [5, 0]);
    /// assert!(matches!(a.set(2, 1), Err(multiproc::Error::InvalidArgument(_))));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] past the end (Python's `IndexError`).
    pub fn set(&self, i: usize, value: T) -> Result<()> {
        if i >= self.cells.len {
            return Err(index_error(i, self.cells.len));
        }
        self.cells.set(i, value);
        Ok(())
    }

    /// Copies `items` over the whole array (Python's `arr[:] = items`).
    ///
    /// ```
    /// let a = multiproc::RawArray::<u16>::zeroed(3)?;
    /// a.copy_from_slice(&[1, 2, 3])?;
    /// assert_eq!(a.to_vec(), [1, 2, 3]);
    /// assert!(a.copy_from_slice(&[1, 2]).is_err()); // wrong length
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `items.len()` differs from [`len`](RawArray::len).
    pub fn copy_from_slice(&self, items: &[T]) -> Result<()> {
        if items.len() != self.cells.len {
            return Err(Error::InvalidArgument(format!(
                "copy_from_slice of {} items into a RawArray of length {}",
                items.len(),
                self.cells.len
            )));
        }
        self.cells.copy_from(items);
        Ok(())
    }

    /// The shared elements, in place (zero-copy).
    ///
    /// # Safety
    /// While the slice lives, nothing may write the elements: no `set`,
    /// `copy_from_slice` or `as_mut_slice` through any clone of this handle, in
    /// this process or another. [`to_vec`](RawArray::to_vec) copies instead.
    ///
    /// ```
    /// let a = multiproc::RawArray::from_slice(&[3u64, 1, 2])?;
    /// // SAFETY: nothing writes `a` while the slice lives (no other handle exists).
    /// let max = unsafe { a.as_slice() }.iter().copied().max();
    /// assert_eq!(max, Some(3));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    #[allow(unsafe_code)] // the documented in-place accessor (see Safety)
    pub unsafe fn as_slice(&self) -> &[T] {
        // SAFETY: no writer while the slice lives is this function's contract.
        unsafe { self.cells.slice() }
    }

    /// The shared elements, in place, for writing (zero-copy).
    ///
    /// # Safety
    /// While the slice lives, nothing else may read or write the elements,
    /// through any clone of this handle, in this process or another.
    ///
    /// ```
    /// let mut a = multiproc::RawArray::from_slice(&[3u64, 1, 2])?;
    /// // SAFETY: no other handle of `a` exists, so nothing else uses it meanwhile.
    /// unsafe { a.as_mut_slice() }.sort();
    /// assert_eq!(a.to_vec(), [1, 2, 3]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    #[allow(unsafe_code)] // the documented in-place accessor (see Safety)
    pub unsafe fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: exclusive use while the slice lives is this function's contract.
        unsafe { self.cells.slice_mut() }
    }

    /// A copy of the elements (Python's `arr[:]`).
    ///
    /// ```
    /// let a = multiproc::RawArray::from_slice(b"hi")?;
    /// assert_eq!(a.to_vec(), b"hi");
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        self.cells.to_vec()
    }

    /// A new shared array holding a copy of these elements, in memory of its
    /// own (Python's `multiprocessing.sharedctypes.copy(obj)`).
    ///
    /// ```
    /// let a = multiproc::RawArray::from_slice(&[1.5f64, 2.5])?;
    /// let b = a.copy()?;
    /// a.set(0, 0.0)?;
    /// assert_eq!(b.to_vec(), [1.5, 2.5]); // independent of the original
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created.
    pub fn copy(&self) -> Result<RawArray<T>> {
        RawArray::from_slice(&self.to_vec())
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for RawArray<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawArray").field(&self.to_vec()).finish()
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
/// ```
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
///     for _ in 0..1000 { *counter.lock()? += 1; } // meanwhile, in the parent
///     p.join()?;
///     assert_eq!(counter.get(), 2000);
///     Ok(())
/// }
/// ```
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(bound(serialize = "", deserialize = "T: Pod"))]
pub struct Value<T> {
    lock: Lock,
    cells: Cells<T>,
}

/// Exclusive access to a [`Value`]'s data while its lock is held; derefs to `T`.
///
/// ```
/// let point = multiproc::Value::new([0i32; 2])?;
/// {
///     let mut guard = point.lock()?;
///     guard[0] = 3;
///     guard[1] = guard[0] * 2; // both coordinates change under one hold
///     assert!(point.get_lock().locked());
/// }
/// assert_eq!(point.get(), [3, 6]);
/// # Ok::<(), multiproc::Error>(())
/// ```
pub struct ValueGuard<'a, T> {
    guard: LockGuard<'a>,
    value: &'a mut T,
}

impl<T> ValueGuard<'_, T> {
    /// The pid of a previous holder that died holding the lock, if this
    /// acquisition took it over: the value may be half-updated.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn die_holding(v: multiproc::Value<u32>) {
    ///     let mut guard = v.lock().unwrap();
    ///     *guard = 1;
    ///     std::mem::forget(guard); // the child exits with the lock held
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let v = multiproc::Value::new(0u32)?;
    ///     let mut p = multiproc::Process::new(die_holding, (v.clone(),))?;
    ///     p.start()?;
    ///     p.join()?;
    ///     let guard = v.lock()?; // taken over from the dead child
    ///     assert_eq!(guard.owner_died(), p.pid());
    ///     assert_eq!(*guard, 1);
    ///     Ok(())
    /// }
    /// ```
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
    /// A new shared value holding `value`, with a new lock (Python's `Value('i', 0)`).
    ///
    /// ```
    /// let v = multiproc::Value::new(0i32)?;
    /// assert_eq!(v.get(), 0);
    /// assert!(!v.get_lock().locked());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created; [`Error::InvalidArgument`]
    /// if `T` is aligned to more than 64 bytes.
    pub fn new(value: T) -> Result<Value<T>> {
        Value::with_lock(value, Lock::new()?)
    }

    /// A new shared value guarded by an existing `lock` (Python's `Value(…, lock=L)`):
    /// values sharing one lock can be updated together.
    ///
    /// ```
    /// let lock = multiproc::Lock::new()?;
    /// let from = multiproc::Value::with_lock(10u64, lock.clone())?;
    /// let to = multiproc::Value::with_lock(0u64, lock.clone())?;
    /// let _held = lock.lock()?; // one hold covers both updates
    /// from.set(from.get() - 4);
    /// to.set(to.get() + 4);
    /// assert_eq!((from.get(), to.get()), (6, 4));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Value::new`].
    pub fn with_lock(value: T, lock: Lock) -> Result<Value<T>> {
        Ok(Value { lock, cells: Cells::new(std::slice::from_ref(&value))? })
    }

    /// Locks the value; the guard derefs to `&mut T` (Python's
    /// `with v.get_lock(): v.value += 1`, in one step).
    ///
    /// ```
    /// let v = multiproc::Value::new(1u64)?;
    /// *v.lock()? *= 10;
    /// assert_eq!(v.get(), 10);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// None today (see [`Lock::lock`]); a dead previous holder is reported on the guard.
    #[inline]
    #[allow(unsafe_code)] // the guard's `&mut T`: see the SAFETY comment
    pub fn lock(&self) -> Result<ValueGuard<'_, T>> {
        let guard = self.lock.lock_exclusive();
        // SAFETY: the guard holds the lock with its exclusive mark until it drops, so
        // no `release` (in any process) frees it meanwhile, and every other access
        // to these cells takes the same lock first (`get`, `set`, `Debug`, the other
        // guards): nobody else reads or writes them while this `&mut` lives. The
        // cells are reachable only through `Value` handles, never a raw one.
        let all = unsafe { self.cells.slice_mut() };
        let value = &mut all[0];
        Ok(ValueGuard { guard, value })
    }

    /// A copy of the value, read under the lock. If this thread already holds
    /// the lock (`value.get_lock().acquire(..)`, or a guard of
    /// [`get_lock`](Value::get_lock)`.lock()`), it reads under that hold instead
    /// of waiting for itself: Python's `with v.get_lock(): v.value += 1`.
    ///
    /// ```
    /// let v = multiproc::Value::new(2.5f32)?;
    /// assert_eq!(v.get(), 2.5);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn get(&self) -> T {
        self.lock.with_exclusive(|| self.cells.get(0))
    }

    /// Replaces the value under the lock (or under this thread's hold, as
    /// [`get`](Value::get)); Python's `v.value = x`.
    ///
    /// ```
    /// let v = multiproc::Value::new(0u8)?;
    /// v.set(7);
    /// assert_eq!(v.get(), 7);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn set(&self, value: T) {
        self.lock.with_exclusive(|| self.cells.set(0, value));
    }

    /// A new shared value holding a copy of this one (read under the lock),
    /// in memory of its own and with a new lock of its own (Python's
    /// `multiprocessing.sharedctypes.copy(obj)`, which gives an unlocked
    /// object: [`RawValue::copy`] is that one).
    ///
    /// ```
    /// let v = multiproc::Value::new(7i32)?;
    /// let w = v.copy()?;
    /// v.set(0);
    /// assert_eq!(w.get(), 7); // independent of the original
    /// let _held = v.get_lock().lock()?;
    /// assert!(!w.get_lock().locked()); // and of its lock
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Value::new`].
    pub fn copy(&self) -> Result<Value<T>> {
        Value::new(self.get())
    }

    /// The lock guarding the value (Python's `get_lock`). While this thread holds
    /// it, [`get`](Value::get) and [`set`](Value::set) run under that hold:
    ///
    /// ```
    /// let v = multiproc::Value::new(1u32)?;
    /// {
    ///     let _held = v.get_lock().lock()?;
    ///     v.set(v.get() + 1); // a read-modify-write no other process interleaves with
    /// }
    /// assert_eq!(v.get(), 2);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn get_lock(&self) -> &Lock {
        &self.lock
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value({:?})", self.get())
    }
}

/// A fixed-length array of `T` in shared memory with its own [`Lock`] (Python's `Array`).
///
/// [`lock`](Array::lock) gives a guard that derefs to `&mut [T]` (zero-copy);
/// [`get`](Array::get), [`set`](Array::set) and [`to_vec`](Array::to_vec) take
/// the lock for one access. An `Array` is a valid task argument under every
/// start method; clones share the elements and the lock.
///
/// ```
/// #[multiproc::task]
/// fn double(a: multiproc::Array<i64>) -> multiproc::Result<()> {
///     for x in a.lock()?.iter_mut() { *x *= 2; }
///     Ok(())
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let a = multiproc::Array::from_slice(&[1i64, 2, 3])?;
///     let mut p = multiproc::Process::new(double, (a.clone(),))?;
///     p.start()?;
///     p.join()?;
///     assert_eq!(a.to_vec(), [2, 4, 6]);
///     Ok(())
/// }
/// ```
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(bound(serialize = "", deserialize = "T: Pod"))]
pub struct Array<T> {
    lock: Lock,
    cells: Cells<T>,
}

/// Exclusive access to an [`Array`]'s elements while its lock is held; derefs to `[T]`.
///
/// ```
/// let a = multiproc::Array::from_slice(&[3u32, 1, 2])?;
/// {
///     let mut guard = a.lock()?;
///     guard.sort(); // any slice method, in place
///     assert!(a.get_lock().locked());
/// }
/// assert_eq!(a.to_vec(), [1, 2, 3]);
/// # Ok::<(), multiproc::Error>(())
/// ```
pub struct ArrayGuard<'a, T> {
    guard: LockGuard<'a>,
    items: &'a mut [T],
}

impl<T> ArrayGuard<'_, T> {
    /// The pid of a previous holder that died holding the lock, if this
    /// acquisition took it over: the elements may be half-updated.
    ///
    /// ```
    /// #[multiproc::task]
    /// fn die_holding(a: multiproc::Array<u8>) {
    ///     let mut guard = a.lock().unwrap();
    ///     guard[0] = 1;
    ///     std::mem::forget(guard); // the child exits with the lock held
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let a = multiproc::Array::<u8>::zeroed(2)?;
    ///     let mut p = multiproc::Process::new(die_holding, (a.clone(),))?;
    ///     p.start()?;
    ///     p.join()?;
    ///     let guard = a.lock()?; // taken over from the dead child
    ///     assert_eq!(guard.owner_died(), p.pid());
    ///     assert_eq!(*guard, [1, 0]);
    ///     Ok(())
    /// }
    /// ```
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
    /// A shared array holding a copy of `items`, with a new lock (Python's
    /// `Array('i', [1, 2, 3])`).
    ///
    /// ```
    /// let a = multiproc::Array::from_slice(&[1i32, 2, 3])?;
    /// assert_eq!(a.to_vec(), [1, 2, 3]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Value::new`].
    pub fn from_slice(items: &[T]) -> Result<Array<T>> {
        Ok(Array { lock: Lock::new()?, cells: Cells::new(items)? })
    }

    /// A shared array of `len` zeroed elements, with a new lock (Python's `Array('d', 4)`).
    ///
    /// ```
    /// let a = multiproc::Array::<f64>::zeroed(4)?;
    /// assert_eq!(a.to_vec(), [0.0; 4]);
    /// assert!(multiproc::Array::<u8>::zeroed(usize::MAX).is_err()); // too large
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Value::new`].
    pub fn zeroed(len: usize) -> Result<Array<T>> {
        Ok(Array { lock: Lock::new()?, cells: Cells::zeroed(len)? })
    }

    /// A shared array holding a copy of `items`, guarded by `lock` (Python's
    /// `Array(…, lock=L)`).
    ///
    /// ```
    /// let lock = multiproc::Lock::new()?;
    /// let a = multiproc::Array::with_lock(&[1u8, 2], lock.clone())?;
    /// let _guard = a.lock()?;
    /// assert!(lock.locked()); // the array's lock is `lock`
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Value::new`].
    pub fn with_lock(items: &[T], lock: Lock) -> Result<Array<T>> {
        Ok(Array { lock, cells: Cells::new(items)? })
    }

    /// Locks the array; the guard derefs to `&mut [T]`, in place (zero-copy).
    ///
    /// ```
    /// let a = multiproc::Array::<u32>::zeroed(3)?;
    /// a.lock()?.copy_from_slice(&[7, 8, 9]);
    /// assert_eq!(a.to_vec(), [7, 8, 9]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// None today; a dead previous holder is reported on the guard.
    #[allow(unsafe_code)] // the guard's `&mut [T]`: see the SAFETY comment
    pub fn lock(&self) -> Result<ArrayGuard<'_, T>> {
        let guard = self.lock.lock_exclusive();
        // SAFETY: as in `Value::lock`: the exclusive hold cannot be released under the
        // guard, and every other access to these cells takes the same lock first.
        let items = unsafe { self.cells.slice_mut() };
        Ok(ArrayGuard { guard, items })
    }

    /// The number of elements (Python's `len(arr)`).
    ///
    /// ```
    /// let a = multiproc::Array::<u8>::zeroed(5)?;
    /// assert_eq!(a.len(), 5);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.cells.len
    }

    /// Whether the array has no elements.
    ///
    /// ```
    /// assert!(multiproc::Array::<u8>::from_slice(&[])?.is_empty());
    /// assert!(!multiproc::Array::<u8>::zeroed(1)?.is_empty());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.cells.len == 0
    }

    /// Element `i` (read under the lock, or under this thread's hold as
    /// [`Value::get`]), or `None` past the end; Python's `arr[i]`.
    ///
    /// ```
    /// let a = multiproc::Array::from_slice(&[10u32, 20])?;
    /// assert_eq!(a.get(0), Some(10));
    /// assert_eq!(a.get(2), None);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn get(&self, i: usize) -> Option<T> {
        (i < self.cells.len).then(|| self.lock.with_exclusive(|| self.cells.get(i)))
    }

    /// Sets element `i` under the lock (or under this thread's hold); Python's `arr[i] = x`.
    ///
    /// ```
    /// let a = multiproc::Array::<i16>::zeroed(2)?;
    /// a.set(1, -1)?;
    /// assert_eq!(a.to_vec(), [0, -1]);
    /// assert!(matches!(a.set(2, 0), Err(multiproc::Error::InvalidArgument(_))));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] past the end (Python's `IndexError`).
    pub fn set(&self, i: usize, value: T) -> Result<()> {
        if i >= self.cells.len {
            return Err(index_error(i, self.cells.len));
        }
        self.lock.with_exclusive(|| self.cells.set(i, value));
        Ok(())
    }

    /// A copy of the elements, taken under the lock (or under this thread's
    /// hold); Python's `arr[:]`.
    ///
    /// ```
    /// let a = multiproc::Array::from_slice(&[1u64, 2])?;
    /// let copy = a.to_vec();
    /// a.set(0, 5)?;
    /// assert_eq!(copy, [1, 2]); // a copy, not a view
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        self.lock.with_exclusive(|| self.cells.to_vec())
    }

    /// A new shared array holding a copy of these elements (read under the
    /// lock), in memory of its own and with a new lock of its own (Python's
    /// `multiprocessing.sharedctypes.copy(obj)`; [`RawArray::copy`] is the
    /// unlocked one).
    ///
    /// ```
    /// let a = multiproc::Array::from_slice(&[1u8, 2, 3])?;
    /// let b = a.copy()?;
    /// a.set(0, 9)?;
    /// assert_eq!((a.to_vec(), b.to_vec()), (vec![9, 2, 3], vec![1, 2, 3]));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`Array::from_slice`].
    pub fn copy(&self) -> Result<Array<T>> {
        Array::from_slice(&self.to_vec())
    }

    /// The lock guarding the array (Python's `get_lock`). While this thread
    /// holds it, [`get`](Array::get), [`set`](Array::set) and
    /// [`to_vec`](Array::to_vec) run under that hold:
    ///
    /// ```
    /// let a = multiproc::Array::from_slice(&[1u32, 2])?;
    /// {
    ///     let _held = a.get_lock().lock()?;
    ///     let sum = a.to_vec().iter().sum();
    ///     a.set(0, sum)?; // no other process interleaves
    /// }
    /// assert_eq!(a.to_vec(), [3, 2]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn get_lock(&self) -> &Lock {
        &self.lock
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Array").field(&self.to_vec()).finish()
    }
}
