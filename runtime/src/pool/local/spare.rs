//! Spare frame buffers. A large chunk's frame is kept once its reply has
//! come, and the next chunk is encoded into it, so a map over large items
//! writes into memory it has used before instead of page-faulting fresh
//! memory for every chunk (zeroing and mapping a 4 KiB page costs more than
//! copying into it). What is kept is bounded, and freed once the pool has
//! been idle for a while (see `background.rs`).

use std::sync::{Mutex, MutexGuard};

/// Frames at least this large are kept; smaller ones come cheaply from
/// malloc's own free lists.
pub(super) const MIN_KEEP: usize = 256 << 10;
/// Most bytes kept at once.
const MAX_KEPT: usize = 64 << 20;

/// The kept buffers, all empty.
#[derive(Default)]
pub(super) struct Spares {
    bufs: Mutex<Vec<Vec<u8>>>,
}

impl Spares {
    fn bufs(&self) -> MutexGuard<'_, Vec<Vec<u8>>> {
        self.bufs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `frame`'s memory for a later chunk, if it is large and the
    /// bound leaves room for it; else frees it.
    pub(super) fn keep(&self, mut frame: Vec<u8>) {
        if frame.capacity() < MIN_KEEP {
            return;
        }
        let mut bufs = self.bufs();
        let kept: usize = bufs.iter().map(Vec::capacity).sum();
        if kept + frame.capacity() <= MAX_KEPT {
            frame.clear();
            bufs.push(frame);
        }
    }

    /// The largest kept buffer, or a new small one when none is kept.
    pub(super) fn take(&self) -> Vec<u8> {
        let mut bufs = self.bufs();
        let largest = (0..bufs.len()).max_by_key(|&i| bufs[i].capacity());
        largest.map_or_else(|| Vec::with_capacity(64), |i| bufs.swap_remove(i))
    }

    /// A frame built in `buf` (possibly a kept buffer far larger than it):
    /// the frame itself when it fills a fair part of its buffer, else a
    /// copy of it, and the large buffer is kept again.
    pub(super) fn fit(&self, buf: Vec<u8>) -> Vec<u8> {
        if buf.capacity() < MIN_KEEP || buf.len() >= buf.capacity() / 4 {
            return buf;
        }
        let frame = buf.as_slice().to_vec();
        self.keep(buf);
        frame
    }

    /// Frees every kept buffer.
    pub(super) fn release(&self) {
        self.bufs().clear();
    }

    /// Bytes kept now.
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.bufs().iter().map(Vec::capacity).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_frames_are_kept_up_to_the_bound_and_small_ones_are_not() {
        let s = Spares::default();
        s.keep(Vec::with_capacity(MIN_KEEP - 1));
        assert_eq!(s.kept(), 0);
        for _ in 0..(MAX_KEPT / (8 << 20)) + 2 {
            s.keep(Vec::with_capacity(8 << 20));
        }
        assert!(s.kept() <= MAX_KEPT && s.kept() >= MAX_KEPT - (8 << 20), "{}", s.kept());
        let big = s.take();
        assert!(big.capacity() >= 8 << 20 && big.is_empty());
        s.release();
        assert_eq!(s.kept(), 0);
        assert_eq!(s.take().capacity(), 64);
    }

    #[test]
    fn a_small_frame_in_a_large_buffer_is_copied_out_and_the_buffer_kept() {
        let s = Spares::default();
        let mut buf = Vec::with_capacity(MIN_KEEP * 4);
        buf.extend_from_slice(b"frame");
        let frame = s.fit(buf);
        assert_eq!(frame, b"frame");
        assert!(frame.capacity() < MIN_KEEP);
        assert!(s.kept() >= MIN_KEEP * 4);
        let mut full = s.take();
        full.resize(MIN_KEEP * 2, 7);
        let at = full.as_ptr();
        let kept = s.fit(full);
        assert_eq!(kept.as_ptr(), at, "a frame filling its buffer stays in it");
    }
}
