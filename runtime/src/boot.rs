//! How a child boots: the message it starts from ([`Boot`], [`ServerBoot`]),
//! its answer ([`Ack`]), the entry point a re-executed child takes its role in
//! ([`Entry`]), and the constants of that handshake.
//!
//! A process started by spawn or forkserver is this same binary re-executed
//! with [`ROLE_VAR`] in its environment; the boot message follows on the
//! control socket. The start methods (`start/`) send it and the child entry
//! (`role`) reads it; both find it here, below them.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::identity::Me;
use crate::sys;

/// The environment variable naming a child's role: `<kind>;<fd>;<test name>`.
pub(crate) const ROLE_VAR: &str = "MULTIPROC_ROLE";
/// Exit code of a spawned child whose entry point is not annotated.
pub(crate) const EXIT_NOT_ANNOTATED: i32 = 86;
/// How long a parent waits for a new child's handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything a new child needs to run its task.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Boot {
    /// The registered name of the task.
    pub(crate) task: String,
    /// Its encoded arguments.
    pub(crate) args: Vec<u8>,
    /// The identity the child takes.
    pub(crate) me: Me,
    /// The parent's build ([`registry::fingerprint`](crate::registry::fingerprint)).
    pub(crate) fingerprint: u64,
    /// The name of the start method that started the child: its default
    /// from then on, as CPython sets it at bootstrap.
    pub(crate) method: String,
}

/// The first message to a new fork server.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ServerBoot {
    /// The parent's build.
    pub(crate) fingerprint: u64,
    /// The parent's name and pid.
    pub(crate) parent: (String, u32),
}

/// The child's answer to its boot message: `Err` says why it cannot run.
pub(crate) type Ack = std::result::Result<(), String>;

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

/// An annotated `main` is running (its children re-enter it).
pub(crate) fn entered_main() {
    MAIN_ENTERED.store(true, Ordering::Relaxed);
}

/// An annotated test `name` exists in this binary (any test's children may re-enter it).
pub(crate) fn found_test(name: &'static str) {
    let _ = ANY_TEST.set(name);
}

/// The annotated test `name` runs on this thread (`None`: it ended); children
/// this thread starts re-enter it.
pub(crate) fn set_this_test(name: Option<&'static str>) {
    THIS_TEST.with(|t| t.set(name));
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

/// Error for a spawn/forkserver start from a binary without an annotated entry.
pub(crate) fn not_annotated() -> Error {
    Error::NotAnnotated { what: "cannot start a child with the spawn or forkserver start method".into() }
}
