//! A pool's run state, typed: every backend (and the thread pool) matches on
//! it, and turns it into the public error in one place ([`Stopped`] → `Error`).

use crate::error::Error;

/// Whether a pool takes work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunState {
    Running,
    /// `close`: no new work; submitted work still runs.
    Closed,
    /// `terminate` (or drop): stopped at once.
    Terminated,
}

/// Why a pool refused work or failed a call: it was closed or terminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stopped {
    Closed,
    Terminated,
}

impl RunState {
    /// `Err` unless the pool is running.
    pub(crate) fn check(self) -> Result<(), Stopped> {
        match self {
            RunState::Running => Ok(()),
            RunState::Closed => Err(Stopped::Closed),
            RunState::Terminated => Err(Stopped::Terminated),
        }
    }
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stopped::Closed => "the pool is closed",
            Stopped::Terminated => "the pool was terminated",
        })
    }
}

/// The one conversion to the public error (callers match `Error::InvalidState`).
impl From<Stopped> for Error {
    fn from(s: Stopped) -> Error {
        Error::InvalidState(s.to_string())
    }
}
