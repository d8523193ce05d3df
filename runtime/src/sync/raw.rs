//! The mechanism under every primitive: a robust futex lock word, and a
//! bounded spin-then-park wait (the spin is the one wait policy,
//! [`crate::backoff`]).
//!
//! # The lock word
//!
//! `0` is unlocked; otherwise the low 31 bits hold the owner's id (a pid for
//! `Lock`, a tid for `RLock` and internal locks) and bit 31 says that someone
//! may be sleeping on the word. Acquiring uncontended is one CAS, releasing one
//! swap (plus a `FUTEX_WAKE` only if the waiters bit was set).
//!
//! Why not robust pthread mutexes: Python's `Lock` may be released by any
//! process, which a robust mutex forbids (`EPERM`), and their uncontended path
//! is several times slower. Why not the kernel's robust-futex list: glibc owns
//! each thread's list. So a waiter that has slept a while checks whether the
//! owner still runs (`kill(id, 0)` and `/proc/<id>/stat` for zombies); if not,
//! it takes the lock over with one CAS and reports the dead owner, as
//! `EOWNERDEAD` does. A takeover is therefore noticed within [`LIVENESS_EVERY`].

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::backoff;
use crate::sys::futex;

/// Bit 31: a waiter may be asleep on the word.
pub(crate) const WAITERS: u32 = 1 << 31;
/// The owner's id bits (with [`GUARD`]).
pub(crate) const OWNER: u32 = !WAITERS;
/// Bit 30: the owner holds the lock through a guard that hands out `&mut` to
/// the data it protects (a `Value` or `Array` guard), so `Lock::release` must
/// not release it under the guard. Ids never reach it (Linux pids and tids are
/// below 2^22).
pub(crate) const GUARD: u32 = 1 << 30;
/// The owner's pid or tid.
pub(crate) const ID: u32 = OWNER & !GUARD;

/// How often a sleeping waiter checks that the lock's owner is alive.
pub(crate) const LIVENESS_EVERY: Duration = Duration::from_millis(20);

/// The outcome of a lock attempt that did not time out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Acquired {
    /// Taken normally.
    Clean,
    /// Taken over from an owner (this id) that died holding it.
    OwnerDied(u32),
}

/// Tries once to take the lock for `me`.
#[inline]
pub(crate) fn try_lock(word: &AtomicU32, me: u32) -> bool {
    word.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed).is_ok()
}

/// Takes the lock for `me`, waiting until `deadline` (`None`: forever).
/// Returns `None` on timeout. A dead owner's lock is taken over.
#[inline]
pub(crate) fn lock(word: &AtomicU32, me: u32, deadline: Option<Instant>) -> Option<Acquired> {
    if try_lock(word, me) {
        return Some(Acquired::Clean);
    }
    lock_slow(word, me, deadline)
}

#[cold]
fn lock_slow(word: &AtomicU32, me: u32, deadline: Option<Instant>) -> Option<Acquired> {
    // Phase 1: look at the word (test, then test-and-set) as the wait policy
    // says: exponentially growing spins between looks (every look pulls the
    // cache line away from the holder, so looking less often lets a busy
    // holder run at full speed), yields once spinning stops paying.
    if spin(deadline, || word.load(Ordering::Relaxed) == 0 && try_lock(word, me)) {
        return Some(Acquired::Clean);
    }
    // Phase 2: sleep on the futex, checking the owner's liveness now and then.
    let mut next_check = Instant::now();
    loop {
        let v = word.load(Ordering::Relaxed);
        if v == 0 {
            // Someone else may still sleep: keep the waiters bit so our release wakes them.
            if word.compare_exchange(0, me | WAITERS, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                return Some(Acquired::Clean);
            }
            continue;
        }
        let now = Instant::now();
        if now >= next_check {
            next_check = now + LIVENESS_EVERY;
            let owner = v & ID;
            if !futex::alive(owner) {
                if word.compare_exchange(v, me | (v & WAITERS), Ordering::Acquire, Ordering::Relaxed).is_ok() {
                    log::warn!("lock owner {owner} died holding the lock; taken over by {me}");
                    return Some(Acquired::OwnerDied(owner));
                }
                continue;
            }
        }
        if deadline.is_some_and(|d| now >= d) {
            return None;
        }
        if v & WAITERS == 0 && word.compare_exchange(v, v | WAITERS, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            continue;
        }
        let mut nap = next_check.saturating_duration_since(now);
        if let Some(d) = deadline {
            nap = nap.min(d.saturating_duration_since(now));
        }
        futex::wait(word, v | WAITERS, Some(nap.max(Duration::from_micros(1))));
    }
}

