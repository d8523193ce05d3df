//! `SharedMemoryManager`: segments made through it are unlinked together.

use std::fmt;
use std::sync::Mutex;

use bytemuck::Pod;

use super::shared_memory::{ShareableList, SharedMemory};
use crate::error::{Error, Result};
use crate::sys;

/// Where a manager is in its life (Python's `State.INITIAL`, `STARTED`, `SHUTDOWN`).
enum State {
    Initial,
    /// The names of the segments made so far.
    Started(Vec<String>),
    Shutdown,
}

/// Makes [`SharedMemory`] segments and [`ShareableList`]s and unlinks every
/// one of them at [`shutdown`](SharedMemoryManager::shutdown), or when the
/// manager is dropped (Python's `multiprocessing.managers.SharedMemoryManager`,
/// whose `with` block is the manager's scope here).
///
/// Python runs a server process to remember the segments; here the manager
/// remembers them itself, and the creating process's resource tracker unlinks
/// them if the process dies before the manager is shut down (SIGKILL
/// included). Hand the segments, not the manager, to other processes: they
/// attach by name as any `SharedMemory` argument does.
///
/// ```
/// #[multiproc::task]
/// fn fill(list: multiproc::ShareableList<u64>, from: usize, to: usize) -> multiproc::Result<()> {
///     for i in from..to {
///         list.set(i, list.get(i).unwrap_or(0) * 2)?;
///     }
///     Ok(())
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let smm = multiproc::SharedMemoryManager::started();
///     let list = smm.shareable_list(&(0..2000u64).collect::<Vec<_>>())?;
///     let mut halves = Vec::new();
///     for (from, to) in [(0, 1000), (1000, 2000)] {
///         let mut p = multiproc::Process::new(fill, (list.clone(), from, to))?;
///         p.start()?;
///         halves.push(p);
///     }
///     for p in &mut halves {
///         p.join()?;
///     }
///     assert_eq!(list.to_vec().iter().sum::<u64>(), 2 * (0..2000).sum::<u64>());
///     let name = list.shm().name().to_string();
///     smm.shutdown()?; // unlinks the list's segment
///     assert!(multiproc::SharedMemory::attach(&name).is_err());
///     Ok(())
/// }
/// ```
pub struct SharedMemoryManager {
    state: Mutex<State>,
    /// The process that made the manager: only it unlinks on drop (not a forked copy).
    owner: u32,
}

