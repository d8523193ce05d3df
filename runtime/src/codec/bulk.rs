//! The bulk fast path: byte strings and vectors of plain numbers in one copy.
//!
//! serde moves a `Vec<u8>` (or `Vec<f64>`, …) one element at a time: a call
//! and a bounds check per byte, 1–2 GB/s. For the types listed in
//! [`bulk_types`], bincode's fixint little-endian encoding is a `u64` element
//! count followed by the elements' little-endian bytes, which on a
//! little-endian machine are exactly the bytes the value holds in memory. So
//! when such a value (or a one-tuple of one: a task's single argument) is the
//! whole message, it is written with one `memcpy` and read back with one,
//! giving the very bytes bincode would: either side may take either path.
//!
//! The types are told apart by [`TypeId`], so only `'static` types qualify
//! (every owned type does); [`Any`] downcasting does the casts, no `unsafe`.

use std::any::{Any, TypeId};

use super::bytes::Bytes;
use crate::sys;

/// A type whose bincode fixint encoding is a `u64` count, then raw bytes.
trait Bulk: Any + Sized {
    /// Bytes per element.
    const SIZE: usize;
    /// The elements' bytes, as they lie in memory.
    fn raw(&self) -> &[u8];
    /// The value whose elements are `raw` (its length a multiple of `SIZE`).
    fn build(raw: &[u8]) -> Result<Self, String>;
}

/// Calls `$m!(type, …)` with every bulk type: bytes and strings everywhere,
/// vectors of wider numbers only where memory order is bincode's (little-endian).
macro_rules! bulk_types {
    ($m:ident) => {
        $m!(Vec<u8>, Box<[u8]>, String, Box<str>, Vec<i8>, Box<[i8]>, Bytes);
        #[cfg(target_endian = "little")]
        $m!(
            Vec<u16>,
            Vec<u32>,
            Vec<u64>,
            Vec<i16>,
            Vec<i32>,
            Vec<i64>,
            Vec<f32>,
            Vec<f64>,
            Box<[u16]>,
            Box<[u32]>,
            Box<[u64]>,
            Box<[i16]>,
            Box<[i32]>,
            Box<[i64]>,
            Box<[f32]>,
            Box<[f64]>
        );
    };
}

macro_rules! impl_numbers {
    ($($p:ty)*) => {$(
        impl Bulk for Vec<$p> {
            const SIZE: usize = size_of::<$p>();
            fn raw(&self) -> &[u8] {
                bytemuck::cast_slice(self)
            }
            fn build(raw: &[u8]) -> Result<Self, String> {
                Ok(sys::mem::vec_from_bytes(raw))
            }
        }
        impl Bulk for Box<[$p]> {
            const SIZE: usize = size_of::<$p>();
            fn raw(&self) -> &[u8] {
                bytemuck::cast_slice(self)
            }
            fn build(raw: &[u8]) -> Result<Self, String> {
                Ok(sys::mem::vec_from_bytes(raw).into_boxed_slice())
            }
        }
    )*};
}
impl_numbers!(u8 i8);
#[cfg(target_endian = "little")]
impl_numbers!(u16 u32 u64 i16 i32 i64 f32 f64);

impl Bulk for String {
    const SIZE: usize = 1;
    fn raw(&self) -> &[u8] {
        self.as_bytes()
    }
    fn build(raw: &[u8]) -> Result<Self, String> {
        String::from_utf8(raw.to_vec()).map_err(|e| format!("a string that is not UTF-8: {}", e.utf8_error()))
    }
}

impl Bulk for Bytes {
    const SIZE: usize = 1;
    fn raw(&self) -> &[u8] {
        &self.0
    }
    fn build(raw: &[u8]) -> Result<Self, String> {
        Ok(Bytes(raw.to_vec()))
    }
}

impl Bulk for Box<str> {
    const SIZE: usize = 1;
    fn raw(&self) -> &[u8] {
        self.as_bytes()
    }
    fn build(raw: &[u8]) -> Result<Self, String> {
        String::build(raw).map(String::into_boxed_str)
    }
}

