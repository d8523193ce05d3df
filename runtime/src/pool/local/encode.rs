//! Chunk encoding: the frames that carry calls to a worker, and the feeder
//! that cuts a job's input into them.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Instant;

use super::Shared;
use super::spare::Spares;
use crate::error::{Error, Result};
use crate::pool::chunk::Feed;
use crate::pool::job::{ChunkResult, Deferred, JobShared, run_deferred};
use crate::pool::wire;
use crate::task::Task;
use serde::Serialize;

/// How much work (ns) consecutive lone calls of one job sent to one worker may
/// share a frame for: small enough that holding them together costs no balance
/// or latency worth measuring, large enough to amortise a frame per call.
const MERGE_NS: f64 = 50_000.0;
/// Most lone calls merged into one frame.
const MAX_MERGE: usize = 256;

/// One encoded chunk of calls on its way to a worker.
pub(crate) struct Chunk {
    pub(super) job: Arc<JobShared>,
    /// Index in the job of the first call to run (the frame's call `base`).
    pub(super) first: usize,
    /// Calls to run: the frame's calls `base .. base + count`.
    pub(super) count: usize,
    /// The frame's first call to run (above 0 for the rest of a chunk cut short).
    pub(super) base: usize,
    /// The tag of its latest sending (the worker's mark names it; 0 before).
    pub(super) tag: u32,
    pub(super) frame: Vec<u8>,
    pub(super) fds: Vec<OwnedFd>,
    pub(super) attempts: u32,
    /// Times it was held by a worker that died before it ran (see `lifecycle.rs`).
    pub(super) bystander: u32,
    /// Was running when its worker died: runs alone from now on, so that if
    /// it kills a worker again, nothing else is hit.
    pub(super) suspect: bool,
    /// The first chunk of a job whose first result should come early (an
    /// `imap` by the default rule): sent only to an idle worker, with nothing
    /// behind it, so the worker answers it at once instead of holding its
    /// reply to batch it with the chunks after it.
    pub(super) lead: bool,
    pub(super) sent: Option<Instant>,
    /// Lone calls merged into this one `RUN_SEQ` frame (see [`Chunk::absorb`]):
    /// where each call's arguments start in `frame`. Empty otherwise.
    pub(super) parts: Vec<u32>,
}

impl Chunk {
    /// The frame's kind byte and task name, and a cursor just past the name.
    pub(super) fn header(&self) -> Option<(u8, &[u8], wire::Cursor<'_>)> {
        let mut c = wire::Cursor::new(self.frame.get(wire::HEAD..)?);
        let kind = c.u8().ok()?;
        wire::Window::read(&mut c).ok()?;
        let name_len = c.u16().ok()? as usize;
        let name = c.bytes(name_len).ok()?;
        Some((kind, name, c))
    }

    /// The task name and argument bytes of a lone call without handles (a
    /// per-call frame of one call, as `chunksize=1` makes); `None` otherwise.
    pub(super) fn lone_call(&self) -> Option<(&[u8], &[u8])> {
        if self.count != 1
            || self.base != 0
            || !self.fds.is_empty()
            || self.suspect
            || self.lead
            || !self.parts.is_empty()
        {
            return None;
        }
        let (kind, name, mut c) = self.header()?;
        if kind != wire::RUN {
            return None;
        }
        let _count = c.u32().ok()?;
        let _item_header = c.bytes(wire::HEAD).ok()?;
        Some((name, c.rest()))
    }

    /// Appends `next` to this chunk's frame when both are lone calls of the same
    /// job (this one possibly merged already), `next` comes right after it, and
    /// the frame holds less than [`MERGE_NS`] of work as measured on this job's
    /// own replies (no merging before the first: another job's calls say
    /// nothing about these). The worker then runs them in one batch pass and
    /// answers once; `chunksize=1` keeps its meaning (calls are given to workers
    /// one by one, as they have room), without a frame per call.
    pub(super) fn absorb(&mut self, next: &Chunk) -> bool {
        if next.first != self.first + self.count || !Arc::ptr_eq(&self.job, &next.job) {
            return false;
        }
        let item_ns = self.job.item_ns();
        if item_ns <= 0.0 || self.count >= ((MERGE_NS / item_ns) as usize).clamp(1, MAX_MERGE) {
            return false;
        }
        let Some((_, args)) = next.lone_call() else { return false };
        if self.frame.len() + 2 * args.len() + 64 > u32::MAX as usize {
            return false;
        }
        if self.parts.is_empty() {
            let Some((name, own)) = self.lone_call() else { return false };
            let mut frame = Vec::with_capacity(64 + 2 * (own.len() + args.len()));
            let at = wire::begin_frame(&mut frame);
            frame.push(wire::RUN_SEQ);
            self.window().put(&mut frame);
            wire::put_u16(&mut frame, name.len() as u16);
            frame.extend_from_slice(name);
            wire::put_u32(&mut frame, 1);
            let start = frame.len() as u32;
            frame.extend_from_slice(own);
            debug_assert_eq!(at, 0);
            self.frame = frame;
            self.parts = vec![start];
        }
        // Checked above: every offset and the frame's length fit in a u32.
        self.parts.push(self.frame.len() as u32);
        self.frame.extend_from_slice(args);
        self.count += 1;
        let count_at = self.parts[0] as usize - 4;
        self.frame[count_at..count_at + 4].copy_from_slice(&(self.count as u32).to_le_bytes());
        // `next` is in the frame now, so the answer is yes whatever this says; it
        // cannot fail, since the length was checked above and there are no fds.
        let header = wire::end_frame(&mut self.frame, 0, 0);
        debug_assert!(header.is_ok(), "merged frame header: {header:?}");
        true
    }

