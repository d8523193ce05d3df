//! The wire format: values as bincode 2 (serde), file descriptors out of band,
//! and length-prefixed frames over sockets ([`frame`]: the one frame layout,
//! writer and readers of every socket in the runtime).
//!
//! Byte strings and vectors of plain numbers that are a whole message (a
//! queue item, a message, a task's arguments or result) skip serde: [`typed`]
//! writes and reads them in one copy, as the same bytes bincode would.
//!
//! This is the only module that knows bincode. A handle that owns an fd (a
//! `Connection`, a `Queue`, …) serializes as an index into the message's fd
//! list ([`share_fd`]) and deserializes by taking that fd back ([`take_fd`]),
//! as ipc-channel does; the fds travel by inheritance (fork) or `SCM_RIGHTS`.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::sys;

mod bulk;
mod bytes;
pub(crate) mod fields;
pub(crate) mod frame;

pub use bulk::{TakeBulk, put as put_bulk, take as take_bulk, taker as bulk_taker};
pub use bytes::Bytes;
pub(crate) use frame::{DEFAULT_MAX_MESSAGE, read_frame, read_frame_headed, write_frame};

/// An encoded value and the fds it refers to (owned duplicates). Not public
/// API: reached only through the macros' hidden `__private` module.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Payload {
    /// The bincode bytes.
    pub bytes: Vec<u8>,
    /// The fds, in the order the bytes index them.
    pub fds: Vec<OwnedFd>,
}

type Config = bincode::config::Configuration<bincode::config::LittleEndian, bincode::config::Fixint>;

/// Fixed-width integers: every message is written and read by this library,
/// so compactness buys little, and a fixed-width `u64` costs a load where a
/// varint costs a loop (bincode's varint code was a quarter of a pool's
/// per-item time in `perf`).
fn config() -> Config {
    bincode::config::standard().with_fixed_int_encoding()
}

/// Appends to a `Vec` without `std::io::Write`'s per-call `Result` plumbing.
struct VecWriter<'a>(&'a mut Vec<u8>);

impl bincode::enc::write::Writer for VecWriter<'_> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> std::result::Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

thread_local! {
    static FDS_OUT: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
    static FDS_IN: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
}

/// Encodes `value`, collecting the fds of any handles inside it.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T, what: &'static str) -> Result<Payload> {
    let mut bytes = Vec::new();
    let fds = encode_into(value, &mut bytes, what)?;
    Ok(Payload { bytes, fds })
}

/// Encodes `value` appended to `buf`; returns the fds of handles inside it.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut Vec<u8>,
    what: &'static str,
) -> Result<Vec<OwnedFd>> {
    let outer = FDS_OUT.with(|f| f.borrow_mut().replace(Vec::new()));
    let res = bincode::serde::encode_into_writer(value, VecWriter(buf), config());
    let fds = FDS_OUT.with(|f| std::mem::replace(&mut *f.borrow_mut(), outer)).unwrap_or_default();
    res.map_err(|e| Error::Encode { what, reason: e.to_string() })?;
    Ok(fds)
}

/// Decodes a `T` from `bytes`, handing `fds` to the handles inside it.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], fds: Vec<OwnedFd>, what: &'static str) -> Result<T> {
    if fds.is_empty() {
        // No fds, so no handle can be inside (each carries one): skip the fd
        // list. A handle that claims one anyway fails in `take_fd`.
        return decode_plain(bytes, what);
    }
    let outer = FDS_IN.with(|f| f.borrow_mut().replace(fds));
    let res = decode_plain(bytes, what);
    FDS_IN.with(|f| *f.borrow_mut() = outer);
    res
}

/// Decodes one `T` from the front of `bytes` (values laid end to end, as
/// [`EndToEnd`] writes them); returns it and the bytes it used. No fds.
pub(crate) fn decode_prefix<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<(T, usize)> {
    decode_bounded::<T>(bytes).map_err(|e| Error::Decode { what, reason: e.to_string() })
}

/// As [`decode_prefix`], for values whose handles index the shared list `fds`
/// (one list for all the values laid end to end): each handle takes a copy.
pub(crate) fn decode_prefix_with<T: DeserializeOwned>(
    bytes: &[u8],
    fds: &mut Vec<OwnedFd>,
    what: &'static str,
) -> Result<(T, usize)> {
    if fds.is_empty() {
        return decode_prefix(bytes, what);
    }
    let outer = FDS_IN.with(|f| f.borrow_mut().replace(std::mem::take(fds)));
    let res = decode_prefix(bytes, what);
    *fds = FDS_IN.with(|f| std::mem::replace(&mut *f.borrow_mut(), outer)).unwrap_or_default();
    res
}

