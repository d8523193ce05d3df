//! Start methods and contexts (PARITY.md section 2).

use std::process::Command;
use std::time::{Duration, Instant};

use multiproc::{Connection, Error, ExitStatus, Process, StartMethod, pipe};
use tests::{DEADLINE, METHODS, exited, leak_guard, run_bounded, wait_until};

#[multiproc::task]
fn add_one(x: u32, conn: Connection<u32>) {
    conn.send(&(x + 1)).unwrap();
}

#[multiproc::task]
fn do_nothing() {}

/// Says it is running, then blocks until the parent sends or closes its end.
#[multiproc::task]
fn block(conn: Connection<u32>) {
    conn.send(&0).unwrap();
    let _ = conn.recv();
}

#[test]
fn all_start_methods_default_first() {
    let _g = leak_guard();
    let all = multiproc::get_all_start_methods();
    for m in METHODS {
        assert!(all.contains(&m), "{m} missing from {all:?}");
    }
    assert_eq!(all.len(), 3);
    assert_eq!(all[0], StartMethod::ForkServer, "the default (forkserver, as Python 3.14) comes first");
    for m in METHODS {
        assert_eq!(StartMethod::from_name(m.name()).unwrap(), m);
        assert_eq!(m.to_string(), m.name());
    }
    assert!(matches!(StartMethod::from_name("threads"), Err(Error::InvalidArgument(_))));
}

#[multiproc::test]
fn context_uses_its_method() {
    let _g = leak_guard();
    for m in METHODS {
        let ctx = multiproc::get_context(m);
        assert_eq!(ctx.start_method(), m);
        assert_eq!(multiproc::get_context(ctx.start_method()), ctx);
        let (a, b) = pipe().unwrap();
        let mut p = ctx.process(add_one, (41, b)).unwrap();
        assert_eq!(p.start_method(), m);
        p.start().unwrap();
        assert_eq!(a.recv().unwrap(), 42, "{m}");
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)), "{m}");
    }
}

#[multiproc::test]
fn set_start_method_switches_the_default() {
    let _g = leak_guard();
    for m in METHODS {
        multiproc::set_start_method(m, true).unwrap();
        assert_eq!(multiproc::get_start_method(), m);
        assert_eq!(multiproc::Context::default().start_method(), m);
        let (a, b) = pipe().unwrap();
        let mut p = Process::new(add_one, (1, b)).unwrap();
        assert_eq!(p.start_method(), m);
        p.start().unwrap();
        assert_eq!(a.recv().unwrap(), 2, "{m}");
        p.join().unwrap();
        for other in METHODS.into_iter().filter(|o| *o != m) {
            match multiproc::set_start_method(other, false) {
                Err(Error::InvalidState(msg)) => assert!(msg.contains("force"), "{msg}"),
                r => panic!("setting {other} over {m} without force gave {r:?}"),
            }
            assert_eq!(multiproc::get_start_method(), m, "a refused set must not change the default");
        }
    }
    multiproc::set_start_method(StartMethod::ForkServer, true).unwrap();
}

/// The pid of our fork server, starting it if needed.
fn server_pid() -> u32 {
    let mut p = multiproc::get_context(StartMethod::ForkServer).process(do_nothing, ()).unwrap();
    p.start().unwrap();
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)));
    let pids = multiproc::__private::runtime_pids();
    assert_eq!(pids.len(), 1, "expected one fork server, got {pids:?}");
    pids[0]
}

#[multiproc::test]
fn killed_fork_server_kills_nobody_and_is_restarted() {
    let _g = leak_guard();
    for signal in ["-KILL", "-TERM"] {
        let old = server_pid();
        // A child of the old server, running while the server dies.
        let (a, b) = pipe::<u32>().unwrap();
        let mut running = multiproc::get_context(StartMethod::ForkServer).process(block, (b,)).unwrap();
        running.start().unwrap();
        assert_eq!(a.recv().unwrap(), 0);

        assert!(Command::new("kill").args([signal, &old.to_string()]).status().unwrap().success());
        wait_until(|| exited(old), format_args!("fork server {old} to exit after kill {signal}"));

        // The running child outlives its server (CPython's bpo-31308): it still
        // runs, finishes when told to, and its real parent joins and reaps it.
        assert!(running.is_alive(), "{signal}: the server's child died with it");
        a.send(&1).unwrap();
        let status = running.join_timeout(DEADLINE).unwrap();
        assert_eq!(status, Some(ExitStatus::Code(0)), "{signal}: the server's child did not finish normally");
        assert_eq!(running.exitcode(), Some(ExitStatus::Code(0)), "{signal}");

        // The next start brings up a new server transparently.
        let (a, b) = pipe().unwrap();
        let mut p = multiproc::get_context(StartMethod::ForkServer).process(add_one, (7, b)).unwrap();
        p.start().unwrap();
        assert_eq!(a.recv().unwrap(), 8, "{signal}");
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)), "{signal}");
        let new = multiproc::__private::runtime_pids();
        assert_eq!(new.len(), 1, "{new:?}");
        assert_ne!(new[0], old, "{signal}: the server was not restarted");
    }
}

