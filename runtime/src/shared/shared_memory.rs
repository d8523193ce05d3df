//! `SharedMemory` (named POSIX segments) and `ShareableList`.

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytemuck::Pod;

use super::tracker;
use crate::error::{Error, IoContext, Result};
use crate::sys;
use crate::sys::shm::Mapping;

/// Prefix of generated names (the test suite's leak check looks for it in `/dev/shm`).
const PREFIX: &str = "multiproc";
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A named block of shared memory (Python's `multiprocessing.shared_memory.SharedMemory`).
///
/// [`create`](SharedMemory::create) makes a new segment (`/dev/shm/<name>` on
/// Linux) and [`attach`](SharedMemory::attach) maps an existing one by name,
/// from any process. The memory stays until [`unlink`](SharedMemory::unlink)
/// — or, **beyond Python**, until the creating process ends: a tracker unlinks
/// the segments a process created and did not unlink, even after SIGKILL,
/// without Python's spurious "leaked" warnings, and never a segment the
/// process merely attached to.
///
/// A `SharedMemory` serializes as its name: a task argument attaches in the child.
///
/// ```
/// #[multiproc::task]
/// fn greet(shm: multiproc::SharedMemory) -> multiproc::Result<()> {
///     shm.write_at(0, b"hello") // the child's own mapping of the segment
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let shm = multiproc::SharedMemory::create(64)?;
///     let mut p = multiproc::Process::new(greet, (shm.clone(),))?;
///     p.start()?;
///     p.join()?;
///     assert_eq!(&shm.to_vec()[..5], b"hello");
///     shm.unlink()
/// }
/// ```
pub struct SharedMemory {
    name: String,
    map: Arc<Mapping>,
    size: usize,
    /// Whether this process's tracker unlinks the segment when the process ends.
    tracked: bool,
}

/// Creates segment `c` (`O_EXCL`) of `size` bytes and maps it; unlinks it
/// again if it cannot be sized or mapped.
fn build(c: &CStr, size: usize) -> Result<Mapping> {
    let fd = sys::shm::shm_open(c, true).ctx("shm_open")?;
    let built =
        sys::shm::truncate(fd.as_fd(), size).ctx("ftruncate").and_then(|()| Mapping::new(fd.as_fd(), size).ctx("mmap"));
    match built {
        Ok(m) => Ok(m),
        Err(e) => {
            let _ = sys::shm::shm_unlink(c);
            Err(e)
        }
    }
}

fn c_name(name: &str) -> Result<CString> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    if bare.is_empty() || bare.contains('/') || bare.len() > 250 {
        return Err(Error::InvalidArgument(format!("invalid shared-memory name {name:?}")));
    }
    CString::new(format!("/{bare}")).map_err(|_| Error::InvalidArgument("name contains a NUL byte".into()))
}

impl SharedMemory {
    /// Creates a segment of `size` bytes (zeroed) under a fresh name starting with
    /// `multiproc` (Python's `SharedMemory(create=True, size=…)`).
    ///
    /// ```
    /// let shm = multiproc::SharedMemory::create(32)?;
    /// assert!(shm.name().starts_with("multiproc"));
    /// assert_eq!(shm.to_vec(), [0; 32]);
    /// shm.unlink()?;
    /// assert!(multiproc::SharedMemory::create(0).is_err());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `size` is 0; [`Error::Io`] from `shm_open`/`mmap`.
    pub fn create(size: usize) -> Result<SharedMemory> {
        SharedMemory::create_fresh(size, true)
    }

