//! Unit tests: the manager's wire format and frame reader on hostile bytes.

use std::os::fd::AsFd;

use super::server::{parse_reply, reply, request};
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
    for (sent, expected) in errors().into_iter().zip(errors()) {
        let back = parse_reply(reply(Err(sent))).unwrap_err();
        assert_eq!(std::mem::discriminant(&back), std::mem::discriminant(&expected), "{back:?}");
    }
    let timeout = parse_reply(reply(Err(Error::Timeout(std::time::Duration::from_millis(3))))).unwrap_err();
    assert!(matches!(timeout, Error::Timeout(d) if d == std::time::Duration::from_millis(3)));
    assert_eq!(parse_reply(reply(Ok(vec![1, 2, 3]))).unwrap(), vec![1, 2, 3]);
    assert!(request(1, &"x".repeat(300), &[]).is_err(), "method names are at most 255 bytes");
}

#[test]
fn random_replies_never_panic() {
    for seed in 0..500 {
        let bytes = noise(seed, (seed % 40) as usize);
        let _ = parse_reply(bytes);
    }
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
