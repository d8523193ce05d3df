//! The resource tracker: named shared-memory segments are unlinked when the
//! process that created them ends, however it ends.
//!
//! Each process that creates a named segment starts (once) a small tracker
//! process holding the read end of a pipe; the creator keeps the only write
//! end. Creating a segment registers its name, `unlink` unregisters it. When
//! the creator exits or is killed (SIGKILL included) the pipe reaches EOF and
//! the tracker unlinks what is left, silently (Python's tracker warns about
//! "leaked" objects even when they were meant to be cleaned up this way, and
//! unlinks segments that attaching processes never created — P7 in PARITY.md).
//! Only the creator tracks a segment.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Mutex;

use crate::error::{Error, IoContext, Result};
use crate::sys;
use crate::sys::shm::{TRACK_NAME_AT, TRACK_RECORD};

struct Tracker {
    owner: u32,
    pid: i32,
    fd: OwnedFd,
}

static TRACKER: Mutex<Option<Tracker>> = Mutex::new(None);

inventory::submit! { crate::sys::forklock::ForkLock::new(&TRACKER) }

fn send(op: u8, name: &str, inode: u64) -> Result<()> {
    let bytes = name.as_bytes();
    let room = TRACK_RECORD - TRACK_NAME_AT - 1;
    if bytes.len() > room {
        return Err(Error::InvalidArgument(format!("shared-memory name longer than {room} bytes")));
    }
    let mut rec = [0u8; TRACK_RECORD];
    rec[0] = op;
    rec[1..TRACK_NAME_AT].copy_from_slice(&inode.to_ne_bytes());
    rec[TRACK_NAME_AT..TRACK_NAME_AT + bytes.len()].copy_from_slice(bytes);
    let mut guard = TRACKER.lock().unwrap_or_else(|p| p.into_inner());
    let me = sys::futex::current_pid();
    for attempt in 0..2 {
        if guard.as_ref().is_some_and(|t| t.owner != me) {
            // Inherited through fork: that tracker belongs to the parent.
            if let Some(t) = guard.take() {
                std::mem::forget(t.fd);
            }
        }
        if guard.is_none() {
            if op == b'U' {
                return Ok(());
            }
            let (pid, fd) = sys::shm::spawn_tracker().ctx("start the resource tracker")?;
            *guard = Some(Tracker { owner: me, pid, fd });
        }
        let t = guard.as_ref().map(|t| t.fd.as_fd());
        match t.map(|fd| sys::shm::write_record(fd, &rec)) {
            Some(Ok(())) => return Ok(()),
            Some(Err(e)) if attempt == 1 => return Err(Error::Io { op: "resource tracker", source: e }),
            _ => *guard = None, // the tracker died: start another one
        }
    }
    Ok(())
}

/// Registers a name this process creates or holds: the tracker unlinks it
/// when this process ends, whatever segment has the name then. Register a
/// name only once it is this process's own (a fresh, private name may be
/// registered before it is created).
pub(crate) fn register(name: &str) -> Result<()> {
    send(b'R', name, 0)
}

/// Registers `name` for the segment with this inode: the tracker unlinks the
/// name only if it still names that segment, so it may be registered before
/// the segment takes the name.
pub(crate) fn register_inode(name: &str, inode: u64) -> Result<()> {
    send(b'R', name, inode)
}

/// Unregisters a name (it was unlinked).
pub(crate) fn unregister(name: &str) {
    let _ = send(b'U', name, 0);
}

/// The tracker's pid, if this process started one (tests' leak checks).
pub(crate) fn pid() -> Option<u32> {
    let g = TRACKER.lock().unwrap_or_else(|p| p.into_inner());
    g.as_ref().filter(|t| t.owner == sys::futex::current_pid()).map(|t| t.pid as u32)
}

/// The tracker pipe's fd, if any (tests' leak checks).
pub(crate) fn fd() -> Option<i32> {
    let g = TRACKER.lock().unwrap_or_else(|p| p.into_inner());
    g.as_ref().filter(|t| t.owner == sys::futex::current_pid()).map(|t| t.fd.as_raw_fd())
}