    /// The task's name, from the frame.
    pub(super) fn task_name(&self) -> String {
        self.header().map(|(_, name, _)| String::from_utf8_lossy(name).into_owned()).unwrap_or_default()
    }

    /// The window this chunk's frame is sent with.
    pub(super) fn window(&self) -> wire::Window {
        wire::Window { tag: self.tag, skip: self.base as u32, end: (self.base + self.count) as u32, job: self.job.id() }
    }

    /// Gives the chunk its tag for a sending, in its frame too.
    pub(super) fn stamp(&mut self, tag: u32) {
        self.tag = tag;
        let w = self.window();
        w.set(&mut self.frame);
    }

    /// Calls `from .. from + n` of this chunk (relative to its first call to
    /// run) as a chunk of their own: the same frame, a narrower window. Its
    /// handles are duplicated; `None` if that fails.
    pub(super) fn sub(&self, from: usize, n: usize) -> Option<Chunk> {
        let fds = self.fds.iter().map(|f| f.try_clone().ok()).collect::<Option<Vec<_>>>()?;
        let mut c = Chunk::fresh(&self.job, self.first + from, n, self.frame.clone(), fds);
        c.base = self.base + from;
        Some(c)
    }

    /// A chunk of `count` calls from the job's call `first`, never sent.
    fn fresh(job: &Arc<JobShared>, first: usize, count: usize, frame: Vec<u8>, fds: Vec<OwnedFd>) -> Chunk {
        Chunk {
            job: job.clone(),
            first,
            count,
            base: 0,
            tag: 0,
            frame,
            fds,
            attempts: 0,
            bystander: 0,
            suspect: false,
            lead: false,
            sent: None,
            parts: Vec::new(),
        }
    }
}

/// Encodes one chunk: a `RUN` frame naming the task, then each call's arguments.
pub(crate) struct ChunkBuilder {
    frame: Vec<u8>,
    fds: Vec<OwnedFd>,
    count: usize,
    count_at: usize,
    frame_at: usize,
    first: usize,
    /// Where the kind byte is (`RUN_SEQ` until an item carries handles, then `RUN`).
    kind_at: usize,
    /// While `RUN_SEQ`: where each item's bytes start in `frame`.
    starts: Option<Vec<usize>>,
}

impl ChunkBuilder {
    pub(crate) fn new(name: &str, first: usize) -> Result<Self> {
        ChunkBuilder::new_in(Vec::with_capacity(64), name, first)
    }

    /// [`ChunkBuilder::new`], building the frame in `frame` (empty; its
    /// memory is reused).
    fn new_in(mut frame: Vec<u8>, name: &str, first: usize) -> Result<Self> {
        let name_len =
            u16::try_from(name.len()).map_err(|_| Error::InvalidArgument(format!("task name `{name}` is too long")))?;
        frame.clear();
        let frame_at = wire::begin_frame(&mut frame);
        let kind_at = frame.len();
        frame.push(wire::RUN_SEQ);
        wire::Window { tag: 0, skip: 0, end: 0, job: 0 }.put(&mut frame);
        wire::put_u16(&mut frame, name_len);
        frame.extend_from_slice(name.as_bytes());
        let count_at = frame.len();
        wire::put_u32(&mut frame, 0);
        Ok(ChunkBuilder {
            frame,
            fds: Vec::new(),
            count: 0,
            count_at,
            frame_at,
            first,
            kind_at,
            starts: Some(Vec::new()),
        })
    }

