//! Shared helpers for the integration tests: the list of start methods every
//! process test runs under, a guard that checks nothing leaked, and small
//! routines several test files need (bounded waits, running helper binaries,
//! a deterministic random generator).

use std::collections::BTreeSet;
use std::fmt::Display;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use multiproc::StartMethod;

/// Every start method, in the order tests run them.
pub const METHODS: [StartMethod; 3] = [StartMethod::Fork, StartMethod::Spawn, StartMethod::ForkServer];

/// How long a test waits for something that should happen promptly (bounds failures only).
pub const DEADLINE: Duration = Duration::from_secs(20);

static SERIAL: Mutex<()> = Mutex::new(());

/// Serialises the tests of one binary that check for leaks (they look at the
/// whole process), and checks on drop that the test left no child process,
/// zombie, fd or `/dev/shm` entry behind.
pub struct LeakGuard {
    _serial: MutexGuard<'static, ()>,
    fds: BTreeSet<i32>,
    shm: BTreeSet<String>,
}

/// Starts a leak-checked section; hold the guard for the whole test.
pub fn leak_guard() -> LeakGuard {
    let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    LeakGuard { _serial: serial, fds: open_fds(), shm: shm_entries() }
}

/// The fds open in this process, minus those the runtime keeps for itself.
///
/// Listing `/proc/self/fd` opens a directory fd that shows up in the listing;
/// which number it gets depends on what else is open, so it is dropped by
/// checking, after the listing is closed, that each fd is still open.
pub fn open_fds() -> BTreeSet<i32> {
    let runtime: BTreeSet<i32> = multiproc::__private::runtime_fds().into_iter().collect();
    let listed: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    listed
        .into_iter()
        .filter(|fd| !runtime.contains(fd) && std::fs::symlink_metadata(format!("/proc/self/fd/{fd}")).is_ok())
        .collect()
}

/// Our children (running or zombie), minus the runtime's own (the fork server).
pub fn child_pids() -> BTreeSet<u32> {
    let runtime: BTreeSet<u32> = multiproc::__private::runtime_pids().into_iter().collect();
    let mut out = BTreeSet::new();
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            }
        }
    }
    out.retain(|p| !runtime.contains(p));
    out
}

/// Names in `/dev/shm` that multiproc created.
pub fn shm_entries() -> BTreeSet<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.contains("multiproc")).collect())
        .unwrap_or_default()
}

impl LeakGuard {
    /// Checks now (also done on drop): waits up to [`DEADLINE`] for children to
    /// be reaped, since a killed child may take a moment to be collected.
    pub fn check(&self) {
        let until = Instant::now() + DEADLINE;
        loop {
            let kids = child_pids();
            let fds: BTreeSet<i32> = open_fds().difference(&self.fds).copied().collect();
            let shm: BTreeSet<String> = shm_entries().difference(&self.shm).cloned().collect();
            if kids.is_empty() && fds.is_empty() && shm.is_empty() {
                return;
            }
            if Instant::now() > until {
                let describe = |fd: &i32| {
                    let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap_or_default();
                    format!("{fd} -> {}", target.display())
                };
                panic!(
                    "leaked: children {kids:?}, fds {:?}, shm {shm:?}",
                    fds.iter().map(describe).collect::<Vec<_>>()
                );
            }
            std::thread::yield_now();
        }
    }
}

impl Drop for LeakGuard {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.check();
        }
    }
}

/// Polls `cond` until it holds, yielding between polls; panics with "timed out
/// waiting for `what`" if it does not hold within [`DEADLINE`].
pub fn wait_until(mut cond: impl FnMut() -> bool, what: impl Display) {
    let until = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

/// Whether `pid` has exited (gone, or a zombie waiting for its new parent).
pub fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// The scheduler state letter of `pid` (`R`, `S`, `T`, `Z`, …) from `/proc/<pid>/stat`.
pub fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Stops `pid` with SIGSTOP (sent by kill(1): the tests use no unsafe code)
/// and returns once the kernel reports it stopped: `kill` only queues the
/// signal, and a process running on another CPU, or one a sandboxing kernel
/// stops lazily, may go on for a while before it takes the stop.
pub fn stop(pid: u32) {
    signal(pid, "STOP");
    wait_until(|| state(pid).is_some_and(|s| matches!(s, 'T' | 't')), format_args!("process {pid} to stop"));
}

/// Lets a process [`stop`]ped before run again (SIGCONT).
pub fn resume(pid: u32) {
    signal(pid, "CONT");
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
    assert!(status.is_ok_and(|s| s.success()), "kill -{name} {pid} failed");
}

/// Runs `cmd` with stdout and stderr captured, bounded by [`DEADLINE`]: a
/// command still running then is SIGKILLed and the test panics. Returns
/// (status, stdout, stderr), the output decoded lossily.
pub fn run_bounded(cmd: &mut Command) -> (ExitStatus, String, String) {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || tx.send(child.wait_with_output()));
    let out = match rx.recv_timeout(DEADLINE) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("{cmd:?} did not finish within {DEADLINE:?}");
        }
    };
    let _ = waiter.join();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status, text(&out.stdout), text(&out.stderr))
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// A short name for how a call ended, for a child to report to its parent:
/// `Ok`, `Err(<variant>)` for the errors the tests tell apart, or the error's text.
pub fn outcome<T>(r: &multiproc::Result<T>) -> String {
    use multiproc::Error;
    match r {
        Ok(_) => "Ok".into(),
        Err(Error::ShutDown) => "Err(ShutDown)".into(),
        Err(Error::Empty) => "Err(Empty)".into(),
        Err(Error::Full) => "Err(Full)".into(),
        Err(Error::Closed(_)) => "Err(Closed)".into(),
        Err(e) => format!("Err({e})"),
    }
}
