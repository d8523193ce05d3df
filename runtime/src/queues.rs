//! `Queue`, `SimpleQueue` and `JoinableQueue`: a ring buffer in shared memory.
//!
//! # Algorithm
//!
//! One `memfd` holds a header and a byte ring. Producers serialise among
//! themselves with a robust producer lock, consumers with a robust consumer
//! lock; between the two lock holders the ring is single-producer
//! single-consumer: the producer owns `[tail, head + capacity)`, the consumer
//! `[head, tail)`. Positions grow forever (`u64`) and index the ring modulo its
//! capacity.
//!
//! A message is one or more *records* `[len u32, flags u32, pid u32, 0 u32]`
//! followed by `len` bytes, 8-aligned, never wrapping (a `PAD` record or, for
//! tails shorter than a header, an implicit skip fills the end of the ring).
//! A message that fits half the ring is one `FIRST|LAST` record; a larger one
//! is streamed in chunks while the consumer drains them, so it is copied once
//! into the ring and once out, whatever its size.
//!
//! # Crash safety
//!
//! Nothing is visible until the producer publishes `tail` (one atomic store)
//! after writing a record; the consumer frees a record by publishing `head`
//! after reading it. A process killed mid-`put` therefore leaves at most an
//! unpublished record (invisible) or the first chunks of a large message: the
//! consumer drops those when the next message starts or when it sees that the
//! producer's pid is gone. A process killed mid-`get` leaves the message in
//! the ring for the next consumer (or, mid-stream, the rest of it, which is
//! skipped). Either lock is taken over from a dead holder (see `sync::raw`),
//! so nobody blocks forever.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::error::{Error, Result};
use crate::region::{Kind, Region};
use crate::sync::raw;
use crate::sys::futex;

// Header offsets (after the region header), one cache line per writer.
const PROD_LOCK: usize = 0;
const CONS_LOCK: usize = 64;
const TAIL: usize = 128;
const PUTS: usize = 136;
/// The producer's last view of `HEAD` (read and written under the producer lock only).
const HEAD_SEEN: usize = 144;
const HEAD: usize = 192;
const GETS: usize = 200;
/// The consumer's last view of `TAIL` (under the consumer lock only).
const TAIL_SEEN: usize = 208;
const DATA_SEQ: usize = 256;
const DATA_SLEEPERS: usize = 260;
const SPACE_SEQ: usize = 320;
const SPACE_SLEEPERS: usize = 324;
const UNFINISHED: usize = 384;
const DONE_SEQ: usize = 388;
const DONE_SLEEPERS: usize = 392;
const MAXSIZE: usize = 448;
/// 0 while open, [`SHUT`] after `shutdown()`, [`SHUT_NOW`] after `shutdown(immediate)`.
const SHUTDOWN: usize = 456;
const SHUT: u32 = 1;
const SHUT_NOW: u32 = 2;
/// Where the ring starts (page-aligned in the file: the region header is 64 bytes).
const RING: usize = 4096 - crate::region::HEADER;

/// Default ring size: 1 MiB of shared memory, touched only as it is used
/// ([`Queue::new`] uses it; [`Queue::with_ring_size`] picks another).
///
/// ```
/// use multiproc::{DEFAULT_RING_BYTES, Queue};
///
/// assert_eq!(DEFAULT_RING_BYTES, 1 << 20);
/// // A larger ring holds more unread data before `put` waits for a consumer.
/// let q = Queue::<()>::with_ring_size(0, 4 * DEFAULT_RING_BYTES)?;
/// q.put_bytes(&vec![0; 2 * DEFAULT_RING_BYTES])?;
/// assert!(q.pending_bytes() > DEFAULT_RING_BYTES);
/// # Ok::<(), multiproc::Error>(())
/// ```
pub const DEFAULT_RING_BYTES: usize = 1 << 20;
const MIN_RING_BYTES: usize = 4096;
/// Largest ring: half of it, the largest one-record message, keeps its length
/// within a record's `u32`.
const MAX_RING_BYTES: usize = 1 << 32;

/// Largest chunk of a streamed message. Small chunks keep producer and
/// consumer working on cache-resident data side by side: measured 16-17 GB/s
/// for 1 MiB messages with 64 KiB chunks vs ~9.5 GB/s with ring-sized ones.
const MAX_CHUNK: usize = 64 << 10;

/// How long a streamed `put` with a timeout (or `put_nowait`) waits, at
/// least, for consumers to read on before it gives the message up.
const MIN_STALL: Duration = Duration::from_millis(50);

const REC: usize = 16;
const FIRST: u32 = 1;
const LAST: u32 = 2;
const PAD: u32 = 4;

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// One record of the ring, as the consumer reads its header.
struct Record {
    /// Where its header is in the ring.
    off: usize,
    /// Its body's length.
    len: usize,
    flags: u32,
    /// The producer that wrote it.
    pid: u32,
    /// The whole message's length (for a message's first chunk).
    total: usize,
    /// Header and body, aligned: how far `head` moves past it.
    size: u64,
}

/// A message's bytes as `get_raw` hands them over.
enum Body<'a> {
    /// In the ring (valid until the consumer advances).
    Ring(&'a [u8]),
    /// Assembled from chunks.
    Owned(Vec<u8>),
    /// Assembled from chunks, its first 8 bytes (a byte string's length) apart.
    Headed([u8; 8], Vec<u8>),
}

/// A message's bytes in two pieces written one after the other (a bulk
/// value's length and its elements, without first copying them together).
#[derive(Clone, Copy)]
struct Msg<'a>(&'a [u8], &'a [u8]);

impl<'a> Msg<'a> {
    fn len(&self) -> usize {
        self.0.len() + self.1.len()
    }

    /// The `n` bytes from `start` (within the message), in their pieces.
    fn range(&self, start: usize, n: usize) -> Msg<'a> {
        let split = self.0.len();
        let piece = |p: &'a [u8], from: usize, to: usize| &p[from.min(p.len())..to.min(p.len())];
        Msg(
            piece(self.0, start, start + n),
            piece(self.1, start.saturating_sub(split), (start + n).saturating_sub(split)),
        )
    }
}

impl Body<'_> {
    fn len(&self) -> usize {
        match self {
            Body::Ring(b) => b.len(),
            Body::Owned(v) => v.len(),
            Body::Headed(h, v) => h.len() + v.len(),
        }
    }

    fn into_vec(self) -> Vec<u8> {
        match self {
            Body::Ring(b) => b.to_vec(),
            Body::Owned(v) => v,
            Body::Headed(h, v) => [&h[..], &v].concat(),
        }
    }

    /// A streamed message's bytes (`buf`, its first 8 bytes in `head` if they
    /// were kept apart), as a get with its own buffer (`external`) or one
    /// that takes them over wants them.
    fn assembled(head: Option<[u8; 8]>, buf: &mut Vec<u8>, external: bool) -> Body<'_> {
        match (head, external) {
            (Some(h), true) => {
                buf.splice(0..0, h);
                Body::Ring(buf)
            }
            (Some(h), false) => Body::Headed(h, std::mem::take(buf)),
            (None, true) => Body::Ring(buf),
            (None, false) => Body::Owned(std::mem::take(buf)),
        }
    }
}

/// The untyped queue all three flavours share.
#[derive(Clone)]
struct RingQueue {
    region: Arc<Region>,
    closed: Arc<AtomicBool>,
    /// Whether this process put through the handle (or a clone) before: only
    /// then does `close` make `empty` fail (Python's `close` is a no-op on an
    /// unused queue, whose feeder thread never started).
    used: Arc<AtomicBool>,
    /// A streamed message this process was reading when its `get` timed out.
    resume: Arc<Mutex<Option<Resume>>>,
}

/// The part of a streamed message a timed-out `get` has read: the next `get`
/// of this process (through any clone of the handle) goes on with it. Until
/// then this process keeps the consumers' lock, so no other consumer reads
/// the message's remaining chunks without its start; dropping the last handle
/// drops the part and releases the lock.
struct Resume {
    region: Arc<Region>,
    /// The message's producer.
    pid: u32,
    bytes: Vec<u8>,
    /// The message's first 8 bytes, if kept apart from `bytes` (see `Body::Headed`).
    head: Option<[u8; 8]>,
    /// Whether dropping it releases the lock (false once a `get` took it up).
    holds_lock: bool,
}