/// Every bulk type, and the one-tuple of each, is a `Vec`, a `String` or a
/// box of a slice: 16 or 24 bytes on 64-bit targets. A check the compiler
/// folds away, so other types skip the `TypeId` comparisons outright.
const fn may_be_bulk<T>() -> bool {
    let n = size_of::<T>();
    n == size_of::<Vec<u8>>() || n == size_of::<Box<[u8]>>()
}

/// Whether `T` takes the bulk path.
pub(super) fn is_bulk<T: Any>() -> bool {
    if !may_be_bulk::<T>() {
        return false;
    }
    let id = TypeId::of::<T>();
    macro_rules! check {
        ($($t:ty),*) => {$(
            if id == TypeId::of::<$t>() || id == TypeId::of::<($t,)>() {
                return true;
            }
        )*};
    }
    bulk_types!(check);
    false
}

/// The element count and raw bytes of `v`, if `T` is a bulk type (or a
/// one-tuple of one).
fn view<T: Any>(v: &T) -> Option<(usize, &[u8])> {
    if !may_be_bulk::<T>() {
        return None;
    }
    let any: &dyn Any = v;
    macro_rules! try_view {
        ($($t:ty),*) => {$(
            if let Some(x) = any.downcast_ref::<$t>() {
                return Some((x.raw().len() / <$t as Bulk>::SIZE, x.raw()));
            }
            if let Some((x,)) = any.downcast_ref::<($t,)>() {
                return Some((x.raw().len() / <$t as Bulk>::SIZE, x.raw()));
            }
        )*};
    }
    bulk_types!(try_view);
    None
}

/// Appends `v` as bincode would (count, then bytes) if it is a bulk value;
/// returns whether it was.
#[doc(hidden)]
pub fn put<T: Any>(v: &T, buf: &mut Vec<u8>) -> bool {
    let Some((count, raw)) = view(v) else { return false };
    buf.reserve(8 + raw.len());
    buf.extend_from_slice(&(count as u64).to_le_bytes());
    buf.extend_from_slice(raw);
    true
}

/// The length prefix and the raw bytes of `v` (the message is the one, then
/// the other), if it is a bulk value: for writers that copy them straight
/// into place, without first joining them.
pub(super) fn parts<T: Any>(v: &T) -> Option<([u8; 8], &[u8])> {
    view(v).map(|(count, raw)| ((count as u64).to_le_bytes(), raw))
}

/// A whole message of a byte string's length and bytes, made into that
/// byte string in its own buffer (the bytes moved down over the length).
fn reuse(mut bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    let Some(head) = bytes.first_chunk::<8>().copied() else {
        return Err(format!("the message ends inside a length ({} of 8 bytes)", bytes.len()));
    };
    bytes.copy_within(8.., 0);
    bytes.truncate(bytes.len() - 8);
    checked(head, bytes)
}

/// A byte string's bytes (`body`) whose length `head` was read apart.
fn checked(head: [u8; 8], body: Vec<u8>) -> Result<Vec<u8>, String> {
    let (count, have) = (u64::from_le_bytes(head), body.len() as u64);
    if count < have {
        return Err(format!("{} trailing bytes", have - count));
    }
    if count > have {
        return Err(format!("a length of {count} elements of 1 bytes, but only {have} bytes follow"));
    }
    Ok(body)
}

/// `T` is a byte string that [`take_owned`] and [`take_headed`] make in
/// the message's own buffer: `Vec<u8>`, `String`, `Box<[u8]>` or `Bytes`.
pub(super) fn is_owned_bytes<T: Any>() -> bool {
    let id = TypeId::of::<T>();
    [TypeId::of::<Vec<u8>>(), TypeId::of::<String>(), TypeId::of::<Box<[u8]>>(), TypeId::of::<Bytes>()].contains(&id)
}

