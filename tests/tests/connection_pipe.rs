//! Pipes, connections and `wait` (PARITY.md section 5).

use std::time::{Duration, Instant};

use multiproc::connection::wait;
use multiproc::{Connection, Error, ExitStatus, pipe, pipe_oneway};
use serde::{Deserialize, Serialize};
use tests::{DEADLINE, METHODS, leak_guard};

/// Echoes every byte message back until the peer closes.
#[multiproc::task]
fn echo_bytes(conn: Connection<Vec<u8>>) {
    while let Ok(msg) = conn.recv_bytes() {
        conn.send_bytes(&msg).unwrap();
    }
}

/// Echoes typed messages back as typed messages, and answers a byte message
/// as raw bytes: bulk values cross each way as bincode would write them.
#[multiproc::task]
fn echo_typed(bytes: Connection<Vec<u8>>, floats: Connection<Vec<f64>>, text: Connection<String>) {
    while let Ok(v) = bytes.recv() {
        let f = floats.recv().unwrap();
        let s = text.recv().unwrap();
        bytes.send(&v).unwrap();
        floats.send(&f).unwrap();
        text.send(&s).unwrap();
    }
}

/// `_TestConnection.test_connection`'s objects and its 16 MiB message, for the
/// types that skip serde (byte vectors, number vectors, strings): odd and
/// empty lengths through a child and back, and the same bytes as serde's.
#[multiproc::test]
fn test_connection_bulk_values_through_a_child() {
    let _g = leak_guard();
    let lengths = [0usize, 1, 3, 4097, (16 << 20) + 5];
    for m in METHODS {
        let (b1, b2) = pipe::<Vec<u8>>().unwrap();
        let (f1, f2) = pipe::<Vec<f64>>().unwrap();
        let (t1, t2) = pipe::<String>().unwrap();
        let mut p = multiproc::get_context(m).process(echo_typed, (b2, f2, t2)).unwrap();
        p.start().unwrap();
        for &n in &lengths {
            let v: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let f: Vec<f64> = (0..n.min(1 << 16)).map(|i| i as f64 * -0.5).collect();
            let s: String = (0..n.min(1 << 16)).map(|i| ['a', 'é', '€', '𝄞'][i % 4]).collect();
            let sender = {
                let (b1, f1, t1) = (b1.try_clone().unwrap(), f1.try_clone().unwrap(), t1.try_clone().unwrap());
                let (v, f, s) = (v.clone(), f.clone(), s.clone());
                std::thread::spawn(move || {
                    b1.send(&v).unwrap();
                    f1.send(&f).unwrap();
                    t1.send(&s).unwrap();
                })
            };
            assert_eq!(b1.recv().unwrap(), v, "{m}: {n} bytes");
            assert_eq!(f1.recv().unwrap(), f, "{m}: {n} floats");
            assert_eq!(t1.recv().unwrap(), s, "{m}: a string of {n} chars");
            sender.join().unwrap();
        }
        // A typed send is the bytes serde would write: read raw, they decode as plain bincode.
        let (x, y) = pipe::<Vec<u16>>().unwrap();
        x.send(&vec![1u16, 0x0203]).unwrap();
        assert_eq!(y.recv_bytes().unwrap(), [2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3, 2]);
        drop((b1, f1, t1));
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)), "{m}");
    }
}

#[test]
fn objects_round_trip() {
    let _g = leak_guard();
    let (a, b) = pipe::<(Vec<i32>, f64, Option<()>, String)>().unwrap();
    let v = (vec![1, -2], 2.25, None, "ünïcode".to_string());
    a.send(&v).unwrap();
    assert_eq!(b.recv().unwrap(), v);
    b.send(&v).unwrap();
    assert_eq!(a.recv().unwrap(), v, "a duplex pipe works both ways");
    // Values that decode to much more memory than they take on the wire.
    let (a, b) = pipe::<(Vec<u128>, Vec<String>, Vec<()>)>().unwrap();
    let v = (vec![1u128; 10_000], vec![String::new(); 10_000], vec![(); 10_000]);
    a.send(&v).unwrap();
    assert_eq!(b.recv().unwrap(), v);
}

