//! The task registry: every `#[multiproc::task]` function and `lambda!` closure
//! of this binary, by name.
//!
//! Entries are submitted with `inventory` before `main`; the registry is only
//! read after `main` starts (never in a constructor, since `inventory`'s order
//! is unspecified), through [`registry`].

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::fd::OwnedFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::codec::Payload;
use crate::error::{Error, Result};

/// Decodes a call's arguments, runs the function, appends its encoded result
/// to the buffer and returns the result's fds.
#[doc(hidden)]
pub type Invoker = fn(&[u8], Vec<OwnedFd>, &mut Vec<u8>) -> Result<Vec<OwnedFd>>;

/// Runs a whole chunk of calls (a pool's batch path): decodes `count` argument
/// tuples laid end to end in the input, runs each, catching panics (described
/// by the given function), and appends the results end to end to the buffer:
/// the plain values when every call returned, else every call's outcome.
#[doc(hidden)]
pub type SeqInvoker = fn(&[u8], usize, &mut Vec<u8>, fn() -> (String, String)) -> Result<SeqReply>;

/// What a [`SeqInvoker`] appended. Not public API.
#[doc(hidden)]
pub struct SeqReply {
    /// The handles found inside the results.
    pub(crate) fds: Vec<OwnedFd>,
    /// Every call returned: the buffer holds plain values, not [`SeqOutcome`]s.
    pub(crate) all_returned: bool,
}

/// Runs the task as a process's target: decodes the arguments and calls the
/// function. `Ok(Some(error))` if it returned `Err(error)` (shown with `Debug`),
/// so the process can exit with code 1 as Python's does when its target raises.
#[doc(hidden)]
pub type TargetRunner = fn(&[u8], Vec<OwnedFd>) -> Result<Option<String>>;

/// One registered task. Not public API: built by the macros.
#[doc(hidden)]
pub struct TaskEntry {
    name: &'static str,
    invoke: Invoker,
    seq: Option<SeqInvoker>,
    target: Option<TargetRunner>,
}

impl TaskEntry {
    /// An entry for a `#[task]` function or a `lambda!` closure, registered
    /// under `name` (the name its [`Task`](crate::Task) value carries).
    pub const fn new(name: &'static str, invoke: Invoker) -> Self {
        TaskEntry { name, invoke, seq: None, target: None }
    }

    /// The same entry with a batch invoker for whole chunks.
    pub const fn with_seq(mut self, seq: SeqInvoker) -> Self {
        self.seq = Some(seq);
        self
    }

    /// The same entry with a runner for process targets (see [`TargetRunner`]).
    pub const fn with_target(mut self, target: TargetRunner) -> Self {
        self.target = Some(target);
        self
    }

    /// Runs the task as a process's target (see [`TargetRunner`]); an entry
    /// built without a target runner runs through its invoker and never fails
    /// by its return value.
    pub(crate) fn run_target(&self, args: &[u8], fds: Vec<OwnedFd>) -> Result<Option<String>> {
        match self.target {
            Some(target) => target(args, fds),
            None => self.invoke(args, fds).map(|_| None),
        }
    }

    /// Runs a chunk of calls whose arguments are laid end to end in `args`
    /// (see [`SeqInvoker`]); `None` if this entry has no batch invoker.
    pub(crate) fn invoke_seq(
        &self,
        args: &[u8],
        count: usize,
        out: &mut Vec<u8>,
        describe_panic: fn() -> (String, String),
    ) -> Option<Result<SeqReply>> {
        self.seq.map(|seq| seq(args, count, out, describe_panic))
    }

    /// Runs the task on encoded arguments.
    pub(crate) fn invoke(&self, args: &[u8], fds: Vec<OwnedFd>) -> Result<Payload> {
        let mut bytes = Vec::new();
        let fds = (self.invoke)(args, fds, &mut bytes)?;
        Ok(Payload { bytes, fds })
    }

