//! Synchronisation primitives shared between processes, all in shared memory
//! on futexes:
//!
//! 1. `raw.rs` — the robust lock word and the spin-then-park wait under everything;
//! 2. `lock.rs` — `Lock` (any process may release) and `RLock` (owned, recursive);
//! 3. `semaphore.rs` — `Semaphore`, `BoundedSemaphore`;
//! 4. `condition.rs` — `Condition` over a `Lock` or `RLock`;
//! 5. `event.rs` — `Event`;
//! 6. `barrier.rs` — `Barrier`.

mod barrier;
mod condition;
mod event;
mod lock;
pub(crate) mod raw;
mod semaphore;

pub use barrier::Barrier;
pub use condition::{Condition, ConditionGuard};
pub use event::Event;
pub use lock::{Lock, LockGuard, RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphoreGuard};