#[test]
fn bytes_round_trip_and_16_mib_message() {
    let _g = leak_guard();
    let (a, b) = pipe::<()>().unwrap();
    a.send_bytes(b"hello world").unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"hello world");
    let big: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
    let expect = big.clone();
    // The socket buffer is smaller than the message: send from another thread.
    let sender = std::thread::spawn(move || a.send_bytes(&big).map(|()| a));
    assert_eq!(b.recv_bytes().unwrap(), expect);
    sender.join().unwrap().unwrap();
}

#[multiproc::test]
fn big_message_through_a_child() {
    let _g = leak_guard();
    let big: Vec<u8> = (0..16u32 << 20).map(|i| (i % 253) as u8).collect();
    for m in METHODS {
        let (a, b) = pipe::<Vec<u8>>().unwrap();
        let mut p = multiproc::get_context(m).process(echo_bytes, (b,)).unwrap();
        p.start().unwrap();
        // The child reads the whole message before echoing it, so sending does not
        // need a concurrent reader; its echo waits in the socket until we read.
        a.send_bytes(&big).unwrap();
        a.send_bytes(b"").unwrap();
        assert_eq!(a.recv_bytes().unwrap().len(), big.len(), "{m}");
        assert_eq!(a.recv_bytes().unwrap(), b"", "{m}");
        drop(a);
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)), "{m}");
    }
}

#[test]
fn recv_bytes_into_with_offset_and_short_buffer() {
    let _g = leak_guard();
    let (a, b) = pipe::<()>().unwrap();
    let msg = b"abcdefgh";
    let mut buf = [0u8; 16];
    a.send_bytes(msg).unwrap();
    assert_eq!(b.recv_bytes_into(&mut buf, 0).unwrap(), 8);
    assert_eq!(&buf[..8], msg);
    let mut buf = [0u8; 16];
    a.send_bytes(msg).unwrap();
    assert_eq!(b.recv_bytes_into(&mut buf, 3).unwrap(), 8);
    assert_eq!(&buf[..3], &[0, 0, 0]);
    assert_eq!(&buf[3..11], msg);
    assert_eq!(&buf[11..], &[0; 5]);

    let mut small = [0u8; 4];
    a.send_bytes(msg).unwrap();
    match b.recv_bytes_into(&mut small, 0) {
        Err(Error::BufferTooShort { room: 4, message }) => assert_eq!(message, msg, "the message is kept whole"),
        r => panic!("too short a buffer gave {r:?}"),
    }
    let mut buf = [0u8; 10];
    a.send_bytes(msg).unwrap();
    assert!(matches!(b.recv_bytes_into(&mut buf, 3), Err(Error::BufferTooShort { room: 7, .. })));
    assert!(matches!(b.recv_bytes_into(&mut buf, 11), Err(Error::InvalidArgument(_))));
    // The stream stays in step after those errors.
    a.send_bytes(b"next").unwrap();
    assert_eq!(b.recv_bytes().unwrap(), b"next");
}

#[test]
fn poll_timeouts() {
    let _g = leak_guard();
    let (a, b) = pipe::<u32>().unwrap();
    let t = Instant::now();
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
    assert!(t.elapsed() < Duration::from_millis(50), "poll(0) took {:?}", t.elapsed());
    let t = Instant::now();
    assert!(!b.poll(Some(Duration::from_millis(100))).unwrap());
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(5), "poll(0.1) took {took:?}");
    a.send(&1).unwrap();
    let t = Instant::now();
    assert!(b.poll(Some(Duration::from_millis(100))).unwrap());
    assert!(b.poll(None).unwrap(), "poll does not consume");
    assert!(t.elapsed() < Duration::from_millis(50), "poll with data pending took {:?}", t.elapsed());
    assert_eq!(b.recv().unwrap(), 1);
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
}

#[test]
fn recv_timeout_times_out_then_receives() {
    let _g = leak_guard();
    let (a, b) = pipe::<u32>().unwrap();
    let t = Instant::now();
    assert!(matches!(b.recv_timeout(Duration::from_millis(50)), Err(Error::Timeout(_))));
    assert!(t.elapsed() >= Duration::from_millis(50));
    a.send(&5).unwrap();
    assert_eq!(b.recv_timeout(DEADLINE).unwrap(), 5);
}

