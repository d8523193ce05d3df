//! `Process` from start to close, under every start method (PARITY.md section 1).

use std::process::Command;
use std::time::{Duration, Instant};

use multiproc::connection::wait;
use multiproc::{Connection, Error, ExitStatus, Process, StartMethod, pipe};
use serde::{Deserialize, Serialize};
use tests::{DEADLINE, METHODS, leak_guard, run_bounded};

/// What a child says about itself and the arguments it received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Report {
    args: (u32, String, Vec<u32>, (u32,)),
    name: String,
    pid: u32,
    daemon: bool,
    parent: Option<(String, u32)>,
}

#[multiproc::task]
fn report(n: u32, s: String, v: Vec<u32>, t: (u32,), conn: Connection<Report>) {
    let me = multiproc::current_process();
    let r = Report {
        args: (n, s, v, t),
        name: me.name,
        pid: me.pid,
        daemon: me.daemon,
        parent: multiproc::parent_process().map(|p| (p.name, p.pid)),
    };
    conn.send(&r).unwrap();
}

/// Says it is running, then blocks until the parent sends or closes its end.
#[multiproc::task]
fn block(conn: Connection<u32>) {
    conn.send(&0).unwrap();
    let _ = conn.recv();
}

#[multiproc::task]
fn do_nothing() {}

#[multiproc::task]
fn exit_with(code: i32) {
    std::process::exit(code);
}

#[multiproc::task]
fn panics() {
    panic!("deliberate panic in a task");
}

#[multiproc::task]
fn fails_if(fail: bool) -> Result<u32, String> {
    if fail { Err("deliberate error from a task".into()) } else { Ok(7) }
}

/// An error type without `Debug`: nothing to show, so it counts as a value.
#[derive(serde::Serialize, serde::Deserialize)]
struct Opaque;

#[multiproc::task]
fn returns_opaque_err() -> Result<(), Opaque> {
    Err(Opaque)
}

fn started(method: StartMethod) -> (Process, Connection<u32>) {
    let (parent, child) = pipe::<u32>().unwrap();
    let mut p = multiproc::get_context(method).process(block, (child,)).unwrap();
    p.start().unwrap();
    assert_eq!(parent.recv().unwrap(), 0, "{method}: the child did not report in");
    (p, parent)
}

#[multiproc::test]
fn args_name_pid_and_parent_round_trip() {
    let _g = leak_guard();
    for m in METHODS {
        for daemon in [false, true] {
            let (parent, child) = pipe::<Report>().unwrap();
            let args = (1u32, "str".to_string(), vec![1u32], (1u32,), child);
            let mut p =
                Process::builder(report, args).name("SomeProcess").daemon(daemon).start_method(m).build().unwrap();
            assert_eq!(p.name(), "SomeProcess");
            assert_eq!(p.daemon(), daemon);
            assert_eq!(p.start_method(), m);
            p.start().unwrap();
            let r = parent.recv().unwrap();
            p.join().unwrap();
            assert_eq!(r.args, (1, "str".to_string(), vec![1], (1,)), "{m}");
            assert_eq!(r.name, "SomeProcess", "{m}");
            assert_eq!(Some(r.pid), p.pid(), "{m}");
            assert_eq!(r.daemon, daemon, "{m}");
            assert_eq!(r.parent, Some(("MainProcess".to_string(), std::process::id())), "{m}");
            assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)), "{m}");
        }
    }
}

#[multiproc::test]
fn default_name_and_daemon_flag() {
    let _g = leak_guard();
    assert_eq!(multiproc::current_process().name, "MainProcess");
    assert!(!multiproc::current_process().daemon);
    assert_eq!(multiproc::parent_process(), None);
    for m in METHODS {
        let (parent, child) = pipe::<Report>().unwrap();
        let mut p = multiproc::get_context(m).process(report, (0, String::new(), vec![], (0,), child)).unwrap();
        assert!(p.name().starts_with("Process-"), "{m}: {}", p.name());
        assert!(!p.daemon(), "{m}: the main process is not a daemon, so neither is its child by default");
        p.start().unwrap();
        let r = parent.recv().unwrap();
        p.join().unwrap();
        assert_eq!(r.name, p.name(), "{m}");
        assert!(!r.daemon, "{m}");
    }
}

