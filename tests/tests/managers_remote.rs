//! Remote managers over TCP, authentication, and the server's robustness:
//! hostile bytes, a client killed mid-call, and an owner killed by SIGKILL.

use multiproc::connection::{Address, Client};
use multiproc::managers::{DictProxy, EventProxy, QueueProxy};
use multiproc::{Connection, Error, ExitStatus, Manager, Process, StartMethod, pipe};
use tests::{DEADLINE, METHODS, Rng, exited, leak_guard, wait_until};

const KEY: &[u8] = b"abracadabra";

type Message = (String, Option<()>, bool, f64, String, String, Vec<u8>);

fn message() -> Message {
    ("hello world".into(), None, true, 2.25, "Mot d'été".into(), "Привет".into(), b"\x00\xff bytes".to_vec())
}

fn tcp_manager(m: StartMethod) -> Manager {
    Manager::builder().start_method(m).address(Address::tcp("127.0.0.1:0").unwrap()).authkey(KEY).start().unwrap()
}

#[multiproc::task]
fn remote_put(address: Address, key: Vec<u8>) {
    let m = Manager::connect(&address, &key).unwrap();
    let q: QueueProxy<Message> = m.lookup("get_queue").unwrap();
    q.put(message()).unwrap();
}

#[multiproc::test]
fn queue_over_the_network_through_a_connected_manager() {
    let _g = leak_guard();
    for m in METHODS {
        let server = tcp_manager(m);
        assert!(matches!(server.address(), Address::Tcp(_)));
        let q = server.queue::<Message>().unwrap();
        server.register("get_queue", &q).unwrap();
        let mut p =
            Process::builder(remote_put, (server.address().clone(), KEY.to_vec())).start_method(m).build().unwrap();
        p.start().unwrap();
        assert_eq!(q.get_timeout(DEADLINE).unwrap(), message(), "{m:?}");
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)));

        let client = Manager::connect(server.address(), KEY).unwrap();
        assert!(matches!(client.lookup::<QueueProxy<Message>>("nothing"), Err(Error::Remote(_))));
        assert!(matches!(client.lookup::<DictProxy<u8, u8>>("get_queue"), Err(Error::InvalidArgument(_))));
        client.shutdown().unwrap();
        assert!(server.pid().is_some(), "a connected manager does not stop the server");
        server.shutdown().unwrap();
    }
}

#[multiproc::test]
fn connect_with_a_wrong_authkey_fails_before_any_request() {
    let _g = leak_guard();
    let server = tcp_manager(StartMethod::Fork);
    let wrong = Manager::connect(server.address(), b"wrong");
    assert!(matches!(wrong, Err(Error::Authentication(_))), "{wrong:?}");
    let right = Manager::connect(server.address(), KEY).unwrap();
    assert!(right.dict::<u8, u8>().is_ok());
    // The process now holds authenticated connections to this address: a wrong
    // key must still fail its own handshake, every time, and never borrow them.
    for _ in 0..3 {
        let again = Manager::connect(server.address(), b"wrong");
        assert!(matches!(again, Err(Error::Authentication(_))), "{again:?}");
    }
    assert!(right.dict::<u8, u8>().is_ok(), "the right key's connections still work");
    drop(right);
    server.shutdown().unwrap();
}

#[multiproc::test]
fn restart_at_the_same_address_right_after_shutdown() {
    let _g = leak_guard();
    let first = tcp_manager(StartMethod::Fork);
    let address = first.address().clone();
    let _ = (first.lock().unwrap(), first.lock().unwrap());
    let stale = first.queue::<u8>().unwrap();
    first.shutdown().unwrap();
    let again =
        Manager::builder().start_method(StartMethod::Fork).address(address.clone()).authkey(KEY).start().unwrap();
    assert_eq!(again.address(), &address);
    again.queue::<u8>().unwrap().put(1).unwrap();
    // The old proxy reaches the new server, which has no such object: a remote error, and it keeps serving.
    match stale.put(1) {
        Err(Error::Remote(msg)) => assert!(msg.contains("no shared object"), "{msg}"),
        other => panic!("expected a remote error, got {other:?}"),
    }
    assert!(again.event().is_ok());
    again.shutdown().unwrap();
}

