//! `Listener` / `Client`: every address family, HMAC authentication in both
//! directions, and hostile peers (random bytes, oversized or truncated frames,
//! silent half-open clients) that must neither panic nor hold up other clients.

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use multiproc::connection::{Address, Client, Listener};
use multiproc::{Connection, Error};
use tests::{DEADLINE, METHODS, Rng, leak_guard};

const KEY: &[u8] = b"secret password";

fn addresses() -> Vec<Address> {
    let path = std::env::temp_dir().join(format!("multiproc-test-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    vec![Address::Unix(path), Address::unique_abstract().unwrap(), Address::tcp("127.0.0.1:0").unwrap()]
}

#[multiproc::task]
fn echo_client(address: Address, key: Vec<u8>) {
    let conn: Connection<(u32, String)> = Client::connect(&address, Some(&key)).unwrap();
    let (n, s) = conn.recv().unwrap();
    conn.send(&(n + 1, s.to_uppercase())).unwrap();
}

#[multiproc::test]
fn authenticated_round_trip_across_processes_for_every_family() {
    let _g = leak_guard();
    for m in METHODS {
        for address in addresses() {
            let listener = Listener::bind(address, Some(KEY)).unwrap();
            let mut p =
                multiproc::get_context(m).process(echo_client, (listener.address().clone(), KEY.to_vec())).unwrap();
            p.start().unwrap();
            let conn: Connection<(u32, String)> = listener.accept().unwrap();
            conn.send(&(1728, "hi".to_string())).unwrap();
            assert_eq!(conn.recv().unwrap(), (1729, "HI".to_string()), "{m:?} {:?}", listener.address());
            p.join().unwrap();
            assert_eq!(p.exitcode(), Some(multiproc::ExitStatus::Code(0)));
        }
    }
}

#[multiproc::test]
fn wrong_authkey_fails_on_both_sides() {
    let _g = leak_guard();
    for address in addresses() {
        let listener = Listener::bind(address, Some(KEY)).unwrap();
        let a = listener.address().clone();
        let client = std::thread::spawn(move || {
            let wrong = Client::connect::<u32>(&a, Some(b"wrong key")).map(drop);
            Client::connect::<u32>(&a, Some(KEY)).and_then(|c| c.send(&9)).map(|()| wrong)
        });
        // The listener refuses the wrong key and serves the next client.
        assert_eq!(listener.accept::<u32>().unwrap().recv().unwrap(), 9);
        let connected = client.join().unwrap().unwrap();
        assert!(matches!(connected, Err(Error::Authentication(_))), "client side: {connected:?}");
    }
}

#[multiproc::test]
fn empty_authkey_is_a_valid_key_and_no_key_skips_the_handshake() {
    let _g = leak_guard();
    let listener = Listener::bind(Address::unique_abstract().unwrap(), Some(b"")).unwrap();
    let a = listener.address().clone();
    let t = std::thread::spawn(move || Client::connect::<u32>(&a, Some(b"")).unwrap().send(&7));
    assert_eq!(listener.accept::<u32>().unwrap().recv().unwrap(), 7);
    t.join().unwrap().unwrap();

    let listener = Listener::bind(Address::unique_abstract().unwrap(), None).unwrap();
    // A client that connects, sends and closes before accept() is still read.
    let c = Client::connect::<u32>(listener.address(), None).unwrap();
    c.send(&1729).unwrap();
    drop(c);
    assert_eq!(listener.accept::<u32>().unwrap().recv().unwrap(), 1729);
}

#[multiproc::test]
fn binding_an_address_in_use_fails() {
    let _g = leak_guard();
    for address in addresses() {
        let first = Listener::bind(address, None).unwrap();
        let again = Listener::bind(first.address().clone(), None);
        assert!(matches!(again, Err(Error::Io { .. })), "{:?}: {again:?}", first.address());
    }
}

#[multiproc::test]
fn addresses_parse_like_python_families() {
    assert_eq!("\0name".parse::<Address>().unwrap(), Address::Abstract("name".into()));
    assert_eq!("@name".parse::<Address>().unwrap(), Address::Abstract("name".into()));
    assert_eq!("/tmp/x.sock".parse::<Address>().unwrap(), Address::Unix("/tmp/x.sock".into()));
    assert!(matches!("127.0.0.1:6000".parse::<Address>().unwrap(), Address::Tcp(a) if a.port() == 6000));
}

/// Opens a raw socket to the listener, bypassing the handshake.
enum Raw {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Raw {
    fn connect(address: &Address) -> Raw {
        match address {
            Address::Tcp(a) => Raw::Tcp(TcpStream::connect(a).unwrap()),
            Address::Unix(p) => Raw::Unix(UnixStream::connect(p).unwrap()),
            Address::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let a = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
                Raw::Unix(UnixStream::connect_addr(&a).unwrap())
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        // The peer may hang up first; that is an acceptable answer to garbage.
        let _ = match self {
            Raw::Unix(s) => s.write_all(bytes),
            Raw::Tcp(s) => s.write_all(bytes),
        };
    }
}

fn abstract_addr(address: &Address) -> std::os::unix::net::SocketAddr {
    use std::os::linux::net::SocketAddrExt;
    let Address::Abstract(name) = address else { unreachable!("an abstract address") };
    std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap()
}

/// Hostile payloads: random bytes, an oversized length, a truncated frame, a wrong answer.
/// A frame header is the body's length (u32 LE) and its fd count (u16 LE).
fn hostile(rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut oversized = u32::MAX.to_le_bytes().to_vec();
    oversized.extend([0, 0]);
    let mut truncated = 100u32.to_le_bytes().to_vec();
    truncated.extend([0, 0]);
    truncated.extend(b"{sha256}");
    let mut wrong_answer = 40u32.to_le_bytes().to_vec();
    wrong_answer.extend([0, 0]);
    wrong_answer.extend(b"{sha256}");
    wrong_answer.extend(rng.bytes(32));
    let mut out = vec![oversized, truncated, wrong_answer, Vec::new()];
    for n in [1, 7, 8, 9, 64, 300, 5000] {
        out.push(rng.bytes(n));
    }
    out
}

#[multiproc::test]
fn hostile_peers_never_block_the_listener_or_other_clients() {
    let _g = leak_guard();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for address in addresses() {
        let mut listener = Listener::bind(address, Some(KEY)).unwrap();
        // Long enough that a listener blocked by a silent peer would be noticed.
        let timeout = Duration::from_secs(30);
        listener.set_handshake_timeout(timeout);
        let a = listener.address().clone();
        // A silent, half-open client connects first and never says a word.
        let silent = Raw::connect(&a);
        let mut hostile_peers: Vec<Raw> = Vec::new();
        for payload in hostile(&mut rng) {
            let mut r = Raw::connect(&a);
            r.send(&payload);
            hostile_peers.push(r);
        }
        let start = Instant::now();
        let good = std::thread::spawn({
            let a = a.clone();
            move || Client::connect::<String>(&a, Some(KEY)).and_then(|c| c.recv())
        });
        let conn = loop {
            match listener.accept::<String>() {
                Ok(c) => break c,
                Err(Error::Authentication(_)) => continue,
                Err(e) => panic!("accept failed: {e}"),
            }
        };
        conn.send(&"welcome".to_string()).unwrap();
        assert_eq!(good.join().unwrap().unwrap(), "welcome");
        assert!(start.elapsed() < timeout / 2, "a hostile peer held up the good client: {:?}", start.elapsed());
        drop((silent, hostile_peers));
    }
}

#[multiproc::test]
fn slow_client_is_dropped_and_accept_serves_the_next() {
    let _g = leak_guard();
    let mut listener = Listener::bind(Address::unique_abstract().unwrap(), Some(KEY)).unwrap();
    listener.set_handshake_timeout(Duration::from_millis(200));
    let mut silent = UnixStream::connect_addr(&abstract_addr(listener.address())).unwrap();
    let a = listener.address().clone();
    // The good client connects only once the silent one has been dropped.
    let good = std::thread::spawn(move || {
        use std::io::Read;
        let _ = silent.read_to_end(&mut Vec::new());
        Client::connect::<u32>(&a, Some(KEY)).unwrap().send(&5).unwrap();
    });
    let start = Instant::now();
    assert_eq!(listener.accept::<u32>().unwrap().recv().unwrap(), 5);
    assert!(start.elapsed() < DEADLINE);
    good.join().unwrap();
}

/// A peer that resets the connection mid-handshake (TCP RST through
/// `SO_LINGER` 0) is skipped: a server loop of `accept()?` keeps serving.
#[multiproc::test]
fn a_peer_that_resets_during_the_handshake_is_skipped() {
    let _g = leak_guard();
    let listener = Listener::bind(Address::tcp("127.0.0.1:0").unwrap(), Some(KEY)).unwrap();
    let Address::Tcp(at) = listener.address().clone() else { unreachable!("bound to TCP") };
    let a = listener.address().clone();
    let peers = std::thread::spawn(move || {
        for _ in 0..5 {
            let s = TcpStream::connect(at).unwrap();
            let linger = nix::sys::socket::sockopt::Linger;
            nix::sys::socket::setsockopt(&s, linger, &libc::linger { l_onoff: 1, l_linger: 0 }).unwrap();
            drop(s); // RST, not FIN
        }
        Client::connect::<String>(&a, Some(KEY)).unwrap().send(&"after the resets".to_string()).unwrap();
    });
    let served = || -> multiproc::Result<String> { listener.accept::<String>()?.recv() };
    assert_eq!(served().unwrap(), "after the resets");
    peers.join().unwrap();
}

/// 200 silent clients hold their handshakes open; a legitimate client that
/// comes after them is still served at once, not after their timeout.
#[multiproc::test]
fn silent_clients_do_not_starve_a_legitimate_one() {
    let _g = leak_guard();
    let listener = Listener::bind(Address::tcp("127.0.0.1:0").unwrap(), Some(KEY)).unwrap();
    let a = listener.address().clone();
    // The server is in `accept` the whole time, as a server loop would be.
    let server = std::thread::spawn(move || listener.accept::<u32>().and_then(|c| c.recv()));
    let silent: Vec<Raw> = (0..200).map(|_| Raw::connect(&a)).collect();
    let start = Instant::now();
    Client::connect::<u32>(&a, Some(KEY)).unwrap().send(&1).unwrap();
    let took = start.elapsed();
    assert_eq!(server.join().unwrap().unwrap(), 1);
    assert!(took < Duration::from_secs(2), "the legitimate client waited {took:?} behind 200 silent ones");
    drop(silent);
}

#[multiproc::test]
fn random_frames_after_authentication_are_errors_not_panics() {
    let _g = leak_guard();
    let listener = Listener::bind(Address::unique_abstract().unwrap(), Some(KEY)).unwrap();
    let a = listener.address().clone();
    let t = std::thread::spawn(move || {
        let c = Client::connect::<Vec<u8>>(&a, Some(KEY)).unwrap();
        let mut rng = Rng(7);
        for n in [0usize, 1, 3, 100, 4096] {
            c.send_bytes(&rng.bytes(n)).unwrap();
        }
    });
    let mut conn = listener.accept::<(u64, String, Vec<u32>)>().unwrap();
    conn.set_max_message(1000);
    let mut outcomes = 0;
    loop {
        match conn.recv() {
            Ok(_) | Err(Error::Decode { .. }) | Err(Error::MessageTooLarge { .. }) => outcomes += 1,
            Err(Error::Closed(_)) => break,
            Err(e) => panic!("unexpected error {e}"),
        }
        if outcomes > 5 {
            break;
        }
    }
    assert!(outcomes >= 1);
    t.join().unwrap();
}

#[multiproc::test]
fn a_flood_of_silent_peers_delays_a_good_client_by_at_most_one_timeout() {
    let _g = leak_guard();
    let mut listener = Listener::bind(Address::unique_abstract().unwrap(), Some(KEY)).unwrap();
    let timeout = Duration::from_millis(300);
    listener.set_handshake_timeout(timeout);
    // More silent peers than the listener runs handshakes for at once.
    let silent: Vec<Raw> = (0..80).map(|_| Raw::connect(listener.address())).collect();
    let a = listener.address().clone();
    let good = std::thread::spawn(move || Client::connect::<u32>(&a, Some(KEY)).and_then(|c| c.recv()));
    let start = Instant::now();
    let conn = loop {
        match listener.accept::<u32>() {
            Ok(c) => break c,
            Err(Error::Authentication(_)) => assert!(start.elapsed() < DEADLINE, "the good client never got through"),
            Err(e) => panic!("accept failed: {e}"),
        }
    };
    conn.send(&3).unwrap();
    assert_eq!(good.join().unwrap().unwrap(), 3);
    drop(silent);
}