#[multiproc::test]
fn fork_server_ignores_sigint_like_pythons() {
    let _g = leak_guard();
    let old = server_pid();
    assert!(Command::new("kill").args(["-INT", &old.to_string()]).status().unwrap().success());
    // The signal is pending once `kill` returns and is delivered before the
    // server next returns to user space, so the start below runs after it.
    let (a, b) = pipe().unwrap();
    let mut p = multiproc::get_context(StartMethod::ForkServer).process(add_one, (7, b)).unwrap();
    p.start().unwrap();
    assert_eq!(a.recv().unwrap(), 8);
    p.join().unwrap();
    assert!(!exited(old), "the fork server died of SIGINT");
    assert_eq!(multiproc::__private::runtime_pids(), vec![old], "the fork server was replaced");
}

/// Runs `unannotated` with `arg` (and `env`), bounded by [`DEADLINE`] (a hang
/// or a fork bomb fails the test); returns (exit code, stdout, stderr, time taken).
fn run_unannotated(arg: &str, env: &[(&str, &str)]) -> (Option<i32>, String, String, Duration) {
    let t = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_unannotated"));
    cmd.arg(arg).env_remove("MULTIPROC_START_METHOD").env_remove("MULTIPROC_BACKEND").envs(env.iter().copied());
    let (status, stdout, stderr) = run_bounded(&mut cmd);
    (status.code(), stdout, stderr, t.elapsed())
}

#[multiproc::test]
fn unannotated_main_gets_a_clear_error_and_never_forks_a_bomb() {
    let _g = leak_guard();
    for m in [StartMethod::Spawn, StartMethod::ForkServer] {
        let (code, stdout, stderr, took) = run_unannotated(m.name(), &[]);
        assert_eq!(code, Some(3), "{m}: stdout {stdout:?} stderr {stderr:?}");
        assert!(stdout.contains("#[multiproc::main]"), "{m}: the error must say what to do: {stdout:?}");
        assert_eq!(stdout.matches("main body").count(), 1, "{m}: main ran more than once: {stdout:?}");
        assert!(!stdout.contains("child ran"), "{m}: {stdout:?}");
        assert!(took < Duration::from_secs(5), "{m}: took {took:?}");
    }
    // Under fork the program runs, as Python's script without the guard does.
    let (code, stdout, stderr, _) = run_unannotated("fork", &[]);
    assert_eq!(code, Some(0), "fork: stdout {stdout:?} stderr {stderr:?}");
    assert_eq!(stdout.matches("main body").count(), 1, "fork: {stdout:?}");
    assert!(stdout.contains("child ran"), "fork: {stdout:?}");
    assert!(stdout.contains("exitcode Some(Code(0))"), "fork: {stdout:?}");
}

#[multiproc::test]
fn default_method_comes_from_the_environment() {
    let _g = leak_guard();
    let (code, stdout, stderr, _) = run_unannotated("default", &[("MULTIPROC_START_METHOD", "fork")]);
    assert_eq!(code, Some(0), "stdout {stdout:?} stderr {stderr:?}");
    assert!(stdout.contains("child ran"), "{stdout:?}");
    let (code, stdout, _, _) = run_unannotated("default", &[]);
    assert_eq!(code, Some(3), "the default is forkserver, which needs an annotated main: {stdout:?}");
}

#[multiproc::test]
fn unknown_multiproc_values_are_errors_at_start() {
    let _g = leak_guard();
    let cases = [
        ("MULTIPROC_START_METHOD", "bogus", "fork, spawn, forkserver"),
        ("MULTIPROC_START_METHOD", "", "fork, spawn, forkserver"),
        ("MULTIPROC_BACKEND", "bogus", "mpi, local"),
    ];
    for (var, value, allowed) in cases {
        // Under fork the start needs no annotated main, so only the variable can fail it.
        let (code, stdout, stderr, _) = run_unannotated("fork", &[(var, value)]);
        assert_eq!(code, Some(4), "{var}={value:?}: stdout {stdout:?} stderr {stderr:?}");
        assert!(!stdout.contains("child ran"), "{var}={value:?}: a child started: {stdout:?}");
        for part in [var, &format!("{value:?}"), allowed] {
            assert!(stdout.contains(part), "{var}={value:?}: the error must name {part:?}: {stdout:?}");
        }
    }
    // Known values still start.
    for (var, value) in [("MULTIPROC_START_METHOD", "spawn"), ("MULTIPROC_BACKEND", "local")] {
        let (code, stdout, stderr, _) = run_unannotated("fork", &[(var, value)]);
        assert_eq!(code, Some(0), "{var}={value}: stdout {stdout:?} stderr {stderr:?}");
        assert!(stdout.contains("child ran"), "{var}={value}: {stdout:?}");
    }
}

