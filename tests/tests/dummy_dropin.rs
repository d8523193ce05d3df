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
                let deadline = std::time::Duration::from_secs(20);

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
                b.wait_timeout(deadline)?;
                for p in &mut ps {
                    p.join()?;
                }
                out.push(format!("inside={} over-release={}", inside.get(), bsem.release().is_err()));

                // Event, Condition.
                let (ready, cond, flag) = (mp::Event::new()?, mp::Condition::new()?, mp::Value::new(0u32)?);
                let mut p = mp::Process::new(waiter, (ready.clone(), cond.clone(), flag.clone(), q.clone()))?;
                p.start()?;
                out.push(format!("ready={}", ready.wait_timeout(deadline)));
                {
                    let _g = cond.lock()?;
                    flag.set(1);
                    cond.notify_all();
                }
                out.push(q.get()?);
                p.join()?;

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
                started.wait_timeout(deadline);
                let names: Vec<String> = mp::active_children().iter().map(|c| c.name().to_string()).collect();
                out.push(format!("active={names:?}"));
                go.set();
                p.join()?;
                out.push(format!("active after join={}", mp::active_children().len()));

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
                Ok(out)
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