impl Drop for Resume {
    fn drop(&mut self) {
        if !self.holds_lock {
            return;
        }
        log::warn!("queue: a message partly read by a timed-out get was dropped with the last handle");
        raw::unlock(self.region.u32(CONS_LOCK));
    }
}

impl fmt::Debug for RingQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("qsize", &self.qsize())
            .field("maxsize", &self.maxsize())
            .field("ring_bytes", &self.cap())
            .finish()
    }
}

struct Unlock<'a>(&'a AtomicU32);
impl Drop for Unlock<'_> {
    fn drop(&mut self) {
        raw::unlock(self.0);
    }
}

/// Wakes the sleepers of `seq` if any (the state change before it is SeqCst).
fn poke(seq: &AtomicU32, sleepers: &AtomicU32) {
    raw::notify_flag(seq, sleepers);
}

impl RingQueue {
    fn new(maxsize: usize, ring_bytes: usize) -> Result<RingQueue> {
        if ring_bytes > MAX_RING_BYTES {
            return Err(Error::InvalidArgument(format!(
                "a queue's ring is at most {MAX_RING_BYTES} bytes (4 GiB); {ring_bytes} were asked for"
            )));
        }
        let cap = align8(ring_bytes.max(MIN_RING_BYTES));
        let region = Region::create(Kind::Queue, RING + cap, cap as u64)?;
        region.u64(MAXSIZE).store(maxsize as u64, Ordering::Release);
        Ok(RingQueue { region, closed: Arc::default(), used: Arc::default(), resume: Arc::default() })
    }

    fn from_region(region: Arc<Region>) -> Result<RingQueue> {
        let cap = region.param();
        if cap < MIN_RING_BYTES as u64
            || cap > MAX_RING_BYTES as u64
            || cap & 7 != 0
            || region.len() as u64 != RING as u64 + cap
        {
            return Err(Error::Decode { what: "Queue", reason: "inconsistent ring size".into() });
        }
        Ok(RingQueue { region, closed: Arc::default(), used: Arc::default(), resume: Arc::default() })
    }

    fn cap(&self) -> usize {
        self.region.param() as usize
    }

    fn u64(&self, off: usize) -> &AtomicU64 {
        self.region.u64(off)
    }

    fn u32(&self, off: usize) -> &AtomicU32 {
        self.region.u32(off)
    }

    fn maxsize(&self) -> usize {
        self.u64(MAXSIZE).load(Ordering::Relaxed) as usize
    }

