//! Unit tests: the manager's wire format and frame reader on hostile bytes.

use std::os::fd::AsFd;

use std::time::Duration;

use super::server::{Call, Caller, Envelope, Reply, de, en, ok_reply, open_envelope};
use super::wire::Reader;
use crate::error::Error;
use crate::sys;

/// xorshift64*: deterministic noise.
fn noise(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

#[test]
fn replies_round_trip_every_status() {
    let errors = || [Error::Empty, Error::Full, Error::BrokenBarrier, Error::Remote("boom".into())];
    let back = |e: Error| de::<Reply<Vec<u8>>>(&en(&Reply::error(e)).unwrap()).unwrap().into_result();
    for (sent, expected) in errors().into_iter().zip(errors()) {
        let back = back(sent).unwrap_err();
        assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(&expected), "{back:?}");
    }
    let timeout = back(Error::Timeout(Duration::from_millis(3))).unwrap_err();
    assert!(matches!(timeout, Error::Timeout(d) if d == Duration::from_millis(3)));
    let other = back(Error::Closed("the pipe")).unwrap_err();
    assert!(matches!(&other, Error::Remote(m) if m.contains("the pipe")), "{other:?}");
    let ok = de::<Reply<Vec<u8>>>(&ok_reply(&vec![1u8, 2, 3]).unwrap()).unwrap();
    assert_eq!(ok.into_result().unwrap(), vec![1, 2, 3]);
}

#[test]
fn random_envelopes_and_replies_never_panic() {
    for seed in 0..500 {
        let bytes = noise(seed, (seed % 40) as usize);
        let _ = de::<Reply<Vec<u8>>>(&bytes);
        if let Ok((_, call)) = open_envelope(&bytes) {
            let _ = de::<Call<probe::Request>>(call);
        }
    }
}

/// A kind's protocol for the tests (its client side goes unused).
#[allow(dead_code)]
mod probe {
    use crate::error::Result;
    use crate::managers::protocol::protocol;
    use crate::managers::server::Caller;

    protocol! {
        fn put(key: u32, value: String) -> bool;
        fn len() -> u64;
    }

    pub(super) struct Probe;

    impl Serve for Probe {
        fn put(&self, _: &Caller<'_>, key: u32, value: String) -> Result<bool> {
            Ok(key == 7 && value == "x")
        }
        fn len(&self, _: &Caller<'_>) -> Result<u64> {
            Ok(42)
        }
    }
}

/// A typed call and a call by name (the arguments as a tuple) run the same
/// method; a misspelt name is an error that names it and the kind.
#[test]
fn typed_and_named_calls_reach_the_same_method() {
    let (_a, b) = sys::fd::socketpair().unwrap();
    let caller = Caller::new(b.as_fd());
    let run = |bytes: Vec<u8>| {
        let (id, call) = open_envelope(&bytes).unwrap();
        assert_eq!(id, 3);
        probe::serve("probe", &probe::Probe, &caller, call)
    };
    let typed = en(&Envelope { id: 3, call: Call::Typed(probe::Request::put { key: 7, value: "x".into() }) });
    let named =
        en(&Envelope { id: 3, call: Call::<()>::Named { method: "put".into(), args: en(&(7u32, "x")).unwrap() } });
    for request in [typed, named] {
        let out = run(request.unwrap()).unwrap();
        assert!(de::<Reply<bool>>(&out).unwrap().into_result().unwrap());
    }
    let len = en(&Envelope { id: 3, call: Call::<()>::Named { method: "len".into(), args: Vec::new() } }).unwrap();
    assert_eq!(de::<Reply<u64>>(&run(len).unwrap()).unwrap().into_result().unwrap(), 42);
    let bad = en(&Envelope { id: 3, call: Call::<()>::Named { method: "lenn".into(), args: Vec::new() } }).unwrap();
    let err = run(bad).unwrap_err();
    assert!(matches!(&err, Error::Remote(m) if m.contains("`lenn`") && m.contains("`probe`")), "{err:?}");
    let garbage = en(&Envelope { id: 3, call: [0xffu8; 3] }).unwrap();
    assert!(matches!(run(garbage), Err(Error::Decode { .. })));
}

#[test]
fn reader_rejects_oversized_and_truncated_frames() {
    let (a, b) = sys::fd::socketpair().unwrap();
    let head = crate::codec::frame::header(1 << 31, 0).unwrap();
    sys::socket::send_all(a.as_fd(), &head, &[], &[]).unwrap();
    let r = Reader::default().read(b.as_fd(), 1 << 20);
    assert!(matches!(r, Err(Error::MessageTooLarge { .. })), "{r:?}");

    let (a, b) = sys::fd::socketpair().unwrap();
    let head = crate::codec::frame::header(100, 0).unwrap();
    sys::socket::send_all(a.as_fd(), &head, b"only a few bytes", &[]).unwrap();
    drop(a);
    let r = Reader::default().read(b.as_fd(), 1 << 20);
    assert!(matches!(r, Err(Error::Decode { .. })), "{r:?}");
}

#[test]
fn reader_survives_random_streams() {
    for seed in 0..200u64 {
        let (a, b) = sys::fd::socketpair().unwrap();
        let bytes = noise(seed, 1 + (seed as usize * 37) % 3000);
        sys::socket::send_all(a.as_fd(), &bytes, &[], &[]).unwrap();
        drop(a);
        let mut reader = Reader::default();
        // Every read ends: a frame, or an error; end of stream stops the loop.
        for _ in 0..bytes.len() + 1 {
            if reader.read(b.as_fd(), 1 << 16).is_err() {
                break;
            }
        }
    }
}

#[test]
fn reader_splits_back_to_back_frames() {
    let (a, b) = sys::fd::socketpair().unwrap();
    let mut stream = Vec::new();
    for body in [&b"one"[..], b"", b"three"] {
        stream.extend(crate::codec::frame::header(body.len(), 0).unwrap());
        stream.extend(body);
    }
    sys::socket::send_all(a.as_fd(), &stream, &[], &[]).unwrap();
    let mut reader = Reader::default();
    assert_eq!(reader.read(b.as_fd(), 100).unwrap(), b"one");
    assert_eq!(reader.read(b.as_fd(), 100).unwrap(), b"");
    assert_eq!(reader.read(b.as_fd(), 100).unwrap(), b"three");
    drop(a);
    assert!(matches!(reader.read(b.as_fd(), 100), Err(Error::Closed(_))));
}

struct Adder {
    total: u64,
}

#[multiproc::managed]
impl Adder {
    fn add(&mut self, by: u64) -> u64 {
        self.total += by;
        self.total
    }
}

/// `Managed::dispatch` (by name, without a server) still returns the
/// method's encoded result, and names a method the type does not have.
#[test]
fn dispatch_by_name_returns_the_encoded_result() {
    use super::Managed;
    let mut a = Adder { total: 1 };
    let out = a.dispatch("add", &en(&(2u64,)).unwrap()).unwrap();
    assert_eq!(de::<u64>(&out).unwrap(), 3);
    let err = a.dispatch("sub", &[]).unwrap_err();
    assert!(matches!(&err, Error::Remote(m) if m.contains("`sub`") && m.contains("Adder")), "{err:?}");
}
