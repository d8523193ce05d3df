//! The manager server: a table of shared objects, served one thread per
//! authenticated connection.
//!
//! Wire format (inside ordinary [`codec`](crate::codec) frames, after the HMAC
//! handshake): a request is `id: u64 LE`, `method length: u8`, the method
//! name, then the arguments as codec bytes; a reply is one status byte
//! ([`Status`]) followed by the result's codec bytes or an error message.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;
use crate::connection::{Listener, ListenerCloser};
use crate::error::{Error, Result};
use crate::sys;

/// The largest request a server reads.
pub(crate) const MAX_REQUEST: usize = 1 << 30;

/// Reply status byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Status {
    Ok = 0,
    Remote = 1,
    Empty = 2,
    Full = 3,
    Timeout = 4,
    BrokenBarrier = 5,
}

/// Encodes a reply.
pub(crate) fn reply(result: Result<Vec<u8>>) -> Vec<u8> {
    let (status, body) = match result {
        Ok(bytes) => (Status::Ok, bytes),
        Err(Error::Empty) => (Status::Empty, Vec::new()),
        Err(Error::Full) => (Status::Full, Vec::new()),
        Err(Error::Timeout(d)) => (Status::Timeout, (d.as_micros() as u64).to_le_bytes().to_vec()),
        Err(Error::BrokenBarrier) => (Status::BrokenBarrier, Vec::new()),
        Err(Error::Remote(m)) => (Status::Remote, m.into_bytes()),
        Err(e) => (Status::Remote, e.to_string().into_bytes()),
    };
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(status as u8);
    out.extend_from_slice(&body);
    out
}

/// Decodes a reply into the result's codec bytes or the error it carries.
pub(crate) fn parse_reply(mut bytes: Vec<u8>) -> Result<Vec<u8>> {
    let Some(&status) = bytes.first() else {
        return Err(Error::Decode { what: "manager reply", reason: "empty reply".into() });
    };
    let body = &bytes[1..];
    match status {
        0 => {
            bytes.remove(0);
            Ok(bytes)
        }
        1 => Err(Error::Remote(String::from_utf8_lossy(body).into_owned())),
        2 => Err(Error::Empty),
        3 => Err(Error::Full),
        4 => {
            let micros = body.try_into().map(u64::from_le_bytes).unwrap_or(0);
            Err(Error::Timeout(Duration::from_micros(micros)))
        }
        5 => Err(Error::BrokenBarrier),
        s => Err(Error::Decode { what: "manager reply", reason: format!("unknown status {s}") }),
    }
}

/// Encodes a request.
pub(crate) fn request(id: u64, method: &str, args: &[u8]) -> Result<Vec<u8>> {
    let len = u8::try_from(method.len())
        .map_err(|_| Error::InvalidArgument(format!("method name `{method}` is longer than 255 bytes")))?;
    let mut out = Vec::with_capacity(9 + method.len() + args.len());
    out.extend_from_slice(&id.to_le_bytes());
    out.push(len);
    out.extend_from_slice(method.as_bytes());
    out.extend_from_slice(args);
    Ok(out)
}

fn parse_request(bytes: &[u8]) -> Result<(u64, &str, &[u8])> {
    let bad = |reason: &str| Error::Decode { what: "manager request", reason: reason.into() };
    if bytes.len() < 9 {
        return Err(bad("shorter than its header"));
    }
    let id = u64::from_le_bytes(bytes[..8].try_into().map_err(|_| bad("header"))?);
    let len = bytes[8] as usize;
    let name = bytes.get(9..9 + len).ok_or_else(|| bad("method name cut short"))?;
    let name = std::str::from_utf8(name).map_err(|_| bad("method name is not UTF-8"))?;
    Ok((id, name, &bytes[9 + len..]))
}

/// Decodes method arguments.
pub fn de<A: DeserializeOwned>(args: &[u8]) -> Result<A> {
    codec::decode(args, Vec::new(), "method arguments")
}

/// Encodes a method result (no file descriptors: they cannot cross a manager).
pub fn en<R: Serialize + ?Sized>(value: &R) -> Result<Vec<u8>> {
    let p = codec::encode(value, "method result")?;
    if !p.fds.is_empty() {
        return Err(Error::Encode {
            what: "a value for a manager",
            reason: "it holds a file descriptor (a Queue, Lock or Connection); share a manager proxy instead".into(),
        });
    }
    Ok(p.bytes)
}

/// The connection a call arrived on, so a blocking method can notice that its caller died.
pub(crate) struct Caller<'a> {
    fd: BorrowedFd<'a>,
}

impl Caller<'_> {
    /// Whether the caller hung up (a live caller sends nothing while it waits for its reply).
    pub(crate) fn gone(&self) -> bool {
        sys::fd::readable_now(self.fd).unwrap_or(true)
    }
}

/// How often a blocked method checks that its caller is still there.
pub(crate) const CALLER_CHECK: Duration = Duration::from_millis(50);

/// A shared object in the server.
pub(crate) trait Object: Send + Sync {
    /// What the object is: `dict`, `queue`, or a managed type's name.
    fn kind(&self) -> &str;
    /// Runs one method.
    fn call(&self, caller: &Caller<'_>, method: &str, args: &[u8]) -> Result<Vec<u8>>;
}

/// Every object a server holds, by id, and the names registered for them.
#[derive(Default)]
pub(crate) struct Table {
    objects: RwLock<HashMap<u64, Arc<dyn Object>>>,
    names: Mutex<HashMap<String, u64>>,
    next: AtomicU64,
}

impl Table {
    pub(crate) fn insert(&self, object: Arc<dyn Object>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        self.objects.write().unwrap_or_else(|p| p.into_inner()).insert(id, object);
        id
    }

