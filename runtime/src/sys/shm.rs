//! Shared memory: anonymous `memfd`s, named POSIX segments (`shm_open`), and
//! `MAP_SHARED` mappings with safe views into them.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};

use super::cvt;

/// A new anonymous shared-memory file of `len` zeroed bytes (`memfd_create`, `CLOEXEC`).
/// It vanishes when the last fd and mapping of it are gone, even after SIGKILL.
pub(crate) fn memfd(name: &CStr, len: usize) -> io::Result<OwnedFd> {
    // SAFETY: `name` is NUL-terminated; memfd_create returns a new fd or -1.
    let fd = cvt(unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: the fd was just created and is owned by no one else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    truncate(fd.as_fd(), len)?;
    Ok(fd)
}

/// Sets the size of a shared-memory file.
pub(crate) fn truncate(fd: BorrowedFd<'_>, len: usize) -> io::Result<()> {
    let len = libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: plain syscall on a valid fd.
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len) }).map(drop)
}

/// The size in bytes of the file behind `fd`.
pub(crate) fn size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    usize::try_from(fstat(fd)?.st_size).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
}

/// The inode of a segment's fd (what the tracker checks before it unlinks).
pub(crate) fn inode(fd: BorrowedFd<'_>) -> io::Result<u64> {
    Ok(fstat(fd)?.st_ino)
}

fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: `st` is a writable stat buffer; fstat fills it on success.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so `st` is initialised (and it was zeroed anyway).
    Ok(unsafe { st.assume_init() })
}

/// Gives segment `from` the second name `to` (`/`-prefixed names), failing
/// with `AlreadyExists` if `to` is taken: link(2) in `/dev/shm`, where
/// glibc's `shm_open` keeps segments. Atomic, as `O_EXCL` is.
pub(crate) fn link(from: &CStr, to: &CStr) -> io::Result<()> {
    let path = |c: &CStr| format!("/dev/shm{}", c.to_string_lossy());
    std::fs::hard_link(path(from), path(to))
}

/// Opens a named POSIX shared-memory segment (`/dev/shm/<name>` on Linux),
/// creating it exclusively (`create`: fails with `AlreadyExists` if it exists).
pub(crate) fn shm_open(name: &CStr, create: bool) -> io::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_CLOEXEC | if create { libc::O_CREAT | libc::O_EXCL } else { 0 };
    // SAFETY: `name` is NUL-terminated; shm_open returns a new fd or -1.
    let fd = cvt(unsafe { libc::shm_open(name.as_ptr(), flags, 0o600 as libc::mode_t) })?;
    // SAFETY: the fd was just opened and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Removes a named segment's name (mappings stay valid). Async-signal-safe in glibc.
pub(crate) fn shm_unlink(name: &CStr) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    cvt(unsafe { libc::shm_unlink(name.as_ptr()) }).map(drop)
}