    /// Creates a segment under a fresh name of this process's own. A tracked
    /// one is registered before it exists (nobody else can take the name), so
    /// no moment between creating and registering can leak it.
    fn create_fresh(size: usize, track: bool) -> Result<SharedMemory> {
        if size == 0 {
            return Err(Error::InvalidArgument("size must be a positive number".into()));
        }
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            let name = format!("{PREFIX}-{}-{n}-{:x}", sys::futex::current_pid(), nanos.subsec_nanos());
            let c = c_name(&name)?;
            if track {
                tracker::register(&name)?;
            }
            match build(&c, size) {
                Ok(map) => return Ok(SharedMemory { name, map: Arc::new(map), size, tracked: track }),
                Err(e) => {
                    if track {
                        tracker::unregister(&name);
                    }
                    match e {
                        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => continue,
                        e => return Err(e),
                    }
                }
            }
        }
    }

    /// Creates a segment of `size` bytes under `name` (Python's
    /// `SharedMemory(name, create=True, size=…)`).
    ///
    /// ```
    /// use std::io::ErrorKind;
    ///
    /// let name = format!("doc-create-named-{}", std::process::id());
    /// let shm = multiproc::SharedMemory::create_named(&name, 16)?;
    /// assert_eq!(shm.name(), name);
    /// let taken = multiproc::SharedMemory::create_named(&name, 16).unwrap_err();
    /// assert!(matches!(taken, multiproc::Error::Io { ref source, .. } if source.kind() == ErrorKind::AlreadyExists));
    /// shm.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for size 0 or a bad name (empty, with `/` or NUL);
    /// [`Error::Io`] with kind `AlreadyExists` if the name is taken (Python's `FileExistsError`).
    pub fn create_named(name: &str, size: usize) -> Result<SharedMemory> {
        SharedMemory::create_as(name, size, true)
    }

    /// Creates the segment `name`. A tracked one is built under a fresh name
    /// (tracked from before it exists), registered under `name` with its inode,
    /// then linked to `name`: whenever this process is killed, the tracker
    /// unlinks what it made and never a segment of someone else's.
    fn create_as(name: &str, size: usize, track: bool) -> Result<SharedMemory> {
        if size == 0 {
            return Err(Error::InvalidArgument("size must be a positive number".into()));
        }
        let c = c_name(name)?;
        let name = c.to_string_lossy()[1..].to_string();
        if !track {
            let map = build(&c, size)?;
            return Ok(SharedMemory { name, map: Arc::new(map), size, tracked: false });
        }
        let staged = SharedMemory::create_fresh(size, true)?;
        let staged_c = c_name(&staged.name)?;
        let linked = sys::shm::shm_open(&staged_c, false)
            .and_then(|fd| sys::shm::inode(fd.as_fd()))
            .ctx("fstat")
            .and_then(|ino| tracker::register_inode(&name, ino))
            .and_then(|()| sys::shm::link(&staged_c, &c).ctx("shm_open").inspect_err(|_| tracker::unregister(&name)));
        let _ = staged.unlink();
        linked?;
        Ok(SharedMemory { name, map: staged.map, size, tracked: true })
    }

    /// Options for creating or attaching with a choice of tracking (Python
    /// 3.13's `SharedMemory(…, track=…)`); see [`SharedMemoryOptions`].
    ///
    /// ```
    /// let shm = multiproc::SharedMemory::options().track(false).create(64)?;
    /// assert!(!shm.tracked()); // survives this process: unlink it yourself
    /// shm.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn options() -> SharedMemoryOptions {
        SharedMemoryOptions { name: None, track: None }
    }

    /// Whether this process's resource tracker unlinks the segment when the
    /// process ends: by default a creator's segments are tracked and
    /// attachments are not (see [`SharedMemoryOptions::track`]).
    ///
    /// ```
    /// let shm = multiproc::SharedMemory::create(8)?;
    /// assert!(shm.tracked());
    /// assert!(!multiproc::SharedMemory::attach(shm.name())?.tracked());
    /// shm.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn tracked(&self) -> bool {
        self.tracked
    }

    /// Maps the existing segment `name`; its size is the segment's (Python's
    /// `SharedMemory(name)`).
    ///
    /// ```
    /// use std::io::ErrorKind;
    ///
    /// let shm = multiproc::SharedMemory::create(16)?;
    /// shm.write_at(0, b"hi")?;
    /// let other = multiproc::SharedMemory::attach(shm.name())?;
    /// assert_eq!(other.size(), 16);
    /// assert_eq!(&other.to_vec()[..2], b"hi");
    /// shm.unlink()?;
    /// let gone = multiproc::SharedMemory::attach(shm.name()).unwrap_err();
    /// assert!(matches!(gone, multiproc::Error::Io { ref source, .. } if source.kind() == ErrorKind::NotFound));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] with kind `NotFound` if there is no such segment (Python's
    /// `FileNotFoundError`); [`Error::InvalidArgument`] for a bad name.
    pub fn attach(name: &str) -> Result<SharedMemory> {
        let c = c_name(name)?;
        let fd = sys::shm::shm_open(&c, false).ctx("shm_open")?;
        let size = sys::shm::size(fd.as_fd()).ctx("fstat")?;
        let map = Mapping::new(fd.as_fd(), size).ctx("mmap")?;
        Ok(SharedMemory { name: c.to_string_lossy()[1..].to_string(), map: Arc::new(map), size, tracked: false })
    }

    /// The segment's name (without the leading `/`); Python's `name`. Another
    /// process attaches with it.
    ///
    /// ```
    /// let shm = multiproc::SharedMemory::create(8)?;
    /// let again = multiproc::SharedMemory::attach(shm.name())?;
    /// assert_eq!(again.name(), shm.name());
    /// assert!(!shm.name().starts_with('/'));
    /// # shm.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The size in bytes (Python's `size`).
    ///
    /// ```
    /// let shm = multiproc::SharedMemory::create(100)?;
    /// assert_eq!(shm.size(), 100);
    /// # shm.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn size(&self) -> usize {
        self.size
    }

    /// Copies `dst.len()` bytes starting at `offset` out of the segment
    /// (Python's `bytes(shm.buf[offset:offset+n])`). Safe against concurrent
    /// writers in any process: a racing write can tear the copy, never worse.
    ///
    /// ```
    /// let shm = multiproc::SharedMemory::create(8)?;
    /// shm.write_at(2, b"abc")?;
    /// let mut three = [0u8; 3];
    /// shm.read_at(2, &mut three)?;
    /// assert_eq!(&three, b"abc");
    /// assert!(shm.read_at(6, &mut three).is_err()); // 6 + 3 > 8
    /// # shm.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the range passes the end of the segment.
    pub fn read_at(&self, offset: usize, dst: &mut [u8]) -> Result<()> {
        self.check_range(offset, dst.len())?;
        self.map.read(offset, dst);
        Ok(())
    }

    /// Copies `src` into the segment at `offset` (Python's `shm.buf[offset:offset+n] = src`).
    ///
    /// ```
    /// let shm = multiproc::SharedMemory::create(4)?;
    /// shm.write_at(1, &[7, 7])?;
    /// assert_eq!(shm.to_vec(), [0, 7, 7, 0]);
    /// assert!(matches!(shm.write_at(3, &[1, 2]), Err(multiproc::Error::InvalidArgument(_))));
    /// # shm.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the range passes the end of the segment.
    pub fn write_at(&self, offset: usize, src: &[u8]) -> Result<()> {
        self.check_range(offset, src.len())?;
        self.map.write(offset, src);
        Ok(())
    }

    /// A copy of the whole segment (Python's `bytes(shm.buf)`).
    ///
    /// ```
    /// let shm = multiproc::SharedMemory::create(3)?;
    /// shm.write_at(0, b"abc")?;
    /// assert_eq!(shm.to_vec(), b"abc");
    /// # shm.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.size];
        self.map.read(0, &mut v);
        v
    }

    fn check_range(&self, offset: usize, len: usize) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(Error::InvalidArgument(format!(
                "range {offset}..{offset}+{len} passes the end of the {}-byte segment {:?}",
                self.size, self.name
            ))),
        }
    }

    /// The memory in place, read-only (Python's `buf`, zero-copy).
    ///
    /// # Safety
    /// While the slice lives, nothing may write the segment: no `as_mut_slice`
    /// or `write_at` through any handle of it (clones and attachments alike), in
    /// this process or another. Coordinate with a [`Lock`](crate::Lock), or use
    /// [`read_at`](SharedMemory::read_at) / [`to_vec`](SharedMemory::to_vec), which copy.
    ///
    /// ```
    /// let shm = multiproc::SharedMemory::create(4)?;
    /// shm.write_at(0, &[1, 2, 3, 4])?;
    /// // SAFETY: nothing writes the new segment while the slice lives.
    /// let sum: u32 = unsafe { shm.as_slice() }.iter().map(|&b| u32::from(b)).sum();
    /// assert_eq!(sum, 10);
    /// shm.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    #[allow(unsafe_code)] // the documented in-place accessor (see Safety)
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: no writer while the slice lives is this function's contract.
        unsafe { self.map.bytes(0, self.size) }
    }

    /// The memory in place, writable (zero-copy).
    ///
    /// # Safety
    /// While the slice lives, nothing else may read or write the segment,
    /// through any handle of it, in this process or another. Use
    /// [`write_at`](SharedMemory::write_at) when that cannot be promised.
    ///
    /// ```
    /// let mut shm = multiproc::SharedMemory::create(16)?;
    /// // SAFETY: no other handle of this new segment exists.
    /// unsafe { shm.as_mut_slice()[..5].copy_from_slice(b"howdy") };
    /// let mut five = [0u8; 5];
    /// shm.read_at(0, &mut five)?;
    /// assert_eq!(&five, b"howdy");
    /// shm.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    #[allow(unsafe_code)] // the documented in-place accessor (see Safety)
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: exclusive use while the slice lives is this function's contract.
        unsafe { self.map.bytes_mut(0, self.size) }
    }

    /// Unmaps this handle (Python's `close`); the segment itself stays. Dropping
    /// the handle does the same; the mapping goes with its last clone.
    ///
    /// ```
    /// let shm = multiproc::SharedMemory::create(8)?;
    /// shm.write_at(0, b"kept")?;
    /// multiproc::SharedMemory::attach(shm.name())?.close();
    /// let again = multiproc::SharedMemory::attach(shm.name())?; // still there
    /// assert_eq!(&again.to_vec()[..4], b"kept");
    /// shm.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn close(self) {}

    /// Removes the segment's name; mappings stay valid until closed. Call it
    /// once, from one process (usually the creator). Python's `unlink`.
    ///
    /// ```
    /// let shm = multiproc::SharedMemory::create(8)?;
    /// shm.unlink()?;
    /// assert!(multiproc::SharedMemory::attach(shm.name()).is_err()); // the name is gone
    /// shm.write_at(0, b"ok")?; // this mapping still works
    /// assert!(shm.unlink().is_err()); // already unlinked
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] with kind `NotFound` if it was already unlinked.
    pub fn unlink(&self) -> Result<()> {
        let c = c_name(&self.name)?;
        let res = sys::shm::shm_unlink(&c).ctx("shm_unlink");
        if self.tracked || res.is_ok() {
            tracker::unregister(&self.name);
        }
        res
    }
}

