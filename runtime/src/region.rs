//! One shared-memory object: a `memfd` mapped `MAP_SHARED`, with a small
//! header naming what it holds. Every anonymous primitive (locks, queues,
//! values) lives in one; its fd travels with the handle (`codec::share_fd`),
//! so it vanishes with its last user, even after SIGKILL of everyone.

use std::ffi::CStr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::{Error, IoContext, Result};
use crate::sys::shm::Mapping;

/// Bytes reserved at the start of every region for the header.
pub(crate) const HEADER: usize = 64;
const MAGIC: u32 = 0x6d70_7368; // "mpsh"

/// What a region holds (checked when a handle arrives from another process).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Kind {
    Lock = 1,
    RLock = 2,
    Semaphore = 3,
    Event = 4,
    Condition = 5,
    Barrier = 6,
    Queue = 7,
    Value = 8,
    PoolMark = 9,
    PoolCancels = 10,
}

/// A mapped shared-memory object.
#[derive(Debug)]
pub(crate) struct Region {
    map: Mapping,
    fd: OwnedFd,
}

impl Region {
    /// A new zeroed region with `len` bytes after the header, holding `kind`;
    /// `param` is a kind-specific word stored in the header (e.g. an element size).
    pub(crate) fn create(kind: Kind, len: usize, param: u64) -> Result<Arc<Region>> {
        let total = HEADER.checked_add(len).ok_or_else(|| Error::InvalidArgument("size overflows".into()))?;
        let name: &CStr = c"multiproc";
        let fd = crate::sys::shm::memfd(name, total).ctx("memfd_create")?;
        let map = Mapping::new(fd.as_fd(), total).ctx("mmap")?;
        map.atomic_u32(4).store(kind as u32, std::sync::atomic::Ordering::Relaxed);
        map.atomic_u64(8).store(param, std::sync::atomic::Ordering::Relaxed);
        map.atomic_u64(16).store(len as u64, std::sync::atomic::Ordering::Relaxed);
        map.atomic_u32(0).store(MAGIC, std::sync::atomic::Ordering::Release);
        Ok(Arc::new(Region { map, fd }))
    }

    /// Maps a region received from another process, checking its header.
    fn attach(fd: OwnedFd, kind: Kind) -> Result<Arc<Region>> {
        let total = crate::sys::shm::size(fd.as_fd()).ctx("fstat")?;
        if total < HEADER {
            return Err(Error::Decode { what: "shared object", reason: format!("region of {total} bytes") });
        }
        let map = Mapping::new(fd.as_fd(), total).ctx("mmap")?;
        let ok = map.atomic_u32(0).load(std::sync::atomic::Ordering::Acquire) == MAGIC
            && map.atomic_u32(4).load(std::sync::atomic::Ordering::Relaxed) == kind as u32
            && map.atomic_u64(16).load(std::sync::atomic::Ordering::Relaxed) == (total - HEADER) as u64;
        if !ok {
            return Err(Error::Decode { what: "shared object", reason: format!("the fd does not hold a {kind:?}") });
        }
        Ok(Arc::new(Region { map, fd }))
    }

    /// The kind-specific header word.
    pub(crate) fn param(&self) -> u64 {
        self.map.atomic_u64(8).load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Bytes after the header.
    pub(crate) fn len(&self) -> usize {
        self.map.len() - HEADER
    }

    /// The mapping; offsets given to the helpers below are relative to the end of the header.
    #[inline]
    pub(crate) fn u32(&self, off: usize) -> &std::sync::atomic::AtomicU32 {
        self.map.atomic_u32(HEADER + off)
    }

    /// The `u64` at `off` after the header.
    #[inline]
    pub(crate) fn u64(&self, off: usize) -> &std::sync::atomic::AtomicU64 {
        self.map.atomic_u64(HEADER + off)
    }

    /// Copies the bytes at `off` after the header into `dst` (safe against
    /// concurrent writers: see [`Mapping::read`]).
    #[inline]
    pub(crate) fn read(&self, off: usize, dst: &mut [u8]) {
        self.map.read(HEADER + off, dst)
    }

    /// Copies `src` to the bytes at `off` after the header (see [`Mapping::write`]).
    #[inline]
    pub(crate) fn write(&self, off: usize, src: &[u8]) {
        self.map.write(HEADER + off, src)
    }

    /// Bytes at `off` after the header, in place.
    ///
    /// # Safety
    /// As [`Mapping::bytes`]: nobody writes them while the slice lives.
    #[allow(unsafe_code)] // an in-place view: its contract is the caller's (see Safety)
    #[inline]
    pub(crate) unsafe fn bytes(&self, off: usize, len: usize) -> &[u8] {
        // SAFETY: the caller upholds `Mapping::bytes`'s contract (this function's own).
        unsafe { self.map.bytes(HEADER + off, len) }
    }

    /// Writable bytes at `off` after the header, in place.
    ///
    /// # Safety
    /// As [`Mapping::bytes_mut`]: the caller holds the only right to them.
    #[allow(clippy::mut_from_ref, unsafe_code)] // an in-place view: its contract is the caller's
    #[inline]
    pub(crate) unsafe fn bytes_mut(&self, off: usize, len: usize) -> &mut [u8] {
        // SAFETY: the caller upholds `Mapping::bytes_mut`'s contract (this function's own).
        unsafe { self.map.bytes_mut(HEADER + off, len) }
    }
}

#[derive(Serialize, Deserialize)]
struct WireRegion {
    fd: u32,
    kind: u32,
}

/// Serializes a region as its fd (out of band) and kind.
pub(crate) fn serialize<S: Serializer>(r: &Region, kind: Kind, s: S) -> std::result::Result<S::Ok, S::Error> {
    let fd = codec::share_fd(r.fd.as_fd()).map_err(serde::ser::Error::custom)?;
    WireRegion { fd, kind: kind as u32 }.serialize(s)
}

/// Deserializes a region of `kind`.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D, kind: Kind) -> std::result::Result<Arc<Region>, D::Error> {
    let w = WireRegion::deserialize(d)?;
    if w.kind != kind as u32 {
        return Err(serde::de::Error::custom(format!("expected a {kind:?} handle")));
    }
    let fd = codec::take_fd(w.fd).map_err(serde::de::Error::custom)?;
    Region::attach(fd, kind).map_err(serde::de::Error::custom)
}

/// Implements `Serialize`/`Deserialize` for a handle type whose only state is
/// `region: Arc<Region>` plus fields rebuilt by `$rebuild(region)`.
macro_rules! region_serde {
    ($ty:ty, $kind:expr, $rebuild:expr) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                crate::region::serialize(&self.region, $kind, s)
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let region = crate::region::deserialize(d, $kind)?;
                #[allow(clippy::redundant_closure_call)]
                ($rebuild)(region).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use region_serde;