    fn qsize(&self) -> usize {
        let puts = self.u64(PUTS).load(Ordering::Acquire);
        let gets = self.u64(GETS).load(Ordering::Acquire);
        puts.saturating_sub(gets) as usize
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Relaxed) { Err(Error::Closed("the queue")) } else { Ok(()) }
    }

    /// 0, [`SHUT`] or [`SHUT_NOW`].
    fn shut(&self) -> u32 {
        self.u32(SHUTDOWN).load(Ordering::SeqCst)
    }

    /// Shuts the queue down for every process (Python 3.13's `Queue.shutdown`):
    /// puts fail from now on, gets once the queue is empty. `immediate` also
    /// drops what is queued, so gets fail at once, and counts the dropped items
    /// as done (Python 3.13): `join` waiters are released unless items already
    /// taken by `get` still wait for their `task_done`.
    /// Everyone waiting wakes up to see it.
    fn shutdown(&self, immediate: bool) {
        self.u32(SHUTDOWN).fetch_max(if immediate { SHUT_NOW } else { SHUT }, Ordering::SeqCst);
        poke(self.u32(DATA_SEQ), self.u32(DATA_SLEEPERS));
        poke(self.u32(SPACE_SEQ), self.u32(SPACE_SLEEPERS));
        if immediate {
            // A message this process began reading holds the lock: dropped with the rest.
            drop(self.resume.lock().unwrap_or_else(|p| p.into_inner()).take());
            // Consumers woken above give the lock up at once; a dead holder's is taken over.
            let lock = self.u32(CONS_LOCK);
            if raw::lock(lock, futex::current_pid(), None).is_some() {
                let _unlock = Unlock(lock);
                let tail = self.u64(TAIL).load(Ordering::SeqCst);
                let dropped = self.whole_messages(tail);
                self.advance(tail);
                self.u64(GETS).store(self.u64(PUTS).load(Ordering::SeqCst), Ordering::SeqCst);
                let _ = self
                    .u32(UNFINISHED)
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| Some(v.saturating_sub(dropped)));
            }
        }
        raw::notify(self.u32(DONE_SEQ), self.u32(DONE_SLEEPERS), u32::MAX);
    }

    /// How many messages end between `HEAD` and `tail` (under the consumers'
    /// lock): each was counted unfinished when its last record was published.
    fn whole_messages(&self, tail: u64) -> u32 {
        let cap = self.cap() as u64;
        let (mut at, mut n) = (self.u64(HEAD).load(Ordering::Relaxed), 0u32);
        while at < tail {
            let off = (at % cap) as usize;
            if cap as usize - off < REC {
                at += cap - off as u64;
                continue;
            }
            let (len, flags, _, _) = self.header_at(off);
            if len > cap as usize - off - REC {
                break; // not a record: a corrupted ring
            }
            if flags & PAD == 0 && flags & LAST != 0 {
                n = n.saturating_add(1);
            }
            at += (REC + align8(len)) as u64;
        }
        n
    }

    /// Waits until the producer can write `need` bytes at `pos` (contiguously),
    /// writing a pad first if the ring's end is too short. Returns the position
    /// to write at. `None` on timeout.
    fn reserve(&self, mut pos: u64, need: usize, deadline: Option<Instant>) -> Option<u64> {
        let cap = self.cap();
        loop {
            let off = (pos % cap as u64) as usize;
            let contig = cap - off;
            let wanted = if contig < need { contig } else { need };
            // Re-read the consumer's cache line only when the cached head says "full".
            let (head, seen) = (self.u64(HEAD), self.u64(HEAD_SEEN));
            let ready = || {
                let room = |h: u64| (cap as u64).saturating_sub(pos.saturating_sub(h)) as usize >= wanted;
                room(seen.load(Ordering::Relaxed))
                    || {
                        let h = head.load(Ordering::Acquire);
                        seen.store(h, Ordering::Relaxed);
                        room(h)
                    }
                    || self.shut() == SHUT_NOW
            };
            if !self.wait_for_space(deadline, ready) || self.shut() == SHUT_NOW {
                return None;
            }
            if contig >= need {
                return Some(pos);
            }
            // Fill the ring's end and publish it, then wrap.
            if contig >= REC {
                self.write_header(off, (contig - REC) as u32, PAD, 0);
            }
            pos += contig as u64;
            self.u64(TAIL).store(pos, Ordering::SeqCst);
            poke(self.u32(DATA_SEQ), self.u32(DATA_SLEEPERS));
        }
    }

    /// Waits (spin, then park on the space futex) until `ready()` or `deadline`;
    /// whether it became ready.
    fn wait_for_space(&self, deadline: Option<Instant>, ready: impl FnMut() -> bool) -> bool {
        let ok: std::result::Result<bool, ()> =
            raw::wait_until_as(raw::Park::Flag, self.u32(SPACE_SEQ), self.u32(SPACE_SLEEPERS), deadline, ready, || {
                Ok(())
            });
        ok.unwrap_or(false)
    }

    fn write_header(&self, off: usize, len: u32, flags: u32, total: usize) {
        let mut h = [0u8; REC];
        h[0..4].copy_from_slice(&len.to_le_bytes());
        h[4..8].copy_from_slice(&flags.to_le_bytes());
        h[8..12].copy_from_slice(&futex::current_pid().to_le_bytes());
        h[12..16].copy_from_slice(&(total.min(u32::MAX as usize) as u32).to_le_bytes());
        self.region.write(RING + off, &h);
    }

    /// Copies a record's body into the ring slots at `off` that this producer reserved.
    #[allow(unsafe_code)] // a memcpy into ring slots this producer owns: see SAFETY
    fn write_body(&self, off: usize, data: Msg<'_>) {
        let len = data.len();
        // SAFETY: the caller holds the producers' lock and reserved these slots
        // (between TAIL and HEAD + cap): no consumer reads them before TAIL is
        // published past them (Release, after this copy), and no other producer
        // writes while the lock is held, so this is the only view of these bytes.
        let dst = unsafe { self.region.bytes_mut(RING + off + REC, len) };
        let (a, b) = dst.split_at_mut(data.0.len());
        a.copy_from_slice(data.0);
        b.copy_from_slice(data.1);
    }

    /// Puts one message of raw bytes.
    fn put_raw(&self, data: &[u8], block: bool, timeout: Option<Duration>) -> Result<()> {
        self.put_msg(Msg(data, &[]), block, timeout)
    }

    /// Puts one message of raw bytes given in two pieces.
    fn put_msg(&self, data: Msg<'_>, block: bool, timeout: Option<Duration>) -> Result<()> {
        self.check_open()?;
        self.used.store(true, Ordering::Relaxed);
        let shut_down = || if self.shut() != 0 { Err(Error::ShutDown) } else { Ok(()) };
        shut_down()?;
        let deadline = if block { raw::deadline(timeout) } else { Some(Instant::now()) };
        let lock = self.u32(PROD_LOCK);
        match raw::lock(lock, futex::current_pid(), deadline) {
            None => {
                shut_down()?;
                return Err(Error::Full);
            }
            Some(raw::Acquired::OwnerDied(dead)) => self.reclaim(dead, true),
            Some(raw::Acquired::Clean) => {}
        }
        let unlock = Unlock(lock);
        let put = shut_down().and_then(|()| self.put_locked(data, deadline));
        if put.is_err() {
            self.reclaim(futex::current_pid(), false);
        }
        drop(unlock);
        if put.is_err() {
            // A consumer reading the first chunks of a message given up on sees
            // the producers' lock free and drops them.
            poke(self.u32(DATA_SEQ), self.u32(DATA_SLEEPERS));
        }
        put
    }

    /// [`put_raw`](Self::put_raw) under the producers' lock.
    fn put_locked(&self, data: Msg<'_>, deadline: Option<Instant>) -> Result<()> {
        let maxsize = self.maxsize();
        if maxsize > 0 {
            let ready = || self.qsize() < maxsize || self.shut() != 0;
            let room = self.wait_for_space(deadline, ready);
            if self.shut() != 0 {
                return Err(Error::ShutDown);
            }
            if !room {
                return Err(Error::Full);
            }
        }
        let cap = self.cap();
        let mut pos = self.u64(TAIL).load(Ordering::Relaxed);
        if REC + data.len() <= cap / 2 {
            let need = REC + align8(data.len());
            pos = self.reserve(pos, need, deadline).ok_or_else(|| self.full_or_shut())?;
            let off = (pos % cap as u64) as usize;
            self.write_header(off, data.len() as u32, FIRST | LAST, data.len());
            self.write_body(off, data);
            self.u32(UNFINISHED).fetch_add(1, Ordering::SeqCst);
            self.u64(TAIL).store(pos + need as u64, Ordering::SeqCst);
        } else {
            self.stream(data, pos, deadline)?;
        }
        self.u64(PUTS).fetch_add(1, Ordering::SeqCst);
        poke(self.u32(DATA_SEQ), self.u32(DATA_SLEEPERS));
        Ok(())
    }

    /// Writes a message larger than half the ring in chunks, as consumers
    /// drain them. With a deadline, the first chunk waits until it, and each
    /// later chunk as long again (at least [`MIN_STALL`]) for consumers to
    /// make room: while they read, the message goes on; once they stall, the
    /// chunks written are abandoned (consumers drop them) and the put fails.
    fn stream(&self, data: Msg<'_>, mut pos: u64, deadline: Option<Instant>) -> Result<()> {
        let cap = self.cap();
        let stall = deadline.map(|d| d.saturating_duration_since(Instant::now()).max(MIN_STALL));
        let mut wait_until = deadline;
        let mut done = 0;
        let mut flags = FIRST;
        loop {
            pos = self.reserve(pos, REC + 8, wait_until).ok_or_else(|| self.full_or_shut())?;
            wait_until = stall.map(crate::backoff::deadline_after);
            let off = (pos % cap as u64) as usize;
            let head = self.u64(HEAD).load(Ordering::Acquire);
            self.u64(HEAD_SEEN).store(head, Ordering::Relaxed);
            let free = cap - (pos - head) as usize;
            let room = (cap - off).min(free).min(u32::MAX as usize & !7).min(MAX_CHUNK) - REC;
            let n = (data.len() - done).min(room);
            if done + n == data.len() {
                flags |= LAST;
            }
            self.write_header(off, n as u32, flags, data.len());
            self.write_body(off, data.range(done, n));
            done += n;
            if flags & LAST != 0 {
                self.u32(UNFINISHED).fetch_add(1, Ordering::SeqCst);
            }
            pos += (REC + align8(n)) as u64;
            self.u64(TAIL).store(pos, Ordering::SeqCst);
            if flags & LAST != 0 {
                return Ok(());
            }
            poke(self.u32(DATA_SEQ), self.u32(DATA_SLEEPERS));
            flags = 0;
        }
    }

    /// Called under the producers' lock after producer `pid` left a message
    /// unfinished (it died, or this producer gave up on it): if the ring holds
    /// nothing but that message's chunks and no consumer is reading, frees
    /// their space at once, so later puts are not told `Full` until a consumer
    /// comes (consumers drop such chunks anyway as they reach them).
    fn reclaim(&self, pid: u32, died: bool) {
        let cons = self.u32(CONS_LOCK);
        if !raw::try_lock(cons, futex::current_pid()) {
            return;
        }
        let _unlock = Unlock(cons);
        let cap = self.cap() as u64;
        let tail = self.u64(TAIL).load(Ordering::Acquire);
        let mut at = self.u64(HEAD).load(Ordering::Relaxed);
        while at < tail {
            let off = (at % cap) as usize;
            if cap as usize - off < REC {
                at += cap - off as u64;
                continue;
            }
            let (len, flags, writer, _) = self.header_at(off);
            let size = (REC + align8(len)) as u64;
            if at + size > tail || (flags & PAD == 0 && (writer != pid || flags & LAST != 0)) {
                return; // a message to keep, or a record this check does not understand
            }
            at += size;
        }
        if at == tail && at != self.u64(HEAD).load(Ordering::Relaxed) {
            if died {
                log::warn!("queue: producer {pid} died mid-message; the part it wrote was dropped");
            } else {
                log::debug!("queue: a put gave up mid-message; the part it wrote was dropped");
            }
            self.advance(tail);
        }
    }

    /// Why a put found no room: the queue is full, or was shut down meanwhile.
    fn full_or_shut(&self) -> Error {
        if self.shut() != 0 { Error::ShutDown } else { Error::Full }
    }

    /// Gets one message and hands its bytes to `f`: straight from the ring for
    /// a one-record message, or as the `Vec` a streamed one was assembled in
    /// (with `headed`, its first 8 bytes apart: a byte string's length, so
    /// the string is made in that `Vec` without moving it down).
    fn get_raw<R>(
        &self,
        block: bool,
        timeout: Option<Duration>,
        into: Option<&mut Vec<u8>>,
        headed: bool,
        f: impl FnOnce(Body<'_>) -> R,
    ) -> Result<R> {
        self.check_open()?;
        if self.shut() == SHUT_NOW {
            return Err(Error::ShutDown);
        }
        let deadline = if block { raw::deadline(timeout) } else { Some(Instant::now()) };
        // A message being assembled from chunks: its producer's pid; its bytes go to `buf`.
        let mut partial: Option<u32> = None;
        let mut length: Option<[u8; 8]> = None;
        let mut local = Vec::new();
        let (buf, external) = match into {
            Some(b) => (b, true),
            None => (&mut local, false),
        };
        let unlock = self.begin_get(deadline, &mut partial, &mut length, buf)?;
        loop {
            let head = self.u64(HEAD).load(Ordering::Relaxed);
            match self.wait_for_data(head, partial, deadline) {
                Ok(true) => {}
                Ok(false) => {
                    partial = None;
                    continue;
                }
                Err(Error::Empty) if let Some(pid) = partial => return Err(self.keep_partial(unlock, pid, length, buf)),
                Err(e) => return Err(e),
            }
            let Some(rec) = self.record_at(head)? else { continue };
            // SAFETY: the consumers' lock is held and these bytes lie before TAIL
            // (`record_at` checked them against the tail loaded with Acquire): their
            // producer published them and no producer writes them again until HEAD
            // moves past them, which only this consumer does, after its last use of `body`.
            #[allow(unsafe_code)]
            let body = unsafe { self.region.bytes(RING + rec.off + REC, rec.len) };
            if rec.flags & FIRST != 0 && rec.flags & LAST != 0 {
                let r = if external {
                    buf.clear();
                    buf.extend_from_slice(body);
                    f(Body::Ring(buf))
                } else {
                    f(Body::Ring(body))
                };
                self.advance(head + rec.size);
                self.u64(GETS).fetch_add(1, Ordering::SeqCst);
                return Ok(r);
            }
            if rec.flags & FIRST != 0 {
                if partial.is_some() {
                    log::warn!("queue: an unfinished message (its producer died or gave up) was dropped");
                }
                buf.clear();
                length = body.first_chunk::<8>().copied().filter(|_| headed && !external);
                let skip = if length.is_some() { 8 } else { 0 };
                buf.reserve(rec.total.max(rec.len) - skip);
                buf.extend_from_slice(&body[skip..]);
                partial = Some(rec.pid);
            } else if partial.is_some() {
                buf.extend_from_slice(body);
            }
            // (A continuation without a start belongs to a message whose consumer died: skipped.)
            self.advance(head + rec.size);
            if rec.flags & LAST != 0 && partial.take().is_some() {
                self.u64(GETS).fetch_add(1, Ordering::SeqCst);
                return Ok(f(Body::assembled(length, buf, external)));
            }
        }
    }

    /// Takes the consumers' lock for a get (by `deadline`); if this process
    /// holds it for a message a timed-out get began, that message's producer
    /// goes to `partial` and its bytes so far to `buf`.
    fn begin_get(
        &self,
        deadline: Option<Instant>,
        partial: &mut Option<u32>,
        head: &mut Option<[u8; 8]>,
        buf: &mut Vec<u8>,
    ) -> Result<Unlock<'_>> {
        let lock = self.u32(CONS_LOCK);
        match self.lock_consumers(deadline) {
            None => Err(if self.shut() != 0 { Error::ShutDown } else { Error::Empty }),
            Some(None) => Ok(Unlock(lock)),
            Some(Some(mut resume)) => {
                *partial = Some(resume.pid);
                *buf = std::mem::take(&mut resume.bytes);
                *head = resume.head;
                resume.holds_lock = false; // its lock is this get's now
                Ok(Unlock(lock))
            }
        }
    }

    /// A get timed out in the middle of producer `pid`'s message: keeps the
    /// part (`buf`) and the consumers' lock for the next get; returns `Empty`.
    fn keep_partial(&self, unlock: Unlock<'_>, pid: u32, head: Option<[u8; 8]>, buf: &mut Vec<u8>) -> Error {
        let bytes = std::mem::take(buf);
        std::mem::forget(unlock);
        *self.resume.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Resume { region: self.region.clone(), pid, bytes, head, holds_lock: true });
        Error::Empty
    }

    /// Takes the consumers' lock by `deadline`: `Some(None)` when taken
    /// afresh, `Some(Some(resume))` when this process already holds it for a
    /// message a timed-out `get` began, `None` on timeout. While another
    /// thread of this process holds the lock, it looks for such a message now
    /// and then (the lock's owner id is the pid, shared by the threads).
    fn lock_consumers(&self, deadline: Option<Instant>) -> Option<Option<Resume>> {
        let lock = self.u32(CONS_LOCK);
        loop {
            if let Some(resume) = self.resume.lock().unwrap_or_else(|p| p.into_inner()).take() {
                return Some(Some(resume));
            }
            let slice = Instant::now() + raw::LIVENESS_EVERY;
            let until = deadline.map_or(slice, |d| d.min(slice));
            if raw::lock(lock, futex::current_pid(), Some(until)).is_some() {
                return Some(None);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
        }
    }

    /// Waits (spin, then park on the data futex) until a record is published
    /// after `head`, or the queue is shut down. Mid-message (`partial`: the
    /// producer's pid) it gives up on a dead producer or one that abandoned
    /// the message: `Ok(false)`, its partial message is to be dropped.
    fn wait_for_data(&self, head: u64, partial: Option<u32>, deadline: Option<Instant>) -> Result<bool> {
        let tail_w = self.u64(TAIL);
        let seen = self.u64(TAIL_SEEN);
        // Re-read the producer's cache line only when the cached tail says "empty".
        let ready = || {
            seen.load(Ordering::Relaxed) > head
                || {
                    let t = tail_w.load(Ordering::Acquire);
                    seen.store(t, Ordering::Relaxed);
                    t != head
                }
                || match self.shut() {
                    0 => false,
                    // Mid-message, a plain shutdown waits for the rest of it.
                    SHUT => partial.is_none(),
                    _ => true,
                }
                || partial.is_some_and(|pid| self.abandoned(pid, head))
        };
        let dl = deadline;
        let check = || match partial {
            Some(pid) if !futex::alive(pid) => Err(()),
            _ => Ok(()),
        };
        let waited = raw::wait_until_as(raw::Park::Flag, self.u32(DATA_SEQ), self.u32(DATA_SLEEPERS), dl, ready, check);
        // Shut down: gone at once if immediate, else once nothing is left to take.
        match self.shut() {
            SHUT_NOW => return Err(Error::ShutDown),
            SHUT if partial.is_none() && tail_w.load(Ordering::Acquire) == head => return Err(Error::ShutDown),
            _ => {}
        }
        match waited {
            Ok(true) if partial.is_some_and(|pid| self.abandoned(pid, head)) => {
                log::debug!(
                    "queue: producer {} gave up mid-message; the part it wrote was dropped",
                    partial.unwrap_or(0)
                );
                Ok(false)
            }
            Ok(true) => Ok(true),
            Ok(false) => Err(Error::Empty),
            Err(()) => {
                log::warn!("queue producer {} died mid-message; its partial message is dropped", partial.unwrap_or(0));
                Ok(false)
            }
        }
    }

    /// Whether producer `pid`, whose message this consumer is reading, gave
    /// it up: it no longer holds the producers' lock (which it holds for a
    /// whole message) and wrote nothing after `head`. (The lock is read first:
    /// its release follows the producer's last `TAIL` store.)
    fn abandoned(&self, pid: u32, head: u64) -> bool {
        self.u32(PROD_LOCK).load(Ordering::Acquire) & raw::ID != pid && self.u64(TAIL).load(Ordering::Acquire) == head
    }

    /// The record at `head` (published: [`wait_for_data`](Self::wait_for_data)
    /// said so). `Ok(None)` after stepping over the ring's end or a pad: look
    /// again. A record that does not fit the published bytes can only come
    /// from a corrupted ring: its contents are dropped.
    fn record_at(&self, head: u64) -> Result<Option<Record>> {
        let cap = self.cap() as u64;
        // (A wake-up by a shutdown leaves `TAIL_SEEN` stale.)
        let tail = self.u64(TAIL_SEEN).load(Ordering::Relaxed).max(self.u64(TAIL).load(Ordering::Acquire));
        let off = (head % cap) as usize;
        if (cap as usize) - off < REC {
            self.advance(head + cap - off as u64);
            return Ok(None);
        }
        let (len, flags, pid, total) = self.header_at(off);
        let size = (REC + align8(len)) as u64;
        if len > cap as usize - off - REC || head + size > tail {
            self.advance(tail);
            return Err(Error::Decode { what: "queue record", reason: format!("bad record length {len}") });
        }
        if flags & PAD != 0 {
            self.advance(head + size);
            return Ok(None);
        }
        Ok(Some(Record { off, len, flags, pid, total, size }))
    }

    /// The `(len, flags, pid, total)` of the record header at `off`.
    fn header_at(&self, off: usize) -> (usize, u32, u32, usize) {
        let mut h = [0u8; REC];
        self.region.read(RING + off, &mut h);
        let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        (word(0) as usize, word(4), word(8), word(12) as usize)
    }

    fn advance(&self, head: u64) {
        self.u64(HEAD).store(head, Ordering::SeqCst);
        poke(self.u32(SPACE_SEQ), self.u32(SPACE_SLEEPERS));
    }

    fn empty(&self) -> Result<bool> {
        self.check_open()?;
        Ok(self.qsize() == 0)
    }

    fn pending_bytes(&self) -> usize {
        let tail = self.u64(TAIL).load(Ordering::Acquire);
        tail.saturating_sub(self.u64(HEAD).load(Ordering::Acquire)) as usize
    }

    fn put<T: Serialize + 'static>(&self, item: &T, block: bool, timeout: Option<Duration>) -> Result<()> {
        if let Some((head, raw)) = codec::typed::bulk_parts(item) {
            return self.put_msg(Msg(&head, raw), block, timeout);
        }
        SCRATCH.with(|s| {
            let mut buf = s.try_borrow_mut().map(|mut b| std::mem::take(&mut *b)).unwrap_or_default();
            buf.clear();
            let res = codec::typed::encode_into(item, &mut buf, "queue item").and_then(|fds| {
                if fds.is_empty() {
                    self.put_raw(&buf, block, timeout)
                } else {
                    Err(Error::Encode {
                        what: "queue item",
                        reason: "a Queue carries plain data; send handles (Connection, Lock, …) as task \
                                 arguments or through a Connection"
                            .into(),
                    })
                }
            });
            if buf.capacity() <= 1 << 20
                && let Ok(mut b) = s.try_borrow_mut()
            {
                *b = buf;
            }
            res
        })
    }

    fn get<T: DeserializeOwned + 'static>(&self, block: bool, timeout: Option<Duration>) -> Result<T> {
        self.get_raw(block, timeout, None, codec::typed::owned_bytes::<T>(), |body| match body {
            Body::Owned(v) => codec::typed::decode_owned(v, "queue item"),
            Body::Headed(h, v) => codec::typed::decode_headed(h, v, "queue item"),
            Body::Ring(b) => codec::typed::decode(b, Vec::new(), "queue item"),
        })?
    }
}