/// Unlinks the segment `name` and unregisters it from this process's tracker
/// ([`SharedMemory::unlink`] without a handle).
pub(super) fn unlink_name(name: &str) -> Result<()> {
    let res = sys::shm::shm_unlink(&c_name(name)?).ctx("shm_unlink");
    tracker::unregister(name);
    res
}

/// How to create or attach a [`SharedMemory`], from
/// [`SharedMemory::options`]: a name, and whether the resource tracker
/// unlinks the segment when this process ends (Python 3.13's `track=`).
///
/// By default a creator tracks its segments and an attacher does not (the
/// crate's improvement on Python, which tracks attachments too).
/// `track(false)` on create is Python's `SharedMemory(create=True,
/// track=False)`: the segment outlives its creator, however it ends, until
/// someone calls [`unlink`](SharedMemory::unlink). `track(true)` on attach is
/// Python's `SharedMemory(name, track=True)`: this process unlinks the
/// segment when it ends.
///
/// ```
/// #[multiproc::task]
/// fn make(out: multiproc::Queue<String>) -> multiproc::Result<()> {
///     let shm = multiproc::SharedMemory::options().track(false).create(16)?;
///     shm.write_at(0, b"outlived")?;
///     out.put(shm.name().to_string())
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let names = multiproc::Queue::new()?;
///     let mut p = multiproc::Process::new(make, (names.clone(),))?;
///     p.start()?;
///     let name = names.get()?;
///     p.join()?; // the creator is gone, the segment is not
///     let shm = multiproc::SharedMemory::attach(&name)?;
///     assert_eq!(&shm.to_vec()[..8], b"outlived");
///     shm.unlink() // the user's job
/// }
/// ```
#[derive(Clone, Debug)]
pub struct SharedMemoryOptions {
    name: Option<String>,
    track: Option<bool>,
}