#[test]
fn peer_closed_gives_closed_after_draining() {
    let _g = leak_guard();
    let (a, b) = pipe::<u32>().unwrap();
    a.send(&1).unwrap();
    a.send_bytes(b"raw").unwrap();
    drop(a);
    assert!(b.poll(Some(Duration::ZERO)).unwrap());
    assert_eq!(b.recv().unwrap(), 1);
    assert_eq!(b.recv_bytes().unwrap(), b"raw");
    assert!(matches!(b.recv(), Err(Error::Closed(_))));
    assert!(matches!(b.recv_bytes(), Err(Error::Closed(_))));
    assert!(matches!(b.recv_timeout(DEADLINE), Err(Error::Closed(_))));
    assert!(b.poll(Some(Duration::ZERO)).unwrap(), "end of stream counts as ready");
    assert!(b.readable() && b.writable());
    assert!(matches!(b.send(&2), Err(Error::Closed(_))), "sending to a closed peer");
}

#[test]
fn closing_our_end() {
    let _g = leak_guard();
    let (mut a, b) = pipe::<u32>().unwrap();
    assert!(!a.closed());
    a.close();
    assert!(a.closed());
    a.close();
    assert!(matches!(a.recv(), Err(Error::Closed(_))));
    assert!(matches!(a.send(&1), Err(Error::Closed(_))));
    assert!(matches!(a.poll(Some(Duration::ZERO)), Err(Error::Closed(_))));
    assert!(matches!(b.recv(), Err(Error::Closed(_))));
}

#[test]
fn one_way_pipe_directions() {
    let _g = leak_guard();
    let (r, w) = pipe_oneway::<u32>().unwrap();
    assert!(r.readable() && !r.writable());
    assert!(w.writable() && !w.readable());
    assert!(matches!(r.send(&1), Err(Error::InvalidState(_))));
    assert!(matches!(r.send_bytes(b"x"), Err(Error::InvalidState(_))));
    assert!(matches!(w.recv(), Err(Error::InvalidState(_))));
    assert!(matches!(w.recv_bytes(), Err(Error::InvalidState(_))));
    assert!(matches!(w.poll(Some(Duration::ZERO)), Err(Error::InvalidState(_))));
    w.send(&7).unwrap();
    assert_eq!(r.recv().unwrap(), 7);
    drop(w);
    assert!(matches!(r.recv(), Err(Error::Closed(_))));
}

#[test]
fn empty_messages_are_framed() {
    let _g = leak_guard();
    let (a, b) = pipe::<()>().unwrap();
    a.send_bytes(b"").unwrap();
    assert!(b.poll(Some(Duration::ZERO)).unwrap());
    assert!(b.poll(Some(Duration::ZERO)).unwrap(), "poll stays true until the message is received");
    assert_eq!(b.recv_bytes().unwrap(), b"");
    assert!(!b.poll(Some(Duration::ZERO)).unwrap());
    let seq: [&[u8]; 6] = [b"", b"a", b"", b"", b"bc", b""];
    for m in seq {
        a.send_bytes(m).unwrap();
    }
    for m in seq {
        assert_eq!(b.recv_bytes().unwrap(), m);
    }
    for m in [&b"a"[..], b"b", b"cd"] {
        a.send_bytes(m).unwrap();
    }
    assert_eq!(b.recv_bytes().unwrap(), b"a", "messages are never merged");
    assert_eq!(b.recv_bytes().unwrap(), b"b");
    assert_eq!(b.recv_bytes().unwrap(), b"cd");
    // Unit values are empty messages too.
    a.send(&()).unwrap();
    b.recv().unwrap();
}

#[test]
fn connections_travel_through_connections() {
    let _g = leak_guard();
    let (a, b) = pipe::<Connection<String>>().unwrap();
    let (x, y) = pipe::<String>().unwrap();
    a.send(&y).unwrap();
    drop(y);
    let y2 = b.recv().unwrap();
    x.send(&"through".to_string()).unwrap();
    assert_eq!(y2.recv().unwrap(), "through");
    y2.send(&"back".to_string()).unwrap();
    assert_eq!(x.recv().unwrap(), "back");
    drop(y2);
    assert!(matches!(x.recv(), Err(Error::Closed(_))), "the received end was the only copy left");
    // A one-way end keeps its direction.
    let (r, w) = pipe_oneway::<String>().unwrap();
    a.send(&r).unwrap();
    let r2 = b.recv().unwrap();
    assert!(r2.readable() && !r2.writable());
    w.send(&"one way".to_string()).unwrap();
    assert_eq!(r2.recv().unwrap(), "one way");
}