macro_rules! queue_serde {
    ($ty:ident) => {
        impl<T> serde::Serialize for $ty<T> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                crate::region::serialize(&self.inner.region, Kind::Queue, s)
            }
        }
        impl<'de, T> serde::Deserialize<'de> for $ty<T> {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let region = crate::region::deserialize(d, Kind::Queue)?;
                let inner = RingQueue::from_region(region).map_err(serde::de::Error::custom)?;
                Ok($ty { inner, _marker: PhantomData })
            }
        }
        impl<T> Clone for $ty<T> {
            fn clone(&self) -> Self {
                $ty { inner: self.inner.clone(), _marker: PhantomData }
            }
        }
        impl<T> fmt::Debug for $ty<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.inner.fmt(f)
            }
        }
    };
}

/// A multi-producer, multi-consumer FIFO queue between processes (Python's
/// `multiprocessing.Queue`), typed: it carries values of `T`.
///
/// Items are encoded with the crate's codec into a ring buffer in shared
/// memory; a waiting consumer spins briefly, then sleeps on a futex, so a
/// busy queue moves millions of small items per second. Items from one
/// producer arrive in order; nothing is lost or duplicated, and a process
/// killed in the middle of a `put` or `get` neither corrupts the queue nor
/// blocks the others (a message is delivered whole or not at all).
///
/// **Differences from Python.** There is no feeder thread: `put` writes into
/// the shared ring itself, so when it returns the item is in the queue, and a
/// process never hangs at exit flushing a buffer (`join_thread` and
/// `cancel_join_thread` are therefore no-ops). The ring is bounded (1 MiB by
/// default, [`Queue::with_ring_size`]): an unbounded queue's `put` waits for
/// room when a slow consumer has let a full ring's worth of data pile up.
/// Items larger than half the ring stream through it in chunks. `qsize` works
/// on every OS. Items may not contain fd-holding handles (`Connection`,
/// `Lock`, …): pass those as task arguments.
///
/// ```
/// #[multiproc::task]
/// fn producer(q: multiproc::Queue<Option<u64>>, n: u64) {
///     for i in 0..n { q.put(Some(i)).unwrap(); }
///     q.put(None).unwrap();
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let q = multiproc::Queue::new()?;
///     let mut p = multiproc::Process::new(producer, (q.clone(), 1000))?;
///     p.start()?;
///     let mut sum = 0;
///     while let Some(i) = q.get()? { sum += i; }
///     p.join()?;
///     assert_eq!(sum, 499_500);
///     Ok(())
/// }
/// ```
pub struct Queue<T> {
    inner: RingQueue,
    _marker: PhantomData<fn(T) -> T>,
}

