//! Every system call multiproc makes, behind safe functions.
//!
//! This is the only module allowed to use `unsafe`. Functions take and
//! return `OwnedFd`/`BorrowedFd`, create everything `CLOEXEC`, and turn a
//! `-1` into an `io::Error` in one helper ([`cvt`]), as nix does.
#![allow(unsafe_code)]

pub(crate) mod fd;
pub(crate) mod forklock;
pub(crate) mod futex;
pub(crate) mod mem;
#[cfg(feature = "mpi")]
pub(crate) mod mpi;
pub(crate) mod process;
pub(crate) mod shm;
pub(crate) mod socket;

use std::io;

/// Turns a libc return value of `-1` into the current `errno`.
pub(crate) fn cvt<T: Copy + PartialEq + From<i8>>(res: T) -> io::Result<T> {
    if res == T::from(-1) { Err(io::Error::last_os_error()) } else { Ok(res) }
}

/// Like [`cvt`], retrying while the call is interrupted by a signal.
pub(crate) fn cvt_retry<T: Copy + PartialEq + From<i8>>(mut f: impl FnMut() -> T) -> io::Result<T> {
    loop {
        match cvt(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}