    /// Runs the task on encoded arguments, appending the encoded result to `out`
    /// (no buffer of its own: the pool's hot path). On error `out` may hold a
    /// partial result; the caller truncates it.
    pub(crate) fn invoke_into(&self, args: &[u8], fds: Vec<OwnedFd>, out: &mut Vec<u8>) -> Result<Vec<OwnedFd>> {
        (self.invoke)(args, fds, out)
    }
}

inventory::collect!(TaskEntry);

/// How many lookups scan the entries before the registry builds its map: a
/// child looks up one or two names, and a map of a large program's every task
/// (2,000 of them: ~0.3 ms) would be most of its start-up.
const SCANS_BEFORE_MAP: usize = 16;

struct Registry {
    /// Every entry by name, once [`SCANS_BEFORE_MAP`] lookups have scanned.
    by_name: OnceLock<HashMap<&'static str, &'static TaskEntry>>,
    scans: AtomicUsize,
    fingerprint: u64,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        // This build: the executable's identity and how many entries it has
        // (no pass over the names: O(1) work per entry at start-up).
        let mut h = DefaultHasher::new();
        inventory::iter::<TaskEntry>.into_iter().count().hash(&mut h);
        if let Ok(m) = std::fs::metadata("/proc/self/exe") {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()).hash(&mut h);
        }
        Registry { by_name: OnceLock::new(), scans: AtomicUsize::new(0), fingerprint: h.finish() }
    })
}

/// The map of every entry; a name registered twice keeps its first entry, as a scan finds it.
fn build_map() -> HashMap<&'static str, &'static TaskEntry> {
    let mut by_name = HashMap::new();
    for e in inventory::iter::<TaskEntry> {
        by_name.entry(e.name).or_insert(e);
    }
    by_name
}

/// The entry registered under `name`.
pub(crate) fn lookup(name: &str) -> Result<&'static TaskEntry> {
    let r = registry();
    let found = match r.by_name.get() {
        Some(map) => map.get(name).copied(),
        None if r.scans.fetch_add(1, Ordering::Relaxed) < SCANS_BEFORE_MAP => {
            inventory::iter::<TaskEntry>.into_iter().find(|e| e.name == name)
        }
        None => r.by_name.get_or_init(build_map).get(name).copied(),
    };
    found.ok_or_else(|| Error::UnknownTask { name: name.to_string() })
}

/// Identifies this build: the registered names and the executable's identity.
/// A child whose fingerprint differs from its parent's is a different program.
pub(crate) fn fingerprint() -> u64 {
    registry().fingerprint
}

/// Not public API: what a generated [`TargetRunner`] inspects, by autoref
/// dispatch on the concrete return type: `(&Returned(&out)).failure()` picks
/// [`ReturnedErr`] for a `Result` whose error is `Debug`, and [`ReturnedValue`]
/// (never a failure) for everything else.
#[doc(hidden)]
pub struct Returned<'a, T>(pub &'a T);

/// Not public API: see [`Returned`].
#[doc(hidden)]
pub trait ReturnedErr {
    /// The error, if the task returned one.
    fn failure(&self) -> Option<String>;
}

impl<T, E: std::fmt::Debug> ReturnedErr for Returned<'_, std::result::Result<T, E>> {
    fn failure(&self) -> Option<String> {
        self.0.as_ref().err().map(|e| format!("{e:?}"))
    }
}

/// Not public API: see [`Returned`].
#[doc(hidden)]
pub trait ReturnedValue {
    /// Never a failure: the task returned a plain value.
    fn failure(&self) -> Option<String> {
        None
    }
}

impl<T> ReturnedValue for &Returned<'_, T> {}

/// The outcome of one call in a chunk run by a [`SeqInvoker`]: the result, or
/// the panic's message and location.
pub(crate) type SeqOutcome<R> = std::result::Result<R, (String, String)>;