/// Receives a connection over `conn`, then answers through the received one.
#[multiproc::task]
fn answer_on_received(conn: Connection<Connection<String>>) {
    let other = conn.recv().unwrap();
    let q = other.recv().unwrap();
    other.send(&format!("{q}!")).unwrap();
}

#[multiproc::test]
fn connection_sent_to_a_running_child() {
    let _g = leak_guard();
    for m in METHODS {
        let (a, b) = pipe().unwrap();
        let mut p = multiproc::get_context(m).process(answer_on_received, (b,)).unwrap();
        p.start().unwrap();
        let (x, y) = pipe::<String>().unwrap();
        a.send(&y).unwrap();
        drop(y);
        x.send(&"hi".to_string()).unwrap();
        assert_eq!(x.recv().unwrap(), "hi!", "{m}");
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)), "{m}");
        assert!(matches!(x.recv(), Err(Error::Closed(_))), "{m}");
    }
}

/// Sends ten `(i, pid)` messages.
#[multiproc::task]
fn ten_messages(i: u32, conn: Connection<(u32, u32)>) {
    for _ in 0..10 {
        conn.send(&(i, std::process::id())).unwrap();
    }
}

#[multiproc::test]
fn wait_collects_from_many_children() {
    let _g = leak_guard();
    for m in METHODS {
        let mut readers = Vec::new();
        let mut procs = Vec::new();
        for i in 0..4 {
            let (r, w) = pipe_oneway().unwrap();
            let mut p = multiproc::get_context(m).process(ten_messages, (i, w)).unwrap();
            p.start().unwrap();
            readers.push(Some(r));
            procs.push(p);
        }
        let mut got = Vec::new();
        while readers.iter().any(Option::is_some) {
            let live: Vec<(usize, &Connection<(u32, u32)>)> =
                readers.iter().enumerate().filter_map(|(i, r)| Some((i, r.as_ref()?))).collect();
            let objs: Vec<&dyn multiproc::connection::Waitable> = live.iter().map(|(_, r)| *r as _).collect();
            let ready = wait(&objs, Some(DEADLINE)).unwrap();
            assert!(!ready.is_empty(), "{m}: wait timed out with {} messages", got.len());
            let ready: Vec<usize> = ready.iter().map(|&k| live[k].0).collect();
            for i in ready {
                match readers[i].as_ref().map(Connection::recv) {
                    Some(Ok(msg)) => got.push(msg),
                    Some(Err(Error::Closed(_))) => readers[i] = None,
                    other => panic!("{m}: {other:?}"),
                }
            }
        }
        for p in &mut procs {
            p.join().unwrap();
        }
        let mut want: Vec<(u32, u32)> = Vec::new();
        for (i, p) in procs.iter().enumerate() {
            want.extend(std::iter::repeat_n((i as u32, p.pid().unwrap()), 10));
        }
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{m}");
    }
}

#[test]
fn wait_timeout_and_ready_subset() {
    let _g = leak_guard();
    let (a, x) = pipe::<u32>().unwrap();
    let (b, y) = pipe::<u32>().unwrap();
    let t = Instant::now();
    assert_eq!(wait(&[&a, &b], Some(Duration::from_millis(100))).unwrap(), Vec::<usize>::new());
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(5), "{took:?}");
    assert_eq!(wait(&[&a, &b], Some(Duration::ZERO)).unwrap(), Vec::<usize>::new());
    y.send(&1).unwrap();
    assert_eq!(wait(&[&a, &b], Some(DEADLINE)).unwrap(), vec![1]);
    x.send(&2).unwrap();
    assert_eq!(wait(&[&a, &b], Some(DEADLINE)).unwrap(), vec![0, 1]);
    assert_eq!(b.recv().unwrap(), 1);
    assert_eq!(wait(&[&a, &b], None).unwrap(), vec![0]);
    let mut c = a;
    c.close();
    assert!(matches!(wait(&[&c, &b], Some(Duration::ZERO)), Err(Error::Closed(_))));
}

