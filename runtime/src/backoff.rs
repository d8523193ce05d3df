//! The one wait policy: how long a blocked thread spins, when it yields, and
//! when it parks (DESIGN.md, "Latency").
//!
//! Every blocking path of the runtime (a socket read, a futex lock, a pool
//! waiter) looks at its condition, and on a miss asks a [`Backoff`] what to do
//! next. The policy lives here alone, so it can be tuned in one place:
//!
//! 1. **Spin** — only while another CPU can be running the peer (this thread
//!    may run on more than one CPU): a few exponentially growing bursts of
//!    `spin_loop` hints, as crossbeam's `Backoff` does. A wake-up across CPUs
//!    costs ~35-40 µs here, so a reply that comes within a few µs is caught
//!    without a system call.
//! 2. **Yield** — `sched_yield` between looks. If the peer shares this CPU
//!    (pinned, or on a busy machine) the yield lets it run and answer, where a
//!    spin would burn the time slice it needs; if it does not, the yield
//!    returns at once.
//! 3. **Park** — once the budget ([`SPIN_BUDGET`]) is spent, the caller sleeps
//!    in the kernel (poll, futex) until the writer wakes it. A wait with
//!    nothing to sleep on (MPI has no fd) looks for longer ([`POLL_BUDGET`])
//!    and then [naps](Backoff::nap) for a time that grows with the wait.
//!
//! On a machine where tasks wait for a CPU (other processes busy), neither
//! spinning nor yielding pays: this thread's CPU is shared with a task that
//! is not the peer, a spin takes time from it, and a `sched_yield` hands
//! that task a whole time slice (milliseconds) before this thread looks
//! again. So a waiter then parks at once, as a blocking read does, and the
//! kernel's wake-up (which preempts the busy task) brings it back within
//! tens of µs.
//!
//! "Tasks wait for a CPU" needs two readings, taken at most every
//! [`LOAD_EVERY`]:
//! - the share of recent time in which some runnable task did not run
//!   (Linux's CPU pressure, `/proc/pressure/cpu`, `some`), smoothed over two
//!   readings, is above [`STALL_SHARE`];
//! - and more tasks are runnable right now than the machine has CPUs
//!   (`/proc/loadavg`; the only reading where the kernel keeps no pressure).
//!
//! The count alone cannot tell a busy loop from the waiters of a round trip
//! themselves: two spinning ends and a pool's thread woken for a moment make
//! three on two CPUs, and 30-60% of its readings during an idle `apply` loop
//! said "oversubscribed", so the waits parked and the round trip took about
//! twice as long. Pressure stays near 0 there (median 0.00, 90th percentile
//! 0.21 of 10 ms windows) and reads 0.29-0.85 beside one or two busy loops,
//! even when every waiter parks. Pressure alone cannot tell a busy loop from
//! a peer pinned to the same CPU (they stall each other all the time, and
//! yielding between them is right); the count can, as it stays at two.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The longest a waiter spins and yields before it parks. About one cross-CPU
/// wake-up (BASELINES.md): waiting longer than a wake-up costs saves nothing.
pub(crate) const SPIN_BUDGET: Duration = Duration::from_micros(50);

/// Spin bursts double up to `2^SPIN_STEPS` hints; later looks yield.
const SPIN_STEPS: u32 = 6;

/// The budget of a wait that has no waker to park on (an MPI rank polling for
/// messages): a prompt answer within it costs no nap. Longer than
/// [`SPIN_BUDGET`], since the nap after it cannot be cut short by the writer.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
pub(crate) const POLL_BUDGET: Duration = Duration::from_millis(2);

/// The longest [nap](Backoff::nap): the extra latency of the first message
/// after a long idle period.
pub(crate) const MAX_NAP: Duration = Duration::from_millis(1);

/// How often the machine's count of runnable tasks is read again.
const LOAD_EVERY: Duration = Duration::from_millis(10);

/// The share of time, smoothed over two readings, in which some task waits
/// for a CPU above which the machine counts as oversubscribed.
const STALL_SHARE: f64 = 0.25;