#[multiproc::task]
fn own_a_manager(m: StartMethod, report: Connection<u32>, hold: Connection<()>) {
    let manager = Manager::builder().start_method(m).start().unwrap();
    report.send(&manager.pid().unwrap()).unwrap();
    // Wait to be killed; the end of stream only comes if the parent gives up.
    let _ = hold.recv();
}

#[multiproc::test]
fn manager_exits_when_its_owner_is_killed() {
    let _g = leak_guard();
    for m in METHODS {
        let (report, their_report) = pipe::<u32>().unwrap();
        let (_hold, their_hold) = pipe::<()>().unwrap();
        // The owner is forked (a spawned child cannot start children of its own
        // under spawn/forkserver yet); its manager uses each start method.
        let mut owner = Process::builder(own_a_manager, (m, their_report, their_hold))
            .start_method(StartMethod::Fork)
            .build()
            .unwrap();
        owner.start().unwrap();
        let server = report.recv_timeout(DEADLINE).unwrap();
        assert!(!exited(server), "{m:?}: the manager runs while its owner does");
        owner.kill().unwrap();
        owner.join().unwrap();
        assert_eq!(owner.exitcode(), Some(ExitStatus::Signal(libc::SIGKILL)));
        wait_until(|| exited(server), format_args!("{m:?}: manager {server} to exit after its owner was SIGKILLed"));
    }
}

#[multiproc::task]
fn blocked_get(q: QueueProxy<u32>, started: EventProxy) {
    started.set().unwrap();
    let _ = q.get();
}

#[multiproc::test]
fn client_killed_mid_call_does_not_disturb_others() {
    let _g = leak_guard();
    for m in METHODS {
        let manager = Manager::builder().start_method(m).start().unwrap();
        let q = manager.queue::<u32>().unwrap();
        let started = manager.event().unwrap();
        let d = manager.dict::<u32, u32>().unwrap();
        let mut p = Process::builder(blocked_get, (q.clone(), started.clone())).start_method(m).build().unwrap();
        p.start().unwrap();
        assert!(started.wait(Some(DEADLINE)).unwrap());
        // Give the child time to block inside `get` while we keep using the manager.
        for i in 0..200 {
            d.insert(i, i).unwrap();
        }
        p.kill().unwrap();
        p.join().unwrap();
        q.put(5).unwrap();
        assert_eq!(q.get_timeout(DEADLINE).unwrap(), 5, "{m:?}: the killed client's call took the item");
        assert_eq!(d.len().unwrap(), 200);
        manager.shutdown().unwrap();
    }
}

#[multiproc::test]
fn hostile_bytes_never_crash_a_live_manager() {
    use std::io::Write;
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixStream};

    let _g = leak_guard();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let manager = Manager::start().unwrap();
    let d = manager.dict::<String, u32>().unwrap();
    let Address::Abstract(name) = manager.address().clone() else { panic!("expected an abstract address") };
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();

    // Before authentication: garbage, oversized and truncated handshakes
    // (a frame header is the body's length, u32 LE, and its fd count, u16 LE).
    let mut oversized = u32::MAX.to_le_bytes().to_vec();
    oversized.extend([0; 2]);
    let mut truncated = 200u32.to_le_bytes().to_vec();
    truncated.extend([0, 0, 1, 2, 3]);
    let mut peers = Vec::new();
    for payload in [oversized, truncated, rng.bytes(1), rng.bytes(13), rng.bytes(4096)] {
        let mut s = UnixStream::connect_addr(&addr).unwrap();
        let _ = s.write_all(&payload);
        peers.push(s);
    }

    // After authentication: random requests, short ones, unknown ids and methods.
    let conn = Client::connect::<Vec<u8>>(manager.address(), Some(manager.authkey())).unwrap();
    let mut frames: Vec<Vec<u8>> = vec![vec![], vec![0], rng.bytes(8)];
    for id in [0u64, 1, u64::MAX] {
        for method in ["create", "insert", "get", "lookup", "nope"] {
            let mut f = id.to_le_bytes().to_vec();
            f.push(method.len() as u8);
            f.extend(method.as_bytes());
            let n = (rng.next_u64() % 40) as usize;
            f.extend(rng.bytes(n));
            frames.push(f);
        }
    }
    for _ in 0..50 {
        let n = (rng.next_u64() % 64) as usize;
        frames.push(rng.bytes(n));
    }
    for f in &frames {
        conn.send_bytes(f).unwrap();
        assert!(conn.poll(Some(DEADLINE)).unwrap(), "the manager did not answer a malformed request");
        let reply = conn.recv_bytes().unwrap();
        assert!(!reply.is_empty() && reply[0] != 0 || f.len() >= 9, "garbage was accepted: {f:?} -> {reply:?}");
    }
    drop((conn, peers));

    d.insert("still".into(), 1).unwrap();
    assert_eq!(d.get(&"still".into()).unwrap(), Some(1));
    manager.shutdown().unwrap();
}