/// Releases the lock; returns the previous word (0: it was not locked).
#[inline]
pub(crate) fn unlock(word: &AtomicU32) -> u32 {
    let prev = word.swap(0, Ordering::Release);
    if prev & WAITERS != 0 {
        futex::wake(word, 1);
    }
    prev
}

/// Waits until `ready()` is true, spinning briefly, then sleeping on `seq`
/// (a word that whoever makes `ready` true bumps before waking `sleepers`' count).
/// Returns `false` if `deadline` passed first. `check` runs between sleeps
/// (every [`LIVENESS_EVERY`]) and may end the wait early with an error value.
pub(crate) fn wait_until<E>(
    seq: &AtomicU32,
    sleepers: &AtomicU32,
    deadline: Option<Instant>,
    ready: impl FnMut() -> bool,
    check: impl FnMut() -> Result<(), E>,
) -> Result<bool, E> {
    wait_until_as(Park::Count, seq, sleepers, deadline, ready, check)
}

/// How sleepers announce themselves on their `sleepers` word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Park {
    /// A count of sleepers (woken with [`notify`]).
    Count,
    /// A flag any sleeper sets; the waker clears it and wakes everyone
    /// ([`notify_flag`]), so a stream of state changes costs one wake-up per
    /// sleep, not one per change (queues).
    Flag,
}

/// [`wait_until`] with a choice of [`Park`] protocol.
pub(crate) fn wait_until_as<E>(
    park: Park,
    seq: &AtomicU32,
    sleepers: &AtomicU32,
    deadline: Option<Instant>,
    mut ready: impl FnMut() -> bool,
    mut check: impl FnMut() -> Result<(), E>,
) -> Result<bool, E> {
    if spin(deadline, &mut ready) {
        return Ok(true);
    }
    let leave = || {
        if park == Park::Count {
            sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    };
    loop {
        let s = seq.load(Ordering::SeqCst);
        match park {
            Park::Count => sleepers.fetch_add(1, Ordering::SeqCst),
            Park::Flag => sleepers.swap(1, Ordering::SeqCst),
        };
        if ready() {
            leave();
            return Ok(true);
        }
        let now = Instant::now();
        let mut nap = LIVENESS_EVERY;
        if let Some(d) = deadline {
            if now >= d {
                leave();
                return Ok(false);
            }
            nap = nap.min(d - now);
        }
        futex::wait(seq, s, Some(nap));
        leave();
        if ready() {
            return Ok(true);
        }
        check()?;
    }
}

/// Looks at `ready` until it holds, spinning and yielding between looks as
/// the one wait policy says; `false` once its budget (or `deadline`) is spent
/// and the caller should sleep.
#[inline]
pub(crate) fn spin(deadline: Option<Instant>, mut ready: impl FnMut() -> bool) -> bool {
    backoff::spin_until(deadline, || ready().then_some(())).is_some()
}

/// Bumps `seq` and wakes its sleepers, if any (the other half of [`wait_until`]).
#[inline]
pub(crate) fn notify(seq: &AtomicU32, sleepers: &AtomicU32, n: u32) {
    seq.fetch_add(1, Ordering::SeqCst);
    if sleepers.load(Ordering::SeqCst) != 0 {
        futex::wake(seq, n);
    }
}

/// Wakes every sleeper of a [`Park::Flag`] wait if one announced itself (the
/// state change before it must be SeqCst).
#[inline]
pub(crate) fn notify_flag(seq: &AtomicU32, sleepers: &AtomicU32) {
    if sleepers.load(Ordering::SeqCst) != 0 && sleepers.swap(0, Ordering::SeqCst) != 0 {
        seq.fetch_add(1, Ordering::SeqCst);
        futex::wake(seq, u32::MAX);
    }
}

/// A deadline `timeout` from now (`None`: none).
pub(crate) use crate::backoff::deadline;