/// Whether tasks wait for a CPU on this machine (read at most every
/// [`LOAD_EVERY`], by whichever waiter finds the reading stale).
fn oversubscribed() -> bool {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    static READ_AT: AtomicU64 = AtomicU64::new(0);
    static OVER: AtomicBool = AtomicBool::new(false);
    let now = EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1;
    let last = READ_AT.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= LOAD_EVERY.as_nanos() as u64
        && READ_AT.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        let over = match crate::sys::process::cpu_stall_us() {
            // Both: pinned to one CPU, the two ends of a round trip stall
            // each other all the time, and yielding between them is right.
            Some(total) => stalled(total, now - last) && runnable_beyond_cpus(),
            None => runnable_beyond_cpus(),
        };
        OVER.store(over, Ordering::Relaxed);
    }
    OVER.load(Ordering::Relaxed)
}

/// The CPU stall count at the last reading, and the smoothed share of
/// stalled time up to it.
#[derive(Debug)]
struct Pressure {
    total: u64,
    share: f64,
}

impl Pressure {
    /// Whether, with `total` µs of CPU stall so far and `window` ns since the
    /// last reading, the smoothed share of stalled time is above [`STALL_SHARE`].
    fn stalled(&mut self, total: u64, window: u64) -> bool {
        let before = std::mem::replace(&mut self.total, total);
        // The first reading has no window to compare with.
        let share = if before == 0 { 0.0 } else { total.saturating_sub(before) as f64 * 1e3 / window.max(1) as f64 };
        self.share = (self.share + share) / 2.0;
        self.share > STALL_SHARE
    }
}

/// [`Pressure::stalled`] on the process's one reading (taken by one waiter at a time).
fn stalled(total: u64, window: u64) -> bool {
    static LAST: Mutex<Pressure> = Mutex::new(Pressure { total: 0, share: 0.0 });
    LAST.lock().unwrap_or_else(|p| p.into_inner()).stalled(total, window)
}

/// Whether the machine has more runnable tasks than CPUs right now.
fn runnable_beyond_cpus() -> bool {
    static CPUS: OnceLock<usize> = OnceLock::new();
    let cpus = *CPUS.get_or_init(|| crate::sys::process::online_cpus().unwrap_or(1));
    crate::sys::process::runnable_tasks().is_some_and(|n| n > cpus)
}

/// Whether this thread may run on more than one CPU (so a spinning waiter
/// does not keep its peer from running). Read once: `taskset` and cgroups
/// fix it at start.
fn spinning_pays() -> bool {
    static MANY: OnceLock<bool> = OnceLock::new();
    *MANY.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

/// The state of one wait: call [`snooze`](Backoff::snooze) after each look
/// that found nothing; when it returns `false`, park (poll, futex wait) and
/// [`reset`](Backoff::reset) after waking.
#[derive(Debug)]
pub(crate) struct Backoff {
    step: u32,
    /// Spin bursts before looks only yield (`SPIN_STEPS`, or 0).
    spins: u32,
    started: Option<Instant>,
    budget: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Backoff {
    /// A wait that has not looked yet.
    pub(crate) const fn new() -> Self {
        Self::with_budget(SPIN_BUDGET)
    }

    /// A wait that spins and yields for `budget` before it parks (e.g.
    /// [`POLL_BUDGET`] for a wait that can only [`nap`](Self::nap)).
    pub(crate) const fn with_budget(budget: Duration) -> Self {
        Backoff { step: 0, spins: SPIN_STEPS, started: None, budget }
    }

    /// A wait whose every look is a system call (a non-blocking `recv`): it
    /// yields between looks and never spins. The call already takes longer
    /// than a spin burst, and measured on the 2-core VMs, bursts of `pause`
    /// between `recv`s made a manager round trip ~3× slower (the peer parked).
    pub(crate) const fn yielding() -> Self {
        Backoff { step: 0, spins: 0, started: None, budget: SPIN_BUDGET }
    }

    /// Starts the budget afresh (after progress, or after a park).
    pub(crate) fn reset(&mut self) {
        self.step = 0;
        self.started = None;
    }

    /// Waits a little before the next look: spins while that pays, yields
    /// otherwise. Returns `false` once the budget is spent: park instead.
    pub(crate) fn snooze(&mut self) -> bool {
        let started = *self.started.get_or_insert_with(Instant::now);
        if started.elapsed() >= self.budget || oversubscribed() {
            return false;
        }
        if self.step < self.spins && spinning_pays() {
            for _ in 0..1u32 << self.step {
                std::hint::spin_loop();
            }
            self.step += 1;
        } else {
            std::thread::yield_now();
        }
        true
    }

    /// Like [`snooze`](Self::snooze), but also `false` once `deadline` has passed.
    pub(crate) fn snooze_until(&mut self, deadline: Option<Instant>) -> bool {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return false;
        }
        self.snooze()
    }

    /// The park of a wait that has no waker (nothing to `poll` or futex-wait
    /// on): sleeps for 1/32 of the time waited so far, at most [`MAX_NAP`],
    /// so an idle poller costs its CPU little and a busy one stays prompt
    /// (as Open MPI's `mpi_yield_when_idle` and Intel MPI's `I_MPI_WAIT_MODE`).
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    pub(crate) fn nap(&mut self) {
        let waited = self.started.get_or_insert_with(Instant::now).elapsed();
        std::thread::park_timeout((waited / 32).clamp(Duration::from_micros(1), MAX_NAP));
    }
}

/// The instant `timeout` from now; a year from now if `Instant` cannot hold
/// it (a timeout of `Duration::MAX` is a long wait, not a panic).
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout).unwrap_or_else(|| now + Duration::from_secs(365 * 86_400))
}

