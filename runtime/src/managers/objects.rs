//! The built-in shared objects a manager serves: containers of encoded values
//! (the server never needs the element types) and synchronisation primitives
//! built on `std::sync` inside the server process.
//!
//! Every blocking method waits on a `Condvar` in slices of [`CALLER_CHECK`],
//! and gives up without taking anything if its caller has hung up, so a
//! client killed mid-call cannot swallow an item meant for another.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use indexmap::IndexMap;

use super::server::{CALLER_CHECK, Caller, Object, de, en};
use crate::error::{Error, Result};

type Bytes = Vec<u8>;

/// Creates a built-in object of `kind` from its encoded initial state.
pub(crate) fn create(kind: &str, init: &[u8]) -> Result<Arc<dyn Object>> {
    Ok(match kind {
        "dict" => {
            let items: Vec<(Bytes, Bytes)> = de(init)?;
            Arc::new(Dict(Mutex::new(items.into_iter().collect())))
        }
        "list" => Arc::new(List(Mutex::new(de(init)?))),
        "value" => Arc::new(Value(Mutex::new(de(init)?))),
        "namespace" => Arc::new(Namespace(Mutex::new(IndexMap::new()))),
        "queue" => {
            let maxsize: u64 = de(init)?;
            Arc::new(Queue { state: Mutex::new(VecDeque::new()), cv: Condvar::new(), maxsize: maxsize as usize })
        }
        "lock" => Arc::new(Lock { rlock: false, state: Mutex::default(), cv: Condvar::new() }),
        "rlock" => Arc::new(Lock { rlock: true, state: Mutex::default(), cv: Condvar::new() }),
        "semaphore" => Arc::new(Semaphore { value: Mutex::new(de(init)?), cv: Condvar::new() }),
        "condition" => Arc::new(Condition { state: Mutex::default(), cv: Condvar::new() }),
        "event" => Arc::new(Event { flag: Mutex::new(false), cv: Condvar::new() }),
        "barrier" => {
            let parties: u64 = de(init)?;
            if parties == 0 {
                return Err(Error::Remote("a barrier needs at least one party".into()));
            }
            Arc::new(Barrier { parties, state: Mutex::default(), cv: Condvar::new() })
        }
        other => return Err(Error::Remote(format!("this manager cannot create objects of kind `{other}`"))),
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn timeout(micros: Option<u64>) -> Option<Duration> {
    micros.map(Duration::from_micros)
}

/// Waits on `cv` until `ready` holds (true), `timeout` passes (false), or the
/// caller hangs up ([`Error::Closed`]).
fn wait_until<'a, S>(
    cv: &Condvar,
    mut guard: MutexGuard<'a, S>,
    caller: &Caller<'_>,
    timeout: Option<Duration>,
    mut ready: impl FnMut(&mut S) -> bool,
) -> Result<(MutexGuard<'a, S>, bool)> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        if caller.gone() {
            return Err(Error::Closed("the caller's connection"));
        }
        if ready(&mut guard) {
            return Ok((guard, true));
        }
        let slice = match deadline {
            None => CALLER_CHECK,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok((guard, false));
                }
                left.min(CALLER_CHECK)
            }
        };
        guard = cv.wait_timeout(guard, slice).unwrap_or_else(|p| p.into_inner()).0;
    }
}

fn no_method(kind: &str, method: &str) -> Error {
    Error::Remote(format!("`{kind}` has no method `{method}`"))
}

struct Dict(Mutex<IndexMap<Bytes, Bytes>>);

impl Object for Dict {
    fn kind(&self) -> &str {
        "dict"
    }

    fn call(&self, _: &Caller<'_>, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        let mut d = lock(&self.0);
        match method {
            "insert" => {
                let (k, v): (Bytes, Bytes) = de(args)?;
                en(&d.insert(k, v))
            }
            "get" => en(&d.get(&de::<Bytes>(args)?)),
            "remove" => en(&d.shift_remove(&de::<Bytes>(args)?)),
            "len" => en(&(d.len() as u64)),
            "contains_key" => en(&d.contains_key(&de::<Bytes>(args)?)),
            "keys" => en(&d.keys().collect::<Vec<_>>()),
            "values" => en(&d.values().collect::<Vec<_>>()),
            "items" => en(&d.iter().collect::<Vec<_>>()),
            "clear" => {
                d.clear();
                en(&())
            }
            "update" => {
                let items: Vec<(Bytes, Bytes)> = de(args)?;
                d.extend(items);
                en(&())
            }
            "setdefault" => {
                let (k, v): (Bytes, Bytes) = de(args)?;
                en(d.entry(k).or_insert(v))
            }
            other => Err(no_method("dict", other)),
        }
    }
}

struct List(Mutex<Vec<Bytes>>);

