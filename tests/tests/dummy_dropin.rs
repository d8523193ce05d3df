//! `use multiproc::dummy as mp;` in place of `use multiproc as mp;`: one
//! program body, written once in `program!`, compiled against both modules,
//! gives the same transcript (threads instead of processes). The process
//! version runs under every start method.

use multiproc::managers::DictProxy;
use tests::{METHODS, leak_guard};

/// The program: every name of Python's `multiprocessing.dummy`, used as a
/// program switching between processes and threads would use it.
macro_rules! program {
    ($name:ident, $($mp:ident)::+) => {
        mod $name {
            use $($mp)::+ as mp;

            use super::DictProxy;

            #[multiproc::task]
            fn report(q: mp::Queue<String>) {
                let me = mp::current_process();
                q.put(format!("{} daemon={}", me.name, me.daemon)).unwrap();
            }

            #[multiproc::task]
            fn echo(conn: mp::Connection<u64>) {
                let x = conn.recv().unwrap();
                conn.send(&(x * 2)).unwrap();
            }

            #[multiproc::task]
            fn consume(jq: mp::JoinableQueue<u64>, total: mp::Value<u64>) {
                for _ in 0..3 {
                    let x = jq.get().unwrap();
                    *total.lock().unwrap() += x;
                    jq.task_done().unwrap();
                }
            }

            #[multiproc::task]
            fn count(i: usize, lock: mp::Lock, rlock: mp::RLock, n: mp::Value<u64>, squares: mp::Array<u64>) {
                for _ in 0..100 {
                    let _g = lock.lock().unwrap();
                    n.set(n.get() + 1);
                }
                let _outer = rlock.lock().unwrap();
                let _inner = rlock.lock().unwrap(); // re-entrant
                squares.lock().unwrap()[i] = (i * i) as u64;
            }

            #[multiproc::task]
            fn gate(sem: mp::Semaphore, bsem: mp::BoundedSemaphore, inside: mp::Value<u32>, b: mp::Barrier) {
                let _s = sem.lock();
                let _b = bsem.lock();
                *inside.lock().unwrap() += 1;
                b.wait().unwrap();
            }

            #[multiproc::task]
            fn waiter(ready: mp::Event, cond: mp::Condition, flag: mp::Value<u32>, q: mp::Queue<String>) {
                ready.set();
                let _g = cond.lock().unwrap();
                cond.wait_for(|| flag.get() == 1, None).unwrap();
                q.put(format!("flag={}", flag.get())).unwrap();
            }

            #[multiproc::task]
            fn remember(d: DictProxy<String, u64>, key: String, value: u64) {
                d.insert(key, value).unwrap();
            }

            #[multiproc::task]
            fn block(started: mp::Event, go: mp::Event) {
                started.set();
                go.wait(None);
            }

            #[multiproc::task]
            fn square(x: u64) -> u64 {
                x * x
            }

            #[multiproc::task]
            fn add(a: u64, b: u64) -> u64 {
                a + b
            }

            #[multiproc::task]
            fn init(inits: mp::Value<u32>) {
                *inits.lock().unwrap() += 1;
            }

            /// What the program observed, line by line.
            pub(crate) fn run() -> mp::Result<Vec<String>> {
                let mut out = Vec::new();
                processes_pipes_queues(&mut out)?;
                synchronisation(&mut out)?;
                manager_and_children(&mut out)?;
                pools(&mut out)?;
                Ok(out)
            }

            const DEADLINE: std::time::Duration = std::time::Duration::from_secs(20);

            fn processes_pipes_queues(out: &mut Vec<String>) -> mp::Result<()> {
                // Process, Queue, current_process, exitcode.
                let q = mp::Queue::new()?;
                let mut p = mp::Process::builder(report, (q.clone(),)).name("child-1").daemon(true).build()?;
                p.start()?;
                out.push(q.get()?);
                p.join()?;
                out.push(format!("alive={} exit={:?} pid={}", p.is_alive(), p.exitcode(), p.pid().is_some()));

                // pipe.
                let (here, there) = mp::pipe::<u64>()?;
                let mut p = mp::Process::new(echo, (there,))?;
                p.start()?;
                here.send(&21)?;
                out.push(format!("echo {}", here.recv()?));
                p.join()?;

                // JoinableQueue, Value.
                let (jq, total) = (mp::JoinableQueue::new()?, mp::Value::new(0u64)?);
                let mut p = mp::Process::new(consume, (jq.clone(), total.clone()))?;
                p.start()?;
                for x in [1, 2, 3] {
                    jq.put(x)?;
                }
                jq.join();
                out.push(format!("joined total={}", total.get()));
                p.join()?;
                Ok(())
            }

            fn synchronisation(out: &mut Vec<String>) -> mp::Result<()> {
                // Lock, RLock, Value, Array.
                let (lock, rlock, n) = (mp::Lock::new()?, mp::RLock::new()?, mp::Value::new(0u64)?);
                let squares = mp::Array::<u64>::zeroed(4)?;
                let mut ps = Vec::new();
                for i in 0..4 {
                    let args = (i, lock.clone(), rlock.clone(), n.clone(), squares.clone());
                    let mut p = mp::Process::new(count, args)?;
                    p.start()?;
                    ps.push(p);
                }
                for p in &mut ps {
                    p.join()?;
                }
                out.push(format!("n={} squares={:?}", n.get(), squares.lock()?.to_vec()));

                // Semaphore, BoundedSemaphore, Barrier.
                let (sem, bsem) = (mp::Semaphore::new(2)?, mp::BoundedSemaphore::new(2)?);
                let (inside, b) = (mp::Value::new(0u32)?, mp::Barrier::new(3)?);
                let mut ps = Vec::new();
                for _ in 0..2 {
                    let args = (sem.clone(), bsem.clone(), inside.clone(), b.clone());
                    let mut p = mp::Process::new(gate, args)?;
                    p.start()?;
                    ps.push(p);
                }
                b.wait_timeout(DEADLINE)?;
                for p in &mut ps {
                    p.join()?;
                }
                out.push(format!("inside={} over-release={}", inside.get(), bsem.release().is_err()));

                // Event, Condition.
                let q = mp::Queue::new()?;
                let (ready, cond, flag) = (mp::Event::new()?, mp::Condition::new()?, mp::Value::new(0u32)?);
                let mut p = mp::Process::new(waiter, (ready.clone(), cond.clone(), flag.clone(), q.clone()))?;
                p.start()?;
                out.push(format!("ready={}", ready.wait_timeout(DEADLINE)));
                {
                    let _g = cond.lock()?;
                    flag.set(1);
                    cond.notify_all();
                }
                out.push(q.get()?);
                p.join()?;
                Ok(())
            }

            fn manager_and_children(out: &mut Vec<String>) -> mp::Result<()> {
                // Manager.
                let manager = mp::Manager::start()?;
                let d = manager.dict::<String, u64>()?;
                let mut p = mp::Process::new(remember, (d.clone(), "answer".to_string(), 42))?;
                p.start()?;
                p.join()?;
                out.push(format!("dict={:?}", d.items()?));
                // The manager's server is a child process (under both modules):
                // shut it down so that it does not count in `active_children`.
                manager.shutdown()?;

                // active_children.
                let (started, go) = (mp::Event::new()?, mp::Event::new()?);
                let mut p = mp::Process::builder(block, (started.clone(), go.clone())).name("blocker").build()?;
                p.start()?;
                started.wait_timeout(DEADLINE);
                let names: Vec<String> = mp::active_children().iter().map(|c| c.name().to_string()).collect();
                out.push(format!("active={names:?}"));
                go.set();
                p.join()?;
                out.push(format!("active after join={}", mp::active_children().len()));
                Ok(())
            }

            fn pools(out: &mut Vec<String>) -> mp::Result<()> {
                // Pool, with an initializer; cpu_count.
                let inits = mp::Value::new(0u32)?;
                let pool = mp::Pool::builder().processes(2).initializer(init, (inits.clone(),)).build()?;
                out.push(format!("inits={}", inits.get()));
                out.push(format!("map={:?}", pool.map(square, 0..5)?));
                out.push(format!("starmap={:?}", pool.starmap(add, vec![(1, 2), (3, 4)])?));
                out.push(format!("apply={} async={}", pool.apply(add, (5, 6))?, pool.apply_async(square, (9,))?.get()?));
                let imap: Vec<u64> = pool.imap(square, 0..3)?.collect::<mp::Result<_>>()?;
                out.push(format!("imap={imap:?}"));
                pool.close();
                pool.join()?;
                let pool = mp::Pool::builder().build()?;
                out.push(format!("default size is cpu_count: {}", pool.processes() == mp::cpu_count()));
                Ok(())
            }
        }
    };
}