impl SharedMemoryOptions {
    /// Creates under `name` rather than a fresh one (Python's `name=`); attach
    /// ignores it and takes its own argument.
    ///
    /// ```
    /// let name = format!("doc-options-name-{}", std::process::id());
    /// let shm = multiproc::SharedMemory::options().name(&name).create(8)?;
    /// assert_eq!(shm.name(), name);
    /// shm.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn name(mut self, name: &str) -> SharedMemoryOptions {
        self.name = Some(name.to_string());
        self
    }

    /// Whether this process's resource tracker unlinks the segment when the
    /// process ends (Python's `track=`; default: `true` to create, `false` to attach).
    ///
    /// ```
    /// let shm = multiproc::SharedMemory::options().track(false).create(8)?;
    /// assert!(!shm.tracked());
    /// let watched = multiproc::SharedMemory::options().track(true).attach(shm.name())?;
    /// assert!(watched.tracked()); // now this process unlinks it when it ends
    /// watched.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn track(mut self, track: bool) -> SharedMemoryOptions {
        self.track = Some(track);
        self
    }

    /// Creates a segment of `size` bytes (zeroed) with these options.
    ///
    /// ```
    /// let shm = multiproc::SharedMemory::options().create(32)?;
    /// assert!(shm.tracked() && shm.name().starts_with("multiproc"));
    /// shm.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`SharedMemory::create_named`] (with a name) or [`SharedMemory::create`].
    pub fn create(&self, size: usize) -> Result<SharedMemory> {
        let track = self.track.unwrap_or(true);
        match &self.name {
            Some(name) => SharedMemory::create_as(name, size, track),
            None => SharedMemory::create_fresh(size, track),
        }
    }

    /// Maps the existing segment `name` with these options.
    ///
    /// ```
    /// let shm = multiproc::SharedMemory::create(8)?;
    /// let plain = multiproc::SharedMemory::options().attach(shm.name())?;
    /// assert!(!plain.tracked());
    /// shm.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`SharedMemory::attach`]; [`Error::Io`] if the tracker cannot be started.
    pub fn attach(&self, name: &str) -> Result<SharedMemory> {
        let mut shm = SharedMemory::attach(name)?;
        if self.track == Some(true) {
            // With the inode: should the segment be unlinked and its name
            // taken by another, this process's tracker leaves that one alone.
            let c = c_name(&shm.name)?;
            let ino = sys::shm::shm_open(&c, false).and_then(|fd| sys::shm::inode(fd.as_fd())).ctx("fstat")?;
            tracker::register_inode(&shm.name, ino)?;
            shm.tracked = true;
        }
        Ok(shm)
    }
}

