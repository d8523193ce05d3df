//! Results computed by threads of this process (`dummy::Pool`): values, not
//! encoded. They are one source of the pool's shared result types
//! (`AsyncResult`, the `imap` iterators, `result.rs`).

use std::collections::BTreeMap;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::unwind;

/// Runs once the slot is complete, with its value.
pub(crate) type Hook<R> = Box<dyn FnOnce(&Result<R>) + Send>;

/// A result being computed by a thread of `dummy::Pool`.
pub(crate) struct Slot<R> {
    state: Mutex<SlotState<R>>,
    cv: Condvar,
}

struct SlotState<R> {
    value: Option<Result<R>>,
    done: bool,
    taken: bool,
    hooks: Vec<Hook<R>>,
    wakers: Vec<Waker>,
}

impl<R> Slot<R> {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Slot {
            state: Mutex::new(SlotState {
                value: None,
                done: false,
                taken: false,
                hooks: Vec::new(),
                wakers: Vec::new(),
            }),
            cv: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, SlotState<R>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the value (once), runs the hooks, wakes the waiters.
    pub(crate) fn complete(&self, value: Result<R>) {
        let (hooks, wakers) = {
            let mut g = self.lock();
            if g.done {
                return;
            }
            g.done = true;
            g.value = Some(value);
            (std::mem::take(&mut g.hooks), std::mem::take(&mut g.wakers))
        };
        if !hooks.is_empty() {
            let g = self.lock();
            if let Some(v) = g.value.as_ref() {
                for h in hooks {
                    // A callback that panics must not take the pool's thread down.
                    let _ = unwind::catch(|| h(v));
                }
            }
        }
        self.cv.notify_all();
        wakers.into_iter().for_each(Waker::wake);
    }
}

impl<R> Slot<R> {
    /// Whether the call has finished.
    pub(crate) fn ready(&self) -> bool {
        self.lock().done
    }

    /// Waits until the call has finished.
    pub(crate) fn wait(&self) {
        let mut g = self.lock();
        while !g.done {
            g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Waits at most `timeout`; returns whether the call has finished.
    pub(crate) fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = crate::backoff::deadline_after(timeout);
        let mut g = self.lock();
        while !g.done {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            g = self.cv.wait_timeout(g, left).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0);
        }
        true
    }

    pub(crate) fn take(&self) -> Result<R> {
        let mut g = self.lock();
        if g.taken {
            return Err(Error::InvalidState("this result was already taken".into()));
        }
        g.taken = true;
        g.value.take().unwrap_or_else(|| Err(Error::InvalidState("the result is not ready".into())))
    }

    /// Whether the call finished without error.
    ///
    /// # Errors
    /// [`Error::InvalidState`] if it has not finished yet.
    pub(crate) fn successful(&self) -> Result<bool> {
        let g = self.lock();
        if !g.done {
            return Err(Error::InvalidState("the result is not ready".into()));
        }
        Ok(g.value.as_ref().is_none_or(|v| v.is_ok()))
    }

    pub(crate) fn on_done(&self, hook: Hook<R>) {
        let mut g = self.lock();
        if g.done {
            if let Some(v) = g.value.as_ref() {
                hook(v);
            }
        } else {
            g.hooks.push(hook);
        }
    }

    /// Registers a waker for completion.
    pub(crate) fn add_waker(&self, w: &Waker) {
        let mut g = self.lock();
        if !g.done && !g.wakers.iter().any(|o| o.will_wake(w)) {
            g.wakers.push(w.clone());
        }
    }
}

/// The `imap` machinery of `dummy::Pool`: results (not encoded) in input or completion order.
pub(crate) struct ThreadStream<'a, R> {
    pub(crate) rx: Receiver<(usize, Result<R>)>,
    pub(crate) submit: Option<Box<dyn FnMut(usize) -> Result<bool> + 'a>>,
    pub(crate) ordered: bool,
    pub(crate) pending: BTreeMap<usize, Result<R>>,
    pub(crate) next: usize,
    pub(crate) submitted: Arc<Mutex<usize>>,
    pub(crate) received: usize,
    pub(crate) window: usize,
    /// The number of inputs, if the input's size was known exactly.
    pub(crate) len: Option<usize>,
}

impl<R> ThreadStream<'_, R> {
    /// How many inputs have been handed to the threads so far.
    fn submitted(&self) -> usize {
        *self.submitted.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<R> ThreadStream<'_, R> {
    /// The next result, waiting for it (`None` once every input has its result).
    /// The next result; with a `deadline` (and the timeout it came from), an
    /// [`Error::Timeout`] once it passes with nothing ready.
    pub(crate) fn next_item(&mut self, deadline: Option<(Instant, Duration)>) -> Option<Result<R>> {
        loop {
            if self.ordered {
                if let Some(r) = self.pending.remove(&self.next) {
                    self.next += 1;
                    return Some(r);
                }
            } else if let Some((&k, _)) = self.pending.iter().next() {
                self.next += 1;
                return self.pending.remove(&k);
            }
            let submitted = self.submitted();
            if let Some(submit) = &mut self.submit {
                let outstanding = submitted - self.next;
                if outstanding < self.window {
                    match submit(self.window - outstanding) {
                        Ok(false) => {}
                        Ok(true) => self.submit = None,
                        Err(e) => {
                            self.submit = None;
                            return Some(Err(e));
                        }
                    }
                    continue;
                }
            }
            let submitted = self.submitted();
            if self.submit.is_none() && self.received == submitted {
                return None;
            }
            let got = match deadline {
                None => self.rx.recv().map_err(|_| None),
                Some((at, timeout)) => {
                    self.rx.recv_timeout(at.saturating_duration_since(Instant::now())).map_err(|e| match e {
                        std::sync::mpsc::RecvTimeoutError::Timeout => Some(timeout),
                        std::sync::mpsc::RecvTimeoutError::Disconnected => None,
                    })
                }
            };
            match got {
                Ok((i, r)) => {
                    self.received += 1;
                    self.pending.insert(i, r);
                }
                Err(Some(timeout)) => return Some(Err(Error::Timeout(timeout))),
                // Every sender is gone: the pool was terminated under us.
                Err(_) => {
                    self.submit = None;
                    self.received = submitted;
                    if self.pending.is_empty() {
                        return None;
                    }
                }
            }
        }
    }
}
