//! Processes: fork, exec, pidfds, waiting, signals, the death signal.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::{cvt, cvt_retry};

/// How a process ended, as `waitpid` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawExit {
    /// `exit(code)`.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// `fork(2)`. Returns `None` in the child, `Some(pid)` in the parent.
///
/// # Safety
/// In a multi-threaded parent the child may only call async-signal-safe
/// functions until it execs, unless the caller accepts the risks Python's
/// `fork` start method documents (locks held by other threads stay locked).
pub(crate) unsafe fn fork() -> io::Result<Option<i32>> {
    // SAFETY: the caller upholds fork's contract (see above).
    let pid = cvt(unsafe { libc::fork() })?;
    Ok(if pid == 0 { None } else { Some(pid) })
}

/// `clone(CLONE_PARENT)`: a `fork` whose child is our *sibling*: its parent
/// is our parent, who waits for it and reaps it as its own child, and whose
/// death signal follows that parent. So the fork server's children outlive
/// the server. Returns `None` in the child, `Some(pid)` in the caller.
///
/// # Safety
/// The caller must be single-threaded. Being a raw `clone`, it runs no
/// `pthread_atfork` handlers, so the child then calls
/// [`super::futex::after_fork_child`] to refresh the ids cached before.
pub(crate) unsafe fn fork_sibling() -> io::Result<Option<i32>> {
    let flags = (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: clone(2) without CLONE_VM and with a null stack duplicates the
    // caller like fork (the child runs on its copy of our stack); the null
    // tid pointers and tls are unused without the flags that read them; the
    // caller upholds the single-thread contract above.
    let pid = cvt(unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) })?;
    Ok(if pid == 0 { None } else { Some(pid as i32) })
}

/// What a freshly forked child does before anything else: die with the
/// thread that forked it (`PR_SET_PDEATHSIG`), exit at once if that parent is
/// already gone (the race `PR_SET_PDEATHSIG` alone leaves), and close every fd
/// except stdio and `keep` (sorted). Async-signal-safe.
pub(crate) fn child_prelude(parent: i32, keep: &[RawFd]) {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and no pointers.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    if getppid() != parent {
        exit_now(137);
    }
    super::fd::close_all_except(keep);
}

/// Replaces this process with `path` (argv, envp prepared before fork). Async-signal-safe.
/// Returns only on failure.
pub(crate) fn exec(path: &CStr, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) -> io::Error {
    // SAFETY: `path` is NUL-terminated; `argv` and `envp` are NULL-terminated arrays of
    // pointers into CStrings the caller keeps alive across the call.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}

/// Builds a NULL-terminated pointer array over `strings` (which must outlive it).
pub(crate) fn c_array(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings.iter().map(|s| s.as_ptr()).chain(std::iter::once(std::ptr::null())).collect()
}

/// Leaves the process at once with `code`, running no destructors or atexit handlers.
/// Ignores SIGINT; returns whether it was ignored already (inherited), so a
/// child can be given back what the process started with.
pub(crate) fn ignore_sigint() -> bool {
    // SAFETY: signal(2) with SIG_IGN installs no handler code.
    let old = unsafe { libc::signal(libc::SIGINT, libc::SIG_IGN) };
    old == libc::SIG_IGN
}

/// Gives SIGINT its default action back. Async-signal-safe.
pub(crate) fn default_sigint() {
    // SAFETY: signal(2) with SIG_DFL installs no handler code.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
}

pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit(2) is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// This process's id.
pub(crate) fn getpid() -> i32 {
    // SAFETY: getpid(2) cannot fail.
    unsafe { libc::getpid() }
}

/// This thread's id (Linux's TID; the pid for the main thread).
pub(crate) fn gettid() -> i32 {
    // SAFETY: gettid(2) takes no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// The parent's process id.
pub(crate) fn getppid() -> i32 {
    // SAFETY: getppid(2) cannot fail.
    unsafe { libc::getppid() }
}

/// A pidfd for process `pid` (readable once it exits). `CLOEXEC`.
pub(crate) fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags; it returns a new fd or -1.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: the syscall returned a new fd that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends `signal` through a pidfd (no pid-reuse race). `Ok(false)` if the process is gone.
pub(crate) fn pidfd_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<bool> {
    // SAFETY: pidfd_send_signal(2) with a NULL siginfo and no flags.
    let r = unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), signal, std::ptr::null::<libc::siginfo_t>(), 0)
    };
    match cvt(r) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reaps our child `pid` (blocking or not). `Ok(None)`: still running.
