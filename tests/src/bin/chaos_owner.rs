//! Helper for `tests/chaos.rs`: a parent holding one of everything — a pool
//! with work in flight, a manager with a dict and a queue, a queue with items,
//! anonymous and named shared memory, a value, a lock it holds, a listener —
//! that prints `shm <name>` for its named segments and `ready`, then blocks
//! until it is SIGKILLed.
//!
//! `chaos_owner <method>`

use std::io::Write;

use multiproc::connection::{Address, Listener};
use multiproc::{Lock, Pool, Queue, SharedMemory, StartMethod, Value, pipe};

/// Blocks its worker for good (the owner dies first).
#[multiproc::task]
fn hold_worker(x: u64) -> u64 {
    let (a, _b) = pipe::<u64>().unwrap();
    a.recv().unwrap_or(x)
}

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let method = StartMethod::from_name(&std::env::args().nth(1).unwrap_or_default())?;
    let ctx = multiproc::get_context(method);
    let pool = Pool::builder().processes(2).start_method(method).build()?;
    let running = pool.map_async(hold_worker, 0..4u64)?;
    let manager = multiproc::Manager::builder().start_method(method).start()?;
    let dict = manager.dict::<String, u64>()?;
    dict.insert("k".into(), 1)?;
    let mq = manager.queue::<u64>()?;
    mq.put(7)?;
    let q: Queue<Vec<u8>> = Queue::new()?;
    q.put(vec![1; 1 << 10])?;
    let anon = SharedMemory::create(1 << 16)?;
    let named = SharedMemory::create_named(&format!("multiproc-chaos-{}", std::process::id()), 4096)?;
    let value = Value::new(0u64)?;
    let lock = Lock::new()?;
    let held = lock.acquire(true, None)?;
    let listener = Listener::bind(Address::unique_abstract()?, Some(b"key"))?;
    let mut child = ctx.process(hold_worker, (9u64,))?;
    child.start()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "shm {}", anon.name())?;
    writeln!(out, "shm {}", named.name())?;
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);
    let (a, _b) = pipe::<u32>()?;
    a.recv()?;
    drop((pool, running, manager, dict, mq, q, value, held, lock, listener, child));
    Ok(())
}