impl Clone for SharedMemory {
    fn clone(&self) -> Self {
        SharedMemory { name: self.name.clone(), map: self.map.clone(), size: self.size, tracked: self.tracked }
    }
}

impl fmt::Debug for SharedMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedMemory({:?}, size={})", self.name, self.size)
    }
}

impl serde::Serialize for SharedMemory {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.name.serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for SharedMemory {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        SharedMemory::attach(&name).map_err(serde::de::Error::custom)
    }
}

// ------------------------------------------------------------------ ShareableList

const LIST_MAGIC: u64 = 0x7473_696c_736d_706d; // "mpmslist"
const LIST_DATA: usize = 64;

fn list_tag<T>() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in std::any::type_name::<T>().bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h ^ size_of::<T>() as u64
}

/// A fixed-length list of `T` in a named segment (Python's `ShareableList`,
/// typed: every slot holds a `T`, so no slot can overflow its storage).
///
/// Reads and writes are not synchronised between processes (as in Python).
/// A `ShareableList` serializes as its segment's name: a task argument attaches
/// in the child.
///
/// ```
/// #[multiproc::task]
/// fn bump(list: multiproc::ShareableList<i64>) -> multiproc::Result<()> {
///     let last = list.len() - 1;
///     list.set(last, list.get(last).unwrap_or(0) + 1)
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let list = multiproc::ShareableList::new(&[1i64, 2, 3])?;
///     let mut p = multiproc::Process::new(bump, (list.clone(),))?;
///     p.start()?;
///     p.join()?;
///     assert_eq!(list.to_vec(), [1, 2, 4]);
///     list.unlink()
/// }
/// ```
pub struct ShareableList<T> {
    shm: SharedMemory,
    len: usize,
    _marker: std::marker::PhantomData<fn(T) -> T>,
}

impl<T: Pod> ShareableList<T> {
    /// A new list holding a copy of `items`, in a new segment (Python's
    /// `ShareableList([1, 2, 3])`).
    ///
    /// ```
    /// let list = multiproc::ShareableList::new(&[1.5f64, 2.5])?;
    /// assert_eq!(list.to_vec(), [1.5, 2.5]);
    /// list.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`SharedMemory::create`]; [`Error::InvalidArgument`] if `T` is aligned to more than 64.
    pub fn new(items: &[T]) -> Result<ShareableList<T>> {
        if align_of::<T>() > LIST_DATA {
            return Err(Error::InvalidArgument("element alignment exceeds 64".into()));
        }
        let bytes = std::mem::size_of_val(items);
        let shm = SharedMemory::create(
            LIST_DATA.checked_add(bytes).ok_or_else(|| Error::InvalidArgument("list too large".into()))?,
        )?;
        let mut head = [0u8; 24];
        head[0..8].copy_from_slice(&LIST_MAGIC.to_le_bytes());
        head[8..16].copy_from_slice(&(items.len() as u64).to_le_bytes());
        head[16..24].copy_from_slice(&list_tag::<T>().to_le_bytes());
        shm.map.write(0, &head);
        shm.map.write(LIST_DATA, bytemuck::cast_slice(items));
        Ok(ShareableList { shm, len: items.len(), _marker: std::marker::PhantomData })
    }