    /// A chunk in the per-call layout (`RUN`) from the start: for single calls.
    pub(crate) fn new_per_call(name: &str, first: usize) -> Result<Self> {
        let mut b = ChunkBuilder::new(name, first)?;
        b.frame[b.kind_at] = wire::RUN;
        b.starts = None;
        Ok(b)
    }

    /// A whole chunk of `count` calls encoded in one pass by `encode` (calls laid
    /// end to end), in a buffer from `spares`. `None` if the calls carry
    /// handles: the caller then pushes them one by one.
    fn batch(
        spares: &Spares,
        name: &str,
        first: usize,
        count: usize,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<Vec<OwnedFd>>,
    ) -> Result<Option<Self>> {
        let mut b = ChunkBuilder::new_in(spares.take(), name, first)?;
        match encode(&mut b.frame) {
            Ok(fds) if fds.is_empty() => {
                b.count = count;
                // Finished as it is: never rewritten to per-call frames.
                b.starts = Some(Vec::new());
                b.frame = spares.fit(b.frame);
                Ok(Some(b))
            }
            Ok(_) | Err(_) => {
                spares.keep(b.frame);
                Ok(None)
            }
        }
    }

    /// Items in the chunk so far.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Bytes in the chunk so far.
    pub(crate) fn bytes(&self) -> usize {
        self.frame.len()
    }

    /// Handles in the chunk so far.
    pub(crate) fn nfds(&self) -> usize {
        self.fds.len()
    }

    /// Appends one call, encoded by `encode` (which appends to the buffer and
    /// returns the handles it found). On error the chunk is left unchanged.
    ///
    /// Calls travel end to end (`RUN_SEQ`, one batch pass in the worker) until
    /// one carries handles; then the chunk switches to one header per call (`RUN`).
    pub(crate) fn push(&mut self, encode: impl FnOnce(&mut Vec<u8>) -> Result<Vec<OwnedFd>>) -> Result<()> {
        if self.starts.is_some() {
            let at = self.frame.len();
            return match encode(&mut self.frame) {
                Ok(fds) if fds.is_empty() => {
                    if let Some(starts) = &mut self.starts {
                        starts.push(at);
                    }
                    self.count += 1;
                    Ok(())
                }
                Ok(fds) => {
                    let item = self.frame.split_off(at);
                    self.switch_to_items()?;
                    self.push_item(&item, fds)
                }
                Err(e) => {
                    self.frame.truncate(at);
                    Err(e)
                }
            };
        }
        let at = wire::begin_item(&mut self.frame);
        match encode(&mut self.frame).and_then(|fds| {
            wire::end_item(&mut self.frame, at, fds.len())?;
            Ok(fds)
        }) {
            Ok(fds) => {
                self.fds.extend(fds);
                self.count += 1;
                Ok(())
            }
            Err(e) => {
                self.frame.truncate(at);
                Err(e)
            }
        }
    }

    /// Appends one already encoded call with a header (`RUN` layout).
    fn push_item(&mut self, item: &[u8], fds: Vec<OwnedFd>) -> Result<()> {
        let at = wire::begin_item(&mut self.frame);
        self.frame.extend_from_slice(item);
        wire::end_item(&mut self.frame, at, fds.len())?;
        self.fds.extend(fds);
        self.count += 1;
        Ok(())
    }

    /// Rewrites the calls so far from the `RUN_SEQ` layout to `RUN`'s.
    fn switch_to_items(&mut self) -> Result<()> {
        let Some(starts) = self.starts.take() else { return Ok(()) };
        let body = self.count_at + 4;
        let blob = self.frame.split_off(body);
        let count = self.count;
        self.count = 0;
        for (i, &start) in starts.iter().enumerate() {
            let end = starts.get(i + 1).map_or(blob.len(), |&next| next - body);
            self.push_item(&blob[start - body..end], Vec::new())?;
        }
        debug_assert_eq!(self.count, count);
        self.frame[self.kind_at] = wire::RUN;
        Ok(())
    }

    /// Finishes the chunk for `job`.
    pub(crate) fn finish(mut self, job: &Arc<JobShared>) -> Result<Chunk> {
        if self.count == 1 {
            // A lone call is cheaper in the per-call layout (no batch vectors).
            self.switch_to_items()?;
        }
        let count = self.count as u32;
        self.frame[self.count_at..self.count_at + 4].copy_from_slice(&count.to_le_bytes());
        wire::end_frame(&mut self.frame, self.frame_at, self.fds.len())?;
        Ok(Chunk::fresh(job, self.first, self.count, self.frame, self.fds))
    }
}