impl SharedMemoryManager {
    /// A manager not started yet (Python's `SharedMemoryManager()`): it makes
    /// segments only after [`start`](SharedMemoryManager::start).
    ///
    /// ```
    /// let smm = multiproc::SharedMemoryManager::new();
    /// assert!(matches!(smm.shared_memory(8), Err(multiproc::Error::InvalidState(_))));
    /// smm.start()?;
    /// let shm = smm.shared_memory(8)?;
    /// assert_eq!(shm.size(), 8);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn new() -> SharedMemoryManager {
        SharedMemoryManager { state: Mutex::new(State::Initial), owner: sys::futex::current_pid() }
    }

    /// A started manager (Python's `with SharedMemoryManager() as smm:`).
    ///
    /// ```
    /// let smm = multiproc::SharedMemoryManager::started();
    /// let shm = smm.shared_memory(16)?;
    /// drop(smm); // the end of the `with` block: every segment is unlinked
    /// assert!(multiproc::SharedMemory::attach(shm.name()).is_err());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn started() -> SharedMemoryManager {
        SharedMemoryManager { state: Mutex::new(State::Started(Vec::new())), owner: sys::futex::current_pid() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the manager (Python's `start()`).
    ///
    /// ```
    /// let smm = multiproc::SharedMemoryManager::new();
    /// smm.start()?;
    /// assert!(matches!(smm.start(), Err(multiproc::Error::InvalidState(_)))); // once only
    /// smm.shutdown()?;
    /// assert!(smm.start().is_err()); // and not again after shutdown
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidState`] if it was started before (Python's `ProcessError`).
    pub fn start(&self) -> Result<()> {
        let mut state = self.state();
        match *state {
            State::Initial => {
                *state = State::Started(Vec::new());
                Ok(())
            }
            State::Started(_) => Err(Error::InvalidState("the SharedMemoryManager was already started".into())),
            State::Shutdown => Err(Error::InvalidState(
                "the SharedMemoryManager was shut down; make a new one with SharedMemoryManager::started()".into(),
            )),
        }
    }

    /// Runs `make` and remembers the segment it made, if the manager is started.
    fn track<R>(&self, make: impl FnOnce() -> Result<R>, name: impl Fn(&R) -> &str) -> Result<R> {
        let mut state = self.state();
        let State::Started(names) = &mut *state else {
            return Err(Error::InvalidState(
                "the SharedMemoryManager is not started: call start() first (or use SharedMemoryManager::started())"
                    .into(),
            ));
        };
        let made = make()?;
        names.push(name(&made).to_string());
        Ok(made)
    }

    /// A new segment of `size` bytes that the manager unlinks at shutdown
    /// (Python's `smm.SharedMemory(size)`).
    ///
    /// ```
    /// let smm = multiproc::SharedMemoryManager::started();
    /// let shm = smm.shared_memory(128)?;
    /// shm.write_at(0, b"managed")?;
    /// assert_eq!(smm.segment_names(), [shm.name()]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidState`] before [`start`](SharedMemoryManager::start) or
    /// after shutdown (Python's `ValueError`); otherwise as [`SharedMemory::create`].
    pub fn shared_memory(&self, size: usize) -> Result<SharedMemory> {
        self.track(|| SharedMemory::create(size), |shm| shm.name())
    }

    /// A new [`ShareableList`] holding a copy of `items`, unlinked at shutdown
    /// (Python's `smm.ShareableList(sequence)`).
    ///
    /// ```
    /// let smm = multiproc::SharedMemoryManager::started();
    /// let list = smm.shareable_list(&[1i32, 2, 3])?;
    /// assert_eq!(list.to_vec(), [1, 2, 3]);
    /// assert_eq!(smm.segment_names(), [list.shm().name()]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`shared_memory`](SharedMemoryManager::shared_memory) and [`ShareableList::new`].
    pub fn shareable_list<T: Pod>(&self, items: &[T]) -> Result<ShareableList<T>> {
        self.track(|| ShareableList::new(items), |list| list.shm().name())
    }

    /// The names of the segments made so far and not yet unlinked by the
    /// manager (what Python's server lists as its tracked segments).
    ///
    /// ```
    /// let smm = multiproc::SharedMemoryManager::started();
    /// assert!(smm.segment_names().is_empty());
    /// let a = smm.shared_memory(8)?;
    /// let b = smm.shared_memory(8)?;
    /// assert_eq!(smm.segment_names(), [a.name(), b.name()]);
    /// smm.shutdown()?;
    /// assert!(smm.segment_names().is_empty());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn segment_names(&self) -> Vec<String> {
        match &*self.state() {
            State::Started(names) => names.clone(),
            State::Initial | State::Shutdown => Vec::new(),
        }
    }

    /// Unlinks every segment the manager made (Python's `shutdown()`); those
    /// already unlinked by their users are skipped. Mappings stay valid until
    /// closed, as after any `unlink`. Later calls do nothing; the manager makes
    /// no more segments.
    ///
    /// ```
    /// let smm = multiproc::SharedMemoryManager::started();
    /// let kept = smm.shared_memory(8)?;
    /// let early = smm.shared_memory(8)?;
    /// early.unlink()?; // the user may unlink one first
    /// smm.shutdown()?;
    /// assert!(multiproc::SharedMemory::attach(kept.name()).is_err());
    /// kept.write_at(0, b"still")?; // this mapping still works
    /// smm.shutdown()?; // twice is fine
    /// assert!(matches!(smm.shared_memory(8), Err(multiproc::Error::InvalidState(_))));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    ///
    /// # Errors
    /// The first [`Error::Io`] of an unlink that failed for another reason than
    /// the segment being gone already (the others are unlinked all the same).
    pub fn shutdown(&self) -> Result<()> {
        let names = match std::mem::replace(&mut *self.state(), State::Shutdown) {
            State::Started(names) => names,
            State::Initial | State::Shutdown => return Ok(()),
        };
        let mut first = Ok(());
        for name in names {
            match super::shared_memory::unlink_name(&name) {
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) if first.is_ok() => first = Err(e),
                _ => {}
            }
        }
        first
    }
}

impl Default for SharedMemoryManager {
    /// As [`SharedMemoryManager::new`]: not started.
    ///
    /// ```
    /// let smm = multiproc::SharedMemoryManager::default();
    /// assert!(smm.shared_memory(8).is_err());
    /// ```
    fn default() -> Self {
        SharedMemoryManager::new()
    }
}

impl Drop for SharedMemoryManager {
    fn drop(&mut self) {
        if self.owner != sys::futex::current_pid() {
            return;
        }
        if let Err(e) = self.shutdown() {
            log::warn!("SharedMemoryManager: dropping it could not unlink a segment: {e}");
        }
    }
}

impl fmt::Debug for SharedMemoryManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.state() {
            State::Initial => write!(f, "SharedMemoryManager(initial)"),
            State::Started(names) => write!(f, "SharedMemoryManager(started, segments={names:?})"),
            State::Shutdown => write!(f, "SharedMemoryManager(shut down)"),
        }
    }
}
