//! EINTR is transparent (PARITY 18 and 72): a handled SIGUSR1 that arrives
//! while a thread is blocked in `join`, `recv`, a pipe-filling `send_bytes` or
//! `Listener::accept` does not surface as an error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use multiproc::connection::{Address, Client, Listener};
use multiproc::{Connection, ExitStatus, get_context, pipe};
use nix::sys::pthread::{pthread_kill, pthread_self};
use nix::sys::signal::Signal;
use tests::{DEADLINE, METHODS, leak_guard, wait_until};

/// Set by the SIGUSR1 handler (installed once for this test binary).
fn handled() -> &'static Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGUSR1, flag.clone()).expect("install a SIGUSR1 handler");
        flag
    })
}

/// Whether thread `tid` of this process is asleep in the kernel (blocked).
fn asleep(tid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('S')))
}

/// Runs `op` on this thread. Another thread waits until `op` blocks, delivers
/// SIGUSR1 to this thread five times (each handled before the next), then
/// runs `then`, which lets `op` finish.
fn pestered<R>(then: impl FnOnce() + Send, op: impl FnOnce() -> R) -> R {
    let flag = handled();
    let target = pthread_self();
    let tid = nix::unistd::gettid().as_raw();
    std::thread::scope(|s| {
        s.spawn(move || {
            wait_until(|| asleep(tid), "the operation to block");
            for _ in 0..5 {
                flag.store(false, Ordering::SeqCst);
                pthread_kill(target, Signal::SIGUSR1).expect("pthread_kill");
                wait_until(|| flag.load(Ordering::SeqCst), "SIGUSR1 to be handled");
            }
            then();
        });
        op()
    })
}

#[multiproc::task]
fn wait_then_exit(conn: Connection<u32>) {
    let _ = conn.recv();
}

#[multiproc::test]
fn join_survives_eintr() {
    let _g = leak_guard();
    for m in METHODS {
        let (release, child_end) = pipe::<u32>().unwrap();
        let mut p = get_context(m).process(wait_then_exit, (child_end,)).unwrap();
        p.start().unwrap();
        let joined = pestered(move || release.send(&1).unwrap(), || p.join_timeout(DEADLINE));
        assert_eq!(joined.unwrap(), Some(ExitStatus::Code(0)), "{m}");
    }
}

#[multiproc::test]
fn recv_survives_eintr() {
    let _g = leak_guard();
    let (a, b) = pipe::<String>().unwrap();
    let got = pestered(move || a.send(&"after the signals".to_string()).unwrap(), || b.recv());
    assert_eq!(got.unwrap(), "after the signals");
}

#[multiproc::test]
fn pipe_filling_send_survives_eintr() {
    let _g = leak_guard();
    let (a, b) = pipe::<Vec<u8>>().unwrap();
    let big: Vec<u8> = (0..16u32 << 20).map(|i| (i % 251) as u8).collect();
    let reader = std::sync::Mutex::new(None);
    let slot = &reader;
    let sent = pestered(
        move || {
            *slot.lock().unwrap() = Some(std::thread::spawn(move || b.recv_bytes()));
        },
        || a.send_bytes(&big),
    );
    sent.unwrap();
    let received = reader.lock().unwrap().take().unwrap().join().unwrap().unwrap();
    assert!(received == big, "the message arrived changed");
}

#[multiproc::test]
fn accept_survives_eintr() {
    let _g = leak_guard();
    let listener = Listener::bind(Address::unique_abstract().unwrap(), Some(b"key")).unwrap();
    let address = listener.address().clone();
    let client = std::sync::Mutex::new(None);
    let accepted = pestered(
        || {
            *client.lock().unwrap() =
                Some(std::thread::spawn(move || Client::connect::<u32>(&address, Some(b"key")).map(|c| c.recv())));
        },
        || listener.accept::<u32>(),
    );
    let conn = accepted.unwrap();
    conn.send(&7).unwrap();
    let got = client.lock().unwrap().take().unwrap().join().unwrap().unwrap();
    assert_eq!(got.unwrap(), 7);
}
