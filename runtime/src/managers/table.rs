//! The objects a server holds, by id, and the names registered for them; and
//! the manager's own protocol (object 0: create, register, lookup, ping).

use std::collections::HashMap;
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
}

/// Every object a server holds, by id, and the names registered for them.
#[derive(Default)]
pub(crate) struct Table {
    objects: RwLock<HashMap<u64, Arc<dyn Object>>>,
    names: Mutex<HashMap<String, u64>>,
    next: AtomicU64,
}

impl Table {
    /// Adds `object`; its id (never 0, the manager's own).
    pub(crate) fn insert(&self, object: Arc<dyn Object>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.objects.write().unwrap_or_else(|p| p.into_inner()).insert(id, object);
        id
    }

    /// The object with `id`.
    pub(crate) fn get(&self, id: u64) -> Result<Arc<dyn Object>> {
        self.objects
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::Remote(format!("no shared object with id {id} in this manager")))
    }
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

    fn register(&self, _: &Caller<'_>, name: String, id: u64) -> Result<()> {
        self.get(id)?;
        self.names.lock().unwrap_or_else(|p| p.into_inner()).insert(name, id);
        Ok(())
    }

    fn lookup(&self, _: &Caller<'_>, name: String) -> Result<(u64, String)> {
        let id = self.names.lock().unwrap_or_else(|p| p.into_inner()).get(&name).copied();
        let id = id.ok_or_else(|| Error::Remote(format!("no object is registered as `{name}`")))?;
        Ok((id, self.get(id)?.kind().to_string()))
    }

    fn ping(&self, _: &Caller<'_>) -> Result<()> {
        Ok(())
    }
}