/// A deadline `timeout` from now (`None`: none).
pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(deadline_after)
}

/// Looks at `ready` until it gives a value, following the policy; `None` when
/// the budget is spent (or `deadline` passed) and the caller should park.
pub(crate) fn spin_until<T>(deadline: Option<Instant>, mut ready: impl FnMut() -> Option<T>) -> Option<T> {
    let mut backoff = Backoff::new();
    loop {
        if let Some(v) = ready() {
            return Some(v);
        }
        if !backoff.snooze_until(deadline) {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_ends_a_wait_that_finds_nothing() {
        let t = Instant::now();
        assert_eq!(spin_until::<()>(None, || None), None);
        assert!(t.elapsed() >= SPIN_BUDGET);
    }

    #[test]
    fn a_ready_condition_returns_its_value_at_once() {
        let mut looks = 0;
        let got = spin_until(None, || {
            looks += 1;
            Some(looks)
        });
        assert_eq!(got, Some(1), "a ready condition is looked at once");
    }

    #[test]
    fn a_budget_bounds_the_looks_and_a_nap_is_short() {
        let mut b = Backoff::with_budget(Duration::ZERO);
        assert!(!b.snooze());
        let t = Instant::now();
        b.nap();
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_deadline_too_far_for_instant_is_still_a_deadline() {
        assert!(deadline_after(Duration::MAX) > Instant::now() + Duration::from_secs(86_400));
        assert_eq!(deadline(None), None);
    }

    #[test]
    fn a_yielding_wait_still_ends_at_its_budget() {
        let mut b = Backoff::yielding();
        let t = Instant::now();
        while b.snooze() {}
        assert!(t.elapsed() >= SPIN_BUDGET);
    }

    #[test]
    fn stalled_time_above_a_quarter_counts_as_oversubscribed() {
        // One reading sets the base; windows of 10 ms follow, smoothed over two.
        let mut p = Pressure { total: 0, share: 0.0 };
        let ms10 = 10_000_000;
        assert!(!p.stalled(1_000_000, ms10), "the first reading");
        assert!(!p.stalled(1_000_000, ms10), "no stall");
        assert!(!p.stalled(1_004_000, ms10), "40% once is smoothed to 20%");
        assert!(p.stalled(1_008_000, ms10), "40% twice: 30%");
        assert!(p.stalled(1_016_000, ms10), "80%: 55%");
        assert!(p.stalled(1_016_000, ms10), "none: 27.5%, still above");
        assert!(!p.stalled(1_016_000, ms10), "none twice: 13.75%");
    }

    #[test]
    fn a_passed_deadline_stops_the_spin() {
        let mut b = Backoff::new();
        assert!(!b.snooze_until(Some(Instant::now())));
        b.reset();
        assert!(b.snooze());
    }
}