/// Decodes `count` values laid end to end (as [`EndToEnd`] writes them) in one
/// decoder pass, without fds, appending them to `out`. Returns the bytes used.
pub(crate) fn decode_end_to_end_into<T: DeserializeOwned>(
    bytes: &[u8],
    count: usize,
    out: &mut Vec<T>,
    what: &'static str,
) -> Result<usize> {
    struct Seed<'a, T>(usize, &'a mut Vec<T>);
    impl<'de, T: DeserializeOwned> serde::de::DeserializeSeed<'de> for Seed<'_, T> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
            struct V<'a, T>(usize, &'a mut Vec<T>);
            impl<'de, T: DeserializeOwned> serde::de::Visitor<'de> for V<'_, T> {
                type Value = ();
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    write!(f, "{} values laid end to end", self.0)
                }
                fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> std::result::Result<(), S::Error> {
                    self.1.reserve(self.0.min(1 << 16));
                    for i in 0..self.0 {
                        let v = seq.next_element()?.ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                        self.1.push(v);
                    }
                    Ok(())
                }
            }
            d.deserialize_tuple(self.0, V(self.0, self.1))
        }
    }
    // A limit is checked before bincode allocates what a garbage length claims
    // (see `decode_bounded`); the bytes come from this program's own pool.
    bincode::serde::seed_decode_from_slice(Seed(count, out), bytes, config().with_limit::<{ 1 << 30 }>())
        .map(|((), used)| used)
        .map_err(|e| Error::Decode { what, reason: e.to_string() })
}

/// Serializes a slice as its values laid end to end, with no length in front
/// (a tuple, in serde's terms): the layout a batch of calls travels in.
pub(crate) struct EndToEnd<'a, T>(pub(crate) &'a [T]);

impl<T: Serialize> Serialize for EndToEnd<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(self.0.len())?;
        for v in self.0 {
            t.serialize_element(v)?;
        }
        t.end()
    }
}

/// A value read from the front of a message of `len` bytes (as
/// [`take_bulk`] returns it), checked to be the whole message.
pub(crate) fn whole<T>(taken: std::result::Result<(T, usize), String>, len: usize, what: &'static str) -> Result<T> {
    match taken {
        Ok((v, n)) if n == len => Ok(v),
        Ok((_, n)) => Err(Error::Decode { what, reason: format!("{} trailing bytes", len - n) }),
        Err(reason) => Err(Error::Decode { what, reason }),
    }
}

fn decode_plain<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T> {
    match decode_bounded::<T>(bytes) {
        Ok((v, n)) if n == bytes.len() => Ok(v),
        Ok((_, n)) => Err(Error::Decode { what, reason: format!("{} trailing bytes", bytes.len() - n) }),
        Err(e) => Err(Error::Decode { what, reason: e.to_string() }),
    }
}

/// `decode_from_slice` under a decode limit that grows with the message.
///
/// bincode allocates a string's bytes (`vec![0; len]`) before reading them, so
/// without a limit a lying length in a few garbage bytes panics (capacity
/// overflow) or aborts the process (allocation failure). A limit is checked
/// before that allocation. Decoding claims at most 16 bytes (a `u128`) per
/// encoded byte, so 16 × the message length, rounded up to a power of 8, never
/// rejects a valid message and bounds what garbage can make us allocate.
fn decode_bounded<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<(T, usize), bincode::error::DecodeError> {
    let need = bytes.len().saturating_mul(16);
    macro_rules! bucket {
        ($($shift:literal)*) => {
            $(if need <= 1usize << $shift {
                return bincode::serde::decode_from_slice(bytes, config().with_limit::<{ 1usize << $shift }>());
            })*
        };
    }
    bucket!(12 15 18 21 24 27 30);
    #[cfg(target_pointer_width = "64")]
    bucket!(33 36 39);
    bincode::serde::decode_from_slice(bytes, config())
}

/// Called by a handle's `Serialize`: records `fd` for the message being encoded and
/// returns its index. Fails outside multiproc's own encoders (e.g. `serde_json`).
/// Not public API (handles' serde impls; re-exported only in the hidden `__private`).
#[doc(hidden)]
pub fn share_fd(fd: BorrowedFd<'_>) -> std::result::Result<u32, String> {
    FDS_OUT.with(|f| {
        let mut guard = f.borrow_mut();
        let Some(list) = guard.as_mut() else {
            return Err("this handle holds a file descriptor and can only be sent through multiproc \
                        (task arguments, Connection::send, Queue::put)"
                .to_string());
        };
        if let Some(i) = list.iter().position(|o| o.as_raw_fd() == fd.as_raw_fd()) {
            return Ok(i as u32);
        }
        if list.len() >= sys::socket::MAX_FDS {
            return Err(format!("a message can carry at most {} handles", sys::socket::MAX_FDS));
        }
        list.push(sys::fd::dup(fd).map_err(|e| format!("dup: {e}"))?);
        Ok((list.len() - 1) as u32)
    })
}