program!(processes, multiproc);
program!(threads, multiproc::dummy);

fn expected() -> Vec<String> {
    [
        "child-1 daemon=true",
        "alive=false exit=Some(Code(0)) pid=true",
        "echo 42",
        "joined total=6",
        "n=400 squares=[0, 1, 4, 9]",
        "inside=2 over-release=true",
        "ready=true",
        "flag=1",
        "dict=[(\"answer\", 42)]",
        "active=[\"blocker\"]",
        "active after join=0",
        "inits=2",
        "map=[0, 1, 4, 9, 16]",
        "starmap=[3, 7]",
        "apply=11 async=81",
        "imap=[0, 1, 4]",
        "default size is cpu_count: true",
    ]
    .map(String::from)
    .to_vec()
}

#[multiproc::test]
fn the_same_program_runs_on_processes_under_every_start_method() {
    let _g = leak_guard();
    for m in METHODS {
        multiproc::set_start_method(m, true).unwrap();
        assert_eq!(processes::run().unwrap(), expected(), "{m}");
    }
    multiproc::set_start_method(multiproc::StartMethod::ForkServer, true).unwrap();
}

#[multiproc::test]
fn the_same_program_runs_on_threads() {
    let _g = leak_guard();
    assert_eq!(threads::run().unwrap(), expected());
}

