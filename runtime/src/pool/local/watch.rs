//! Who reads the links: a waiter that pumps, or the background thread.
//!
//! A thread waiting for a result pumps the links itself while it spins. The
//! background thread then leaves them out of its `poll`: watching them too,
//! it would wake on every reply and take a CPU from the two ends of the round
//! trip. It watches them again when a waiter parks (at once: the waiter
//! wakes the thread), and otherwise once no waiter has pumped for
//! [`RECENT`]: after a waiter got its result another usually comes (a loop
//! of `apply_async(..).get()`), so the thread only looks again every
//! [`RECENT`] meanwhile, for work that nobody waits on (a callback's).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long after a waiter stopped pumping the background thread still
/// leaves the links to waiters (and how often it looks meanwhile).
pub(super) const RECENT: Duration = Duration::from_millis(1);

/// The state shared by waiters, submitters and the background thread.
#[derive(Debug)]
pub(super) struct Watch {
    /// Waiters pumping now.
    pumpers: AtomicUsize,
    /// Waiters parked (they need the background thread to read the links).
    parked: AtomicUsize,
    /// The background thread sleeps in a `poll` that includes the links.
    watching: AtomicBool,
    /// When a waiter last stopped pumping with its result (ns since `born`, 0: never).
    pumped_at: AtomicU64,
    born: Instant,
    /// [`RECENT`] (longer in tests, which must not depend on the clock).
    recent: Duration,
}

impl Watch {
    pub(super) fn new() -> Self {
        Watch {
            pumpers: AtomicUsize::new(0),
            parked: AtomicUsize::new(0),
            watching: AtomicBool::new(false),
            pumped_at: AtomicU64::new(0),
            born: Instant::now(),
            recent: RECENT,
        }
    }

    fn now(&self) -> u64 {
        self.born.elapsed().as_nanos() as u64 + 1
    }

    /// Whether a waiter stopped pumping less than [`RECENT`] ago.
    fn recent(&self) -> bool {
        let at = self.pumped_at.load(Ordering::SeqCst);
        at != 0 && self.now().saturating_sub(at) < self.recent.as_nanos() as u64
    }

    /// A waiter starts pumping.
    pub(super) fn begin_pumping(&self) {
        self.pumpers.fetch_add(1, Ordering::SeqCst);
    }

    /// A waiter stops pumping, with its result or (`parking`) to park; whether
    /// it must wake the background thread, which then has to read the links.
    pub(super) fn end_pumping(&self, parking: bool) -> bool {
        if parking {
            self.parked.fetch_add(1, Ordering::SeqCst);
        }
        let last = self.pumpers.fetch_sub(1, Ordering::SeqCst) == 1;
        if !parking && last {
            self.pumped_at.store(self.now(), Ordering::SeqCst);
        }
        parking && last && !self.watching.load(Ordering::SeqCst)
    }

    /// A parked waiter has its result (or gave up).
    pub(super) fn end_park(&self) {
        self.parked.fetch_sub(1, Ordering::SeqCst);
    }

    /// The background thread is about to sleep: whether it watches the links,
    /// and the longest it may sleep (`wait`, or [`RECENT`] if it leaves them
    /// out, so that work nobody waits on is read soon).
    pub(super) fn plan_sleep(&self, wait: Duration) -> (bool, Duration) {
        let watch =
            self.pumpers.load(Ordering::SeqCst) == 0 && (self.parked.load(Ordering::SeqCst) > 0 || !self.recent());
        self.watching.store(watch, Ordering::SeqCst);
        (watch, if watch { wait } else { wait.min(self.recent) })
    }

    /// The background thread woke up.
    pub(super) fn woke(&self) {
        self.watching.store(false, Ordering::SeqCst);
    }

    /// After a submit: whether the background thread must be woken to read
    /// the links (nobody pumps, it leaves them out, and no waiter is expected).
    pub(super) fn unwatched(&self) -> bool {
        self.pumpers.load(Ordering::SeqCst) == 0 && !self.watching.load(Ordering::SeqCst) && !self.recent()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(1);

    #[test]
    fn the_links_are_left_to_waiters_until_one_parks() {
        // "Recent" lasts an hour here, so the test does not race the clock.
        let hour = Duration::from_secs(3600);
        let w = Watch { recent: hour, ..Watch::new() };
        assert!(w.unwatched(), "a new pool: nobody reads the links yet");
        assert_eq!(w.plan_sleep(LONG), (true, LONG));
        assert!(!w.unwatched(), "the thread reads them");
        w.woke();
        w.begin_pumping();
        assert!(!w.plan_sleep(LONG).0, "a waiter pumps");
        assert!(!w.end_pumping(false), "a waiter with its result wakes nobody");
        assert!(!w.unwatched(), "another waiter is expected soon");
        assert!(!w.plan_sleep(LONG).0, "the thread still leaves the links to waiters");
        w.woke();
        w.begin_pumping();
        assert!(w.end_pumping(true), "a waiter that parks wakes the thread");
        assert!(w.plan_sleep(LONG).0, "which then reads the links");
        w.begin_pumping();
        assert!(!w.end_pumping(true), "a second parks: the thread already reads them");
        w.end_park();
        w.end_park();
    }

    #[test]
    fn a_thread_that_leaves_the_links_out_sleeps_at_most_recent() {
        let w = Watch::new();
        w.begin_pumping();
        assert_eq!(w.plan_sleep(LONG), (false, RECENT));
        assert_eq!(w.plan_sleep(Duration::ZERO), (false, Duration::ZERO), "a sooner deadline stays");
    }

    #[test]
    fn the_links_go_back_to_the_thread_once_no_waiter_came_lately() {
        let w = Watch { born: Instant::now().checked_sub(LONG).unwrap_or_else(Instant::now), ..Watch::new() };
        w.pumped_at.store(1, Ordering::SeqCst); // a waiter left long ago
        assert!(w.unwatched());
        assert_eq!(w.plan_sleep(LONG), (true, LONG));
    }
}