/// A `MAP_SHARED` read-write mapping of a whole shared-memory file.
///
/// Other processes map the same pages and may write them at any time: the
/// views handed out here are for memory whose concurrent use the caller
/// coordinates (atomics, or bytes guarded by a lock in the same mapping), the
/// contract of every shared-memory API (Python's `mmap`, `multiprocessing.shared_memory`).
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory with no thread affinity; all access goes
// through atomics or views whose synchronisation the caller provides.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` (which must be at least that long).
    pub(crate) fn new(fd: BorrowedFd<'_>, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "cannot map 0 bytes"));
        }
        // SAFETY: a fresh mapping chosen by the kernel (addr null), of a valid fd;
        // the result is checked against MAP_FAILED below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::from(io::ErrorKind::Other))?;
        Ok(Mapping { ptr, len })
    }

    /// The mapping's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn check(&self, off: usize, len: usize, align: usize) {
        assert!(
            off.checked_add(len).is_some_and(|end| end <= self.len) && off & (align - 1) == 0,
            "shared-memory view {off}+{len} out of a {}-byte mapping",
            self.len
        );
    }

    /// The `u32` at byte `off` (4-aligned), as an atomic.
    ///
    /// # Panics
    /// If `off` is out of range or misaligned (a bug in multiproc, not bad input:
    /// offsets are constants and sizes are checked when a mapping is attached).
    #[inline]
    pub(crate) fn atomic_u32(&self, off: usize) -> &AtomicU32 {
        self.check(off, 4, 4);
        // SAFETY: in bounds and aligned (checked); the page is mapped for the
        // lifetime of `&self`; an AtomicU32 may alias memory written by other
        // processes, which only ever access it atomically.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(off).cast()) }
    }

    /// The `u64` at byte `off` (8-aligned), as an atomic.
    ///
    /// # Panics
    /// As [`Mapping::atomic_u32`].
    #[inline]
    pub(crate) fn atomic_u64(&self, off: usize) -> &AtomicU64 {
        self.check(off, 8, 8);
        // SAFETY: as in `atomic_u32`, for 8 bytes.
        unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(off).cast()) }
    }

    /// Copies the bytes at `off` into `dst`. Safe against concurrent writers in
    /// any process: every byte is read with an atomic (relaxed) load, word by
    /// word where aligned, so a racing write gives a mixture of old and new
    /// bytes (a torn value), never undefined behaviour.
    ///
    /// # Panics
    /// As [`Mapping::atomic_u32`].
    #[inline]
    pub(crate) fn read(&self, off: usize, dst: &mut [u8]) {
        self.check(off, dst.len(), 1);
        let base = self.ptr.as_ptr().wrapping_add(off);
        let mut i = 0;
        while i < dst.len() {
            let p = base.wrapping_add(i);
            if p.align_offset(8) == 0 && dst.len() - i >= 8 {
                // SAFETY: `p..p+8` is inside the mapping (bounds checked above), 8-aligned
                // (just tested) and mapped while `&self` lives; other processes and threads
                // touch these bytes only through atomics of this module or under a lock,
                // so an atomic load may alias them.
                let w = unsafe { AtomicU64::from_ptr(p.cast()) }.load(Ordering::Relaxed);
                dst[i..i + 8].copy_from_slice(&w.to_ne_bytes());
                i += 8;
            } else {
                // SAFETY: `p` is inside the mapping (checked above); a byte is always aligned.
                dst[i] = unsafe { AtomicU8::from_ptr(p) }.load(Ordering::Relaxed);
                i += 1;
            }
        }
    }

    /// Copies `src` to the bytes at `off`, with atomic (relaxed) stores, as
    /// [`read`](Mapping::read) does loads: safe against concurrent readers and writers.
    ///
    /// # Panics
    /// As [`Mapping::atomic_u32`].
    #[inline]
    pub(crate) fn write(&self, off: usize, src: &[u8]) {
        self.check(off, src.len(), 1);
        let base = self.ptr.as_ptr().wrapping_add(off);
        let mut i = 0;
        while i < src.len() {
            let p = base.wrapping_add(i);
            if p.align_offset(8) == 0 && src.len() - i >= 8 {
                let mut w = [0u8; 8];
                w.copy_from_slice(&src[i..i + 8]);
                // SAFETY: as in `read`: in bounds, 8-aligned, mapped, accessed atomically by all.
                unsafe { AtomicU64::from_ptr(p.cast()) }.store(u64::from_ne_bytes(w), Ordering::Relaxed);
                i += 8;
            } else {
                // SAFETY: as in `read`, for one byte.
                unsafe { AtomicU8::from_ptr(p) }.store(src[i], Ordering::Relaxed);
                i += 1;
            }
        }
    }

    /// `len` bytes at `off`, read-only, in place.
    ///
    /// # Safety
    /// While the returned slice lives, nothing in this process may write these
    /// bytes (no `&mut` view, no [`write`](Mapping::write), no atomic store to
    /// them), and other processes must not write them either (the caller holds
    /// the lock that guards them, or owns them by a ring protocol).
    ///
    /// # Panics
    /// As [`Mapping::atomic_u32`].
    #[inline]
    pub(crate) unsafe fn bytes(&self, off: usize, len: usize) -> &[u8] {
        self.check(off, len, 1);
        // SAFETY: in bounds (checked) and mapped while `&self` lives; the caller
        // guarantees (this function's contract) that nobody writes them meanwhile.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(off), len) }
    }

    /// `len` bytes at `off`, writable in place through a shared handle.
    ///
    /// # Safety
    /// While the returned slice lives, no other view of these bytes may be used,
    /// in this process or another: the caller holds the only right to them (a
    /// lock that nobody else can release meanwhile, or ring slots it owns by
    /// protocol).
    ///
    /// # Panics
    /// As [`Mapping::atomic_u32`].
    #[allow(clippy::mut_from_ref)] // shared memory: exclusivity is this function's contract
    #[inline]
    pub(crate) unsafe fn bytes_mut(&self, off: usize, len: usize) -> &mut [u8] {
        self.check(off, len, 1);
        // SAFETY: in bounds (checked) and mapped while `&self` lives; the caller
        // guarantees (this function's contract) exclusive use meanwhile.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(off), len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the range mmap returned; no views outlive `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

// ------------------------------------------------------------------ tracker process

/// Size of one tracker record: an op byte, the segment's inode (u64, native
/// endian; 0: any) and a NUL-terminated name.
pub(crate) const TRACK_RECORD: usize = 272;
/// Where a record's name starts (after the op byte and the inode).
pub(crate) const TRACK_NAME_AT: usize = 9;
/// How many names one tracker holds at a time.
pub(crate) const TRACK_SLOTS: usize = 1024;

/// Starts the resource-tracker process: it reads `R<inode><name>` /
/// `U<inode><name>` records from a pipe and, when the pipe reaches end-of-file
/// (every process holding the write end has exited or been killed), unlinks
/// the names still registered and exits. A name registered with an inode is
/// unlinked only if `/dev/shm/<name>` is still that inode, so a name registered
/// before it was linked can never take another process's segment. Returns its
/// pid and the pipe's write end (`CLOEXEC`).
///
/// The tracker is forked, not executed, and may be forked from a
/// multi-threaded process: it only touches memory allocated before the fork
/// and makes async-signal-safe calls (read, shm_unlink, sigaction, close, _exit).
pub(crate) fn spawn_tracker() -> io::Result<(i32, OwnedFd)> {
    let mut table = vec![[0u8; TRACK_RECORD]; TRACK_SLOTS];
    let (r, w) = pipe_cloexec()?;
    // SAFETY: the child runs `tracker_main` only, which makes async-signal-safe
    // calls and uses memory allocated before the fork (see above).
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => tracker_main(r.as_raw_fd(), &mut table),
        pid => Ok((pid, w)),
    }
}

