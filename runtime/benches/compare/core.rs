//! Core cases: process start per start method, pipe round trip, 1 MiB throughput.

use std::time::{Duration, Instant};

use multiproc::{Connection, StartMethod, get_context};

use crate::table::{Figure, Table, python, time_per_op};

#[multiproc::task]
fn nothing() {}

#[multiproc::task]
fn echo(conn: Connection<u64>, n: u64) {
    for _ in 0..n {
        match conn.recv() {
            Ok(v) => {
                if conn.send(&v).is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

#[multiproc::task]
fn sink_bytes(conn: Connection<Vec<u8>>, n: u64) {
    for _ in 0..n {
        if conn.recv_bytes().is_err() {
            return;
        }
    }
    let _ = conn.send_bytes(b"done");
}

fn start_join(method: StartMethod) -> Duration {
    let ctx = get_context(method);
    let iters = if method == StartMethod::Spawn { 20 } else { 100 };
    // Warm up (starts the fork server once, faults in the code paths).
    let mut warm = ctx.process(nothing, ()).expect("process");
    warm.start().expect("start");
    warm.join().expect("join");
    time_per_op(3, iters, || {
        let mut p = ctx.process(nothing, ()).expect("process");
        p.start().expect("start");
        p.join().expect("join");
    })
}

/// Raw floor: fork + _exit + waitpid.
fn raw_fork() -> Duration {
    time_per_op(3, 200, || {
        // SAFETY: the child only calls _exit.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => unsafe_exit(),
            nix::unistd::ForkResult::Parent { child } => {
                nix::sys::wait::waitpid(child, None).expect("waitpid");
            }
        }
    })
}

fn unsafe_exit() -> ! {
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(0) }
}

/// Raw floor: fork + execve(/bin/true) + waitpid.
fn raw_fork_exec() -> Duration {
    time_per_op(3, 50, || {
        std::process::Command::new("/bin/true").status().expect("/bin/true");
    })
}

fn rtt(method: StartMethod, n: u64) -> Duration {
    let (a, b) = multiproc::pipe::<u64>().expect("pipe");
    let mut p = get_context(method).process(echo, (b, n)).expect("process");
    p.start().expect("start");
    for i in 0..1000u64.min(n / 4) {
        a.send(&i).expect("send");
        a.recv().expect("recv");
    }
    let left = n - 1000u64.min(n / 4);
    let t = Instant::now();
    for i in 0..left {
        a.send(&i).expect("send");
        a.recv().expect("recv");
    }
    let d = t.elapsed() / left as u32;
    p.join().expect("join");
    d
}

/// Raw floor: blocking pipe ping-pong of 8 bytes between two processes.
fn raw_pipe_rtt(n: usize) -> Duration {
    use std::io::{Read, Write};
    let (r1, w1) = nix::unistd::pipe().expect("pipe");
    let (r2, w2) = nix::unistd::pipe().expect("pipe");
    // SAFETY: the child only uses read/write on its pipe ends, then _exit.
    match unsafe { nix::unistd::fork() }.expect("fork") {
        nix::unistd::ForkResult::Child => {
            let mut r = std::fs::File::from(r1);
            let mut w = std::fs::File::from(w2);
            let mut buf = [0u8; 8];
            for _ in 0..n {
                if r.read_exact(&mut buf).is_err() || w.write_all(&buf).is_err() {
                    break;
                }
            }
            unsafe_exit()
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(r1);
            drop(w2);
            let mut w = std::fs::File::from(w1);
            let mut r = std::fs::File::from(r2);
            let mut buf = [0u8; 8];
            let t = Instant::now();
            for _ in 0..n {
                w.write_all(&buf).expect("write");
                r.read_exact(&mut buf).expect("read");
            }
            let d = t.elapsed() / n as u32;
            nix::sys::wait::waitpid(child, None).expect("waitpid");
            d
        }
    }
}

fn throughput_1mib(n: u64) -> f64 {
    let (a, b) = multiproc::pipe::<Vec<u8>>().expect("pipe");
    let mut p = get_context(StartMethod::Fork).process(sink_bytes, (b, n)).expect("process");
    p.start().expect("start");
    let msg = vec![7u8; 1 << 20];
    let t = Instant::now();
    for _ in 0..n {
        a.send_bytes(&msg).expect("send");
    }
    a.recv_bytes().expect("done");
    let secs = t.elapsed().as_secs_f64();
    p.join().expect("join");
    (n as f64 * (1 << 20) as f64) / secs
}

fn memcpy_rate() -> f64 {
    let src = vec![1u8; 1 << 20];
    let mut dst = vec![0u8; 1 << 20];
    let d = time_per_op(3, 500, || {
        dst.copy_from_slice(std::hint::black_box(&src));
        std::hint::black_box(&mut dst);
    });
    (1u64 << 20) as f64 / d.as_secs_f64()
}

/// Adds the core rows.
pub(crate) fn run(t: &mut Table) {
    let fork_floor = raw_fork();
    let exec_floor = raw_fork_exec();
    for (method, floor) in [
        (StartMethod::Fork, Some(("fork+_exit+wait", Figure::Time(fork_floor)))),
        (StartMethod::Spawn, Some(("fork+exec /bin/true+wait", Figure::Time(exec_floor)))),
        (StartMethod::ForkServer, None),
    ] {
        let ours = Figure::Time(start_join(method));
        let py = python("core.py", &["start", method.name()]).map(|s| ours.like(s));
        t.row(&format!("process start+join ({method})"), ours, py, floor);
    }
    let ours = Figure::Time(rtt(StartMethod::Fork, 20_000));
    let py = python("core.py", &["rtt"]).map(|s| ours.like(s));
    t.row("pipe round trip, small message", ours, py, Some(("blocking pipe 8 B", Figure::Time(raw_pipe_rtt(20_000)))));
    let ours = Figure::Bytes(throughput_1mib(1000));
    let py = python("core.py", &["mib"]).map(|s| ours.like(s));
    t.row("pipe 1 MiB messages, one way", ours, py, Some(("memcpy 1 MiB", Figure::Bytes(memcpy_rate()))));
}