/// Decodes a whole message that the caller owns as a `T` in the message's own
/// buffer when `T` is `Vec<u8>`, `String`, `Box<[u8]>` or `Bytes`: `Err(bytes)` (given
/// back) for other types.
pub(super) fn take_owned<T: Any>(bytes: Vec<u8>) -> Result<Result<T, String>, Vec<u8>> {
    if !is_owned_bytes::<T>() {
        return Err(bytes);
    }
    Ok(reuse(bytes).and_then(owned_as))
}

/// As [`take_owned`], for a message whose 8-byte length (`head`) the caller
/// kept apart from the rest (`body`), so the bytes need not move down; `T`
/// is one of [`is_owned_bytes`]'s types.
pub(super) fn take_headed<T: Any>(head: [u8; 8], body: Vec<u8>) -> Result<T, String> {
    checked(head, body).and_then(owned_as)
}

/// A byte string made into `T`, one of [`is_owned_bytes`]'s types.
fn owned_as<T: Any>(v: Vec<u8>) -> Result<T, String> {
    let id = TypeId::of::<T>();
    let moved = if id == TypeId::of::<String>() {
        cast(String::from_utf8(v).map_err(|e| format!("a string that is not UTF-8: {}", e.utf8_error()))?)
    } else if id == TypeId::of::<Box<[u8]>>() {
        cast(v.into_boxed_slice())
    } else if id == TypeId::of::<Bytes>() {
        cast(Bytes(v))
    } else {
        cast(v)
    };
    moved.ok_or_else(|| "a bulk value changed type".to_string())
}

/// Moves `a` into a `B` when they are the same type.
fn cast<A: Any, B: Any>(a: A) -> Option<B> {
    let mut slot = Some(a);
    (&mut slot as &mut dyn Any).downcast_mut::<Option<B>>()?.take()
}

/// Reads one `B` from the front of `bytes`; returns it and the bytes used.
/// The count is checked against the bytes there before anything is allocated.
fn take_one<B: Bulk>(bytes: &[u8]) -> Result<(B, usize), String> {
    let Some((head, rest)) = bytes.split_first_chunk::<8>() else {
        return Err(format!("the message ends inside a length ({} of 8 bytes)", bytes.len()));
    };
    let count = u64::from_le_bytes(*head);
    let need = usize::try_from(count).ok().and_then(|c| c.checked_mul(B::SIZE));
    match need {
        Some(need) if need <= rest.len() => Ok((B::build(&rest[..need])?, 8 + need)),
        _ => Err(format!("a length of {count} elements of {} bytes, but only {} bytes follow", B::SIZE, rest.len())),
    }
}

/// Reads one bulk `T` from the front of a message: the value and the bytes
/// used, or why the bytes are not one (see [`take`]).
#[doc(hidden)]
pub type TakeBulk<T> = fn(&[u8]) -> Option<Result<(T, usize), String>>;

/// [`take`] for `T`, if `T` takes the bulk path: for readers generic over
/// types without `'static`, handed this by code that knows `T`.
#[doc(hidden)]
pub fn taker<T: Any>() -> Option<TakeBulk<T>> {
    if is_bulk::<T>() { Some(take::<T>) } else { None }
}

/// Reads one `T` from the front of `bytes` if `T` is a bulk type (or a
/// one-tuple of one): `None` for other types, else the value and the bytes
/// used, or why the bytes are not one.
#[doc(hidden)]
pub fn take<T: Any>(bytes: &[u8]) -> Option<Result<(T, usize), String>> {
    if !may_be_bulk::<T>() {
        return None;
    }
    let id = TypeId::of::<T>();
    macro_rules! try_take {
        ($($t:ty),*) => {$(
            if id == TypeId::of::<$t>() {
                return cast_taken(take_one::<$t>(bytes));
            }
            if id == TypeId::of::<($t,)>() {
                return cast_taken(take_one::<$t>(bytes).map(|(v, n)| ((v,), n)));
            }
        )*};
    }
    bulk_types!(try_take);
    None
}