#[multiproc::test]
fn a_second_manager_on_a_taken_address_fails_cleanly() {
    let _g = leak_guard();
    let first = tcp_manager(StartMethod::Fork);
    let second =
        Manager::builder().start_method(StartMethod::Fork).address(first.address().clone()).authkey(KEY).start();
    assert!(matches!(second, Err(Error::InvalidState(_))), "{second:?}");
    assert!(first.dict::<u8, u8>().is_ok(), "the first manager is undisturbed");
    first.shutdown().unwrap();
}

#[multiproc::test]
fn a_value_holding_a_file_descriptor_cannot_be_stored() {
    let _g = leak_guard();
    let manager = Manager::start().unwrap();
    let d = manager.dict::<u8, Connection<u8>>().unwrap();
    let (a, b) = pipe::<u8>().unwrap();
    assert!(matches!(d.insert(1, a), Err(Error::Encode { .. })));
    drop(b);
    assert_eq!(d.len().unwrap(), 0);
    manager.shutdown().unwrap();
}

#[multiproc::task]
fn leave_a_manager_behind(m: StartMethod, report: Connection<u32>) {
    let manager = Manager::builder().start_method(m).start().unwrap();
    report.send(&manager.pid().unwrap()).unwrap();
    // Exit without shutdown() and without running the manager's destructor.
    std::mem::forget(manager);
}

#[multiproc::test]
fn manager_exits_when_its_owner_exits_without_shutdown() {
    let _g = leak_guard();
    for m in METHODS {
        let (report, theirs) = pipe::<u32>().unwrap();
        let mut owner = Process::builder(leave_a_manager_behind, (m, theirs)).start_method(m).build().unwrap();
        owner.start().unwrap();
        let server = report.recv_timeout(DEADLINE).unwrap();
        owner.join().unwrap();
        assert_eq!(owner.exitcode(), Some(ExitStatus::Code(0)));
        wait_until(|| exited(server), format_args!("{m:?}: manager {server} to exit after its owner"));
    }
}

#[multiproc::task]
fn serve_here(key: Vec<u8>, report: Connection<Address>) {
    let server = Manager::builder().address(Address::tcp("127.0.0.1:0").unwrap()).authkey(key).get_server().unwrap();
    report.send(server.address()).unwrap();
    server.serve_forever().unwrap();
}

#[multiproc::test]
fn test_remote_get_server_serve_forever_in_another_process() {
    let _g = leak_guard();
    for m in METHODS {
        let key = b"served by a child".to_vec();
        let (report, their_report) = pipe::<Address>().unwrap();
        let mut p = multiproc::get_context(m).process(serve_here, (key.clone(), their_report)).unwrap();
        p.start().unwrap();
        let address = report.recv_timeout(DEADLINE).unwrap();
        let client = Manager::connect(&address, &key).unwrap();
        let q = client.queue::<Message>().unwrap();
        client.register("jobs", &q).unwrap();
        let other = Manager::connect(&address, &key).unwrap();
        let jobs: QueueProxy<Message> = other.lookup("jobs").unwrap();
        jobs.put(message()).unwrap();
        assert_eq!(q.get().unwrap(), message(), "{m:?}");
        assert_eq!(client.number_of_objects().unwrap(), 1, "{m:?}");
        assert_eq!(client.pid(), None, "{m:?}: a connected manager owns no process");
        drop((q, jobs));
        assert_eq!(client.number_of_objects().unwrap(), 1, "{m:?}: its registered name keeps the queue");
        client.shutdown_server().unwrap();
        p.join_timeout(DEADLINE).unwrap().expect("the server returns from serve_forever");
        assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)), "{m:?}");
        assert!(Manager::connect(&address, &key).is_err(), "{m:?}: nobody listens any more");
    }
}