#[multiproc::test]
fn lifecycle_alive_exitcode_active_children() {
    let _g = leak_guard();
    for m in METHODS {
        let (parent, child) = pipe::<u32>().unwrap();
        let mut p = multiproc::get_context(m).process(block, (child,)).unwrap();
        assert!(!p.is_alive());
        assert_eq!(p.exitcode(), None);
        assert_eq!(p.pid(), None);
        assert!(multiproc::active_children().is_empty(), "{m}");
        p.start().unwrap();
        assert_eq!(parent.recv().unwrap(), 0);
        assert!(p.is_alive(), "{m}");
        assert_eq!(p.exitcode(), None, "{m}");
        let listed: Vec<Option<u32>> = multiproc::active_children().iter().map(Process::pid).collect();
        assert_eq!(listed, vec![p.pid()], "{m}");
        drop(parent);
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)), "{m}");
        assert!(!p.is_alive(), "{m}");
        assert!(multiproc::active_children().is_empty(), "{m}");
    }
}

#[multiproc::test]
fn join_timeout_on_live_child_returns_at_once() {
    let _g = leak_guard();
    for m in METHODS {
        let (mut p, parent) = started(m);
        let t = Instant::now();
        assert_eq!(p.join_timeout(Duration::ZERO).unwrap(), None, "{m}");
        assert_eq!(p.join_timeout(Duration::from_millis(100)).unwrap(), None, "{m}");
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(100) && took < Duration::from_secs(5), "{m}: took {took:?}");
        assert!(p.is_alive(), "{m}");
        assert_eq!(p.exitcode(), None, "{m}");
        parent.send(&1).unwrap();
        assert_eq!(p.join_timeout(DEADLINE).unwrap(), Some(ExitStatus::Code(0)), "{m}");
    }
}

/// Whether this process ignores SIGINT (a non-interactive shell's `cmd &`).
fn sigint_ignored() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:")).unwrap().trim();
    u64::from_str_radix(mask, 16).unwrap() & (1 << (libc::SIGINT - 1)) != 0
}

#[multiproc::test]
fn terminate_kill_and_interrupt_give_their_signal() {
    let _g = leak_guard();
    for m in METHODS {
        for (signal, how) in [(libc::SIGTERM, "terminate"), (libc::SIGKILL, "kill"), (libc::SIGINT, "interrupt")] {
            let (mut p, _parent) = started(m);
            match signal {
                libc::SIGTERM => p.terminate(),
                libc::SIGKILL => p.kill(),
                _ => p.interrupt(),
            }
            .unwrap();
            if signal == libc::SIGINT && sigint_ignored() {
                // Started from a shell's background job: the child inherits the
                // ignored SIGINT (as in Python) and keeps running until killed.
                assert_eq!(p.join_timeout(Duration::from_millis(50)).unwrap(), None, "{m} {how} while ignored");
                p.kill().unwrap();
                assert_eq!(p.join_timeout(DEADLINE).unwrap(), Some(ExitStatus::Signal(libc::SIGKILL)), "{m} {how}");
                continue;
            }
            assert_eq!(p.join_timeout(DEADLINE).unwrap(), Some(ExitStatus::Signal(signal)), "{m} {how}");
            assert_eq!(p.exitcode().map(ExitStatus::code), Some(-signal), "{m} {how}");
            // Signalling a child that has ended is not an error.
            p.terminate().unwrap();
        }
    }
}

#[multiproc::test]
fn exit_code_from_the_task() {
    let _g = leak_guard();
    for m in METHODS {
        for code in [0, 1, 8] {
            let mut p = multiproc::get_context(m).process(exit_with, (code,)).unwrap();
            p.start().unwrap();
            p.join().unwrap();
            assert_eq!(p.exitcode(), Some(ExitStatus::Code(code)), "{m}");
        }
    }
}

/// Runs `task(args)` to its end under `method` and returns how it exited.
fn exit_of<A>(method: StartMethod, task: impl multiproc::Task<A>, args: A) -> Option<ExitStatus>
where
    A: Serialize + serde::de::DeserializeOwned + 'static,
{
    let mut p = multiproc::get_context(method).process(task, args).unwrap();
    p.start().unwrap();
    p.join().unwrap();
    p.exitcode()
}