queue_serde!(Queue);

macro_rules! common_methods {
    ($ty:ident) => {
        /// Approximate number of items in the queue (exact when nobody is
        /// putting or getting): Python's `qsize`. Works on every OS, unlike
        /// CPython's on macOS.
        ///
        /// ```
        #[doc = concat!(" let q = multiproc::", stringify!($ty), "::new()?;")]
        /// q.put(1)?;
        /// q.put(2)?;
        /// assert_eq!(q.qsize(), 2);
        /// q.get()?;
        /// assert_eq!(q.qsize(), 1);
        /// # Ok::<(), multiproc::Error>(())
        /// ```
        pub fn qsize(&self) -> usize {
            self.inner.qsize()
        }

        /// Closes this handle (and its clones in this process), Python's `close`: later `put`
        /// and `get` calls on it fail with [`Error::Closed`], and so does `empty`
        /// (for a `Queue` or `JoinableQueue`, once this process has put through it). Other
        /// processes' handles are unaffected; items already put stay in the queue.
        /// Closing twice is fine.
        ///
        /// ```
        /// use multiproc::Error;
        ///
        #[doc = concat!(" let q = multiproc::", stringify!($ty), "::new()?;")]
        /// let clone = q.clone();
        /// q.put(1)?;
        /// q.close();
        /// assert!(matches!(q.put(2), Err(Error::Closed(_))));
        /// assert!(matches!(clone.get(), Err(Error::Closed(_)))); // clones in this process too
        /// q.close(); // twice is fine
        /// # Ok::<(), multiproc::Error>(())
        /// ```
        pub fn close(&self) {
            self.inner.closed.store(true, Ordering::Relaxed);
        }

        /// Bytes of the ring in use right now, including parts of a large
        /// message still being streamed (a diagnostic: `qsize` counts whole items).
        ///
        /// ```
        #[doc = concat!(" let q = multiproc::", stringify!($ty), "::<u64>::new()?;")]
        /// assert_eq!(q.pending_bytes(), 0);
        /// q.put_bytes(&[7; 100])?;
        /// assert!(q.pending_bytes() >= 100); // the bytes and a record header
        /// q.get_bytes()?;
        /// assert_eq!(q.pending_bytes(), 0);
        /// # Ok::<(), multiproc::Error>(())
        /// ```
        pub fn pending_bytes(&self) -> usize {
            self.inner.pending_bytes()
        }

        /// Puts raw bytes as one message, with no encoding (the counterpart of
        /// `Connection::send_bytes`); read it with `get_bytes`. Blocks while the
        /// queue is full.
        ///
        /// # Errors
        /// [`Error::Closed`] after `close`.
        ///
        /// ```
        #[doc = concat!(" let q = multiproc::", stringify!($ty), "::<u64>::new()?;")]
        /// q.put_bytes(b"raw frame")?;
        /// assert_eq!(q.qsize(), 1);
        /// assert_eq!(q.get_bytes()?, b"raw frame");
        /// # Ok::<(), multiproc::Error>(())
        /// ```
        pub fn put_bytes(&self, bytes: &[u8]) -> Result<()> {
            self.inner.put_raw(bytes, true, None)
        }

        /// Gets one message as raw bytes, blocking until one arrives.
        ///
        /// # Errors
        /// [`Error::Closed`] after `close`.
        ///
        /// ```
        #[doc = concat!(" let q = multiproc::", stringify!($ty), "::<u64>::new()?;")]
        /// q.put_bytes(&[1, 2, 3])?;
        /// q.put_bytes(&[])?; // an empty message is a message too
        /// assert_eq!(q.get_bytes()?, [1, 2, 3]);
        /// assert_eq!(q.get_bytes()?, []);
        /// # Ok::<(), multiproc::Error>(())
        /// ```
        pub fn get_bytes(&self) -> Result<Vec<u8>> {
            self.inner.get_raw(true, None, None, false, |b| b.into_vec())
        }

        /// Gets one raw-bytes message into `buf` (replacing its contents),
        /// reusing its allocation when the message fits in half the ring;
        /// returns the length. Blocks until a message arrives.
        ///
        /// # Errors
        /// [`Error::Closed`] after `close`.
        ///
        /// ```
        #[doc = concat!(" let q = multiproc::", stringify!($ty), "::<u64>::new()?;")]
        /// q.put_bytes(b"first")?;
        /// q.put_bytes(b"second")?;
        /// let mut buf = Vec::with_capacity(64);
        /// assert_eq!(q.get_bytes_into(&mut buf)?, 5);
        /// assert_eq!(buf, b"first");
        /// assert_eq!(q.get_bytes_into(&mut buf)?, 6);
        /// assert_eq!(buf, b"second"); // replaced, not appended
        /// # Ok::<(), multiproc::Error>(())
        /// ```
        pub fn get_bytes_into(&self, buf: &mut Vec<u8>) -> Result<usize> {
            self.inner.get_raw(true, None, Some(buf), false, |b| b.len())
        }
    };
}

