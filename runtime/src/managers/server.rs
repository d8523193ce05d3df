//! The manager server: one thread per authenticated connection, each
//! answering [`Envelope`]s with [`Reply`]s.
//!
//! Wire format: inside ordinary [`codec`](crate::codec) frames (after the HMAC
//! handshake), a request is one codec-encoded [`Envelope`] (the object's id
//! and the [`Call`], the kind's request inline) and a reply one codec-encoded
//! [`Reply`] of the method's result type: each side encodes and decodes a
//! message once. What a call means is up to the object's kind (see
//! [`protocol`](super::protocol)).

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
use crate::connection::{Address, Listener, ListenerCloser};
use crate::error::{Error, Result};
use crate::sys;

/// The largest request a server reads.
pub(crate) const MAX_REQUEST: usize = 1 << 30;

/// A request: the object's id, then the call on it (`C`: a [`Call`] of the
/// object's request type). Encoded once by the client; bincode lays a struct
/// out as its fields in order, so the server reads `id` alone
/// ([`open_envelope`]) and the object decodes `call` with its own type.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope<C> {
    /// The object's id in the server's table (0: the manager itself).
    pub(crate) id: u64,
    /// The call.
    pub(crate) call: C,
}

/// A call on a shared object, as its proxy sends it (`Q`: the kind's request enum).
#[doc(hidden)]
#[derive(Debug, Serialize, Deserialize)]
pub enum Call<Q> {
    /// A typed call: the kind's request, one variant per method.
    Typed(Q),
    /// A call by method name ([`Token::call`](super::client::Token::call)), with the arguments' codec bytes.
    Named {
        /// The method's name.
        method: String,
        /// The arguments, as one codec-encoded tuple.
        args: Vec<u8>,
    },
}

/// The server's answer to one request (`R`: the method's result type; an
/// error reply is encoded as `Reply<()>`, which decodes as any `Reply<R>`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Reply<R> {
    /// The result.
    Ok(R),
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

impl Reply<()> {
    /// The reply that carries `error`.
    pub(crate) fn error(error: Error) -> Reply<()> {
        match error {
            Error::Empty => Reply::Empty,
            Error::Full => Reply::Full,
            Error::Timeout(d) => Reply::Timeout { micros: d.as_micros().min(u128::from(u64::MAX)) as u64 },
            Error::BrokenBarrier => Reply::BrokenBarrier,
            Error::Remote(m) => Reply::Remote(m),
            e => Reply::Remote(e.to_string()),
        }
    }
}

impl<R> Reply<R> {
    /// The result, or the error the reply carries.
    pub(crate) fn into_result(self) -> Result<R> {
        match self {
            Reply::Ok(r) => Ok(r),
            Reply::Remote(m) => Err(Error::Remote(m)),
            Reply::Empty => Err(Error::Empty),
            Reply::Full => Err(Error::Full),
            Reply::Timeout { micros } => Err(Error::Timeout(Duration::from_micros(micros))),
            Reply::BrokenBarrier => Err(Error::BrokenBarrier),
        }
    }
}

/// The encoded `Reply::Ok(value)`: what a served call returns.
pub fn ok_reply<R: Serialize + ?Sized>(value: &R) -> Result<Vec<u8>> {
    en(&Reply::Ok(value))
}

/// Splits an encoded [`Envelope`] into the object's id and the call's bytes.
pub(crate) fn open_envelope(bytes: &[u8]) -> Result<(u64, &[u8])> {
    let (id, n) = codec::decode_prefix::<u64>(bytes, "a manager request")?;
    Ok((id, &bytes[n..]))
}

/// Decodes a manager message: a call, a reply, method arguments or a result.
pub fn de<A: DeserializeOwned>(bytes: &[u8]) -> Result<A> {
    codec::decode(bytes, Vec::new(), "a manager message")
}

/// Encodes a manager message (no file descriptors: they cannot cross a manager).
pub(crate) fn en<R: Serialize + ?Sized>(value: &R) -> Result<Vec<u8>> {
    let p = super::client::collecting(|| codec::encode(value, "a manager message"))?;
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
    /// Runs one call (the codec bytes of a [`Call`] of the kind's request);
    /// the encoded `Reply::Ok` of its result.
    fn call(&self, caller: &Caller<'_>, call: &[u8]) -> Result<Vec<u8>>;
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
    let (id, call) = open_envelope(request)?;
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

/// The server a connection thread serves: where a method's result that is
/// shared as a new object goes ([`share`]).
struct Here {
    table: Arc<Table>,
    address: Address,
    authkey: Vec<u8>,
}

thread_local! {
    static HERE: std::cell::RefCell<Option<Here>> = const { std::cell::RefCell::new(None) };
}

/// A new object of the server this thread serves, holding `object`: the
/// encoded `Reply::Ok` of its [`Shared`] token, whose one reference the caller
/// adopts (a `method_to_typeid` method's result).
///
/// # Errors
/// [`Error::InvalidState`] outside a manager's connection thread (a direct
/// [`Managed::dispatch`](super::Managed::dispatch)).
pub(crate) fn share(object: Arc<dyn Object>) -> Result<Vec<u8>> {
    let shared = HERE.with(|h| {
        h.borrow().as_ref().map(|h| Shared {
            kind: object.kind().to_string(),
            id: h.table.insert(object),
            address: h.address.clone(),
            authkey: h.authkey.clone(),
        })
    });
    let shared = shared.ok_or_else(|| {
        Error::InvalidState("a method whose result is shared as a proxy runs only in a manager".into())
    })?;
    ok_reply(&shared)
}

/// A new object a method shared ([`share`]): its token, with one reference for the receiver.
#[doc(hidden)]
#[derive(Debug, Serialize, Deserialize)]
pub struct Shared {
    pub(crate) address: Address,
    pub(crate) authkey: Vec<u8>,
    pub(crate) id: u64,
    pub(crate) kind: String,
}

/// Serves one authenticated connection until the peer hangs up or sends garbage framing.
fn serve_connection(fd: &OwnedFd, here: Here) {
    let table = here.table.clone();
    let table = &*table;
    HERE.with(|h| *h.borrow_mut() = Some(here));
    let caller = Caller::new(fd.as_fd());
    let mut reader = super::wire::Reader::default();
    loop {
        let Ok(request) = reader.read(fd.as_fd(), MAX_REQUEST) else { return };
        // Encoding an error reply (a string at most) cannot fail; if it did, hang up rather than hang the caller.
        let answer = dispatch(table, &caller, &request).or_else(|e| en(&Reply::error(e)));
        // Proxies a method's result carried stay held by their owner in this process.
        drop(super::client::take_pending());
        let written = answer.or_else(|e| en(&Reply::error(e))).and_then(|a| codec::write_frame(fd.as_fd(), &a, &[]));
        table.stop_if_asked();
        if written.is_err() {
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
    /// Starts serving `table` on `listener` (which checks `authkey`) from background threads.
    pub(crate) fn start(listener: Listener, table: Arc<Table>, authkey: &[u8]) -> Result<Server> {
        let closer = listener.closer();
        let (address, authkey) = (listener.address().clone(), authkey.to_vec());
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
                            log::warn!("manager: refused a connection: {e}");
                            continue;
                        }
                    };
                    next += 1;
                    let key = next;
                    live2.lock().unwrap_or_else(|p| p.into_inner()).insert(key, fd.clone());
                    let here = Here { table: table.clone(), address: address.clone(), authkey: authkey.clone() };
                    let live3 = live2.clone();
                    let spawned = std::thread::Builder::new().name("multiproc-manager-conn".into()).spawn(move || {
                        serve_connection(&fd, here);
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