#[multiproc::test]
fn panicking_task_exits_with_code_1() {
    let _g = leak_guard();
    for m in METHODS {
        assert_eq!(exit_of(m, panics, ()), Some(ExitStatus::Code(1)), "{m}");
    }
}

#[multiproc::test]
fn task_returning_err_exits_with_code_1_like_a_raising_target() {
    let _g = leak_guard();
    let lambda =
        multiproc::lambda!(|n: u32| -> Result<u32, String> { if n > 1 { Err(format!("{n} > 1")) } else { Ok(n) } });
    for m in METHODS {
        for (fail, code) in [(true, 1), (false, 0)] {
            assert_eq!(exit_of(m, fails_if, (fail,)), Some(ExitStatus::Code(code)), "{m}: fail = {fail}");
        }
        for (n, code) in [(2, 1), (1, 0)] {
            assert_eq!(exit_of(m, lambda, (n,)), Some(ExitStatus::Code(code)), "{m}: lambda({n})");
        }
        let opaque = exit_of(m, returns_opaque_err, ());
        assert_eq!(opaque, Some(ExitStatus::Code(0)), "{m}: an error without Debug is a plain value");
    }
}

#[multiproc::test]
fn returned_error_reaches_stderr() {
    let _g = leak_guard();
    for m in METHODS {
        let (status, stdout, stderr) = run_helper(&[], &["error", m.name()]);
        assert!(status.success(), "{m}: helper failed: {stdout}\n{stderr}");
        assert_eq!(stdout.trim(), "exitcode Some(Code(1))", "{m}");
        assert!(
            stderr.contains("returned an error: \"deliberate error from a helper task\""),
            "{m}: stderr was {stderr:?}"
        );
    }
}

/// Runs `lifecycle_helper` with `args` (behind the command `pre`, if any).
fn run_helper(pre: &[&str], args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let exe = env!("CARGO_BIN_EXE_lifecycle_helper");
    let mut cmd = match pre.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    run_bounded(cmd.args(args))
}

#[multiproc::test]
fn panic_message_and_location_reach_stderr() {
    let _g = leak_guard();
    for m in METHODS {
        let (status, stdout, stderr) = run_helper(&[], &["panic", m.name()]);
        assert!(status.success(), "{m}: helper failed: {stdout}\n{stderr}");
        assert_eq!(stdout.trim(), "exitcode Some(Code(1))", "{m}");
        assert!(stderr.contains("deliberate panic in a helper task"), "{m}: stderr was {stderr:?}");
        assert!(stderr.contains("lifecycle_helper.rs:"), "{m}: no location in stderr {stderr:?}");
    }
}

#[multiproc::test]
fn cpu_count_honours_affinity() {
    let _g = leak_guard();
    assert!(multiproc::cpu_count() >= 1);
    assert!(multiproc::cpu_count() <= std::thread::available_parallelism().map_or(usize::MAX, |n| n.get()).max(1));
    for m in METHODS {
        let (status, stdout, stderr) = run_helper(&["taskset", "-c", "0"], &["cpu_count", m.name()]);
        assert!(status.success(), "{m}: helper failed: {stdout}\n{stderr}");
        assert_eq!(stdout.trim(), "parent 1 child 1", "{m}");
    }
}

#[multiproc::test]
fn closed_stdio_still_gives_exit_code_0() {
    let _g = leak_guard();
    for m in METHODS {
        let exe = env!("CARGO_BIN_EXE_lifecycle_helper");
        let script = format!("exec '{exe}' quiet {} >&- 2>&-", m.name());
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script]);
        let (status, stdout, stderr) = run_bounded(&mut cmd);
        assert_eq!(status.code(), Some(0), "{m}: {stdout} {stderr}");
    }
}