// What only the thread version does (or cannot do).

mod on_threads {
    use std::time::Duration;

    use multiproc::dummy as mp;
    use multiproc::{Error, ExitStatus};
    use tests::{DEADLINE, leak_guard};

    #[multiproc::task]
    fn block(started: mp::Event, go: mp::Event) {
        started.set();
        go.wait(None);
    }

    #[multiproc::task]
    fn boom() {
        panic!("boom");
    }

    #[multiproc::task]
    fn whoami(conn: mp::Connection<(String, u32, bool)>) {
        let me = mp::current_process();
        conn.send(&(me.name, me.pid, me.daemon)).unwrap();
    }

    #[multiproc::task]
    fn nothing(_: u32) {}

    fn started_blocker() -> (mp::Process, mp::Event) {
        let (started, go) = (mp::Event::new().unwrap(), mp::Event::new().unwrap());
        let mut p = mp::Process::builder(block, (started.clone(), go.clone())).name("blocker").build().unwrap();
        p.start().unwrap();
        assert!(started.wait_timeout(DEADLINE), "the thread never started");
        (p, go)
    }

    #[multiproc::test]
    fn a_thread_cannot_be_stopped_and_says_so() {
        let _g = leak_guard();
        let (mut p, go) = started_blocker();
        for r in [p.terminate(), p.kill(), p.interrupt(), p.sentinel().map(drop)] {
            match r {
                Err(Error::InvalidState(m)) => assert!(m.contains("blocker") && m.contains("thread"), "{m}"),
                other => panic!("expected InvalidState, got {other:?}"),
            }
        }
        assert!(p.is_alive());
        assert!(matches!(p.close(), Err(Error::InvalidState(_))), "closing a running thread");
        assert_eq!(p.join_timeout(Duration::from_millis(20)).unwrap(), None);
        assert_eq!(p.exitcode(), None);
        go.set();
        assert_eq!(p.join_timeout(DEADLINE).unwrap(), Some(ExitStatus::Code(0)));
        p.close().unwrap();
        assert!(matches!(p.join(), Err(Error::InvalidState(_))), "joining a closed process");
    }