/// The timed and non-blocking `put`/`get` of [`Queue`] and [`JoinableQueue`], `shutdown` and `empty`.
macro_rules! timed_methods {
    ($ty:ident) => {
        /// Whether the queue is empty (approximate, as Python's `empty`).
        ///
        /// # Errors
        /// [`Error::Closed`] after [`close`](Self::close), once this process has
        /// put through the handle (or a clone of it). On a handle closed unused,
        /// `empty` still answers, as in Python, where `close` on a queue that
        /// was never put to is a no-op (`test_closed_queue_empty_exceptions`).
        ///
        /// ```
        #[doc = concat!(" let q = multiproc::", stringify!($ty), "::new()?;")]
        /// assert!(q.empty()?);
        /// q.put("job".to_string())?;
        /// assert!(!q.empty()?);
        /// q.close();
        /// assert!(matches!(q.empty(), Err(multiproc::Error::Closed(_)))); // used, then closed
        ///
        #[doc = concat!(" let unused = multiproc::", stringify!($ty), "::<u8>::new()?;")]
        /// unused.close();
        /// assert!(unused.empty()?); // closed before any put: still answers
        /// # Ok::<(), multiproc::Error>(())
        /// ```
        pub fn empty(&self) -> Result<bool> {
            if self.inner.used.load(Ordering::Relaxed) {
                self.inner.check_open()?;
            }
            Ok(self.inner.qsize() == 0)
        }

        /// Shuts the queue down for every process that uses it (Python 3.13's
        /// `shutdown(immediate=False)`): from now on `put` fails with
        /// [`Error::ShutDown`]; items already queued can still be taken, after
        /// which `get` fails with [`Error::ShutDown`] too. Blocked callers wake up.
        ///
        /// ```
        /// use multiproc::Error;
        ///
        #[doc = concat!(" let q = multiproc::", stringify!($ty), "::new()?;")]
        /// q.put(1)?;
        /// q.shutdown();
        /// assert!(matches!(q.put(2), Err(Error::ShutDown)));
        /// assert_eq!(q.get()?, 1); // what was queued can still be taken
        /// assert!(matches!(q.get(), Err(Error::ShutDown)));
        /// # Ok::<(), multiproc::Error>(())
        /// ```
        pub fn shutdown(&self) {
            self.inner.shutdown(false);
        }

        /// Python's `shutdown(immediate=True)`: as [`shutdown`](Self::shutdown),
        /// but the queued items are dropped (`qsize() == 0`) and every `get` fails at
        /// once. A [`JoinableQueue`] counts the dropped items as done, so its `join`
        /// waiters are released, except that items already taken by `get` still
        /// wait for their `task_done` (Python 3.13, `test_shutdown_immediate_with_unfinished`).
        ///
        /// ```
        #[doc = concat!(" let q = multiproc::", stringify!($ty), "::new()?;")]
        /// q.put(1)?;
        /// q.put(2)?;
        /// q.shutdown_immediate();
        /// assert_eq!(q.qsize(), 0); // the items are dropped
        /// assert!(matches!(q.get(), Err(multiproc::Error::ShutDown)));
        ///
        /// let jobs = multiproc::JoinableQueue::new()?;
        /// jobs.put(1u32)?; // taken below
        /// jobs.put(2)?; // dropped by the shutdown
        /// jobs.get()?; // in progress: not done yet
        /// jobs.shutdown_immediate();
        /// assert_eq!(jobs.unfinished(), 1); // only the dropped item counts as done
        /// jobs.task_done()?; // the taken item's task_done still succeeds
        /// jobs.join(); // and then join returns
        /// # Ok::<(), multiproc::Error>(())
        /// ```
        pub fn shutdown_immediate(&self) {
            self.inner.shutdown(true);
        }

        /// Whether the queue was shut down (by any process).
        ///
        /// ```
        #[doc = concat!(" let q = multiproc::", stringify!($ty), "::<u64>::new()?;")]
        /// let other = q.clone(); // or a handle in another process
        /// assert!(!other.is_shut_down());
        /// q.shutdown();
        /// assert!(other.is_shut_down());
        /// # Ok::<(), multiproc::Error>(())
        /// ```
        pub fn is_shut_down(&self) -> bool {
            self.inner.shut() != 0
        }

        /// Puts `item`, waiting at most `timeout` for room.
        ///
        /// # Errors
        /// [`Error::Full`] if there was no room in time; otherwise as [`put`](Self::put).
        ///
        /// ```
        /// use std::time::Duration;
        ///
        #[doc = concat!(" let q = multiproc::", stringify!($ty), "::with_maxsize(1)?;")]
        /// q.put_timeout(1, Duration::from_millis(10))?;
        /// let again = q.put_timeout(2, Duration::from_millis(10)); // no room in time
        /// assert!(matches!(again, Err(multiproc::Error::Full)));
        /// # Ok::<(), multiproc::Error>(())
        /// ```
        pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<()> {
            self.inner.put(&item, true, Some(timeout))
        }

        /// Puts `item` only if there is room now (Python's `put_nowait`).
        ///
        /// # Errors
        /// [`Error::Full`] if the queue is full; otherwise as [`put`](Self::put).
        ///
        /// ```
        #[doc = concat!(" let q = multiproc::", stringify!($ty), "::with_maxsize(1)?;")]
        /// q.put_nowait(1)?;
        /// assert!(matches!(q.put_nowait(2), Err(multiproc::Error::Full)));
        /// assert_eq!(q.get()?, 1);
        /// # Ok::<(), multiproc::Error>(())
        /// ```
        pub fn put_nowait(&self, item: T) -> Result<()> {
            self.inner.put(&item, false, None)
        }

        /// Removes and returns the next item, waiting at most `timeout`.
        ///
        /// # Errors
        /// [`Error::Empty`] if nothing arrived in time; otherwise as [`get`](Self::get).
        ///
        /// ```
        /// use std::time::Duration;
        ///
        #[doc = concat!(" let q = multiproc::", stringify!($ty), "::new()?;")]
        /// assert!(matches!(q.get_timeout(Duration::from_millis(10)), Err(multiproc::Error::Empty)));
        /// q.put(5)?;
        /// assert_eq!(q.get_timeout(Duration::from_millis(10))?, 5);
        /// # Ok::<(), multiproc::Error>(())
        /// ```
        pub fn get_timeout(&self, timeout: Duration) -> Result<T> {
            self.inner.get(true, Some(timeout))
        }

        /// Removes and returns the next item if there is one now (Python's `get_nowait`).
        ///
        /// # Errors
        /// [`Error::Empty`] if the queue is empty; otherwise as [`get`](Self::get).
        ///
        /// ```
        #[doc = concat!(" let q = multiproc::", stringify!($ty), "::new()?;")]
        /// assert!(matches!(q.get_nowait(), Err(multiproc::Error::Empty)));
        /// q.put('x')?;
        /// assert_eq!(q.get_nowait()?, 'x');
        /// # Ok::<(), multiproc::Error>(())
        /// ```
        pub fn get_nowait(&self) -> Result<T> {
            self.inner.get(false, None)
        }
    };
}

