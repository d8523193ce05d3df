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
static CHILD_OF_TEST: OnceLock<&'static str> = OnceLock::new();
thread_local! {
    static THIS_TEST: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// An annotated `main` is running (its children re-enter it).
pub(crate) fn entered_main() {
    MAIN_ENTERED.store(true, Ordering::Relaxed);
}

/// This process is a child re-running the annotated test `name` only to take
/// its role: every thread's children re-enter that test too.
pub(crate) fn child_of_test(name: &'static str) {
    let _ = CHILD_OF_TEST.set(name);
}

/// The annotated test `name` runs on this thread (`None`: it ended); children
/// this thread starts re-enter it. Threads multiproc starts on behalf of a
/// test (a pool's) inherit it through [`this_test`].
pub(crate) fn set_this_test(name: Option<&'static str>) {
    THIS_TEST.with(|t| t.set(name));
}

/// The annotated test running on this thread, if any.
pub(crate) fn this_test() -> Option<&'static str> {
    THIS_TEST.with(Cell::get)
}

/// The entry point a spawned child of the calling thread would use, if any.
///
/// Only the calling thread's own test counts (never "some annotated test of
/// this binary"): a child started from a plain `#[test]` would otherwise land
/// in whichever annotated test the parent happened to know, and the plain
/// test would pass or fail by chance.
pub(crate) fn entry() -> Option<Entry> {
    if let Some(t) = this_test().or_else(|| CHILD_OF_TEST.get().copied()) {
        return Some(Entry::Test(t));
    }
    if MAIN_ENTERED.load(Ordering::Relaxed) {
        return Some(Entry::Main);
    }
    None
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

/// Error for a spawn/forkserver start from a thread without an annotated entry.
pub(crate) fn not_annotated() -> Error {
    let thread = std::thread::current();
    // rustdoc runs each doctest with one of these set (merged doctests: the first).
    let doctest =
        ["RUSTDOC_DOCTEST_RUN_NB_TEST", "UNSTABLE_RUSTDOC_TEST_PATH"].iter().any(|v| std::env::var_os(v).is_some());
    let what = match (doctest, thread.name()) {
        (true, _) => "cannot start a child with the spawn or forkserver start method in a doctest: \
             its `fn main` is generated, so no child can re-enter it; use the fork start method there \
             (multiproc::get_context(multiproc::StartMethod::Fork)), or write `#[multiproc::main] fn main()` \
             out in the example"
            .to_string(),
        (false, Some("main") | None) => "cannot start a child with the spawn or forkserver start method: \
             the program's `fn main` is not annotated with #[multiproc::main]"
            .to_string(),
        (false, Some(name)) => format!(
            "cannot start a child with the spawn or forkserver start method from thread `{name}`: \
             it runs no #[multiproc::test] (a plain #[test] cannot host children, since a child re-runs \
             its test: use #[multiproc::test] instead of #[test]; in a thread you start yourself inside \
             such a test, start the children from the test's own thread)"
        ),
    };
    Error::NotAnnotated { what }
}