fn tracker_main(fd: i32, table: &mut [[u8; TRACK_RECORD]]) -> ! {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
        // SAFETY: setting a signal's disposition to SIG_IGN is async-signal-safe.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    super::fd::close_all_except(&[fd]);
    let mut rec = [0u8; TRACK_RECORD];
    'records: loop {
        let mut got = 0;
        while got < TRACK_RECORD {
            // SAFETY: reads into the unfilled part of `rec`, which is in bounds.
            let n = unsafe { libc::read(fd, rec.as_mut_ptr().add(got).cast(), TRACK_RECORD - got) };
            if n == 0 {
                break 'records;
            }
            if n < 0 {
                // SAFETY: __errno_location returns this thread's errno slot.
                if unsafe { *libc::__errno_location() } == libc::EINTR {
                    continue;
                }
                break 'records;
            }
            got += n as usize;
        }
        track_record(&rec, table);
    }
    for slot in table.iter().filter(|s| s[0] != 0) {
        unlink_tracked(slot);
    }
    super::process::exit_now(0)
}

/// Applies one record to the tracker's table: a slot is the record itself
/// (op byte `R` marks it used).
fn track_record(rec: &[u8; TRACK_RECORD], table: &mut [[u8; TRACK_RECORD]]) {
    let name = &rec[TRACK_NAME_AT..];
    let name_len = name.iter().position(|&b| b == 0).unwrap_or(name.len() - 1);
    let same = |slot: &[u8; TRACK_RECORD]| {
        slot[TRACK_NAME_AT..TRACK_NAME_AT + name_len] == name[..name_len] && slot[TRACK_NAME_AT + name_len] == 0
    };
    match rec[0] {
        b'R' if !table.iter().any(|s| s[0] != 0 && same(s)) => {
            // (A name registered twice, by its creator and a tracking attacher, is held once.)
            if let Some(slot) = table.iter_mut().find(|s| s[0] == 0) {
                *slot = *rec;
                slot[TRACK_NAME_AT + name_len] = 0;
            }
        }
        b'U' => {
            if let Some(slot) = table.iter_mut().find(|s| s[0] != 0 && same(s)) {
                slot[0] = 0;
            }
        }
        _ => {}
    }
}

/// Unlinks a used slot's name, if it is still the inode it was registered with.
fn unlink_tracked(slot: &[u8; TRACK_RECORD]) {
    let mut ino = [0u8; 8];
    ino.copy_from_slice(&slot[1..TRACK_NAME_AT]);
    let ino = u64::from_ne_bytes(ino);
    let name = &slot[TRACK_NAME_AT..];
    if ino != 0 {
        // "/dev/shm/" + name + NUL, built in place (no allocation after fork).
        let mut path = [0u8; 9 + TRACK_RECORD];
        path[..9].copy_from_slice(b"/dev/shm/");
        let len = name.iter().position(|&b| b == 0).unwrap_or(0);
        path[9..9 + len].copy_from_slice(&name[..len]);
        let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
        // SAFETY: `path` is NUL-terminated (zeroed past the name); `st` is a writable
        // stat buffer. stat is async-signal-safe.
        let found = unsafe { libc::stat(path.as_ptr().cast(), st.as_mut_ptr()) } == 0;
        // SAFETY: zeroed, and filled by stat when it succeeded.
        if !found || unsafe { st.assume_init() }.st_ino != ino {
            return; // never linked, or someone else's segment now
        }
    }
    // SAFETY: a used slot holds a NUL-terminated name (`track_record`).
    unsafe { libc::shm_unlink(name.as_ptr().cast()) };
}

/// Writes one whole record (≤ PIPE_BUF bytes, so it is atomic).
pub(crate) fn write_record(fd: BorrowedFd<'_>, rec: &[u8; TRACK_RECORD]) -> io::Result<()> {
    // SAFETY: `rec` is a valid buffer of TRACK_RECORD bytes.
    let n = super::cvt_retry(|| unsafe { libc::write(fd.as_raw_fd(), rec.as_ptr().cast(), TRACK_RECORD) })?;
    if n as usize == TRACK_RECORD { Ok(()) } else { Err(io::Error::from(io::ErrorKind::WriteZero)) }
}

fn pipe_cloexec() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` is a writable array of two c_int, as pipe2(2) requires.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both fds are open and owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}