    fn get(&self, id: u64) -> Result<Arc<dyn Object>> {
        self.objects
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::Remote(format!("no shared object with id {id} in this manager")))
    }

    /// Object 0 is the manager itself.
    fn call_manager(&self, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        match method {
            "create" => {
                let (kind, init): (String, Vec<u8>) = de(args)?;
                let object = super::objects::create(&kind, &init)?;
                en(&self.insert(object))
            }
            "create_managed" => {
                let (name, init): (String, Vec<u8>) = de(args)?;
                let build = super::__managed::builder(&name).ok_or_else(|| {
                    Error::Remote(format!(
                        "`{name}` is not a serde #[multiproc::managed] type of the manager's program"
                    ))
                })?;
                let value = build(&init)?;
                en(&self.insert(Arc::new(super::objects::Erased { name, value: Mutex::new(value) })))
            }
            "register" => {
                let (name, id): (String, u64) = de(args)?;
                self.get(id)?;
                self.names.lock().unwrap_or_else(|p| p.into_inner()).insert(name, id);
                en(&())
            }
            "lookup" => {
                let name: String = de(args)?;
                let id = self.names.lock().unwrap_or_else(|p| p.into_inner()).get(&name).copied();
                let id = id.ok_or_else(|| Error::Remote(format!("no object is registered as `{name}`")))?;
                let kind = self.get(id)?.kind().to_string();
                en(&(id, kind))
            }
            "kind" => en(&self.get(de(args)?)?.kind().to_string()),
            "ping" => en(&()),
            other => Err(Error::Remote(format!("the manager has no method `{other}`"))),
        }
    }

    fn dispatch(&self, caller: &Caller<'_>, request: &[u8]) -> Result<Vec<u8>> {
        let (id, method, args) = parse_request(request)?;
        if id == 0 {
            return self.call_manager(method, args);
        }
        let object = self.get(id)?;
        match catch_unwind(AssertUnwindSafe(|| object.call(caller, method, args))) {
            Ok(r) => r,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string panic payload".into());
                Err(Error::Remote(format!("method `{method}` of `{}` panicked: {message}", object.kind())))
            }
        }
    }
}

/// Serves one authenticated connection until the peer hangs up or sends garbage framing.
fn serve_connection(fd: &OwnedFd, table: &Table) {
    let caller = Caller { fd: fd.as_fd() };
    let mut reader = super::wire::Reader::default();
    loop {
        let Ok(request) = reader.read(fd.as_fd(), MAX_REQUEST) else { return };
        let answer = reply(table.dispatch(&caller, &request));
        if codec::write_frame(fd.as_fd(), &answer, &[]).is_err() {
            return;
        }
    }
}

/// A running server: an accept thread plus one thread per connection.
pub(crate) struct Server {
    closer: ListenerCloser,
    accept: Option<JoinHandle<()>>,
    live: Arc<Mutex<HashMap<u64, Arc<OwnedFd>>>>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Server {
    /// Starts serving `table` on `listener` from background threads.
    pub(crate) fn start(listener: Listener, table: Arc<Table>) -> Result<Server> {
        let closer = listener.closer();
        let live: Arc<Mutex<HashMap<u64, Arc<OwnedFd>>>> = Arc::default();
        let workers: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (live2, workers2) = (live.clone(), workers.clone());
        let accept = std::thread::Builder::new()
            .name("multiproc-manager".into())
            .spawn(move || {
                let mut next = 0u64;
                loop {
                    let fd = match listener.accept_fd() {
                        Ok(fd) => Arc::new(fd),
                        Err(Error::Closed(_)) => return,
                        Err(e) => {
                            log::debug!("manager: rejected a connection: {e}");
                            continue;
                        }
                    };
                    next += 1;
                    let key = next;
                    live2.lock().unwrap_or_else(|p| p.into_inner()).insert(key, fd.clone());
                    let (table, live3) = (table.clone(), live2.clone());
                    let spawned = std::thread::Builder::new().name("multiproc-manager-conn".into()).spawn(move || {
                        serve_connection(&fd, &table);
                        live3.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
                    });
                    match spawned {
                        Ok(h) => {
                            let mut w = workers2.lock().unwrap_or_else(|p| p.into_inner());
                            w.retain(|h| !h.is_finished());
                            w.push(h);
                        }
                        Err(e) => {
                            log::warn!("manager: cannot start a connection thread: {e}");
                            live2.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
                        }
                    }
                }
            })
            .map_err(|e| Error::Io { op: "spawn manager thread", source: e })?;
        Ok(Server { closer, accept: Some(accept), live, workers })
    }

    /// Stops accepting, hangs up every connection and waits for all threads.
    pub(crate) fn stop(&mut self) {
        self.closer.close();
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        for fd in self.live.lock().unwrap_or_else(|p| p.into_inner()).values() {
            let _ = sys::fd::shutdown(fd.as_fd(), libc::SHUT_RDWR);
        }
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
        for h in workers {
            let _ = h.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
