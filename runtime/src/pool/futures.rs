//! Many results at once, as `concurrent.futures` takes them: in completion
//! order ([`as_completed`]), or until the first, the first failure, or all
//! are done ([`wait_results`] with [`ReturnWhen`]).
//!
//! Both listen for completion through the results' own completion hooks, so
//! they work for every backend's [`AsyncResult`] (MPI results, which move
//! only while someone polls them, are polled meanwhile).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::result::AsyncResult;
use crate::error::Result;

/// How often a waiter polls results that move only while polled (MPI).
const POLL: Duration = Duration::from_millis(1);
/// Bound on each sleep otherwise, so a lost wake-up only costs time.
const PARK: Duration = Duration::from_millis(50);

/// The indices of finished results, in the order they finished.
#[derive(Default)]
struct Finished {
    order: Mutex<VecDeque<usize>>,
    cv: Condvar,
}

impl Finished {
    fn lock(&self) -> MutexGuard<'_, VecDeque<usize>> {
        self.order.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Listens to `results`: each one's index arrives once it is done.
    fn listen<R>(results: &[AsyncResult<R>]) -> Arc<Finished> {
        let me = Arc::new(Finished::default());
        for (i, r) in results.iter().enumerate() {
            let me2 = me.clone();
            r.on_done(Box::new(move || {
                me2.lock().push_back(i);
                me2.cv.notify_all();
            }));
        }
        me
    }

    /// The indices finished so far.
    fn snapshot(&self) -> VecDeque<usize> {
        self.lock().clone()
    }

    /// Waits until `until` holds for the finished indices or `deadline`
    /// passes; `poll` moves along results that move only while polled.
    fn wait(&self, poll: Option<&dyn Fn()>, deadline: Option<Instant>, until: &dyn Fn(&VecDeque<usize>) -> bool) {
        loop {
            if let Some(poll) = poll {
                poll();
            }
            // `until` may wait on a result (not with this lock held: the
            // results' hooks take it).
            if until(&self.snapshot()) {
                return;
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return;
            }
            let nap = if poll.is_some() { POLL } else { PARK };
            let nap = left.map_or(nap, |l| l.min(nap));
            let g = self.lock();
            let seen = g.len();
            let _ = self.cv.wait_timeout_while(g, nap, |o| o.len() == seen);
        }
    }
}

/// A poll of every result that moves only while polled; `None` if none does.
fn poller<'a, R>(results: impl Iterator<Item = &'a AsyncResult<R>> + Clone + 'a) -> Option<Box<dyn Fn() + 'a>>
where
    R: 'a,
{
    if !results.clone().any(AsyncResult::needs_polling) {
        return None;
    }
    Some(Box::new(move || {
        results.clone().for_each(|r| {
            r.ready();
        })
    }))
}

/// The iterator of [`as_completed`]: each result's value (or error) as soon as
/// it is done, in the order they finish. Dropping it drops the results not
/// yet yielded (those of [`Pool::submit`](crate::Pool::submit) are then cancelled).
///
/// ```
/// #[multiproc::task]
/// fn square(x: u64) -> u64 { x * x }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let pool = multiproc::Pool::new(2)?;
///     let futs = vec![pool.submit(square, (2,))?, pool.submit(square, (3,))?];
///     let mut done: multiproc::AsCompleted<u64> = multiproc::as_completed(futs);
///     assert_eq!(done.size_hint(), (2, Some(2)));
///     let first = done.next().unwrap()?;
///     assert!(first == 4 || first == 9);
///     assert_eq!(done.size_hint(), (1, Some(1)));
///     assert_eq!(done.next().unwrap()? + first, 13);
///     assert!(done.next().is_none());
///     Ok(())
/// }
/// ```
pub struct AsCompleted<R> {
    results: Vec<Option<AsyncResult<R>>>,
    finished: Arc<Finished>,
    left: usize,
    /// Some result moves only while polled (MPI): poll while waiting.
    poll: bool,
}

impl<R> std::fmt::Debug for AsCompleted<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsCompleted").field("left", &self.left).finish()
    }
}

/// Yields the results' values in the order their calls finish, whatever the
/// order given — `concurrent.futures.as_completed`.
///
/// ```
/// #[multiproc::task]
/// fn crunch(n: u64) -> u64 { (0..n).sum() }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let pool = multiproc::Pool::new(2)?;
///     let futs: Vec<_> = (0..100u64).map(|n| pool.submit(crunch, (n,))).collect::<multiproc::Result<_>>()?;
///     let mut total = 0;
///     for done in multiproc::as_completed(futs) {
///         total += done?;
///     }
///     assert_eq!(total, (0..100u64).map(|n| (0..n).sum::<u64>()).sum());
///     Ok(())
/// }
/// ```
pub fn as_completed<R, I>(results: I) -> AsCompleted<R>
where
    I: IntoIterator<Item = AsyncResult<R>>,
{
    let results: Vec<AsyncResult<R>> = results.into_iter().collect();
    let finished = Finished::listen(&results);
    let left = results.len();
    let poll = results.iter().any(AsyncResult::needs_polling);
    AsCompleted { results: results.into_iter().map(Some).collect(), finished, left, poll }
}

