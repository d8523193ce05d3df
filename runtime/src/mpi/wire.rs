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
//! present and returns [`Error::Decode`](crate::error::Error::Decode), never panics.

use crate::codec::fields::{self, Cursor};
use crate::error::Result;

/// Outcome code: the task returned a value.
pub(crate) const OK: u8 = 0;
/// Outcome code: the task panicked.
pub(crate) const PANICKED: u8 = 1;
/// Outcome code: the task could not run or its result could not be encoded.
pub(crate) const FAILED: u8 = 2;

/// Appends little-endian fields to a message (the codec's [`fields`]).
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u32(&mut self, v: u32) {
        fields::put_u32(&mut self.buf, v);
    }
    pub(crate) fn u64(&mut self, v: u64) {
        fields::put_u64(&mut self.buf, v);
    }
    /// Length-prefixed bytes; fails above 4 GiB.
    pub(crate) fn bytes(&mut self, b: &[u8]) -> Result<()> {
        fields::put_bytes(&mut self.buf, b)
    }
    /// Overwrites the u32 at `at` (a count written before it was known).
    pub(crate) fn patch_u32(&mut self, at: usize, v: u32) {
        fields::patch_u32(&mut self.buf, at, v);
    }
}

/// Reads the fields [`Writer`] wrote, checking every length (the codec's
/// [`Cursor`], told per field what it reads).
pub(crate) struct Reader<'a>(Cursor<'a>);

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], pos: usize) -> Self {
        Reader(Cursor::at(buf, pos, "MPI message"))
    }
    pub(crate) fn pos(&self) -> usize {
        self.0.pos
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    fn field(&mut self, what: &'static str) -> &mut Cursor<'a> {
        self.0.what = what;
        &mut self.0
    }
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8> {
        self.field(what).u8()
    }
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32> {
        self.field(what).u32()
    }
    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64> {
        self.field(what).u64()
    }
    pub(crate) fn bytes(&mut self, what: &'static str) -> Result<&'a [u8]> {
        self.field(what).len_bytes()
    }
    pub(crate) fn str(&mut self, what: &'static str) -> Result<&'a str> {
        self.field(what).str()
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::error::Error;

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
