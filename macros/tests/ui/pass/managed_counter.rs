// The contract: a managed type, a dict proxy as a task argument.

#[multiproc::task]
fn record(d: multiproc::managers::DictProxy<String, u64>, key: String, v: u64) {
    d.insert(key, v).unwrap();
}

struct Counter {
    n: u64,
}

#[multiproc::managed]
impl Counter {
    /// A constructor is not proxied.
    fn new() -> Self {
        Counter { n: 0 }
    }

    fn incr(&mut self, by: u64) -> u64 {
        self.n += by;
        self.n
    }

    fn get(&self) -> u64 {
        self.n
    }

    fn pair(&self, (a, b): (u32, u32), _unused: String) -> Result<Vec<u32>, String> {
        Ok(vec![a, b])
    }
}

#[multiproc::task]
fn bump(c: CounterProxy) {
    c.incr(1).unwrap();
}

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let manager = multiproc::Manager::start()?;
    let d = manager.dict::<String, u64>()?;
    let mut p = multiproc::Process::new(record, (d.clone(), "a".into(), 1))?;
    p.start()?;
    p.join()?;
    assert_eq!(d.get(&"a".to_string())?, Some(1));
    let c = manager.create(Counter::new())?;
    let _: CounterProxy = c.clone();
    assert_eq!(c.incr(5)?, 5);
    let _: multiproc::Result<Result<Vec<u32>, String>> = c.pair((1, 2), String::new());
    let mut q = multiproc::Process::new(bump, (c,))?;
    q.start()?;
    q.join()?;
    Ok(())
}