/// Reports in, then waits for one message (or the peer closing).
#[multiproc::task]
fn block(conn: Connection<u32>) {
    conn.send(&0).unwrap();
    let _ = conn.recv();
}

#[multiproc::test]
fn wait_over_pipes_and_a_sentinel() {
    let _g = leak_guard();
    for m in METHODS {
        let (a, x) = pipe::<u32>().unwrap();
        let (b, y) = pipe::<u32>().unwrap();
        let (ctl, child) = pipe::<u32>().unwrap();
        let mut p = multiproc::get_context(m).process(block, (child,)).unwrap();
        p.start().unwrap();
        assert_eq!(ctl.recv().unwrap(), 0);
        {
            let s = p.sentinel().unwrap();
            assert_eq!(wait(&[&a, &s, &b], Some(Duration::ZERO)).unwrap(), Vec::<usize>::new(), "{m}");
            ctl.send(&1).unwrap();
            assert_eq!(wait(&[&a, &s, &b], Some(DEADLINE)).unwrap(), vec![1], "{m}");
            x.send(&1).unwrap();
            y.send(&1).unwrap();
            assert_eq!(wait(&[&a, &s, &b], Some(DEADLINE)).unwrap(), vec![0, 1, 2], "{m}");
        }
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)), "{m}");
    }
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
enum Shape {
    Circle(f64),
    Square { side: u32 },
}

/// Sends `raw` as one frame and receives it as a `T`.
fn garbage_as<T: serde::de::DeserializeOwned + std::fmt::Debug + 'static>(raw: &[u8]) -> multiproc::Result<T> {
    let (a, b) = pipe::<Vec<u8>>().unwrap();
    a.send_bytes(raw).unwrap();
    b.retype::<T>().recv()
}

#[test]
fn garbage_bytes_give_decode_errors() {
    let _g = leak_guard();
    fn decode_err<T: serde::de::DeserializeOwned + std::fmt::Debug + 'static>(raw: &[u8], what: &str) {
        match garbage_as::<T>(raw) {
            Err(Error::Decode { .. }) => {}
            r => panic!("{what}: {raw:?} gave {r:?}"),
        }
    }
    // The wire format is bincode with fixed-width integers: lengths are u64,
    // enum tags u32, both little-endian.
    let len = |n: u64, rest: &[u8]| [&n.to_le_bytes()[..], rest].concat();
    decode_err::<String>(&len(3, &[0xff, 0xfe, 0xfd]), "invalid UTF-8");
    decode_err::<String>(&len(250, &[0, 0, 0]), "string longer than the message");
    decode_err::<Vec<u64>>(&len(1 << 60, &[]), "a length of 2^60 elements");
    decode_err::<String>(&len(1 << 60, &[]), "a string of 2^60 bytes");
    decode_err::<Vec<u8>>(&[1, 2, 3], "a message shorter than a length");
    decode_err::<Box<[u8]>>(&len(2, &[1, 2, 3]), "a byte string with a trailing byte");
    decode_err::<Vec<String>>(&len(u32::MAX as u64, &len(1, b"a")), "a length of 4G strings");
    decode_err::<Shape>(&[9, 0, 0, 0], "an unknown enum variant");
    decode_err::<Option<u8>>(&[7, 1], "a bad Option tag");
    decode_err::<bool>(&[2], "a bad bool");
    decode_err::<u64>(&[], "an empty message");
    decode_err::<(u32, u32)>(&[1, 0, 0, 0], "a truncated tuple");
    decode_err::<u8>(&[1, 2, 3], "trailing bytes");
    decode_err::<char>(&[0xff, 0xff, 0xff, 0xff], "an invalid char");
    decode_err::<Connection<u32>>(
        &[0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0],
        "a connection whose fd was never attached",
    );
    decode_err::<Connection<u32>>(&[200, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0], "a connection with a wild fd index");
    // Well-formed bytes of another type still decode (no type tags on the wire).
    assert_eq!(garbage_as::<Shape>(&[1, 0, 0, 0, 5, 0, 0, 0]).unwrap(), Shape::Square { side: 5 });
    // Every byte string of a few lengths decodes to something or fails cleanly; none panics.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for len in 0..256 {
        let raw: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let _ = garbage_as::<(String, Vec<u32>, Option<Shape>, Vec<Vec<u8>>)>(&raw);
        let _ = garbage_as::<Vec<Connection<u8>>>(&raw);
    }
}