fn out_of_range(i: u64, len: usize) -> Error {
    Error::Remote(format!("list index {i} out of range (length {len})"))
}

impl Object for List {
    fn kind(&self) -> &str {
        "list"
    }

    fn call(&self, _: &Caller<'_>, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        let mut l = lock(&self.0);
        match method {
            "push" => {
                l.push(de(args)?);
                en(&())
            }
            "get" => en(&l.get(de::<u64>(args)? as usize)),
            "set" => {
                let (i, v): (u64, Bytes) = de(args)?;
                let len = l.len();
                *l.get_mut(i as usize).ok_or_else(|| out_of_range(i, len))? = v;
                en(&())
            }
            "insert" => {
                let (i, v): (u64, Bytes) = de(args)?;
                if i as usize > l.len() {
                    return Err(out_of_range(i, l.len()));
                }
                l.insert(i as usize, v);
                en(&())
            }
            "remove" => {
                let i: u64 = de(args)?;
                if i as usize >= l.len() {
                    return Err(out_of_range(i, l.len()));
                }
                en(&l.remove(i as usize))
            }
            "len" => en(&(l.len() as u64)),
            "pop" => en(&l.pop()),
            "extend" => {
                let items: Vec<Bytes> = de(args)?;
                l.extend(items);
                en(&())
            }
            "snapshot" => en(&*l),
            "reverse" => {
                l.reverse();
                en(&())
            }
            "clear" => {
                l.clear();
                en(&())
            }
            other => Err(no_method("list", other)),
        }
    }
}

struct Value(Mutex<Bytes>);

impl Object for Value {
    fn kind(&self) -> &str {
        "value"
    }

    fn call(&self, _: &Caller<'_>, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        let mut v = lock(&self.0);
        match method {
            "get" => en(&*v),
            "set" => {
                *v = de(args)?;
                en(&())
            }
            "replace" => en(&std::mem::replace(&mut *v, de(args)?)),
            other => Err(no_method("value", other)),
        }
    }
}

struct Namespace(Mutex<IndexMap<String, Bytes>>);

impl Object for Namespace {
    fn kind(&self) -> &str {
        "namespace"
    }

    fn call(&self, _: &Caller<'_>, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        let mut n = lock(&self.0);
        match method {
            "get" => en(&n.get(&de::<String>(args)?)),
            "set" => {
                let (k, v): (String, Bytes) = de(args)?;
                n.insert(k, v);
                en(&())
            }
            "remove" => en(&n.shift_remove(&de::<String>(args)?).is_some()),
            "names" => en(&n.keys().collect::<Vec<_>>()),
            other => Err(no_method("namespace", other)),
        }
    }
}

struct Queue {
    state: Mutex<VecDeque<Bytes>>,
    cv: Condvar,
    maxsize: usize,
}

impl Object for Queue {
    fn kind(&self) -> &str {
        "queue"
    }

    fn call(&self, caller: &Caller<'_>, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        let full = |q: &mut VecDeque<Bytes>| self.maxsize > 0 && q.len() >= self.maxsize;
        match method {
            "put" => {
                let (item, block, t): (Bytes, bool, Option<u64>) = de(args)?;
                let g = lock(&self.state);
                let (mut g, ok) = if block {
                    wait_until(&self.cv, g, caller, timeout(t), |q| !full(q))?
                } else {
                    let mut g = g;
                    let ok = !full(&mut g);
                    (g, ok)
                };
                if !ok {
                    return Err(Error::Full);
                }
                g.push_back(item);
                self.cv.notify_all();
                en(&())
            }
            "get" => {
                let (block, t): (bool, Option<u64>) = de(args)?;
                let g = lock(&self.state);
                let (mut g, ok) = if block {
                    wait_until(&self.cv, g, caller, timeout(t), |q| !q.is_empty())?
                } else {
                    let ok = !g.is_empty();
                    (g, ok)
                };
                let item = if ok { g.pop_front() } else { None };
                let item = item.ok_or(Error::Empty)?;
                self.cv.notify_all();
                en(&item)
            }
            "qsize" => en(&(lock(&self.state).len() as u64)),
            "empty" => en(&lock(&self.state).is_empty()),
            "full" => en(&full(&mut lock(&self.state))),
            other => Err(no_method("queue", other)),
        }
    }
}

#[derive(Default)]
struct LockState {
    owner: Option<u64>,
    count: u64,
}

/// `Lock` and `RLock`: owners are the callers' (process, thread) tokens.
struct Lock {
    rlock: bool,
    state: Mutex<LockState>,
    cv: Condvar,
}

impl Object for Lock {
    fn kind(&self) -> &str {
        if self.rlock { "rlock" } else { "lock" }
    }