impl<T: Serialize + DeserializeOwned + 'static> Queue<T> {
    /// A new, unbounded queue.
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created.
    ///
    /// ```
    /// let q: multiproc::Queue<String> = multiproc::Queue::new()?;
    /// assert_eq!(q.maxsize(), 0); // unbounded
    /// q.put("hello".into())?;
    /// assert_eq!(q.get()?, "hello");
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn new() -> Result<Queue<T>> {
        Queue::with_maxsize(0)
    }

    /// A queue holding at most `maxsize` items (`0`: unbounded).
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created.
    ///
    /// ```
    /// let q = multiproc::Queue::with_maxsize(2)?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// assert!(q.full());
    /// assert!(matches!(q.put_nowait(3), Err(multiproc::Error::Full)));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn with_maxsize(maxsize: usize) -> Result<Queue<T>> {
        Queue::with_ring_size(maxsize, DEFAULT_RING_BYTES)
    }

    /// A queue with `maxsize` (`0`: unbounded) and a ring of `ring_bytes` of
    /// shared memory (at least 4 KiB: smaller sizes are rounded up; at most 4 GiB).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `ring_bytes` is over 4 GiB; [`Error::Io`]
    /// if the shared memory cannot be created.
    ///
    /// ```
    /// let q = multiproc::Queue::with_ring_size(0, 4096)?;
    /// let big = vec![7u8; 100_000]; // far larger than the ring: streamed through it
    /// let sender = {
    ///     let (q, big) = (q.clone(), big.clone());
    ///     std::thread::spawn(move || q.put(big))
    /// };
    /// assert_eq!(q.get()?, big);
    /// sender.join().unwrap()?;
    /// let too_big = multiproc::Queue::<u8>::with_ring_size(0, usize::MAX);
    /// assert!(matches!(too_big, Err(multiproc::Error::InvalidArgument(_))));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn with_ring_size(maxsize: usize, ring_bytes: usize) -> Result<Queue<T>> {
        Ok(Queue { inner: RingQueue::new(maxsize, ring_bytes)?, _marker: PhantomData })
    }

    /// Puts `item`, waiting while the queue is full (Python's `put(item)`).
    ///
    /// # Errors
    /// [`Error::Closed`] after [`close`](Self::close); [`Error::ShutDown`] after
    /// [`shutdown`](Self::shutdown); [`Error::Encode`] if the item cannot be
    /// encoded (the queue is unaffected).
    ///
    /// ```
    /// let q = multiproc::Queue::new()?;
    /// q.put((1, "one".to_string()))?;
    /// q.put((2, "two".to_string()))?;
    /// assert_eq!(q.get()?.0, 1); // first in, first out
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn put(&self, item: T) -> Result<()> {
        self.inner.put(&item, true, None)
    }

    /// Python's `put(item, block, timeout)`; the timeout is ignored when `block` is false.
    ///
    /// # Errors
    /// As [`put_timeout`](Self::put_timeout).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = multiproc::Queue::with_maxsize(1)?;
    /// q.put_with(1, true, None)?; // put(1)
    /// assert!(q.put_with(2, false, None).is_err()); // put_nowait(2): full
    /// assert!(q.put_with(2, true, Some(Duration::from_millis(10))).is_err()); // put_timeout
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn put_with(&self, item: T, block: bool, timeout: Option<Duration>) -> Result<()> {
        self.inner.put(&item, block, timeout)
    }

    /// Removes and returns the next item, waiting until there is one (Python's `get()`).
    ///
    /// # Errors
    /// [`Error::Closed`] after [`close`](Self::close); [`Error::ShutDown`] once a
    /// shut-down queue is empty; [`Error::Decode`] if the bytes are not a `T`
    /// (the item is consumed).
    ///
    /// ```
    /// let q = multiproc::Queue::new()?;
    /// let producer = {
    ///     let q = q.clone();
    ///     std::thread::spawn(move || q.put(42u64))
    /// };
    /// assert_eq!(q.get()?, 42); // waits for the producer
    /// producer.join().unwrap()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn get(&self) -> Result<T> {
        self.inner.get(true, None)
    }

    /// Python's `get(block, timeout)`; the timeout is ignored when `block` is false.
    ///
    /// # Errors
    /// As [`get_timeout`](Self::get_timeout).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = multiproc::Queue::new()?;
    /// assert!(matches!(q.get_with(false, None), Err(multiproc::Error::Empty))); // get_nowait()
    /// q.put(3)?;
    /// assert_eq!(q.get_with(true, Some(Duration::from_secs(1)))?, 3); // get(timeout=1)
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn get_with(&self, block: bool, timeout: Option<Duration>) -> Result<T> {
        self.inner.get(block, timeout)
    }

    /// Whether the queue holds `maxsize` items (never, if unbounded): Python's `full`.
    ///
    /// ```
    /// let bounded = multiproc::Queue::with_maxsize(1)?;
    /// assert!(!bounded.full());
    /// bounded.put(1)?;
    /// assert!(bounded.full());
    /// let unbounded = multiproc::Queue::new()?;
    /// unbounded.put(1)?;
    /// assert!(!unbounded.full());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn full(&self) -> bool {
        let m = self.inner.maxsize();
        m > 0 && self.inner.qsize() >= m
    }

    /// The bound given at creation (`0`: unbounded).
    ///
    /// ```
    /// assert_eq!(multiproc::Queue::<u64>::with_maxsize(8)?.maxsize(), 8);
    /// assert_eq!(multiproc::Queue::<u64>::new()?.maxsize(), 0);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn maxsize(&self) -> usize {
        self.inner.maxsize()
    }

    common_methods!(Queue);
    timed_methods!(Queue);

    /// A no-op: there is no feeder thread to wait for (see the type's docs).
    ///
    /// ```
    /// let q = multiproc::Queue::new()?;
    /// q.put(1)?;
    /// q.join_thread(); // returns at once: `put` already wrote the item to shared memory
    /// assert_eq!(q.qsize(), 1);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn join_thread(&self) {}

    /// A no-op: there is no feeder thread (see the type's docs).
    ///
    /// ```
    /// let q = multiproc::Queue::new()?;
    /// q.put(1)?;
    /// q.cancel_join_thread(); // nothing is buffered that could be lost
    /// assert_eq!(q.get()?, 1);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn cancel_join_thread(&self) {}
}

/// A simpler, unbounded queue (Python's `multiprocessing.SimpleQueue`): `put`,
/// `get`, `empty`, `close`. Same ring as [`Queue`].
///
/// ```
/// use multiproc::SimpleQueue;
///
/// #[multiproc::task]
/// fn double(jobs: SimpleQueue<u64>, results: SimpleQueue<u64>) {
///     let x = jobs.get().unwrap();
///     results.put(2 * x).unwrap();
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let (jobs, results) = (SimpleQueue::new()?, SimpleQueue::new()?);
///     let mut p = multiproc::Process::new(double, (jobs.clone(), results.clone()))?;
///     p.start()?;
///     jobs.put(21)?;
///     assert_eq!(results.get()?, 42);
///     p.join()?;
///     Ok(())
/// }
/// ```
pub struct SimpleQueue<T> {
    inner: RingQueue,
    _marker: PhantomData<fn(T) -> T>,
}

