//! Who this process is: the parent's entry point, or a child taking its role.
//!
//! A process started by spawn or forkserver is this same binary re-executed
//! with `MULTIPROC_ROLE` in its environment. `#[multiproc::main]` and
//! `#[multiproc::test]` call [`main_entry`] / [`test_entry`] before any user
//! code; those read the role, shake hands with the parent over the control
//! socket (build fingerprint), and run the task or the fork server. They never
//! return into user code.

use std::cell::Cell;
use std::os::fd::{AsFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::{Error, Result};
use crate::registry;
use crate::sys;

/// The environment variable naming a child's role: `<kind>;<fd>;<test name>`.
pub(crate) const ROLE_VAR: &str = "MULTIPROC_ROLE";
/// Exit code of a spawned child whose entry point is not annotated.
pub(crate) const EXIT_NOT_ANNOTATED: i32 = 86;
/// How long a parent waits for a new child's handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Which entry point a re-executed child must run to take its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// `fn main` annotated with `#[multiproc::main]`: run the binary with no arguments.
    Main,
    /// A `#[multiproc::test]`: re-run the test binary filtered to this test.
    Test(&'static str),
}

static MAIN_ENTERED: AtomicBool = AtomicBool::new(false);
static ANY_TEST: OnceLock<&'static str> = OnceLock::new();
thread_local! {
    static THIS_TEST: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// The entry point a spawned child of the calling thread would use, if any.
pub(crate) fn entry() -> Option<Entry> {
    if let Some(t) = THIS_TEST.with(Cell::get) {
        return Some(Entry::Test(t));
    }
    if MAIN_ENTERED.load(Ordering::Relaxed) {
        return Some(Entry::Main);
    }
    // Any annotated test of this binary can host a child's role.
    ANY_TEST.get().map(|t| Entry::Test(t))
}

/// Who this process is, as `current_process()` reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Me {
    pub(crate) name: String,
    pub(crate) identity: Vec<u32>,
    pub(crate) daemon: bool,
    pub(crate) parent: Option<(String, u32)>,
}

static ME: Mutex<Option<Me>> = Mutex::new(None);
inventory::submit! { crate::sys::forklock::ForkLock::new(&ME) }

fn me_cell() -> &'static Mutex<Option<Me>> {
    &ME
}

/// This process's identity (the main process unless a role set it).
pub(crate) fn me() -> Me {
    me_cell().lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_else(|| Me {
        name: "MainProcess".into(),
        identity: Vec::new(),
        daemon: false,
        parent: None,
    })
}

static CHILD_COUNTER: AtomicU32 = AtomicU32::new(0);

/// Identity and default name of the next child: `Process-3`, `Process-1:2`, …
pub(crate) fn next_child_identity() -> (Vec<u32>, String) {
    let mut identity = me().identity;
    identity.push(CHILD_COUNTER.fetch_add(1, Ordering::Relaxed) + 1);
    let name = format!("Process-{}", identity.iter().map(u32::to_string).collect::<Vec<_>>().join(":"));
    (identity, name)
}

/// Everything a new child needs to run its task.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Boot {
    pub(crate) task: String,
    pub(crate) args: Vec<u8>,
    pub(crate) me: Me,
    pub(crate) fingerprint: u64,
}

/// The first message to a new fork server.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ServerBoot {
    pub(crate) fingerprint: u64,
    pub(crate) parent: (String, u32),
}

/// The child's answer to its boot message.
pub(crate) type Ack = std::result::Result<(), String>;

#[derive(Debug)]
struct Role {
    kind: String,
    fd: i32,
    test: String,
}

fn take_role() -> Option<Role> {
    let value = std::env::var(ROLE_VAR).ok()?;
    sys::process::remove_env(ROLE_VAR);
    let mut parts = value.splitn(3, ';');
    let kind = parts.next()?.to_string();
    let fd = parts.next()?.parse().ok()?;
    let test = parts.next().unwrap_or("").to_string();
    Some(Role { kind, fd, test })
}

/// Exits at once if this process was started as a multiproc child but its entry
/// point never took the role (an unannotated `main`): it must not run the
/// parent's program, let alone start children of its own (a fork bomb).
pub(crate) fn refuse_stray_child() {
    if std::env::var_os(ROLE_VAR).is_some() {
        eprintln!(
            "multiproc: this process was started as a child, but its entry point did not take the child role; \
             annotate `fn main` with #[multiproc::main] (or the test with #[multiproc::test])"
        );
        sys::process::flush_stdio();
        sys::process::exit_now(EXIT_NOT_ANNOTATED);
    }
}

/// Not public API: the body of `#[multiproc::main]`.
#[doc(hidden)]
pub fn main_entry<R>(body: impl FnOnce() -> R) -> R {
    // Set before taking a role too: a child may start children of its own.
    MAIN_ENTERED.store(true, Ordering::Relaxed);
    if let Some(role) = take_role() {
        run_role(role);
    }
    #[cfg(feature = "mpi")]
    if crate::mpi::is_mpi_launch() {
        let out = crate::mpi::run_main(body);
        crate::process::shutdown_children(None);
        return out;
    }
    #[cfg(not(feature = "mpi"))]
    crate::mpi::refuse_launch_without_feature();
    let out = body();
    crate::process::shutdown_children(None);
    out
}

