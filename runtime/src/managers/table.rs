//! The objects a server holds, by id, and the names registered for them; and
//! the manager's own protocol (object 0: create, register, lookup, ping, and
//! the reference counts).
//!
//! Reference counting (Python's `incref`/`decref`): each process that holds
//! proxies of an object holds one reference to it (see `client.rs`); a
//! registered name holds one; a container holds one for every proxy ever
//! stored in it (`hold`); and a proxy encoded to travel (as a task argument,
//! through a queue) holds a *lent* one until a receiver settles it. An
//! object whose references and loans are all gone is freed, and releases
//! what it held.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::kinds::{Erased, Init};
use super::protocol::protocol;
use super::server::{Caller, Object};
use crate::error::{Error, Result};

protocol! {
    fn create(init: Init) -> u64;
    fn create_managed(name: String, init: Vec<u8>) -> u64;
    fn register(name: String, id: u64) -> ();
    fn lookup(name: String) -> (u64, String);
    fn ping() -> ();
    fn incref(id: u64) -> ();
    fn decref(id: u64) -> ();
    fn lend(id: u64) -> ();
    fn settle(id: u64) -> ();
    fn hold(container: u64, ids: Vec<u64>) -> ();
    fn number_of_objects() -> u64;
    fn shutdown() -> ();
}