#[test]
fn over_limit_message_is_rejected() {
    let _g = leak_guard();
    let (a, mut b) = pipe::<Vec<u8>>().unwrap();
    b.set_max_message(64);
    a.send_bytes(&[1; 64]).unwrap();
    assert_eq!(b.recv_bytes().unwrap().len(), 64, "a message of exactly the limit is accepted");
    a.send_bytes(&[1; 65]).unwrap();
    match b.recv_bytes() {
        Err(e @ Error::MessageTooLarge { size: 65, limit: 64 }) => {
            assert!(e.to_string().contains("65") && e.to_string().contains("64"), "{e}")
        }
        r => panic!("an over-limit message gave {r:?}"),
    }
    // The rejected message was skipped whole: the next one arrives intact.
    a.send_bytes(&[0; 8]).unwrap();
    assert_eq!(b.recv_bytes().unwrap(), [0; 8]);
    a.send_bytes(&[0; 200_000]).unwrap();
    a.send(&vec![7, 8]).unwrap();
    assert!(matches!(b.recv_bytes(), Err(Error::MessageTooLarge { size: 200_000, limit: 64 })));
    assert_eq!(b.recv().unwrap(), vec![7, 8]);
    let (a, mut b) = pipe::<Vec<u8>>().unwrap();
    b.set_max_message(1000);
    a.send(&vec![0u8; 5000]).unwrap();
    a.send(&vec![1u8; 10]).unwrap();
    assert!(matches!(b.recv(), Err(Error::MessageTooLarge { limit: 1000, .. })));
    assert_eq!(b.recv().unwrap(), vec![1u8; 10]);
}

/// Waits for end of stream on `r` (whose writer the parent holds) and says so on `report`.
#[multiproc::task]
fn wait_for_eof(r: Connection<u32>, report: Connection<String>) {
    report.send(&"ready".to_string()).unwrap();
    let msg = match r.recv() {
        Err(Error::Closed(_)) => "eof".to_string(),
        other => format!("unexpected {other:?}"),
    };
    report.send(&msg).unwrap();
}

#[multiproc::test]
fn child_holds_only_the_fds_passed_to_it() {
    let _g = leak_guard();
    for m in METHODS {
        // Python's fork pitfall: the child would inherit `w` and never see EOF.
        let (r, w) = pipe_oneway::<u32>().unwrap();
        let (report, report_child) = pipe().unwrap();
        let mut p = multiproc::get_context(m).process(wait_for_eof, (r, report_child)).unwrap();
        p.start().unwrap();
        assert_eq!(report.recv().unwrap(), "ready", "{m}");
        drop(w);
        match report.recv_timeout(DEADLINE) {
            Ok(msg) => assert_eq!(msg, "eof", "{m}"),
            Err(e) => {
                let _ = p.kill();
                let _ = p.join();
                panic!("{m}: the child never saw EOF ({e}): it holds a copy of the writer");
            }
        }
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)), "{m}");
    }
}

#[multiproc::task]
fn exit_silently(_conn: Connection<u32>) {}

#[multiproc::test]
fn a_dead_peer_process_gives_closed() {
    let _g = leak_guard();
    for m in METHODS {
        let (a, b) = pipe::<u32>().unwrap();
        let mut p = multiproc::get_context(m).process(exit_silently, (b,)).unwrap();
        p.start().unwrap();
        assert!(matches!(a.recv_timeout(DEADLINE), Err(Error::Closed(_))), "{m}");
        p.join().unwrap();
    }
}