    /// Attaches to the list in segment `name` (Python's `ShareableList(name=…)`).
    ///
    /// ```
    /// let list = multiproc::ShareableList::new(&[5u32, 6])?;
    /// let same = multiproc::ShareableList::<u32>::attach(list.shm().name())?;
    /// assert_eq!(same.to_vec(), [5, 6]);
    /// // The segment holds `u32`s, not `u64`s.
    /// let wrong = multiproc::ShareableList::<u64>::attach(list.shm().name());
    /// assert!(matches!(wrong, Err(multiproc::Error::Decode { .. })));
    /// list.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`SharedMemory::attach`]; [`Error::Decode`] if the segment does not hold a list of `T`.
    pub fn attach(name: &str) -> Result<ShareableList<T>> {
        ShareableList::from_shm(SharedMemory::attach(name)?)
    }

    fn from_shm(shm: SharedMemory) -> Result<ShareableList<T>> {
        let bad = |reason: &str| Error::Decode { what: "ShareableList", reason: reason.into() };
        if shm.size() < LIST_DATA || align_of::<T>() > LIST_DATA {
            return Err(bad("segment too small"));
        }
        let mut h = [0u8; 24];
        shm.map.read(0, &mut h);
        let word = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().unwrap_or_default());
        if word(0) != LIST_MAGIC || word(16) != list_tag::<T>() {
            return Err(bad("the segment does not hold a list of this type"));
        }
        let len = usize::try_from(word(8)).map_err(|_| bad("bad length"))?;
        if len.checked_mul(size_of::<T>()).and_then(|b| b.checked_add(LIST_DATA)).is_none_or(|need| need > shm.size()) {
            return Err(bad("length exceeds the segment"));
        }
        Ok(ShareableList { shm, len, _marker: std::marker::PhantomData })
    }

    /// The number of elements (Python's `len(list)`).
    ///
    /// ```
    /// let list = multiproc::ShareableList::new(&[0u8; 3])?;
    /// assert_eq!(list.len(), 3);
    /// # list.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the list is empty.
    ///
    /// ```
    /// let empty = multiproc::ShareableList::<u8>::new(&[])?;
    /// assert!(empty.is_empty());
    /// # empty.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The elements in place (zero-copy).
    ///
    /// # Safety
    /// As [`SharedMemory::as_slice`]: nothing writes the list while the slice lives.
    ///
    /// ```
    /// let list = multiproc::ShareableList::new(&[4u16, 9, 2])?;
    /// // SAFETY: nothing writes the list while the slice lives.
    /// assert_eq!(unsafe { list.as_slice() }.iter().max(), Some(&9));
    /// # list.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    #[allow(unsafe_code)] // the documented in-place accessor (see Safety)
    pub unsafe fn as_slice(&self) -> &[T] {
        // SAFETY: the segment holds `len` elements of `T` at LIST_DATA (64-aligned,
        // checked against the type tag); no writer meanwhile is this function's contract.
        bytemuck::cast_slice(unsafe { self.shm.map.bytes(LIST_DATA, self.len * size_of::<T>()) })
    }

    /// The elements in place, writable.
    ///
    /// # Safety
    /// As [`SharedMemory::as_mut_slice`]: nothing else uses the list while the slice lives.
    ///
    /// ```
    /// let mut list = multiproc::ShareableList::new(&[4u16, 9, 2])?;
    /// // SAFETY: no other handle of the new list exists.
    /// unsafe { list.as_mut_slice() }.sort();
    /// assert_eq!(list.to_vec(), [2, 4, 9]);
    /// # list.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    #[allow(unsafe_code)] // the documented in-place accessor (see Safety)
    pub unsafe fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as in `as_slice`; exclusive use meanwhile is this function's contract.
        bytemuck::cast_slice_mut(unsafe { self.shm.map.bytes_mut(LIST_DATA, self.len * size_of::<T>()) })
    }

    /// A copy of the elements (Python's `list(sl)`).
    ///
    /// ```
    /// let list = multiproc::ShareableList::new(&[1i32, -1])?;
    /// assert_eq!(list.to_vec(), [1, -1]);
    /// # list.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn to_vec(&self) -> Vec<T> {
        let mut v = vec![T::zeroed(); self.len];
        self.shm.map.read(LIST_DATA, bytemuck::cast_slice_mut(&mut v));
        v
    }

    /// A copy of element `i`, or `None` past the end (Python's `sl[i]`).
    ///
    /// ```
    /// let list = multiproc::ShareableList::new(&[10u64, 20])?;
    /// assert_eq!(list.get(1), Some(20));
    /// assert_eq!(list.get(2), None);
    /// # list.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn get(&self, i: usize) -> Option<T> {
        (i < self.len).then(|| {
            let mut v = T::zeroed();
            self.shm.map.read(LIST_DATA + i * size_of::<T>(), bytemuck::bytes_of_mut(&mut v));
            v
        })
    }

    /// Sets element `i` (Python's `sl[i] = x`).
    ///
    /// ```
    /// let list = multiproc::ShareableList::new(&[0u8; 2])?;
    /// list.set(0, 9)?;
    /// assert_eq!(list.to_vec(), [9, 0]);
    /// assert!(matches!(list.set(2, 1), Err(multiproc::Error::InvalidArgument(_))));
    /// # list.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] past the end (Python's `IndexError`).
    pub fn set(&self, i: usize, value: T) -> Result<()> {
        if i >= self.len {
            return Err(Error::InvalidArgument(format!("index {i} out of range for length {}", self.len)));
        }
        self.shm.map.write(LIST_DATA + i * size_of::<T>(), bytemuck::bytes_of(&value));
        Ok(())
    }

    /// The first index holding `value` (Python's `index`), or `None` (where
    /// Python raises `ValueError`).
    ///
    /// ```
    /// let list = multiproc::ShareableList::new(&[3u32, 5, 5])?;
    /// assert_eq!(list.index(&5), Some(1));
    /// assert_eq!(list.index(&7), None);
    /// # list.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn index(&self, value: &T) -> Option<usize>
    where
        T: PartialEq,
    {
        self.to_vec().iter().position(|x| x == value)
    }

    /// How many elements equal `value` (Python's `count`).
    ///
    /// ```
    /// let list = multiproc::ShareableList::new(&[3u32, 5, 5])?;
    /// assert_eq!(list.count(&5), 2);
    /// assert_eq!(list.count(&7), 0);
    /// # list.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn count(&self, value: &T) -> usize
    where
        T: PartialEq,
    {
        self.to_vec().iter().filter(|x| *x == value).count()
    }

    /// The segment holding the list (Python's `shm`): its name is how another
    /// process attaches.
    ///
    /// ```
    /// let list = multiproc::ShareableList::new(&[1u64, 2])?;
    /// assert!(list.shm().name().starts_with("multiproc"));
    /// assert!(list.shm().size() >= 2 * 8);
    /// # list.unlink()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn shm(&self) -> &SharedMemory {
        &self.shm
    }

    /// Removes the segment's name (see [`SharedMemory::unlink`]); this handle still works.
    ///
    /// ```
    /// let list = multiproc::ShareableList::new(&[1u8])?;
    /// list.unlink()?;
    /// assert!(multiproc::ShareableList::<u8>::attach(list.shm().name()).is_err());
    /// assert_eq!(list.get(0), Some(1));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`SharedMemory::unlink`].
    pub fn unlink(&self) -> Result<()> {
        self.shm.unlink()
    }
}

impl<T> Clone for ShareableList<T> {
    fn clone(&self) -> Self {
        ShareableList { shm: self.shm.clone(), len: self.len, _marker: std::marker::PhantomData }
    }
}

impl<T: Pod + fmt::Debug> fmt::Debug for ShareableList<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShareableList({:?}, name={:?})", self.to_vec(), self.shm.name())
    }
}

impl<T> serde::Serialize for ShareableList<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.shm.serialize(s)
    }
}

impl<'de, T: Pod> serde::Deserialize<'de> for ShareableList<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let shm = SharedMemory::deserialize(d)?;
        ShareableList::from_shm(shm).map_err(serde::de::Error::custom)
    }
}
