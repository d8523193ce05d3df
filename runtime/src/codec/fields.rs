//! Little-endian fields inside a message body: one set of appenders and one
//! bounds-checked reader, shared by every body layout (the pool's chunks and
//! replies, the MPI backend's messages).
//!
//! Every read from another process that falls short is an [`Error::Decode`]
//! naming what was being read, never a panic.

// The 64-bit and length-prefixed fields serve the MPI backend's messages.
#![cfg_attr(not(feature = "mpi"), allow(dead_code))]

use crate::error::{Error, Result};

/// Appends a `u16`.
pub(crate) fn put_u16(buf: &mut Vec<u8>, v: u16) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Appends a `u32`.
pub(crate) fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Appends a `u64`.
pub(crate) fn put_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Appends `b` after its length as a `u32`; fails above 4 GiB.
pub(crate) fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) -> Result<()> {
    let len = u32::try_from(b.len()).map_err(|_| Error::MessageTooLarge { size: b.len(), limit: u32::MAX as usize })?;
    put_u32(buf, len);
    buf.extend_from_slice(b);
    Ok(())
}

/// Overwrites the `u32` at `at` (a count written before it was known); does
/// nothing if `at` is out of range.
pub(crate) fn patch_u32(buf: &mut [u8], at: usize, v: u32) {
    if let Some(slot) = buf.get_mut(at..at.saturating_add(4)) {
        slot.copy_from_slice(&v.to_le_bytes());
    }
}

/// A bounds-checked reader over a body.
pub(crate) struct Cursor<'a> {
    pub(crate) buf: &'a [u8],
    pub(crate) pos: usize,
    /// What is being read, for errors.
    pub(crate) what: &'static str,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`, reading a pool frame.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self::at(buf, 0, "pool frame")
    }

    /// A cursor at `pos` in `buf`, reading `what`.
    pub(crate) fn at(buf: &'a [u8], pos: usize, what: &'static str) -> Self {
        Cursor { buf, pos, what }
    }

    /// Whether everything has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The next `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len()).ok_or_else(|| self.short())?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn short(&self) -> Error {
        Error::Decode { what: self.what, reason: "message ends early".into() }
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let r = &self.buf[self.pos.min(self.buf.len())..];
        self.pos = self.buf.len();
        r
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Bytes after their length as a `u32` (as [`put_bytes`] writes them).
    pub(crate) fn len_bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.bytes(n)
    }

    /// A UTF-8 string after its length as a `u32`.
    pub(crate) fn str(&mut self) -> Result<&'a str> {
        let what = self.what;
        std::str::from_utf8(self.len_bytes()?).map_err(|e| Error::Decode { what, reason: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_short_input_is_an_error() {
        let mut buf = vec![7u8];
        put_u16(&mut buf, 513);
        put_u32(&mut buf, 0);
        put_u64(&mut buf, u64::MAX - 1);
        put_bytes(&mut buf, b"abc").unwrap();
        patch_u32(&mut buf, 3, 42);
        let mut c = Cursor::at(&buf, 0, "test");
        assert_eq!((c.u8().unwrap(), c.u16().unwrap(), c.u32().unwrap()), (7, 513, 42));
        assert_eq!(c.u64().unwrap(), u64::MAX - 1);
        assert_eq!(c.str().unwrap(), "abc");
        assert!(c.is_empty() && c.rest().is_empty());
        let cut = &buf[..buf.len() - 1];
        assert!(matches!(Cursor::at(cut, 15, "test").len_bytes(), Err(Error::Decode { what: "test", .. })));
        assert!(matches!(Cursor::new(&[255, 255, 255, 255]).len_bytes(), Err(Error::Decode { .. })));
        assert!(Cursor::new(&[1]).u16().is_err());
    }
}