#[multiproc::test]
fn sentinel_works_with_wait() {
    let _g = leak_guard();
    for m in METHODS {
        let (parent, child) = pipe::<u32>().unwrap();
        let mut p = multiproc::get_context(m).process(block, (child,)).unwrap();
        assert!(matches!(p.sentinel(), Err(Error::InvalidState(_))), "{m}: sentinel before start");
        p.start().unwrap();
        assert_eq!(parent.recv().unwrap(), 0);
        {
            let s = p.sentinel().unwrap();
            assert_eq!(wait(&[&s], Some(Duration::ZERO)).unwrap(), Vec::<usize>::new(), "{m}");
            parent.send(&1).unwrap();
            assert_eq!(wait(&[&s], Some(DEADLINE)).unwrap(), vec![0], "{m}");
        }
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)));
    }
}

#[multiproc::test]
fn close_rules() {
    let _g = leak_guard();
    for m in METHODS {
        let (mut p, parent) = started(m);
        assert!(matches!(p.close(), Err(Error::InvalidState(_))), "{m}: close on a live process");
        assert!(p.is_alive(), "{m}: a refused close must leave the child alone");
        drop(parent);
        p.join().unwrap();
        p.close().unwrap();
        assert!(!p.is_alive());
        assert_eq!(p.exitcode(), None);
        assert!(matches!(p.join(), Err(Error::InvalidState(_))), "{m}: join after close");
        assert!(matches!(p.terminate(), Err(Error::InvalidState(_))), "{m}: terminate after close");
        assert!(matches!(p.kill(), Err(Error::InvalidState(_))), "{m}: kill after close");
        assert!(matches!(p.start(), Err(Error::InvalidState(_))), "{m}: start after close");
        p.close().unwrap();
    }
}

#[multiproc::test]
fn close_before_start_is_allowed() {
    let _g = leak_guard();
    for m in METHODS {
        let mut p = multiproc::get_context(m).process(do_nothing, ()).unwrap();
        p.close().unwrap();
        assert!(matches!(p.start(), Err(Error::InvalidState(_))), "{m}");
    }
}

#[multiproc::test]
fn start_twice_and_join_before_start_are_errors() {
    let _g = leak_guard();
    for m in METHODS {
        let mut p = multiproc::get_context(m).process(do_nothing, ()).unwrap();
        match p.join() {
            Err(Error::InvalidState(msg)) => assert!(msg.contains("never started"), "{m}: {msg}"),
            other => panic!("{m}: join before start gave {other:?}"),
        }
        assert!(matches!(p.join_timeout(Duration::ZERO), Err(Error::InvalidState(_))), "{m}");
        assert!(matches!(p.terminate(), Err(Error::InvalidState(_))), "{m}");
        p.start().unwrap();
        match p.start() {
            Err(Error::InvalidState(msg)) => assert!(msg.contains("started once"), "{m}: {msg}"),
            other => panic!("{m}: second start gave {other:?}"),
        }
        p.join().unwrap();
        assert!(matches!(p.start(), Err(Error::InvalidState(_))), "{m}: start after join");
        assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)));
    }
}

/// Starts two children below itself (down to depth 2) and reports, in order,
/// the path of every process of its subtree (Python's `test_recursion`).
#[multiproc::task]
fn recurse(path: Vec<u32>, method: StartMethod, conn: Connection<Vec<Vec<u32>>>) {
    let mut out = vec![path.clone()];
    if path.len() < 2 {
        for i in 0..2 {
            let (a, b) = pipe::<Vec<Vec<u32>>>().unwrap();
            let mut sub = path.clone();
            sub.push(i);
            let mut p = multiproc::get_context(method).process(recurse, (sub, method, b)).unwrap();
            p.start().unwrap();
            out.extend(a.recv().unwrap());
            p.join().unwrap();
            assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)));
        }
    }
    conn.send(&out).unwrap();
}

#[multiproc::test]
fn nested_children() {
    let _g = leak_guard();
    for m in METHODS {
        let (a, b) = pipe().unwrap();
        let mut p = multiproc::get_context(m).process(recurse, (vec![], m, b)).unwrap();
        p.start().unwrap();
        let got = a.recv();
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)), "{m}");
        let want: Vec<Vec<u32>> = vec![vec![], vec![0], vec![0, 0], vec![0, 1], vec![1], vec![1, 0], vec![1, 1]];
        assert_eq!(got.unwrap(), want, "{m}");
    }
}