#[multiproc::test]
fn stray_child_of_an_unannotated_binary_exits_at_once() {
    let _g = leak_guard();
    // As if started by multiproc: the role is in the environment, but `main` is
    // not annotated, so nothing takes it. The program must not start children.
    for m in METHODS {
        let (code, stdout, stderr, _) = run_unannotated(m.name(), &[("MULTIPROC_ROLE", "task;1023;")]);
        assert_ne!(code, Some(0), "{m}: stdout {stdout:?}");
        assert!(!stdout.contains("child ran"), "{m}: a stray child started a child: {stdout:?}");
        assert!(stderr.contains("#[multiproc::main]"), "{m}: stderr {stderr:?}");
    }
}

#[multiproc::test]
fn fork_closure_runs_any_closure_under_fork_only() {
    let _g = leak_guard();
    let k = 5u32;
    let (a, b) = pipe().unwrap();
    let send = move |conn: Connection<u32>, x: u32| conn.send(&(x + k)).unwrap();
    let mut p = Process::fork_closure(send, (b, 2)).name("closure").build().unwrap();
    assert_eq!(p.start_method(), StartMethod::Fork);
    p.start().unwrap();
    assert_eq!(a.recv().unwrap(), 7);
    p.join().unwrap();
    assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)));

    for m in [StartMethod::Spawn, StartMethod::ForkServer] {
        match Process::fork_closure(move || k, ()).start_method(m).build() {
            Err(e @ Error::InvalidArgument(_)) => {
                let msg = e.to_string();
                assert!(
                    msg.contains("fork") && msg.contains("#[multiproc::task]") && msg.contains("lambda!"),
                    "{m}: {msg}"
                );
            }
            r => panic!("{m}: a fork_closure gave {r:?}"),
        }
    }
}

#[multiproc::test]
fn lambdas_run_under_every_method() {
    let _g = leak_guard();
    let k = 10u32;
    for m in METHODS {
        let plain = multiproc::lambda!(|conn: Connection<u32>, x: u32| conn.send(&(x * x)).unwrap());
        let (a, b) = pipe().unwrap();
        let mut p = multiproc::get_context(m).process(plain, (b, 7)).unwrap();
        p.start().unwrap();
        assert_eq!(a.recv().unwrap(), 49, "{m}");
        p.join().unwrap();

        let captured = multiproc::lambda!(move [k: u32] |conn: Connection<u32>, x: u32| conn.send(&(x + k)).unwrap());
        let (a, b) = pipe().unwrap();
        let mut p = multiproc::get_context(m).process(captured, (b, 7)).unwrap();
        p.start().unwrap();
        assert_eq!(a.recv().unwrap(), 17, "{m}");
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)), "{m}");
    }
}

/// Sends the start method this child sees as its default, and what its stdin is.
#[multiproc::task]
fn report_context(conn: Connection<(String, String)>) {
    let stdin = std::fs::read_link("/proc/self/fd/0").map(|p| p.display().to_string()).unwrap_or_default();
    conn.send(&(multiproc::get_start_method().to_string(), stdin)).unwrap();
}

/// CPython's `TestStartMethod.test_context`/`test_set_get`: a child's
/// `get_start_method()` names the method that started it; and, as in every
/// Python child, its stdin is `/dev/null`, not the parent's input.
#[multiproc::test]
fn a_child_knows_its_start_method_and_reads_no_input() {
    let _g = leak_guard();
    // Give this process a stdin a child could read from: a pipe holding data.
    let (r, w) = nix::unistd::pipe().unwrap();
    nix::unistd::write(&w, b"the parent's input").unwrap();
    nix::unistd::dup2_stdin(&r).unwrap();
    for m in METHODS {
        let (parent, child) = pipe().unwrap();
        let mut p = multiproc::get_context(m).process(report_context, (child,)).unwrap();
        p.start().unwrap();
        let (method, stdin) = parent.recv().unwrap();
        p.join().unwrap();
        assert_eq!(method, m.to_string(), "{m}");
        assert_eq!(stdin, "/dev/null", "{m}");
    }
    let null = std::fs::File::open("/dev/null").unwrap();
    nix::unistd::dup2_stdin(&null).unwrap();
}

/// Reports on its parent: alive, not ended after 10 ms, and watchable.
#[multiproc::task]
fn watch_parent(report: Connection<(bool, bool, bool)>) {
    let p = multiproc::parent_process().expect("a parent");
    let running = !p.join_timeout(Some(Duration::from_millis(10))).unwrap();
    report.send(&(p.is_alive(), running, p.sentinel().is_ok())).unwrap();
}

/// CPython's `test_parent_process`: a child sees its parent alive and can
/// wait on it. (Its end cannot be watched here: children die with their parent.)
#[multiproc::test]
fn a_child_watches_its_parent() {
    let _g = leak_guard();
    for m in METHODS {
        let (report_rx, report_tx) = pipe().unwrap();
        let mut p = multiproc::get_context(m).process(watch_parent, (report_tx,)).unwrap();
        p.start().unwrap();
        assert_eq!(report_rx.recv().unwrap(), (true, true, true), "{m}");
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)), "{m}");
    }
    let me = multiproc::current_process();
    assert!(me.is_alive() && me.exitcode().is_none() && me.join().is_err() && me.sentinel().is_err());
}