/// Chunks submitted together (one lock, few sends).
const SUBMIT_BATCH: usize = 64;
const SUBMIT_BYTES: usize = 32 << 10;
/// A chunk is closed early once it carries this many handles.
const CHUNK_FDS: usize = 32;

/// Finished chunks on their way to [`Shared::submit`], and the chunk being built.
struct Outbox<'s> {
    sh: &'s Shared,
    job: &'s Arc<JobShared>,
    pending: Vec<Chunk>,
    pending_bytes: usize,
    /// Calls taken from the input and not yet counted as submitted to the job.
    uncounted: usize,
    builder: Option<ChunkBuilder>,
    deferred: Vec<Deferred>,
    continuing: bool,
    /// The next chunk pushed is the job's lead ([`Chunk::lead`]).
    lead: bool,
}

impl Outbox<'_> {
    /// Submits what is pending.
    fn flush(&mut self) -> Result<()> {
        self.job.add_submitted(std::mem::take(&mut self.uncounted));
        self.pending_bytes = 0;
        let r = self.sh.submit(std::mem::take(&mut self.pending), self.continuing);
        self.continuing = true;
        r
    }

    /// Adds a finished chunk of `bytes` bytes; submits once enough is pending.
    fn push(&mut self, chunk: ChunkBuilder) -> Result<()> {
        self.pending_bytes += chunk.bytes();
        let mut chunk = chunk.finish(self.job)?;
        chunk.lead = std::mem::take(&mut self.lead);
        self.pending.push(chunk);
        if self.pending.len() >= SUBMIT_BATCH || self.pending_bytes >= SUBMIT_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Closes the chunk being built, if it has calls.
    fn close_builder(&mut self) -> Result<()> {
        match self.builder.take().filter(|b| b.len() > 0) {
            Some(b) => self.push(b),
            None => Ok(()),
        }
    }
}

/// Encodes calls from `items` into chunks of `feed.chunk_len()` and submits
/// them, at most `limit` calls. Returns whether `items` ran out.
pub(crate) fn submit_items<F, A>(
    sh: &Shared,
    feed: &mut Feed<F>,
    items: &mut dyn Iterator<Item = A>,
    limit: usize,
) -> Result<bool>
where
    F: Task<A>,
    A: Serialize,
{
    let mut out = Outbox {
        sh,
        job: &feed.job.clone(),
        pending: Vec::new(),
        pending_bytes: 0,
        uncounted: 0,
        builder: None,
        deferred: Vec::new(),
        continuing: feed.continuing,
        lead: feed.leads(),
    };
    if feed.next == 0 && log::log_enabled!(target: "multiproc", log::Level::Trace) {
        log::trace!(target: "multiproc", "pool: job of `{}` in chunks of up to {} calls", feed.name, feed.chunksize);
    }
    let exhausted = feed.cut(items, limit, |feed, first, batch| {
        out.uncounted += batch.len();
        encode_batch(feed, &mut out, first, batch)
    })?;
    out.close_builder()?;
    let r = out.flush();
    feed.continuing = out.continuing;
    run_deferred(std::mem::take(&mut out.deferred));
    r.map(|()| exhausted)
}

/// Encodes one chunk's calls: in one pass if the task can, else call by call
/// (calls with handles, or one that cannot be encoded and fails on its own).
fn encode_batch<F, A>(feed: &Feed<F>, out: &mut Outbox<'_>, first: usize, batch: Vec<A>) -> Result<()>
where
    F: Task<A>,
    A: Serialize,
{
    let (task, name) = (&feed.task, feed.name);
    if batch.len() > 1
        && let Some(b) =
            ChunkBuilder::batch(&out.sh.spares, name, first, batch.len(), |buf| task.encode_args_batch(&batch, buf))?
    {
        return out.push(b);
    }
    for (k, args) in batch.into_iter().enumerate() {
        let index = first + k;
        let b = match &mut out.builder {
            Some(b) => b,
            None if feed.chunksize == 1 => out.builder.insert(ChunkBuilder::new_per_call(name, index)?),
            None => out.builder.insert(ChunkBuilder::new(name, index)?),
        };
        if let Err(e) = b.push(|buf| task.encode_args_into(&args, buf)) {
            if feed.strict {
                return Err(e);
            }
            // This call fails on its own; the chunk so far goes as it is.
            out.close_builder()?;
            out.flush()?;
            out.job.deliver(ChunkResult::one_error(index, e), &mut out.deferred);
            continue;
        }
        if b.len() >= feed.chunk_len() || b.nfds() >= CHUNK_FDS {
            out.close_builder()?;
        }
    }
    Ok(())
}