/// Reports what happens when a daemon tries to start a child.
#[multiproc::task]
fn daemon_starts_child(method: StartMethod, conn: Connection<String>) {
    let mut p = multiproc::get_context(method).process(do_nothing, ()).unwrap();
    let msg = match p.start() {
        Ok(()) => {
            let _ = p.join();
            "started".to_string()
        }
        Err(e) => e.to_string(),
    };
    conn.send(&msg).unwrap();
}

#[multiproc::test]
fn daemon_cannot_start_children() {
    let _g = leak_guard();
    for m in METHODS {
        let (a, b) = pipe().unwrap();
        let mut p = Process::builder(daemon_starts_child, (m, b)).daemon(true).start_method(m).build().unwrap();
        p.start().unwrap();
        let msg = a.recv().unwrap();
        p.join().unwrap();
        assert!(msg.contains("daemon"), "{m}: {msg}");
    }
}

#[multiproc::test]
fn many_short_children() {
    let _g = leak_guard();
    for m in METHODS {
        let ctx = multiproc::get_context(m);
        let mut ps: Vec<Process> = (0..100).map(|_| ctx.process(do_nothing, ()).unwrap()).collect();
        for p in &mut ps {
            p.start().unwrap();
        }
        for p in &mut ps {
            p.join().unwrap();
            assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)), "{m}");
        }
    }
}

#[multiproc::test]
fn many_blocked_children_terminated() {
    let _g = leak_guard();
    for m in METHODS {
        let mut ps: Vec<(Process, Connection<u32>)> = (0..10).map(|_| started(m)).collect();
        for (p, _) in &ps {
            p.terminate().unwrap();
        }
        for (p, _) in &mut ps {
            p.join().unwrap();
            assert_eq!(p.exitcode(), Some(ExitStatus::Signal(libc::SIGTERM)), "{m}");
        }
    }
}

#[multiproc::task]
fn print_and_report(conn: Connection<u32>) {
    println!("printed by a forked child");
    eprintln!("printed on stderr by a forked child");
    conn.send(&1).unwrap();
}

#[multiproc::test]
fn fork_while_another_thread_holds_stdout() {
    let _g = leak_guard();
    // Another thread holds Rust's stdout and stderr locks when we start a child:
    // the forked child must not inherit them locked (its exit flushes stdout).
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let out = std::io::stdout().lock();
        let err = std::io::stderr().lock();
        locked_tx.send(()).unwrap();
        // Hold them for a moment; a fixed start waits for them, a broken one forks now.
        let _ = release_rx.recv_timeout(Duration::from_millis(100));
        drop((out, err));
    });
    locked_rx.recv().unwrap();
    let (a, b) = pipe().unwrap();
    let mut p = multiproc::get_context(StartMethod::Fork).process(print_and_report, (b,)).unwrap();
    p.start().unwrap();
    let _ = release_tx.send(());
    holder.join().unwrap();
    let got = a.recv_timeout(DEADLINE);
    let status = p.join_timeout(DEADLINE).unwrap();
    if status.is_none() {
        p.kill().unwrap();
        p.join().unwrap();
    }
    assert_eq!(got.unwrap(), 1, "the child hung on an inherited stdio lock");
    assert_eq!(status, Some(ExitStatus::Code(0)), "the child hung on an inherited stdio lock");
}

/// Uses the runtime's process-wide state a forked child needs: its identity,
/// the default start method and its children's table.
#[multiproc::task]
fn use_the_runtime() {
    let me = multiproc::current_process();
    assert!(me.name.starts_with("Process-"), "{}", me.name);
    let _ = multiproc::get_start_method();
    assert!(multiproc::active_children().is_empty());
}