impl<R> Iterator for AsCompleted<R> {
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        if self.left == 0 {
            return None;
        }
        let i = loop {
            let mut g = self.finished.lock();
            if let Some(i) = g.pop_front() {
                break i;
            }
            if self.poll {
                drop(g);
                self.results.iter().flatten().for_each(|r| {
                    r.ready();
                });
                g = self.finished.lock();
                if let Some(i) = g.pop_front() {
                    break i;
                }
            }
            let nap = if self.poll { POLL } else { PARK };
            let _ = self.finished.cv.wait_timeout_while(g, nap, |o| o.is_empty());
        };
        let r = self.results.get_mut(i)?.take()?;
        self.left -= 1;
        Some(r.get())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// When [`wait_results`] returns — `concurrent.futures`' `return_when`.
///
/// ```
/// use multiproc::ReturnWhen;
///
/// #[multiproc::task]
/// fn check(x: u64) -> u64 { assert!(x != 0, "zero"); x }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     assert_eq!(ReturnWhen::default(), ReturnWhen::AllCompleted);
///     let pool = multiproc::Pool::new(2)?;
///     let futs = vec![pool.submit(check, (0,))?];
///     let w = multiproc::wait_results(&futs, None, ReturnWhen::FirstException);
///     assert_eq!(w.done, vec![0], "the failed call ends the wait");
///     assert!(!futs[0].successful()?);
///     Ok(())
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReturnWhen {
    /// As soon as one result is done (`FIRST_COMPLETED`).
    FirstCompleted,
    /// As soon as one result has failed, or all are done (`FIRST_EXCEPTION`).
    FirstException,
    /// Once all are done (`ALL_COMPLETED`).
    #[default]
    AllCompleted,
}

/// What [`wait_results`] found: the indices (into the slice given) of the
/// results that are done, and of those that are not.
///
/// ```
/// use std::time::Duration;
/// use multiproc::{ReturnWhen, Waited};
///
/// #[multiproc::task]
/// fn after(go: multiproc::Event) -> u64 { go.wait(None); 42 }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let pool = multiproc::Pool::new(1)?;
///     let go = multiproc::Event::new()?;
///     let futs = vec![pool.submit(after, (go.clone(),))?];
///     let w: Waited = multiproc::wait_results(&futs, Some(Duration::from_millis(20)), ReturnWhen::AllCompleted);
///     assert_eq!(w, Waited { done: vec![], not_done: vec![0] }, "timed out");
///     go.set();
///     let w = multiproc::wait_results(&futs, None, ReturnWhen::AllCompleted);
///     assert_eq!((w.done, w.not_done), (vec![0], vec![]));
///     Ok(())
/// }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Waited {
    /// Done (successfully or not), in the order they finished.
    pub done: Vec<usize>,
    /// Not done yet, in the slice's order.
    pub not_done: Vec<usize>,
}

/// Waits until `when` holds for `results`, or `timeout` (if any) passes —
/// `concurrent.futures.wait` (named so as not to clash with
/// [`connection::wait`](crate::connection::wait)). The results stay the
/// caller's: take the values of the `done` ones with [`AsyncResult::get`].
/// Each result listed as done is [`ready`](AsyncResult::ready) (its callbacks
/// have run) when this returns.
///
/// ```
/// use multiproc::ReturnWhen;
///
/// #[multiproc::task]
/// fn crunch(n: u64) -> u64 { (0..n).sum() }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let pool = multiproc::Pool::new(2)?;
///     let futs: Vec<_> = (0..4u64).map(|n| pool.submit(crunch, (n,))).collect::<multiproc::Result<_>>()?;
///     let first = multiproc::wait_results(&futs, None, ReturnWhen::FirstCompleted);
///     assert!(!first.done.is_empty());
///     let all = multiproc::wait_results(&futs, None, ReturnWhen::AllCompleted);
///     assert_eq!(all.done.len(), 4);
///     Ok(())
/// }
/// ```
pub fn wait_results<R>(results: &[AsyncResult<R>], timeout: Option<Duration>, when: ReturnWhen) -> Waited {
    let deadline = crate::backoff::deadline(timeout);
    let finished = Finished::listen(results);
    let n = results.len();
    let failed = |order: &VecDeque<usize>| {
        order.iter().any(|&i| {
            results[i].wait(); // done, and its callbacks have run
            results[i].successful().is_ok_and(|ok| !ok)
        })
    };
    let until = |order: &VecDeque<usize>| match when {
        ReturnWhen::FirstCompleted => !order.is_empty() || n == 0,
        ReturnWhen::FirstException => order.len() == n || failed(order),
        ReturnWhen::AllCompleted => order.len() == n,
    };
    let poll = poller(results.iter());
    finished.wait(poll.as_deref(), deadline, &until);
    let done: Vec<usize> = finished.snapshot().into_iter().collect();
    // A result's completion hooks (ours among them) run before it reads as
    // ready; let those of the done ones finish, so that `ready`, `successful`
    // and `get_timeout` agree with `done`.
    for &i in &done {
        results[i].wait();
    }
    let not_done = (0..n).filter(|i| !done.contains(i)).collect();
    Waited { done, not_done }
}