pub(crate) fn wait_child(pid: i32, block: bool) -> io::Result<Option<RawExit>> {
    let mut status: libc::c_int = 0;
    let flags = if block { 0 } else { libc::WNOHANG };
    // SAFETY: `status` is a valid out-pointer; we only wait for our own child `pid`.
    let r = cvt_retry(|| unsafe { libc::waitpid(pid, &raw mut status, flags) })?;
    if r == 0 {
        return Ok(None);
    }
    Ok(Some(decode_status(status)))
}

fn decode_status(status: libc::c_int) -> RawExit {
    if libc::WIFSIGNALED(status) {
        RawExit::Signal(libc::WTERMSIG(status))
    } else {
        RawExit::Code(libc::WEXITSTATUS(status))
    }
}

/// Removes an environment variable of this process.
///
/// Called once at role entry, on the main or test thread, before the child
/// starts any thread of its own.
pub(crate) fn remove_env(key: &str) {
    // SAFETY: called before the child role starts threads (see above); the test
    // harness' other thread only waits for this one and does not read the environment.
    unsafe { std::env::remove_var(key) };
}

/// The number of CPUs this process may run on (its affinity mask).
pub(crate) fn cpu_count() -> usize {
    match nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..nix::sched::CpuSet::count()).filter(|&i| set.is_set(i).unwrap_or(false)).count().max(1),
        Err(_) => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    }
}

/// The number of CPUs online on the machine (`/sys/devices/system/cpu/online`,
/// a list such as `0-3,6`), whatever this process's affinity; `None` if unknown.
pub(crate) fn online_cpus() -> Option<usize> {
    let list = std::fs::read_to_string("/sys/devices/system/cpu/online").ok()?;
    list.trim().split(',').try_fold(0usize, |n, part| {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (lo, hi): (usize, usize) = (lo.parse().ok()?, hi.parse().ok()?);
        Some(n + hi.checked_sub(lo)? + 1)
    })
}

/// How long, in µs since boot, some task on the machine has waited for a CPU
/// while runnable (the `some ... total=` of `/proc/pressure/cpu`, Linux's
/// pressure stall information); `None` where the kernel keeps no such count.
pub(crate) fn cpu_stall_us() -> Option<u64> {
    let mut buf = [0u8; 256];
    let text = read_proc(&mut buf, "/proc/pressure/cpu")?;
    let some = text.lines().find(|l| l.starts_with("some "))?;
    some.split_whitespace().find_map(|f| f.strip_prefix("total="))?.parse().ok()
}

/// The number of runnable tasks on the machine right now (the fourth field
/// of `/proc/loadavg`, `running/total`, counting the caller); `None` if unknown.
pub(crate) fn runnable_tasks() -> Option<usize> {
    let mut buf = [0u8; 128];
    let text = read_proc(&mut buf, "/proc/loadavg")?;
    text.split_whitespace().nth(3)?.split_once('/')?.0.parse().ok()
}

/// The start of a small `/proc` file as text, read into `buf` with one
/// `read` and no allocation (the wait policy reads these every 10 ms).
fn read_proc<'a>(buf: &'a mut [u8], path: &str) -> Option<&'a str> {
    use std::io::Read;
    let n = std::fs::File::open(path).and_then(|mut f| f.read(buf)).ok()?;
    std::str::from_utf8(&buf[..n]).ok()
}

/// Points this process's stdin (fd 0) at `/dev/null`, as Python does in every
/// child: a child must not read input meant for its parent.
pub(crate) fn stdin_from_devnull() -> io::Result<()> {
    let null = std::fs::File::open("/dev/null")?;
    nix::unistd::dup2_stdin(&null).map_err(io::Error::from)
}

/// Flushes Rust's stdout and stderr (used before `exit_now`).
pub(crate) fn flush_stdio() {
    use std::io::Write;
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cpu_stall_count_is_read_and_never_goes_back() {
        // Kernels without PSI (or booted with psi=0) have no count: nothing to check.
        let Some(first) = super::cpu_stall_us() else { return };
        let later = super::cpu_stall_us().expect("a count read once is read again");
        assert!(later >= first, "{later} < {first}");
    }
}