/// Not public API: the body of `#[multiproc::test]`.
#[doc(hidden)]
pub fn test_entry<R>(path: &'static str, body: impl FnOnce() -> R) -> R {
    // module_path!() starts with the crate name; libtest names tests without it.
    let name = path.split_once("::").map_or(path, |(_, rest)| rest);
    if let Some(role) = take_role() {
        if role.test == name {
            // A child may start spawn/forkserver children of its own: they re-run this test too.
            let _ = ANY_TEST.set(name);
            run_role(role);
        }
        eprintln!("multiproc: child meant for test `{}` ran `{name}`; exiting", role.test);
        sys::process::exit_now(EXIT_NOT_ANNOTATED);
    }
    let _ = ANY_TEST.set(name);
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            THIS_TEST.with(|t| t.set(None));
            crate::process::shutdown_children(Some(std::thread::current().id()));
        }
    }
    THIS_TEST.with(|t| t.set(Some(name)));
    let _reset = Reset;
    body()
}

/// Takes a re-executed child's role; never returns.
fn run_role(role: Role) -> ! {
    let ctl = match sys::fd::adopt(role.fd) {
        Ok(fd) => fd,
        Err(e) => die(&format!("control fd {} from {ROLE_VAR}: {e}", role.fd)),
    };
    let (bytes, fds) = match codec::read_frame(ctl.as_fd(), codec::DEFAULT_MAX_MESSAGE, Some(HANDSHAKE_TIMEOUT)) {
        Ok(frame) => frame,
        Err(e) => die(&format!("reading the boot message: {e}")),
    };
    match role.kind.as_str() {
        "task" => {
            let boot: Boot = match codec::decode(&bytes, Vec::new(), "boot message") {
                Ok(b) => b,
                Err(e) => die(&e.to_string()),
            };
            acknowledge(&ctl, boot.fingerprint);
            drop(ctl);
            run_child(boot, fds, None)
        }
        "forkserver" => {
            let boot: ServerBoot = match codec::decode(&bytes, Vec::new(), "fork server boot") {
                Ok(b) => b,
                Err(e) => die(&e.to_string()),
            };
            acknowledge(&ctl, boot.fingerprint);
            set_me(Me { name: "ForkServer".into(), identity: Vec::new(), daemon: true, parent: Some(boot.parent) });
            crate::start::forkserver::serve(ctl)
        }
        other => die(&format!("unknown role `{other}`")),
    }
}

fn acknowledge(ctl: &OwnedFd, fingerprint: u64) {
    let ack: Ack = if fingerprint == registry::fingerprint() {
        Ok(())
    } else {
        Err("the child is a different build of the program than its parent (rebuilt binary?)".into())
    };
    let ok = ack.is_ok();
    if let Ok(p) = codec::encode(&ack, "handshake") {
        let _ = codec::write_frame(ctl.as_fd(), &p.bytes, &[]);
    }
    if !ok {
        sys::process::exit_now(EXIT_NOT_ANNOTATED);
    }
}

fn die(msg: &str) -> ! {
    eprintln!("multiproc child: {msg}");
    sys::process::flush_stdio();
    sys::process::exit_now(2)
}

pub(crate) fn set_me(me: Me) {
    *me_cell().lock().unwrap_or_else(|p| p.into_inner()) = Some(me);
}

/// Runs the task a child was started for (the fork start method's typed path,
/// for closures and unregistered functions).
pub(crate) type ForkRunner = Box<dyn FnOnce(&[u8], Vec<OwnedFd>) -> Result<()> + Send>;

/// Runs a child's task (by name, or the fork-only typed runner), then exits:
/// code 0, or 1 if the task panicked (the panic hook has printed message and
/// location), returned `Err`, or could not run.
pub(crate) fn run_child(boot: Boot, fds: Vec<OwnedFd>, runner: Option<ForkRunner>) -> ! {
    CHILD_COUNTER.store(0, Ordering::Relaxed);
    let task = boot.task.clone();
    set_me(boot.me);
    // A registered task runs through its entry, which can tell an `Err` return
    // value; the fork-only typed runner serves closures and unregistered fns.
    let result = catch_unwind(AssertUnwindSafe(|| match (registry::lookup(&task), runner) {
        (Ok(entry), _) => entry.run_target(&boot.args, fds),
        (Err(_), Some(run)) => run(&boot.args, fds).map(|()| None),
        (Err(e), None) => Err(e),
    }));
    let code = match result {
        Ok(Ok(None)) => 0,
        Ok(Ok(Some(returned))) => {
            eprintln!("multiproc: task `{task}` returned an error: {returned}");
            1
        }
        Ok(Err(e)) => {
            eprintln!("multiproc: task `{task}` failed: {e}");
            1
        }
        Err(_) => 1,
    };
    exit_child(code)
}

/// Python's exit path for a child: join non-daemon children, terminate daemon
/// ones, flush stdio, and leave without running the parent's destructors.
pub(crate) fn exit_child(code: i32) -> ! {
    crate::process::shutdown_children(None);
    sys::process::flush_stdio();
    sys::process::exit_now(code)
}

/// State a forked child must not inherit from its parent.
pub(crate) fn after_fork_in_child() {
    crate::process::forget_children();
    crate::start::forget_after_fork();
}

/// Error for a spawn/forkserver start from a binary without an annotated entry.
pub(crate) fn not_annotated() -> Error {
    Error::NotAnnotated { what: "cannot start a child with the spawn or forkserver start method".into() }
}