#[multiproc::test]
fn high_numbered_fds_travel() {
    use std::os::fd::AsRawFd;
    let _g = leak_guard();
    // Push fd numbers past 256 (Python's test_large_fd_transfer, #11657).
    let filler: Vec<std::fs::File> = (0..300).map(|_| std::fs::File::open("/dev/null").unwrap()).collect();
    assert!(filler.last().unwrap().as_raw_fd() > 256);
    for m in METHODS {
        let (a, b) = pipe::<Connection<String>>().unwrap();
        let mut p = multiproc::get_context(m).process(answer_on_received, (b,)).unwrap();
        p.start().unwrap();
        let (x, y) = pipe::<String>().unwrap();
        let dbg = format!("{y:?}");
        let fd: i32 = dbg.split("fd: Some(").nth(1).and_then(|r| r.split(')').next()?.parse().ok()).unwrap_or(0);
        assert!(fd > 256, "{m}: expected a high fd, got {dbg}");
        a.send(&y).unwrap();
        drop(y);
        x.send(&"high".to_string()).unwrap();
        assert_eq!(x.recv_timeout(DEADLINE).unwrap(), "high!", "{m}");
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)), "{m}");
    }
    drop(filler);
}

#[multiproc::task]
fn send_id(conn: Connection<u32>, id: u32) {
    conn.send(&id).unwrap();
}

/// One end, cloned, handed to several children: every message arrives once
/// (CPython's tests share a connection's handle the same way).
#[multiproc::test]
fn a_cloned_end_is_shared_by_several_children() {
    let _g = tests::leak_guard();
    for m in tests::METHODS {
        let (mine, theirs) = multiproc::pipe::<u32>().unwrap();
        let mut children: Vec<_> = (0..3)
            .map(|id| multiproc::get_context(m).process(send_id, (theirs.try_clone().unwrap(), id)).unwrap())
            .collect();
        drop(theirs);
        for p in &mut children {
            p.start().unwrap();
        }
        let mut got: Vec<u32> = (0..3).map(|_| mine.recv().unwrap()).collect();
        got.sort();
        assert_eq!(got, [0, 1, 2], "{m:?}");
        for p in &mut children {
            p.join().unwrap();
        }
        assert!(matches!(mine.recv(), Err(Error::Closed(_))), "{m:?}: every clone is closed with its child");
    }
}

#[multiproc::task]
fn write_through_handle(conn: Connection<()>) {
    use std::io::Write;
    let mut file = std::fs::File::from(conn.recv_handle().unwrap());
    file.write_all(b"written by the child").unwrap();
}

/// `send_handle` / `recv_handle` pass an arbitrary fd (here a file's) to a
/// running child, which writes through it (Python's `reduction.send_handle`).
#[multiproc::test]
fn send_handle_passes_a_file_to_a_child() {
    let _g = leak_guard();
    for m in METHODS {
        let path = std::env::temp_dir().join(format!("multiproc-handle-{}-{m:?}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let (mine, theirs) = pipe::<()>().unwrap();
        let mut p = multiproc::get_context(m).process(write_through_handle, (theirs,)).unwrap();
        p.start().unwrap();
        mine.send_handle(std::os::fd::AsFd::as_fd(&file)).unwrap();
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)), "{m:?}");
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), b"written by the child", "{m:?}");
        std::fs::remove_file(&path).unwrap();
    }
}

/// The two halves of the handshake, public (Python's `deliver_challenge` /
/// `answer_challenge`), across a process boundary.
#[multiproc::task]
fn prove_key(conn: Connection<u32>, key: Vec<u8>) {
    multiproc::connection::answer_challenge(&conn, &key).unwrap();
    multiproc::connection::deliver_challenge(&conn, &key).unwrap();
    conn.send(&42).unwrap();
}

#[multiproc::test]
fn deliver_and_answer_challenge_across_processes() {
    let _g = leak_guard();
    for m in METHODS {
        let (mine, theirs) = pipe::<u32>().unwrap();
        let mut p = multiproc::get_context(m).process(prove_key, (theirs, b"shared".to_vec())).unwrap();
        p.start().unwrap();
        multiproc::connection::deliver_challenge(&mine, b"shared").unwrap();
        multiproc::connection::answer_challenge(&mine, b"shared").unwrap();
        assert_eq!(mine.recv().unwrap(), 42, "{m:?}");
        p.join().unwrap();
    }
}