/// Called by a handle's `Deserialize`: a new fd for index `i` of the message being decoded.
/// The index comes from another process, so it is bounds-checked.
/// Not public API (handles' serde impls; re-exported only in the hidden `__private`).
#[doc(hidden)]
pub fn take_fd(i: u32) -> std::result::Result<OwnedFd, String> {
    FDS_IN.with(|f| {
        let guard = f.borrow();
        let Some(list) = guard.as_ref() else {
            return Err("a handle can only be decoded by multiproc".to_string());
        };
        let fd = list.get(i as usize).ok_or_else(|| format!("fd index {i} out of range ({} fds)", list.len()))?;
        sys::fd::dup(std::os::fd::AsFd::as_fd(fd)).map_err(|e| format!("dup: {e}"))
    })
}

/// The codec for `'static` types: bulk values (`Vec<u8>`, `String`,
/// `Box<[u8]>`, `Vec<f64>`, …, or a one-tuple of one) in one copy, every
/// other value as the untyped functions above encode it. The bytes are the
/// same either way, so a value written by one path is read by the other.
pub(crate) mod typed {
    use std::any::Any;
    use std::os::fd::OwnedFd;

    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::{EndToEnd, Payload, bulk};
    use crate::error::{Error, Result};

    /// As [`super::encode`].
    pub(crate) fn encode<T: Serialize + Any>(value: &T, what: &'static str) -> Result<Payload> {
        let mut bytes = Vec::new();
        let fds = encode_into(value, &mut bytes, what)?;
        Ok(Payload { bytes, fds })
    }

    /// As [`super::encode_into`].
    pub(crate) fn encode_into<T: Serialize + Any>(
        value: &T,
        buf: &mut Vec<u8>,
        what: &'static str,
    ) -> Result<Vec<OwnedFd>> {
        if bulk::put(value, buf) {
            return Ok(Vec::new());
        }
        super::encode_into(value, buf, what)
    }

    /// `values` laid end to end, as `super::encode_into(&EndToEnd(values), ..)` writes them.
    pub(crate) fn encode_end_to_end_into<T: Serialize + Any>(
        values: &[T],
        buf: &mut Vec<u8>,
        what: &'static str,
    ) -> Result<Vec<OwnedFd>> {
        if bulk::is_bulk::<T>() {
            for v in values {
                bulk::put(v, buf);
            }
            return Ok(Vec::new());
        }
        super::encode_into(&EndToEnd(values), buf, what)
    }

    /// As [`super::decode`].
    pub(crate) fn decode<T: DeserializeOwned + Any>(bytes: &[u8], fds: Vec<OwnedFd>, what: &'static str) -> Result<T> {
        match bulk::take::<T>(bytes) {
            None => super::decode(bytes, fds, what),
            Some(taken) => super::whole(taken, bytes.len(), what),
        }
    }

    /// As [`decode`], for a whole message without fds that the caller owns:
    /// a byte string is made in its buffer, without a second one.
    pub(crate) fn decode_owned<T: DeserializeOwned + Any>(bytes: Vec<u8>, what: &'static str) -> Result<T> {
        match bulk::take_owned::<T>(bytes) {
            Ok(taken) => taken.map_err(|reason| Error::Decode { what, reason }),
            Err(bytes) => decode(&bytes, Vec::new(), what),
        }
    }

    /// `T` is a byte string (`Vec<u8>`, `String`, `Box<[u8]>`, `Bytes`), made
    /// in the message's own buffer by [`decode_owned`] and [`decode_headed`].
    pub(crate) fn owned_bytes<T: Any>() -> bool {
        bulk::is_owned_bytes::<T>()
    }

    /// As [`decode_owned`] for a byte string (see [`owned_bytes`]) whose
    /// 8-byte length `head` the caller read apart from the rest of the
    /// message, `body`: no byte of `body` is moved.
    pub(crate) fn decode_headed<T: Any>(head: [u8; 8], body: Vec<u8>, what: &'static str) -> Result<T> {
        bulk::take_headed::<T>(head, body).map_err(|reason| Error::Decode { what, reason })
    }

    /// The length prefix and raw bytes of `value` if it takes the bulk path
    /// (its message is the one, then the other).
    pub(crate) fn bulk_parts<T: Any>(value: &T) -> Option<([u8; 8], &[u8])> {
        bulk::parts(value)
    }

    /// As [`super::decode_end_to_end_into`].
    pub(crate) fn decode_end_to_end_into<T: DeserializeOwned + Any>(
        bytes: &[u8],
        count: usize,
        out: &mut Vec<T>,
        what: &'static str,
    ) -> Result<usize> {
        if !bulk::is_bulk::<T>() {
            return super::decode_end_to_end_into(bytes, count, out, what);
        }
        out.reserve(count.min(1 << 16));
        let mut used = 0;
        for _ in 0..count {
            let rest = bytes.get(used..).unwrap_or_default();
            let taken = bulk::take::<T>(rest).unwrap_or_else(|| Err("not a bulk type".into()));
            let (v, n) = taken.map_err(|reason| Error::Decode { what, reason })?;
            out.push(v);
            used += n;
        }
        Ok(used)
    }
}
