//! Futexes shared between processes, and who owns a lock: cached pid/tid and
//! a liveness check for owners that may have died.
//!
//! The futexes are *not* `FUTEX_PRIVATE_FLAG`: the words live in `MAP_SHARED`
//! memory that several processes map, and the kernel keys shared futexes by
//! the backing page, so a wake in one process reaches a waiter in another.

use std::cell::Cell;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Sleeps while `*word == expected`, for at most `timeout` (`None`: no limit).
/// Returns `false` only if the timeout expired; a wake-up, a changed value or a
/// signal return `true` (callers re-check their condition in a loop).
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> bool {
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a valid, aligned u32 for the duration of the call (it is
    // borrowed); `ts_ptr` is null or points to a timespec that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, ts_ptr, 0usize, 0u32) };
    !(r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ETIMEDOUT))
}

/// Wakes up to `n` processes sleeping on `word`. Returns how many were woken.
pub(crate) fn wake(word: &AtomicU32, n: u32) -> usize {
    let n = n.min(i32::MAX as u32) as libc::c_int;
    // SAFETY: FUTEX_WAKE only uses the address as a key; `word` is valid and aligned.
    let r = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n, 0usize, 0usize, 0u32) };
    r.max(0) as usize
}

// ------------------------------------------------------------------ identity

/// Bumped in every child right after `fork`, so cached ids are refreshed.
static FORK_GENERATION: AtomicU32 = AtomicU32::new(1);
static ATFORK: Once = Once::new();

/// Marks the ids cached in this process as stale (a `pthread_atfork` child
/// handler; also called by hand after a raw clone, `process::fork_sibling`).
pub(crate) extern "C" fn after_fork_child() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

thread_local! {
    /// (fork generation, pid, tid) of the calling thread, cached.
    static IDS: Cell<(u32, u32, u32)> = const { Cell::new((0, 0, 0)) };
}

#[cold]
fn refresh_ids(generation: u32) -> (u32, u32, u32) {
    ATFORK.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn()` that only bumps an atomic
        // (async-signal-safe); no prepare or parent handler.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_child)) };
    });
    // SAFETY: getpid(2) and gettid(2) cannot fail.
    let (pid, tid) = unsafe { (libc::getpid() as u32, libc::gettid() as u32) };
    let ids = (FORK_GENERATION.load(Ordering::Relaxed).max(generation), pid, tid);
    IDS.with(|c| c.set(ids));
    ids
}

#[inline]
fn ids() -> (u32, u32, u32) {
    let generation = FORK_GENERATION.load(Ordering::Relaxed);
    let ids = IDS.with(Cell::get);
    if ids.0 == generation { ids } else { refresh_ids(generation) }
}

/// This process's id, cached (refreshed after `fork`).
#[inline]
pub(crate) fn current_pid() -> u32 {
    ids().1
}

/// This process's id and this thread's, cached (one lookup for both).
#[inline]
pub(crate) fn current_ids() -> (u32, u32) {
    let (_, pid, tid) = ids();
    (pid, tid)
}

/// This thread's id (system-wide unique while it runs), cached.
#[inline]
pub(crate) fn current_tid() -> u32 {
    ids().2
}

/// Whether process (or thread) `id` still runs: `kill(id, 0)` finds it and it is
/// not a zombie. A dead owner's id could in principle be reused before anyone
/// checks; with Linux's pid space (up to 2^22) that needs millions of process starts.
pub(crate) fn alive(id: u32) -> bool {
    if id == 0 || id > i32::MAX as u32 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks that `id` exists.
    let r = unsafe { libc::kill(id as libc::pid_t, 0) };
    if r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return false;
    }
    // A killed child stays a zombie until reaped: it holds nothing any more.
    // Read /proc/<id>/stat without allocating: this may run in a child forked
    // from a multi-threaded parent, where malloc's lock may be held forever.
    let mut path = [0u8; 32];
    let mut n = 0;
    for &b in b"/proc/" {
        path[n] = b;
        n += 1;
    }
    let mut digits = [0u8; 10];
    let (mut d, mut v) = (0, id);
    loop {
        digits[d] = b'0' + (v % 10) as u8;
        d += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    while d > 0 {
        d -= 1;
        path[n] = digits[d];
        n += 1;
    }
    for &b in b"/stat\0" {
        path[n] = b;
        n += 1;
    }
    // SAFETY: `path` is NUL-terminated (written above); open returns a new fd or -1.
    let fd = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT);
    }
    let mut buf = [0u8; 512];
    // SAFETY: reads at most buf.len() bytes into `buf`; `fd` is the fd opened above.
    let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: closes the fd opened above, which nothing else uses.
    unsafe { libc::close(fd) };
    if r <= 0 {
        return true;
    }
    let stat = &buf[..r as usize];
    // The state is the first field after the command name's closing parenthesis.
    match stat.iter().rposition(|&b| b == b')') {
        Some(p) => !matches!(stat.get(p + 2), Some(b'Z' | b'X')),
        None => true,
    }
}
