//! Unit tests: the manager's wire format and frame reader on hostile bytes.

use std::os::fd::AsFd;

use std::time::Duration;

use super::server::{Call, Caller, Envelope, Reply, de, en};
use super::wire::Reader;
use crate::error::{Error, Result};
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
    let round_trip = |r: Result<Vec<u8>>| de::<Reply>(&en(&Reply::from(r)).unwrap()).unwrap().into_result();
    for (sent, expected) in errors().into_iter().zip(errors()) {
        let back = round_trip(Err(sent)).unwrap_err();
        assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(&expected), "{back:?}");
    }
    let timeout = round_trip(Err(Error::Timeout(Duration::from_millis(3)))).unwrap_err();
    assert!(matches!(timeout, Error::Timeout(d) if d == Duration::from_millis(3)));
    assert_eq!(round_trip(Ok(vec![1, 2, 3])).unwrap(), vec![1, 2, 3]);
    let other = round_trip(Err(Error::Closed("the pipe"))).unwrap_err();
    assert!(matches!(&other, Error::Remote(m) if m.contains("the pipe")), "{other:?}");
}

#[test]
fn random_envelopes_and_replies_never_panic() {
    for seed in 0..500 {
        let bytes = noise(seed, (seed % 40) as usize);
        let _ = de::<Reply>(&bytes);
        let _ = de::<Envelope>(&bytes);
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
    let typed = Call::Typed(en(&probe::Request::put { key: 7, value: "x".into() }).unwrap());
    let named = Call::Named { method: "put".into(), args: en(&(7u32, "x")).unwrap() };
    for call in [typed, named] {
        let call = de::<Envelope>(&en(&Envelope { id: 3, call }).unwrap()).unwrap().call;
        let out = probe::serve("probe", &probe::Probe, &caller, call).unwrap();
        assert!(de::<bool>(&out).unwrap());
    }
    let len = Call::Named { method: "len".into(), args: en(&()).unwrap() };
    assert_eq!(de::<u64>(&probe::serve("probe", &probe::Probe, &caller, len).unwrap()).unwrap(), 42);
    let bad = Call::Named { method: "lenn".into(), args: Vec::new() };
    let err = probe::serve("probe", &probe::Probe, &caller, bad).unwrap_err();
    assert!(matches!(&err, Error::Remote(m) if m.contains("`lenn`") && m.contains("`probe`")), "{err:?}");
    let garbage = Call::Typed(vec![0xff; 3]);
    assert!(matches!(probe::serve("probe", &probe::Probe, &caller, garbage), Err(Error::Decode { .. })));
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