    #[multiproc::test]
    fn a_panicking_thread_ends_with_code_1() {
        let _g = leak_guard();
        let mut p = mp::Process::new(boom, ()).unwrap();
        p.start().unwrap();
        p.join().unwrap();
        assert_eq!(p.exitcode(), Some(ExitStatus::Code(1)));
        assert!(!p.is_alive());
    }

    #[multiproc::test]
    fn start_and_join_in_the_wrong_order_are_errors() {
        let _g = leak_guard();
        let mut p = mp::Process::new(nothing, (1,)).unwrap();
        assert!(p.name().starts_with("Thread-"), "{}", p.name());
        assert_eq!(p.pid(), None);
        assert!(matches!(p.join(), Err(Error::InvalidState(_))), "join before start");
        p.start().unwrap();
        assert!(matches!(p.start(), Err(Error::InvalidState(_))), "second start");
        p.join().unwrap();
    }

    #[multiproc::test]
    fn current_process_in_a_thread_is_its_process() {
        let _g = leak_guard();
        let (here, there) = mp::pipe().unwrap();
        let mut p = mp::Process::builder(whoami, (there,)).name("named").daemon(true).build().unwrap();
        p.start().unwrap();
        let (name, pid, daemon) = here.recv().unwrap();
        p.join().unwrap();
        assert_eq!(name, "named");
        assert!(daemon);
        assert_eq!(Some(pid), p.pid(), "pid is the thread's OS id");
        assert_ne!(pid, std::process::id(), "a thread that is not the main one has its own id");
        // This test's own thread is no dummy::Process: it reports its own name.
        let me = mp::current_process();
        assert_eq!(me.name, std::thread::current().name().unwrap_or_default());
    }

    #[multiproc::test]
    fn active_children_are_those_of_the_calling_thread() {
        let _g = leak_guard();
        let (mut p, go) = started_blocker();
        assert_eq!(mp::active_children().len(), 1);
        let seen_elsewhere = std::thread::spawn(|| mp::active_children().len()).join().unwrap();
        assert_eq!(seen_elsewhere, 0, "another thread did not start it");
        let mut handle = mp::active_children().pop().unwrap();
        go.set();
        handle.join().unwrap(); // the handle shares the original's state
        assert_eq!(p.exitcode(), Some(ExitStatus::Code(0)));
        p.join().unwrap();
        assert!(mp::active_children().is_empty());
    }

    #[multiproc::task]
    fn init_boom(_: u32) {
        panic!("no init");
    }

    #[multiproc::test]
    fn a_pool_initializer_that_panics_fails_build() {
        let _g = leak_guard();
        match mp::Pool::builder().processes(2).initializer(init_boom, (0,)).build() {
            Err(Error::TaskPanicked { message, .. }) => assert_eq!(message, "no init"),
            other => panic!("expected TaskPanicked, got {other:?}"),
        }
        assert!(matches!(mp::Pool::builder().processes(0).build(), Err(Error::InvalidArgument(_))));
        assert_eq!(mp::Pool::new(3).unwrap().processes(), 3);
    }
}

#[test]
fn the_end_of_main_joins_non_daemon_threads_only() {
    let (status, stdout, stderr) =
        tests::run_bounded(&mut std::process::Command::new(env!("CARGO_BIN_EXE_dummy_helper")));
    assert!(status.success(), "{status:?}: {stderr}");
    assert_eq!(stdout, "main returns\nnon-daemon thread done\n", "{stderr}");
}