/// `taken`, cast to the `T` it is (the caller compared their `TypeId`s).
fn cast_taken<A: Any, T: Any>(taken: Result<(A, usize), String>) -> Option<Result<(T, usize), String>> {
    match taken {
        Ok((v, n)) => cast(v).map(|t| Ok((t, n))),
        Err(e) => Some(Err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::{is_bulk, put, take};

    #[test]
    fn only_the_listed_types_are_bulk() {
        assert!(is_bulk::<Vec<u8>>() && is_bulk::<(Vec<u8>,)>() && is_bulk::<String>());
        assert!(is_bulk::<Box<[u8]>>() && is_bulk::<Box<str>>() && is_bulk::<(Box<[u8]>,)>());
        assert!(is_bulk::<crate::Bytes>() && is_bulk::<(crate::Bytes,)>());
        assert!(!is_bulk::<Vec<bool>>() && !is_bulk::<Vec<char>>() && !is_bulk::<Vec<String>>());
        assert!(!is_bulk::<(Vec<u8>, u8)>() && !is_bulk::<u64>() && !is_bulk::<Option<Vec<u8>>>());
        let mut buf = Vec::new();
        assert!(!put(&vec![true], &mut buf) && buf.is_empty());
        assert!(take::<Vec<char>>(&[0; 8]).is_none());
    }

    #[test]
    fn lying_counts_are_errors() {
        let mut bad = u64::MAX.to_le_bytes().to_vec();
        bad.extend_from_slice(&[1, 2, 3]);
        assert!(take::<Vec<u8>>(&bad).unwrap().is_err());
        assert!(take::<Vec<f64>>(&bad).unwrap().is_err());
        let mut short = 2u64.to_le_bytes().to_vec();
        short.extend_from_slice(&[0; 15]);
        assert!(take::<Vec<u64>>(&short).unwrap().is_err());
        assert!(take::<Vec<u8>>(&[1, 0, 0]).unwrap().is_err());
        assert!(take::<String>(&[1, 0, 0, 0, 0, 0, 0, 0, 0xff]).unwrap().is_err());
    }

    /// A reproducible stream of pseudo-random numbers (xorshift64*).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    /// Lengths to try: empty, one, odd ones, around powers of two, random.
    fn lengths(rng: &mut Rng) -> Vec<usize> {
        let mut v = vec![0, 1, 2, 3, 7, 15, 16, 17, 255, 4095, 4096, 4097, 65_537];
        v.extend((0..20).map(|_| (rng.next() % 3000) as usize));
        v
    }

    /// For one value: the fast path writes the bytes plain bincode writes, each
    /// path reads what either wrote, from a buffer at every alignment, alone
    /// and as a one-tuple, and laid end to end.
    fn check<T>(v: T)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug + Clone + 'static,
    {
        use crate::codec::{self, typed};
        let slow = codec::encode(&v, "t").unwrap().bytes;
        let plain = bincode::serde::encode_to_vec(&v, bincode::config::standard().with_fixed_int_encoding()).unwrap();
        assert_eq!(slow, plain);
        let fast = typed::encode(&v, "t").unwrap().bytes;
        assert_eq!(fast, slow, "wire bytes differ for {}", std::any::type_name::<T>());
        let one = typed::encode(&(v.clone(),), "t").unwrap().bytes;
        assert_eq!(one, slow);
        for off in 0..8 {
            let mut shifted = vec![0xa5u8; off];
            shifted.extend_from_slice(&fast);
            let at = &shifted[off..];
            assert_eq!(typed::decode::<T>(at, Vec::new(), "t").unwrap(), v);
            assert_eq!(typed::decode::<(T,)>(at, Vec::new(), "t").unwrap().0, v);
            assert_eq!(codec::decode::<T>(at, Vec::new(), "t").unwrap(), v);
        }
        let three = [v.clone(), v.clone(), v.clone()];
        let mut batch = Vec::new();
        typed::encode_end_to_end_into(&three, &mut batch, "t").unwrap();
        let mut slow_batch = Vec::new();
        codec::encode_into(&codec::EndToEnd(&three), &mut slow_batch, "t").unwrap();
        assert_eq!(batch, slow_batch);
        let mut out = Vec::new();
        assert_eq!(typed::decode_end_to_end_into::<T>(&batch, 3, &mut out, "t").unwrap(), batch.len());
        assert_eq!(out, three);
        let mut trailing = fast.clone();
        trailing.push(0);
        assert!(typed::decode::<T>(&trailing, Vec::new(), "t").is_err());
        if fast.len() > 8 {
            assert!(typed::decode::<T>(&fast[..fast.len() - 1], Vec::new(), "t").is_err());
        }
    }

    macro_rules! number_roundtrips {
        ($($name:ident: $p:ty => $make:expr;)*) => {$(
            #[test]
            fn $name() {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ size_of::<$p>() as u64);
                for n in lengths(&mut rng) {
                    let make: fn(u64) -> $p = $make;
                    let v: Vec<$p> = (0..n).map(|_| make(rng.next())).collect();
                    check(v.clone().into_boxed_slice());
                    check(v);
                }
            }
        )*};
    }

    number_roundtrips! {
        roundtrip_vec_u8: u8 => |r| r as u8;
        roundtrip_vec_i8: i8 => |r| r as i8;
        roundtrip_vec_u16: u16 => |r| r as u16;
        roundtrip_vec_i16: i16 => |r| r as i16;
        roundtrip_vec_u32: u32 => |r| r as u32;
        roundtrip_vec_i32: i32 => |r| r as i32;
        roundtrip_vec_u64: u64 => |r| r;
        roundtrip_vec_i64: i64 => |r| r as i64;
        roundtrip_vec_f32: f32 => |r| (r as i32) as f32 * 0.37;
        roundtrip_vec_f64: f64 => |r| (r as i64) as f64 * 1e-3;
    }

    #[test]
    fn roundtrip_strings() {
        let mut rng = Rng(42);
        let alphabet: Vec<char> = "aZ9 é€𝄞\n\u{0}".chars().collect();
        for n in lengths(&mut rng) {
            let s: String = (0..n).map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize]).collect();
            check(s.clone().into_boxed_str());
            check(crate::Bytes(s.clone().into_bytes()));
            check(s);
        }
    }

    #[test]
    fn owned_messages_decode_in_place() {
        use super::take_owned;
        let msg = |v: &[u8]| crate::codec::encode(&v.to_vec(), "t").unwrap().bytes;
        for n in [0usize, 1, 7, 4097] {
            let v: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            assert_eq!(take_owned::<Vec<u8>>(msg(&v)).unwrap().unwrap(), v);
            assert_eq!(&*take_owned::<Box<[u8]>>(msg(&v)).unwrap().unwrap(), &v[..]);
            assert_eq!(take_owned::<crate::Bytes>(msg(&v)).unwrap().unwrap().0, v);
        }
        assert_eq!(take_owned::<String>(msg(b"hi")).unwrap().unwrap(), "hi");
        assert!(take_owned::<String>(msg(&[0xff])).unwrap().is_err());
        let mut long = msg(b"abc");
        long.push(0);
        assert!(take_owned::<Vec<u8>>(long.clone()).unwrap().is_err());
        assert!(take_owned::<Vec<u8>>(long[..long.len() - 2].to_vec()).unwrap().is_err());
        assert!(take_owned::<Vec<u8>>(vec![1, 2]).unwrap().is_err());
        assert_eq!(take_owned::<Vec<u64>>(vec![1, 2]).unwrap_err(), vec![1, 2]);
    }

    #[test]
    fn floats_keep_their_bits() {
        // NaN != NaN, so compare bits: the copy must not canonicalise them.
        let v = vec![f64::NAN, -0.0, f64::INFINITY, f64::from_bits(0x7ff0_0000_0000_0001)];
        let bytes = crate::codec::typed::encode(&v, "t").unwrap().bytes;
        let back: Vec<f64> = crate::codec::typed::decode(&bytes, Vec::new(), "t").unwrap();
        assert_eq!(
            back.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
            v.iter().map(|f| f.to_bits()).collect::<Vec<_>>()
        );
    }
}
