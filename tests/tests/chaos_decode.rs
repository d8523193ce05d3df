//! The decode fuzz loop: every typed message a user can receive (through a
//! `Connection` or a `Queue`) is taken as the sender wrote it, then truncated
//! at every length, bit-flipped and replaced by random bytes. Each mutated
//! message must decode to a value or to an error, never panic, never hang, and
//! leave the channel usable for the next good message. Values holding handles
//! (a `Connection`, a `Queue`) are included: their fd indexes are mutated too.

use std::collections::HashMap;

use multiproc::{Connection, Queue};
use serde::{Deserialize, Serialize};
use tests::{Rng, leak_guard};

/// A message with every shape serde gives bincode: enums, options, maps,
/// strings, floats, nested sequences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Message {
    Empty,
    Text(String),
    Pairs(Vec<(u8, i64)>),
    Record { id: u64, tags: HashMap<String, Vec<f64>>, note: Option<Box<Message>> },
}

fn sample() -> Message {
    let mut tags = HashMap::new();
    tags.insert("alpha".to_string(), vec![1.5, -2.25, f64::MAX]);
    tags.insert(String::new(), vec![]);
    Message::Record { id: u64::MAX - 7, tags, note: Some(Box::new(Message::Pairs(vec![(1, -1), (255, i64::MIN)]))) }
}

/// Mutations of `good`: every truncation, `flips` single-bit flips, random
/// bytes of several lengths, and lengths rewritten to huge values.
fn mutations(good: &[u8], rng: &mut Rng, flips: usize) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = (0..good.len()).map(|n| good[..n].to_vec()).collect();
    for _ in 0..flips {
        let mut m = good.to_vec();
        let bit = (rng.next_u64() as usize) % (m.len() * 8);
        m[bit / 8] ^= 1 << (bit % 8);
        out.push(m);
    }
    for n in [1, 3, 8, 64, 1000] {
        out.push(rng.bytes(n));
    }
    for at in (0..good.len().saturating_sub(8)).step_by(5) {
        let mut m = good.to_vec();
        m[at..at + 8].copy_from_slice(&(u64::MAX >> (rng.next_u64() % 8)).to_le_bytes());
        out.push(m);
    }
    out
}

/// The wire bytes of `value` as `Connection::send` writes them.
fn wire_of<T: Serialize + serde::de::DeserializeOwned + 'static>(value: &T) -> Vec<u8> {
    let (a, b) = multiproc::pipe::<T>().unwrap();
    a.send(value).unwrap();
    b.recv_bytes().unwrap()
}

/// Feeds every mutation of `good` to `recv` through `conn`, checking that the
/// channel still carries `good` afterwards; returns (messages, decode errors).
fn fuzz_connection<T>(good: &T, rng: &mut Rng) -> (usize, usize)
where
    T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug + 'static,
{
    let (a, b) = multiproc::pipe::<T>().unwrap();
    let (mut runs, mut errors) = (0, 0);
    for m in mutations(&wire_of(good), rng, 400) {
        a.send_bytes(&m).unwrap();
        runs += 1;
        errors += usize::from(b.recv().is_err());
    }
    a.send(good).unwrap();
    assert_eq!(&b.recv().unwrap(), good, "the connection is unusable after mutated messages");
    (runs, errors)
}

#[multiproc::test]
fn mutated_typed_messages_are_errors_not_panics_on_a_connection() {
    let _g = leak_guard();
    let mut rng = Rng(0x5eed_0001);
    let (runs, errors) = fuzz_connection(&sample(), &mut rng);
    assert!(errors > runs / 2, "most mutations must be refused: {errors} of {runs}");
    let (runs, errors) = fuzz_connection(&vec!["x".repeat(40); 5], &mut rng);
    assert!(errors > 0 && runs > 200, "{errors} of {runs}");
    let (_, errors) = fuzz_connection(&(7u32, 'λ', true, -0.5f32, Some(vec![0u16; 9])), &mut rng);
    assert!(errors > 0);
}

/// The bulk types (one copy each way, a decoder of their own) refuse lying
/// lengths, short bodies and (for `String`) bad UTF-8 just as serde does.
#[multiproc::test]
fn mutated_bulk_values_are_errors_not_panics() {
    let _g = leak_guard();
    let mut rng = Rng(0x5eed_0004);
    let (_, errors) = fuzz_connection(&(0..200u8).collect::<Vec<u8>>(), &mut rng);
    assert!(errors > 200, "{errors}");
    let (_, errors) = fuzz_connection(&vec![1.5f64, -0.0, f64::MIN_POSITIVE, 1e300], &mut rng);
    assert!(errors > 30, "{errors}");
    let (_, errors) = fuzz_connection(&"ünïcödé ".repeat(9), &mut rng);
    assert!(errors > 80, "{errors}");
    let (_, errors) = fuzz_connection(&vec![u64::MAX; 7].into_boxed_slice(), &mut rng);
    assert!(errors > 50, "{errors}");
}

#[multiproc::test]
fn mutated_handles_never_take_a_wrong_fd() {
    let _g = leak_guard();
    let mut rng = Rng(0x5eed_0002);
    let (inner, _keep) = multiproc::pipe::<u32>().unwrap();
    let (a, b) = multiproc::pipe::<Connection<u32>>().unwrap();
    a.send(&inner).unwrap();
    let good = b.recv_bytes().unwrap();
    for m in mutations(&good, &mut rng, 200) {
        // Sent without fds: whatever index the bytes claim, there is no fd to
        // take, so a handle inside can only be an error.
        a.send_bytes(&m).unwrap();
        assert!(b.recv().is_err(), "a handle decoded without its fd from {m:?}");
    }
    a.send(&inner).unwrap();
    let back = b.recv().unwrap();
    back.send(&5).unwrap();
    assert_eq!(_keep.recv().unwrap(), 5);
}

#[multiproc::test]
fn mutated_queue_items_are_errors_and_the_queue_goes_on() {
    let _g = leak_guard();
    let mut rng = Rng(0x5eed_0003);
    let q: Queue<Message> = Queue::new().unwrap();
    let good = wire_of(&sample());
    let mut errors = 0;
    let all = mutations(&good, &mut rng, 300);
    for m in &all {
        q.put_bytes(m).unwrap();
        errors += usize::from(q.get().is_err());
    }
    assert!(errors > all.len() / 2, "{errors} of {}", all.len());
    q.put(sample()).unwrap();
    assert_eq!(q.get().unwrap(), sample());
    assert_eq!(q.qsize(), 0);
}