    fn call(&self, caller: &Caller<'_>, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        match method {
            "acquire" => {
                let (me, block, t): (u64, bool, Option<u64>) = de(args)?;
                let rlock = self.rlock;
                let free = |s: &mut LockState| s.owner.is_none() || (rlock && s.owner == Some(me));
                let g = lock(&self.state);
                let (mut g, ok) = if block {
                    wait_until(&self.cv, g, caller, timeout(t), free)?
                } else {
                    let mut g = g;
                    let ok = free(&mut g);
                    (g, ok)
                };
                if ok {
                    g.owner = Some(me);
                    g.count += 1;
                }
                en(&ok)
            }
            "release" => {
                let me: u64 = de(args)?;
                let mut g = lock(&self.state);
                match g.owner {
                    None => return Err(Error::Remote("release of an unlocked lock".into())),
                    Some(o) if self.rlock && o != me => {
                        return Err(Error::Remote("cannot release a recursive lock owned by another thread".into()));
                    }
                    _ => {}
                }
                g.count -= 1;
                if g.count == 0 {
                    g.owner = None;
                    self.cv.notify_all();
                }
                en(&())
            }
            "locked" => en(&lock(&self.state).owner.is_some()),
            other => Err(no_method(self.kind(), other)),
        }
    }
}

struct Semaphore {
    value: Mutex<u64>,
    cv: Condvar,
}

impl Object for Semaphore {
    fn kind(&self) -> &str {
        "semaphore"
    }

    fn call(&self, caller: &Caller<'_>, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        match method {
            "acquire" => {
                let (block, t): (bool, Option<u64>) = de(args)?;
                let g = lock(&self.value);
                let (mut g, ok) = if block {
                    wait_until(&self.cv, g, caller, timeout(t), |v| *v > 0)?
                } else {
                    let ok = *g > 0;
                    (g, ok)
                };
                if ok {
                    *g -= 1;
                }
                en(&ok)
            }
            "release" => {
                let n: u64 = de(args)?;
                let mut v = lock(&self.value);
                *v = v.saturating_add(n);
                drop(v);
                self.cv.notify_all();
                en(&())
            }
            "value" => en(&*lock(&self.value)),
            other => Err(no_method("semaphore", other)),
        }
    }
}

#[derive(Default)]
struct ConditionState {
    owner: Option<u64>,
    count: u64,
    next_ticket: u64,
    waiting: VecDeque<u64>,
    notified: HashSet<u64>,
}

/// A condition variable with its own re-entrant lock (Python's default `Condition()`).
struct Condition {
    state: Mutex<ConditionState>,
    cv: Condvar,
}

impl Condition {
    fn acquire<'a>(
        &'a self,
        g: MutexGuard<'a, ConditionState>,
        caller: &Caller<'_>,
        me: u64,
        t: Option<Duration>,
    ) -> Result<(MutexGuard<'a, ConditionState>, bool)> {
        let (mut g, ok) = wait_until(&self.cv, g, caller, t, |s| s.owner.is_none() || s.owner == Some(me))?;
        if ok {
            g.owner = Some(me);
            g.count += 1;
        }
        Ok((g, ok))
    }

    fn check_owner(s: &ConditionState, me: u64, what: &str) -> Result<()> {
        if s.owner == Some(me) { Ok(()) } else { Err(Error::Remote(format!("cannot {what} an un-acquired condition"))) }
    }
}

impl Object for Condition {
    fn kind(&self) -> &str {
        "condition"
    }

    fn call(&self, caller: &Caller<'_>, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        match method {
            "acquire" => {
                let (me, block, t): (u64, bool, Option<u64>) = de(args)?;
                let g = lock(&self.state);
                let t = if block { timeout(t) } else { Some(Duration::ZERO) };
                en(&self.acquire(g, caller, me, t)?.1)
            }
            "release" => {
                let me: u64 = de(args)?;
                let mut g = lock(&self.state);
                Self::check_owner(&g, me, "release")?;
                g.count -= 1;
                if g.count == 0 {
                    g.owner = None;
                    self.cv.notify_all();
                }
                en(&())
            }
            "wait" => {
                let (me, t): (u64, Option<u64>) = de(args)?;
                let mut g = lock(&self.state);
                Self::check_owner(&g, me, "wait on")?;
                let saved = std::mem::take(&mut g.count);
                g.owner = None;
                let ticket = g.next_ticket;
                g.next_ticket += 1;
                g.waiting.push_back(ticket);
                self.cv.notify_all();
                let waited = wait_until(&self.cv, g, caller, timeout(t), |s| s.notified.contains(&ticket));
                let (mut g, notified) = match waited {
                    Ok(r) => r,
                    Err(e) => {
                        let mut g = lock(&self.state);
                        g.waiting.retain(|w| *w != ticket);
                        g.notified.remove(&ticket);
                        return Err(e);
                    }
                };
                g.notified.remove(&ticket);
                g.waiting.retain(|w| *w != ticket);
                // Re-acquire the lock with the saved recursion count.
                let (mut g, _) = wait_until(&self.cv, g, caller, None, |s| s.owner.is_none())?;
                g.owner = Some(me);
                g.count = saved;
                en(&notified)
            }
            "notify" => {
                let (me, n): (u64, u64) = de(args)?;
                let mut g = lock(&self.state);
                Self::check_owner(&g, me, "notify on")?;
                for _ in 0..n {
                    let Some(t) = g.waiting.pop_front() else { break };
                    g.notified.insert(t);
                }
                self.cv.notify_all();
                en(&())
            }
            "notify_all" => {
                let me: u64 = de(args)?;
                let mut g = lock(&self.state);
                Self::check_owner(&g, me, "notify on")?;
                let all: Vec<u64> = g.waiting.drain(..).collect();
                g.notified.extend(all);
                self.cv.notify_all();
                en(&())
            }
            other => Err(no_method("condition", other)),
        }
    }
}