queue_serde!(SimpleQueue);

impl<T: Serialize + DeserializeOwned + 'static> SimpleQueue<T> {
    /// A new queue.
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created.
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::<String>::new()?;
    /// assert!(q.empty()?);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn new() -> Result<SimpleQueue<T>> {
        Ok(SimpleQueue { inner: RingQueue::new(0, DEFAULT_RING_BYTES)?, _marker: PhantomData })
    }

    /// Puts `item`.
    ///
    /// # Errors
    /// As [`Queue::put`].
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::new()?;
    /// q.put(vec![1, 2, 3])?;
    /// assert_eq!(q.qsize(), 1);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn put(&self, item: T) -> Result<()> {
        self.inner.put(&item, true, None)
    }

    /// Removes and returns the next item, waiting until there is one.
    ///
    /// # Errors
    /// As [`Queue::get`].
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::new()?;
    /// q.put('a')?;
    /// q.put('b')?;
    /// assert_eq!((q.get()?, q.get()?), ('a', 'b'));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn get(&self) -> Result<T> {
        self.inner.get(true, None)
    }

    /// Whether the queue is empty (approximate, as Python's `SimpleQueue.empty`).
    ///
    /// # Errors
    /// [`Error::Closed`] after [`close`](Self::close) (a `SimpleQueue`'s
    /// `close` always takes effect, as in Python).
    ///
    /// ```
    /// let q = multiproc::SimpleQueue::new()?;
    /// assert!(q.empty()?);
    /// q.put("job".to_string())?;
    /// assert!(!q.empty()?);
    /// q.close();
    /// assert!(matches!(q.empty(), Err(multiproc::Error::Closed(_))));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn empty(&self) -> Result<bool> {
        self.inner.empty()
    }

    common_methods!(SimpleQueue);
}

/// A [`Queue`] that also counts unfinished items (Python's `JoinableQueue`):
/// each `put` adds one, each [`task_done`](JoinableQueue::task_done) removes
/// one, and [`join`](JoinableQueue::join) waits until none is left.
///
/// ```
/// use multiproc::{JoinableQueue, Queue};
///
/// #[multiproc::task]
/// fn worker(jobs: JoinableQueue<Option<u64>>, results: Queue<u64>) {
///     while let Some(x) = jobs.get().unwrap() {
///         results.put(x * x).unwrap();
///         jobs.task_done().unwrap();
///     }
///     jobs.task_done().unwrap();
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let (jobs, results) = (JoinableQueue::new()?, Queue::new()?);
///     let mut p = multiproc::Process::new(worker, (jobs.clone(), results.clone()))?;
///     p.start()?;
///     for x in 1..=3 {
///         jobs.put(Some(x))?;
///     }
///     jobs.join(); // every job is done
///     assert_eq!(results.qsize(), 3);
///     jobs.put(None)?;
///     p.join()?;
///     Ok(())
/// }
/// ```
pub struct JoinableQueue<T> {
    inner: RingQueue,
    _marker: PhantomData<fn(T) -> T>,
}

queue_serde!(JoinableQueue);

impl<T: Serialize + DeserializeOwned + 'static> JoinableQueue<T> {
    /// A new, unbounded joinable queue.
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created.
    ///
    /// ```
    /// let q = multiproc::JoinableQueue::<u64>::new()?;
    /// assert_eq!(q.unfinished(), 0);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn new() -> Result<JoinableQueue<T>> {
        JoinableQueue::with_maxsize(0)
    }

    /// A joinable queue holding at most `maxsize` items (`0`: unbounded).
    ///
    /// # Errors
    /// [`Error::Io`] if the shared memory cannot be created.
    ///
    /// ```
    /// let q = multiproc::JoinableQueue::with_maxsize(1)?;
    /// q.put(1)?;
    /// assert!(matches!(q.put_nowait(2), Err(multiproc::Error::Full)));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn with_maxsize(maxsize: usize) -> Result<JoinableQueue<T>> {
        Ok(JoinableQueue { inner: RingQueue::new(maxsize, DEFAULT_RING_BYTES)?, _marker: PhantomData })
    }

    /// Puts `item` (waiting while full) and counts it as unfinished.
    ///
    /// # Errors
    /// As [`Queue::put`].
    ///
    /// ```
    /// let q = multiproc::JoinableQueue::new()?;
    /// q.put("job".to_string())?;
    /// assert_eq!(q.unfinished(), 1);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn put(&self, item: T) -> Result<()> {
        self.inner.put(&item, true, None)
    }

    /// Removes and returns the next item, waiting until there is one.
    ///
    /// # Errors
    /// As [`Queue::get`].
    ///
    /// ```
    /// let q = multiproc::JoinableQueue::new()?;
    /// q.put(7)?;
    /// assert_eq!(q.get()?, 7);
    /// assert_eq!(q.unfinished(), 1); // until task_done
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn get(&self) -> Result<T> {
        self.inner.get(true, None)
    }

    common_methods!(JoinableQueue);
    timed_methods!(JoinableQueue);

    /// Marks one item taken with `get` as processed (Python's `task_done`).
    ///
    /// # Errors
    /// [`Error::InvalidState`] if called more times than items were put
    /// (Python's `ValueError`).
    ///
    /// ```
    /// let q = multiproc::JoinableQueue::new()?;
    /// q.put(1)?;
    /// q.get()?;
    /// q.task_done()?;
    /// assert_eq!(q.unfinished(), 0);
    /// assert!(matches!(q.task_done(), Err(multiproc::Error::InvalidState(_)))); // one too many
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn task_done(&self) -> Result<()> {
        let r = &self.inner;
        let w = r.u32(UNFINISHED);
        let prev = w
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
            .map_err(|_| Error::InvalidState("task_done() called too many times".into()))?;
        if prev == 1 {
            raw::notify(r.u32(DONE_SEQ), r.u32(DONE_SLEEPERS), u32::MAX);
        }
        Ok(())
    }

    /// The number of items put and not yet marked done.
    ///
    /// ```
    /// let q = multiproc::JoinableQueue::new()?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// q.get()?;
    /// assert_eq!(q.unfinished(), 2); // taken is not done
    /// q.task_done()?;
    /// assert_eq!(q.unfinished(), 1);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn unfinished(&self) -> u32 {
        self.inner.u32(UNFINISHED).load(Ordering::SeqCst)
    }

    /// Waits until every item put has been marked done (Python's `join`).
    ///
    /// ```
    /// let q = multiproc::JoinableQueue::new()?;
    /// q.put(1)?;
    /// let worker = {
    ///     let q = q.clone();
    ///     std::thread::spawn(move || q.get().and_then(|_| q.task_done()))
    /// };
    /// q.join(); // returns once the worker called task_done
    /// assert_eq!(q.unfinished(), 0);
    /// worker.join().unwrap()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn join(&self) {
        self.join_inner(None);
    }

    /// As [`join`](Self::join), for at most `timeout`; `false` if items were still unfinished.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let q = multiproc::JoinableQueue::new()?;
    /// q.put(1)?;
    /// assert!(!q.join_timeout(Duration::from_millis(10))); // not done yet
    /// q.get()?;
    /// q.task_done()?;
    /// assert!(q.join_timeout(Duration::from_millis(10)));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join_inner(Some(timeout))
    }

    fn join_inner(&self, timeout: Option<Duration>) -> bool {
        let r = &self.inner;
        let ready = || r.u32(UNFINISHED).load(Ordering::SeqCst) == 0;
        let res: std::result::Result<bool, ()> =
            raw::wait_until(r.u32(DONE_SEQ), r.u32(DONE_SLEEPERS), raw::deadline(timeout), ready, || Ok(()));
        res.unwrap_or(false)
    }
}
