//! The manager server: one thread per authenticated connection, each
//! answering [`Envelope`]s with [`Reply`]s.
//!
//! Wire format: inside ordinary [`codec`](crate::codec) frames (after the HMAC
//! handshake), a request is one codec-encoded [`Envelope`] (the object's id
//! and the [`Call`]) and a reply one codec-encoded [`Reply`]. What a call
//! means is up to the object's kind (see [`protocol`](super::protocol)).

use std::cell::Cell;
use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::table::{self, Table};
use crate::codec;
use crate::connection::{Listener, ListenerCloser};
use crate::error::{Error, Result};
use crate::sys;

/// The largest request a server reads.
pub(crate) const MAX_REQUEST: usize = 1 << 30;

/// A request: which object, and the call on it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope {
    /// The object's id in the server's table (0: the manager itself).
    pub(crate) id: u64,
    /// The call.
    pub(crate) call: Call,
}

/// A call on a shared object, as its proxy sends it.
#[doc(hidden)]
#[derive(Debug, Serialize, Deserialize)]
pub enum Call {
    /// A typed call: the codec bytes of the kind's `Request` enum.
    Typed(Vec<u8>),
    /// A call by method name ([`Token::call`](super::Token::call)), with the arguments' codec bytes.
    Named {
        /// The method's name.
        method: String,
        /// The arguments, as one codec-encoded tuple.
        args: Vec<u8>,
    },
}

/// The server's answer to one [`Envelope`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply {
    /// The result's codec bytes.
    Ok(Vec<u8>),
    /// [`Error::Remote`], or any other error by its text.
    Remote(String),
    /// [`Error::Empty`].
    Empty,
    /// [`Error::Full`].
    Full,
    /// [`Error::Timeout`].
    Timeout { micros: u64 },
    /// [`Error::BrokenBarrier`].
    BrokenBarrier,
}

impl From<Result<Vec<u8>>> for Reply {
    fn from(result: Result<Vec<u8>>) -> Reply {
        match result {
            Ok(bytes) => Reply::Ok(bytes),
            Err(Error::Empty) => Reply::Empty,
            Err(Error::Full) => Reply::Full,
            Err(Error::Timeout(d)) => Reply::Timeout { micros: d.as_micros().min(u128::from(u64::MAX)) as u64 },
            Err(Error::BrokenBarrier) => Reply::BrokenBarrier,
            Err(Error::Remote(m)) => Reply::Remote(m),
            Err(e) => Reply::Remote(e.to_string()),
        }
    }
}

impl Reply {
    /// The result's codec bytes, or the error the reply carries.
    pub(crate) fn into_result(self) -> Result<Vec<u8>> {
        match self {
            Reply::Ok(bytes) => Ok(bytes),
            Reply::Remote(m) => Err(Error::Remote(m)),
            Reply::Empty => Err(Error::Empty),
            Reply::Full => Err(Error::Full),
            Reply::Timeout { micros } => Err(Error::Timeout(Duration::from_micros(micros))),
            Reply::BrokenBarrier => Err(Error::BrokenBarrier),
        }
    }
}

/// Decodes a manager message: an `Envelope`, a `Reply`, a request, method
/// arguments or a result.
pub fn de<A: DeserializeOwned>(bytes: &[u8]) -> Result<A> {
    codec::decode(bytes, Vec::new(), "a manager message")
}

/// Encodes a manager message (no file descriptors: they cannot cross a manager).
pub fn en<R: Serialize + ?Sized>(value: &R) -> Result<Vec<u8>> {
    let p = codec::encode(value, "a manager message")?;
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

impl<'a> Caller<'a> {
    /// The caller on the connection `fd`.
    pub(crate) fn new(fd: BorrowedFd<'a>) -> Caller<'a> {
        Caller { fd }
    }

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
    /// Runs one call.
    fn call(&self, caller: &Caller<'_>, call: Call) -> Result<Vec<u8>>;
}

thread_local! {
    /// The method this connection thread is running, for the panic message.
    static METHOD: Cell<&'static str> = const { Cell::new("?") };
}

/// Records the method about to run on this thread (called by the code
/// [`protocol!`](super::protocol::protocol) and `#[multiproc::managed]`
/// generate, once the call is decoded).
#[doc(hidden)]
pub fn calling(method: &'static str) {
    METHOD.with(|m| m.set(method));
}

/// Runs one request against `table`. The one place in managers that catches
/// a panic: a method that panics fails its call, and the server keeps serving.
fn dispatch(table: &Table, caller: &Caller<'_>, request: &[u8]) -> Result<Vec<u8>> {
    let Envelope { id, call } = de(request)?;
    if id == 0 {
        return table::serve("the manager", table, caller, call);
    }
    let object = table.get(id)?;
    calling("?");
    match crate::unwind::catch(|| object.call(caller, call)) {
        Ok(r) => r,
        Err(crate::unwind::Panic { message, location }) => {
            let method = METHOD.with(Cell::get);
            Err(Error::Remote(format!("method `{method}` of `{}` panicked at {location}: {message}", object.kind())))
        }
    }
}

/// Serves one authenticated connection until the peer hangs up or sends garbage framing.
fn serve_connection(fd: &OwnedFd, table: &Table) {
    let caller = Caller::new(fd.as_fd());
    let mut reader = super::wire::Reader::default();
    loop {
        let Ok(request) = reader.read(fd.as_fd(), MAX_REQUEST) else { return };
        let reply = Reply::from(dispatch(table, &caller, &request));
        // Encoding a reply of bytes and strings cannot fail; if it did, say so rather than hang the caller.
        let Ok(answer) = en(&reply).or_else(|e| en(&Reply::Remote(e.to_string()))) else { return };
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