thread_local! {
    /// The request this connection's thread is answering asked the server to stop.
    static STOP_ASKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The references to one object.
#[derive(Default)]
struct Refs {
    /// Processes, names and containers holding it.
    count: u64,
    /// Encoded proxies not yet received.
    lent: u64,
    /// The objects whose proxies were stored in this one.
    holds: HashSet<u64>,
}

/// Every object a server holds, by id, and the names registered for them.
pub(crate) struct Table {
    objects: RwLock<HashMap<u64, Arc<dyn Object>>>,
    names: Mutex<HashMap<String, u64>>,
    refs: Mutex<HashMap<u64, Refs>>,
    next: AtomicU64,
    /// Told when a client asks the server to stop (set while `serve_forever` runs).
    stop: Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

impl Default for Table {
    /// Ids start at a random point, so a proxy of a server that has gone
    /// (its late `decref`) cannot name an object of a new server on the same address.
    fn default() -> Table {
        let base = crate::connection::random_bytes(8)
            .ok()
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_le_bytes)
            .unwrap_or_else(|| u64::from(std::process::id()) << 32);
        Table {
            objects: RwLock::default(),
            names: Mutex::default(),
            refs: Mutex::default(),
            next: AtomicU64::new(base >> 2),
            stop: Mutex::default(),
        }
    }
}

impl Table {
    /// Adds `object` with one reference (its creator's); its id (never 0, the manager's own).
    pub(crate) fn insert(&self, object: Arc<dyn Object>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.objects.write().unwrap_or_else(|p| p.into_inner()).insert(id, object);
        lock(&self.refs).insert(id, Refs { count: 1, ..Refs::default() });
        id
    }

    /// Sets where a client's `shutdown` request is reported.
    pub(crate) fn on_stop(&self, tell: std::sync::mpsc::Sender<()>) {
        *lock(&self.stop) = Some(tell);
    }

    /// Stops `serve_forever` if the request this thread just answered was a
    /// `shutdown`. Called once the reply is written, as CPython's server
    /// replies before it sets its stop event: told at once, the server hung
    /// up the asking connection before its reply went out, and the client's
    /// `shutdown_server` failed with "the connection's peer is closed".
    pub(crate) fn stop_if_asked(&self) {
        if STOP_ASKED.with(|asked| asked.replace(false))
            && let Some(tell) = lock(&self.stop).as_ref()
        {
            let _ = tell.send(());
        }
    }

    /// Changes the references of `id` by `f`; frees it (and what it held) if none are left.
    fn change(&self, id: u64, f: impl FnOnce(&mut Refs) -> Result<()>) -> Result<()> {
        let mut freed = Vec::new();
        {
            let mut refs = lock(&self.refs);
            let r = refs.get_mut(&id).ok_or_else(|| missing(id))?;
            f(r)?;
            let mut work = vec![id];
            while let Some(id) = work.pop() {
                let dead = refs.get(&id).is_some_and(|r| r.count == 0 && r.lent == 0);
                if !dead {
                    continue;
                }
                if let Some(r) = refs.remove(&id) {
                    for held in r.holds {
                        if let Some(h) = refs.get_mut(&held) {
                            h.count = h.count.saturating_sub(1);
                            work.push(held);
                        }
                    }
                }
                freed.push(id);
            }
        }
        if freed.is_empty() {
            return Ok(());
        }
        // Dropped outside every lock: a freed value may hold proxies whose drop calls a manager.
        let gone: Vec<Arc<dyn Object>> = {
            let mut objects = self.objects.write().unwrap_or_else(|p| p.into_inner());
            freed.iter().filter_map(|id| objects.remove(id)).collect()
        };
        drop(gone);
        Ok(())
    }

    /// The object with `id`.
    pub(crate) fn get(&self, id: u64) -> Result<Arc<dyn Object>> {
        self.objects.read().unwrap_or_else(|p| p.into_inner()).get(&id).cloned().ok_or_else(|| missing(id))
    }
}

fn missing(id: u64) -> Error {
    Error::Remote(format!("no shared object with id {id} in this manager (it was freed, or never existed)"))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Serve for Table {
    fn create(&self, _: &Caller<'_>, init: Init) -> Result<u64> {
        Ok(self.insert(init.build()?))
    }

    fn create_managed(&self, _: &Caller<'_>, name: String, init: Vec<u8>) -> Result<u64> {
        let build = super::__managed::builder(&name).ok_or_else(|| {
            Error::Remote(format!("`{name}` is not a serde #[multiproc::managed] type of the manager's program"))
        })?;
        let value = build(&init)?;
        Ok(self.insert(Arc::new(Erased { name, value: Mutex::new(value) })))
    }

    fn register(&self, caller: &Caller<'_>, name: String, id: u64) -> Result<()> {
        self.incref(caller, id)?;
        let old = lock(&self.names).insert(name, id);
        match old {
            Some(old) => self.decref(caller, old),
            None => Ok(()),
        }
    }

    /// The registered object, with one reference for the caller to adopt.
    fn lookup(&self, caller: &Caller<'_>, name: String) -> Result<(u64, String)> {
        let names = lock(&self.names);
        let id = names.get(&name).copied();
        let id = id.ok_or_else(|| Error::Remote(format!("no object is registered as `{name}`")))?;
        let kind = self.get(id)?.kind().to_string();
        self.incref(caller, id)?;
        Ok((id, kind))
    }

    fn ping(&self, _: &Caller<'_>) -> Result<()> {
        Ok(())
    }

    fn incref(&self, _: &Caller<'_>, id: u64) -> Result<()> {
        self.change(id, |r| {
            r.count += 1;
            Ok(())
        })
    }

    fn decref(&self, _: &Caller<'_>, id: u64) -> Result<()> {
        self.change(id, |r| {
            r.count = r.count.saturating_sub(1);
            Ok(())
        })
    }

    fn lend(&self, _: &Caller<'_>, id: u64) -> Result<()> {
        self.change(id, |r| {
            r.lent += 1;
            Ok(())
        })
    }

    fn settle(&self, _: &Caller<'_>, id: u64) -> Result<()> {
        self.change(id, |r| {
            r.lent = r.lent.saturating_sub(1);
            Ok(())
        })
    }

    fn hold(&self, caller: &Caller<'_>, container: u64, ids: Vec<u64>) -> Result<()> {
        for id in ids {
            let fresh = lock(&self.refs).get_mut(&container).ok_or_else(|| missing(container))?.holds.insert(id);
            if fresh && id != container && self.incref(caller, id).is_err() {
                lock(&self.refs).get_mut(&container).map(|r| r.holds.remove(&id));
            }
        }
        Ok(())
    }

    fn number_of_objects(&self, _: &Caller<'_>) -> Result<u64> {
        Ok(self.objects.read().unwrap_or_else(|p| p.into_inner()).len() as u64)
    }

    fn shutdown(&self, _: &Caller<'_>) -> Result<()> {
        match lock(&self.stop).as_ref() {
            Some(_) => {
                // Told after the reply is written (`stop_if_asked`).
                STOP_ASKED.with(|asked| asked.set(true));
                Ok(())
            }
            None => Err(Error::InvalidState(
                "this manager server is not running `serve_forever`: the process that started it stops it \
                 with `Manager::shutdown`"
                    .into(),
            )),
        }
    }
}
