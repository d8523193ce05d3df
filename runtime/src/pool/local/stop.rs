//! Stopping calls: timeouts (a call that runs too long is killed with its
//! worker) and cancellation (calls not yet run never run; a running one is
//! killed on request). Both read the workers' marks (see `callmark`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Core, Kill, Shared, fail_chunk};
use crate::error::Error;
use crate::pool::job::{JobShared, run_deferred};

/// Longest gap between two looks at the marks while a call has a timeout.
const MAX_PERIOD: Duration = Duration::from_millis(100);
/// Shortest gap between two looks.
const MIN_PERIOD: Duration = Duration::from_millis(1);

impl Shared {
    /// Kills the workers whose running call is past its timeout; returns how
    /// soon to look again (`None`: no running call has a timeout).
    ///
    /// A call's start is when its mark is first seen, so a kill comes between
    /// `timeout` and `timeout` plus one period after the call really started —
    /// never early. The period is a tenth of the timeout, within
    /// [`MIN_PERIOD`] ..= [`MAX_PERIOD`].
    pub(super) fn check_timeouts(&self, c: &mut Core) -> Option<Duration> {
        let now = Instant::now();
        let mut next: Option<Duration> = None;
        let pool_timeout = self.cfg.task_timeout;
        let mut killed_any = false;
        for w in c.workers.iter_mut().filter(|w| !w.lost && !w.inflight.is_empty()) {
            let mark = w.mark.read();
            let chunk = w.inflight.iter().find(|ch| mark.running && ch.tag == mark.tag);
            let Some(limit) = chunk.and_then(|ch| ch.job.timeout().or(pool_timeout)) else {
                w.seen = None;
                continue;
            };
            let since = match w.seen {
                Some((m, at)) if m == mark => at,
                _ => {
                    w.seen = Some((mark, now));
                    now
                }
            };
            let due = since + limit;
            if now >= due {
                log::warn!(target: "multiproc", "pool: a call in worker {} ran past its timeout of {limit:?}; killing it", w.pid);
                if let Some(p) = &w.proc {
                    let _ = p.kill();
                }
                w.killed = Some(Kill::Timeout { mark, after: limit });
                w.lost = true;
                killed_any = true;
                continue;
            }
            let period = (limit / 10).clamp(MIN_PERIOD, MAX_PERIOD);
            let wait = due.saturating_duration_since(now).min(period);
            next = Some(next.map_or(wait, |n| n.min(wait)));
        }
        if killed_any {
            self.wake();
        }
        next
    }

    /// Cancels `job`: its queued calls fail with [`Error::Cancelled`] now, its
    /// calls in flight are skipped by their workers (see `callmark`), and with
    /// `running`, the workers running one of its calls are killed (and
    /// replaced). Whether the job was not already cancelled.
    pub(crate) fn cancel(&self, job: &Arc<JobShared>, running: bool) -> bool {
        let first = job.set_cancelled();
        self.cancels.cancel(job.id());
        let mut deferred = Vec::new();
        {
            let mut c = self.lock();
            let (mine, others): (Vec<_>, Vec<_>) = c.queue.drain(..).partition(|ch| Arc::ptr_eq(&ch.job, job));
            c.queue.extend(others);
            c.outstanding -= mine.len();
            for ch in mine {
                fail_chunk(ch, &mut deferred, || Error::Cancelled);
            }
            if running {
                self.kill_running(&mut c, job);
            }
            if c.outstanding == 0 {
                self.core_cv.notify_all();
            }
        }
        run_deferred(deferred);
        first
    }

    /// Kills each worker whose running call belongs to `job`.
    fn kill_running(&self, c: &mut Core, job: &Arc<JobShared>) {
        for w in c.workers.iter_mut().filter(|w| !w.lost) {
            let mark = w.mark.read();
            let mine = mark.running && w.inflight.iter().any(|ch| ch.tag == mark.tag && Arc::ptr_eq(&ch.job, job));
            if mine {
                log::info!(target: "multiproc", "pool: cancelling a running call: killing worker {}", w.pid);
                if let Some(p) = &w.proc {
                    let _ = p.kill();
                }
                w.killed = Some(Kill::Cancelled { mark });
                w.lost = true;
                self.wake();
            }
        }
    }
}
