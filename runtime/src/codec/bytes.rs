//! [`Bytes`]: a byte buffer that crosses the wire in one copy.

use std::ops::{Deref, DerefMut};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A `Vec<u8>` that is encoded and decoded in bulk (one length, one copy).
///
/// serde encodes a plain `Vec<u8>` one element at a time, so a large
/// `Vec<u8>` in a task argument, a result, a queue item or a message costs a
/// call per byte. `Bytes` goes through serde's `serialize_bytes` instead; its
/// wire bytes are the same as those of the `Vec<u8>` it holds, so only the
/// speed differs. A `Vec<u8>` that is a whole queue item, message or a task's
/// only argument is copied whole anyway; use `Bytes` where the bytes sit
/// inside something else (a struct field, a tuple of arguments, an `Option`).
/// It derefs to `Vec<u8>`, so most code that used the `Vec` keeps working.
///
/// ```
/// let b = multiproc::Bytes::from(vec![7u8; 1 << 16]);
/// assert_eq!(b.len(), 1 << 16);
/// let v: Vec<u8> = b.into_inner();
/// assert_eq!(v[0], 7);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// The `Vec<u8>` inside.
    ///
    /// ```
    /// assert_eq!(multiproc::Bytes::from(vec![1u8, 2]).into_inner(), vec![1, 2]);
    /// ```
    pub fn into_inner(self) -> Vec<u8> {
        self.0
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(b: Bytes) -> Self {
        b.0
    }
}

impl Deref for Bytes {
    type Target = Vec<u8>;
    fn deref(&self) -> &Vec<u8> {
        &self.0
    }
}

impl DerefMut for Bytes {
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte buffer")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
                // Self-describing formats may send bytes as a sequence.
                let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
                while let Some(b) = seq.next_element()? {
                    v.push(b);
                }
                Ok(Bytes(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}

#[cfg(test)]
mod tests {
    use super::Bytes;
    use crate::codec::{decode, encode};

    #[test]
    fn same_wire_bytes_as_vec() {
        let v: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let a = encode(&v, "t").unwrap().bytes;
        let b = encode(&Bytes(v.clone()), "t").unwrap().bytes;
        assert_eq!(a, b);
        let back: Bytes = decode(&a, Vec::new(), "t").unwrap();
        assert_eq!(back.0, v);
        let back: Vec<u8> = decode(&b, Vec::new(), "t").unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn lying_length_is_an_error() {
        let mut bad = u64::MAX.to_le_bytes().to_vec();
        bad.extend_from_slice(&[1, 2, 3]);
        assert!(decode::<Bytes>(&bad, Vec::new(), "t").is_err());
        assert!(decode::<(Bytes, u8)>(&bad[..4], Vec::new(), "t").is_err());
    }
}
