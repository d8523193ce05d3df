//! The bytes exchanged between rank 0 and the worker ranks.
//!
//! A chunk (rank 0 → worker, tag = the pool's tag):
//! `job u64 | first u64 | task name (u32 len + bytes) | count u32 | count × (u32 len + argument bytes)`.
//! Its results (worker → rank 0, same tag):
//! `job u64 | first u64 | count u32 | count × outcome`, where an outcome is
//! `0 | u32 len + result bytes`, `1 | message | location` (a panic) or `2 | message`
//! (another failure), strings as u32 len + UTF-8. Arguments and results are the
//! codec's bytes, written once into the message: no per-item envelope is encoded.
//! Integers are little-endian. The reader checks every length against the bytes
//! present and returns [`Error::Decode`], never panics.

use crate::error::{Error, Result};

/// Outcome code: the task returned a value.
pub(crate) const OK: u8 = 0;
/// Outcome code: the task panicked.
pub(crate) const PANICKED: u8 = 1;
/// Outcome code: the task could not run or its result could not be encoded.
pub(crate) const FAILED: u8 = 2;

/// Appends little-endian fields to a message.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// Length-prefixed bytes; fails above 4 GiB.
    pub(crate) fn bytes(&mut self, b: &[u8]) -> Result<()> {
        let len =
            u32::try_from(b.len()).map_err(|_| Error::MessageTooLarge { size: b.len(), limit: u32::MAX as usize })?;
        self.u32(len);
        self.buf.extend_from_slice(b);
        Ok(())
    }
    /// Overwrites the u32 at `at` (a count written before it was known).
    pub(crate) fn patch_u32(&mut self, at: usize, v: u32) {
        if let Some(slot) = self.buf.get_mut(at..at + 4) {
            slot.copy_from_slice(&v.to_le_bytes());
        }
    }
}

/// Reads the fields [`Writer`] wrote, checking every length.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

fn short(what: &'static str) -> Error {
    Error::Decode { what, reason: "message ends early".into() }
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], pos: usize) -> Self {
        Reader { buf, pos }
    }
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| short(what))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    pub(crate) fn bytes(&mut self, what: &'static str) -> Result<&'a [u8]> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }
    pub(crate) fn str(&mut self, what: &'static str) -> Result<&'a str> {
        std::str::from_utf8(self.bytes(what)?).map_err(|e| Error::Decode { what, reason: e.to_string() })
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn fields_round_trip_and_short_input_is_an_error() {
        let mut w = Writer::default();
        w.u8(7);
        w.u32(0);
        w.u64(u64::MAX - 1);
        w.bytes(b"abc").unwrap();
        w.patch_u32(1, 42);
        let mut r = Reader::new(&w.buf, 0);
        assert_eq!(r.u8("t").unwrap(), 7);
        assert_eq!(r.u32("t").unwrap(), 42);
        assert_eq!(r.u64("t").unwrap(), u64::MAX - 1);
        assert_eq!(r.str("t").unwrap(), "abc");
        assert!(r.is_empty());
        let cut = &w.buf[..w.buf.len() - 1];
        let mut r = Reader::new(cut, 13);
        assert!(matches!(r.bytes("t"), Err(Error::Decode { .. })));
        let mut r = Reader::new(&[255, 255, 255, 255], 0);
        assert!(matches!(r.bytes("t"), Err(Error::Decode { .. })));
    }
}