struct Event {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Object for Event {
    fn kind(&self) -> &str {
        "event"
    }

    fn call(&self, caller: &Caller<'_>, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        match method {
            "set" => {
                *lock(&self.flag) = true;
                self.cv.notify_all();
                en(&())
            }
            "clear" => {
                *lock(&self.flag) = false;
                en(&())
            }
            "is_set" => en(&*lock(&self.flag)),
            "wait" => {
                let t: Option<u64> = de(args)?;
                let (_flag, ok) = wait_until(&self.cv, lock(&self.flag), caller, timeout(t), |f| *f)?;
                en(&ok)
            }
            other => Err(no_method("event", other)),
        }
    }
}

#[derive(Default)]
struct BarrierState {
    count: u64,
    generation: u64,
    broken: bool,
    /// Generations ended by `reset` rather than by the last party arriving.
    reset: HashSet<u64>,
}

struct Barrier {
    parties: u64,
    state: Mutex<BarrierState>,
    cv: Condvar,
}

impl Object for Barrier {
    fn kind(&self) -> &str {
        "barrier"
    }

    fn call(&self, caller: &Caller<'_>, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        match method {
            "wait" => {
                let t: Option<u64> = de(args)?;
                let mut g = lock(&self.state);
                if g.broken {
                    return Err(Error::BrokenBarrier);
                }
                let index = g.count;
                g.count += 1;
                if g.count == self.parties {
                    g.count = 0;
                    g.generation += 1;
                    self.cv.notify_all();
                    return en(&index);
                }
                let generation = g.generation;
                let waited = wait_until(&self.cv, g, caller, timeout(t), |s| s.generation != generation || s.broken);
                let (mut g, ok) = match waited {
                    Ok(r) => r,
                    Err(e) => {
                        let mut g = lock(&self.state);
                        g.broken = true;
                        self.cv.notify_all();
                        return Err(e);
                    }
                };
                if g.generation != generation && !g.reset.contains(&generation) {
                    return en(&index);
                }
                if !ok {
                    g.broken = true;
                    self.cv.notify_all();
                }
                Err(Error::BrokenBarrier)
            }
            "reset" => {
                let mut g = lock(&self.state);
                // The current generation's waiters get BrokenBarrier; the next one starts clean.
                if g.count > 0 {
                    let current = g.generation;
                    g.reset.insert(current);
                }
                g.count = 0;
                g.generation += 1;
                g.broken = false;
                self.cv.notify_all();
                en(&())
            }
            "abort" => {
                lock(&self.state).broken = true;
                self.cv.notify_all();
                en(&())
            }
            "parties" => en(&self.parties),
            "n_waiting" => en(&lock(&self.state).count),
            "broken" => en(&lock(&self.state).broken),
            other => Err(no_method("barrier", other)),
        }
    }
}

/// A `#[multiproc::managed]` value, served under a mutex.
pub(crate) struct Custom<T>(pub(crate) Mutex<T>);

impl<T: super::Managed> Object for Custom<T> {
    fn kind(&self) -> &str {
        T::TYPE_NAME
    }

    fn call(&self, _: &Caller<'_>, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        lock(&self.0).dispatch(method, args)
    }
}

/// A serde `#[multiproc::managed]` value sent to the server by name.
pub(crate) struct Erased {
    pub(crate) name: String,
    pub(crate) value: Mutex<Box<dyn super::__managed::Erased>>,
}

impl Object for Erased {
    fn kind(&self) -> &str {
        &self.name
    }

    fn call(&self, _: &Caller<'_>, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        lock(&self.value).dispatch(method, args)
    }
}