#[multiproc::test]
fn fork_while_other_threads_use_the_runtime() {
    let _g = leak_guard();
    // Other threads keep taking the runtime's locks while children are forked:
    // a child must never inherit one of them locked (it would hang on it).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = multiproc::current_process();
                    let _ = multiproc::get_start_method();
                    let _ = multiproc::active_children();
                }
            })
        })
        .collect();
    let mut hung = 0;
    for _ in 0..100 {
        let mut p = multiproc::get_context(StartMethod::Fork).process(use_the_runtime, ()).unwrap();
        p.start().unwrap();
        match p.join_timeout(DEADLINE).unwrap() {
            Some(status) => assert_eq!(status, ExitStatus::Code(0)),
            None => {
                hung += 1;
                p.kill().unwrap();
                p.join().unwrap();
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in busy {
        t.join().unwrap();
    }
    assert_eq!(hung, 0, "children hung on a runtime lock inherited from another thread");
}

/// What each fd of this process refers to (`pipe:[123]`, `socket:[456]`, a path).
fn fd_targets() -> Vec<String> {
    tests::open_fds()
        .into_iter()
        .filter_map(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).ok())
        .map(|t| t.display().to_string())
        .collect()
}

/// Reports what the child's fds refer to.
#[multiproc::task]
fn report_fds(conn: Connection<Vec<String>>) {
    conn.send(&fd_targets()).unwrap();
}

#[multiproc::test]
fn child_does_not_inherit_unrelated_fds() {
    use std::os::fd::AsRawFd;
    let _g = leak_guard();
    // Unrelated fds of the parent: a file, a pipe and a socket pair nobody passes on.
    let file = std::fs::File::open("/proc/self/stat").unwrap();
    let (r, w) = std::io::pipe().unwrap();
    let (s1, s2) = std::os::unix::net::UnixStream::pair().unwrap();
    let target = |fd: i32| std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap().display().to_string();
    let unrelated: Vec<String> =
        [file.as_raw_fd(), r.as_raw_fd(), w.as_raw_fd(), s1.as_raw_fd(), s2.as_raw_fd()].map(target).to_vec();
    for m in METHODS {
        let (a, b) = pipe().unwrap();
        let mut p = multiproc::get_context(m).process(report_fds, (b,)).unwrap();
        p.start().unwrap();
        let fds = a.recv().unwrap();
        p.join().unwrap();
        for t in &unrelated {
            assert!(!fds.contains(t), "{m}: the child inherited {t}: {fds:?}");
        }
        // stdio, the connection passed in, and the directory read to list them.
        assert!(fds.len() <= 5, "{m}: the child holds {} fds: {fds:?}", fds.len());
    }
}

#[multiproc::test]
fn polling_is_not_blocked_by_a_join_in_another_thread() {
    let _g = leak_guard();
    for m in METHODS {
        let (mut p, parent) = started(m);
        let pid = p.pid();
        let (joining_tx, joining_rx) = std::sync::mpsc::channel();
        let joiner = std::thread::spawn(move || {
            joining_tx.send(()).unwrap();
            p.join().unwrap();
            p.exitcode()
        });
        joining_rx.recv().unwrap();
        // While that thread blocks in join, the child is still listed and polls as alive, at once.
        let (tx, rx) = std::sync::mpsc::channel();
        let poller = std::thread::spawn(move || {
            let kids = multiproc::active_children();
            let alive = kids.iter().map(|k| (k.pid(), k.is_alive(), k.exitcode())).collect::<Vec<_>>();
            let _ = tx.send(alive);
        });
        let seen = rx.recv_timeout(DEADLINE);
        parent.send(&1).unwrap();
        let _ = poller.join();
        assert_eq!(joiner.join().unwrap(), Some(ExitStatus::Code(0)), "{m}");
        assert_eq!(seen.expect("active_children blocked behind a join"), vec![(pid, true, None)], "{m}");
    }
}

#[multiproc::task]
fn say_where(conn: multiproc::Connection<u32>) {
    conn.send(&std::process::id()).unwrap();
}

/// `Process::run` runs the target in this process (Python's `run()`), with
/// its own copy of the handle arguments, and the process still starts.
#[multiproc::test]
fn run_calls_the_target_here_and_the_process_still_starts() {
    let _g = tests::leak_guard();
    for m in tests::METHODS {
        let (mine, theirs) = multiproc::pipe::<u32>().unwrap();
        let mut p = multiproc::get_context(m).process(say_where, (theirs,)).unwrap();
        p.run().unwrap();
        assert_eq!(mine.recv().unwrap(), std::process::id(), "{m:?}: run() ran elsewhere");
        p.start().unwrap();
        let child = mine.recv().unwrap();
        assert_ne!(child, std::process::id(), "{m:?}");
        p.join().unwrap();
        assert!(matches!(p.run(), Err(multiproc::Error::InvalidState(_))), "{m:?}: run after start");
    }
}
