//! The client side: [`Token`]s naming shared objects, and a per-process pool
//! of authenticated connections to each manager.
//!
//! A call takes an idle connection for the manager's address and authkey (or connects and
//! authenticates a new one), sends the request, reads the reply, and puts the
//! connection back. Calls from several threads use several connections, so a
//! blocking call (`queue.get()`) never holds up another thread. A forked child
//! starts with an empty pool: it must not share its parent's sockets.

use std::collections::HashMap;
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::server::{self, Call, Envelope, MAX_REQUEST, Reply};
use crate::codec;
use crate::connection::{Address, CLIENT_HANDSHAKE_TIMEOUT, connect_socket};
use crate::error::Result;

struct Pool {
    pid: u32,
    idle: HashMap<Peer, Vec<OwnedFd>>,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

inventory::submit! { crate::sys::forklock::ForkLock::new(&POOL) }

/// Runs `f` on this process's pool; `pid` is `std::process::id()`, passed in so
/// a call asks the kernel once, not at take and again at put.
/// What an idle connection is good for: the manager it reaches **and** the key
/// it was authenticated with. A connection proven with one key is never handed
/// to a caller that holds another (a wrong key must fail its own handshake).
#[derive(Clone, PartialEq, Eq, Hash)]
struct Peer {
    address: Address,
    authkey: Vec<u8>,
}

fn with_pool<R>(pid: u32, f: impl FnOnce(&mut HashMap<Peer, Vec<OwnedFd>>) -> R) -> R {
    let mut guard = POOL.lock().unwrap_or_else(|p| p.into_inner());
    if guard.as_ref().is_none_or(|p| p.pid != pid) {
        // A forked child: the parent's sockets are not ours (the runtime has
        // closed them, and their numbers may be reused); forget, never close.
        if let Some(old) = guard.take() {
            std::mem::forget(old);
        }
        *guard = Some(Pool { pid, idle: HashMap::new() });
    }
    match guard.as_mut() {
        Some(p) => f(&mut p.idle),
        None => f(&mut HashMap::new()),
    }
}

/// Closes this process's idle connections to `address` (after a shutdown).
pub(crate) fn forget(address: &Address) {
    let dropped: Vec<Vec<OwnedFd>> = with_pool(std::process::id(), |idle| {
        let gone: Vec<Peer> = idle.keys().filter(|p| &p.address == address).cloned().collect();
        gone.iter().filter_map(|p| idle.remove(p)).collect()
    });
    drop(dropped);
}

/// A (process, thread) token, the owner of manager locks.
pub(crate) fn owner_token() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static ME: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    (u64::from(std::process::id()) << 32) | ME.with(|t| *t & 0xffff_ffff)
}

struct Inner {
    address: Address,
    authkey: Vec<u8>,
    id: u64,
    kind: String,
}

/// Names one shared object: its manager's address and authkey, and the
/// object's id there (Python's `Token`). Every proxy holds one
/// ([`Proxy::token`](super::Proxy::token)); a proxy sent to another process
/// carries its token, and the receiver connects to the manager itself on first use.
///
/// ```
/// # #[multiproc::main]
/// # fn main() -> multiproc::Result<()> {
/// use multiproc::managers::{DictProxy, Proxy};
/// let manager = multiproc::Manager::start()?;
/// let d = manager.dict::<String, u8>()?;
/// let token = d.token().clone();
/// assert_eq!(token.kind(), "dict");
/// let same = DictProxy::<String, u8>::from_token(token); // another handle on it
/// same.insert("k".into(), 1)?;
/// assert_eq!(d.get(&"k".into())?, Some(1));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Token(Arc<Inner>);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("kind", &self.0.kind)
            .field("id", &self.0.id)
            .field("address", &self.0.address)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct WireToken {
    address: Address,
    authkey: Vec<u8>,
    id: u64,
    kind: String,
}

impl Serialize for Token {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        WireToken {
            address: self.0.address.clone(),
            authkey: self.0.authkey.clone(),
            id: self.0.id,
            kind: self.0.kind.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let w = WireToken::deserialize(d)?;
        Ok(Token(Arc::new(Inner { address: w.address, authkey: w.authkey, id: w.id, kind: w.kind })))
    }
}

impl Token {
    pub(crate) fn new(address: Address, authkey: Vec<u8>, id: u64, kind: String) -> Token {
        Token(Arc::new(Inner { address, authkey, id, kind }))
    }

    /// The object's kind: `dict`, `queue`, … or a managed type's path
    /// (Python's `typeid`).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// use multiproc::managers::Proxy;
    /// assert_eq!(manager.queue::<u8>()?.token().kind(), "queue");
    /// assert_eq!(manager.rlock()?.token().kind(), "rlock");
    /// # Ok(())
    /// # }
    /// ```
    pub fn kind(&self) -> &str {
        &self.0.kind
    }

    /// The object's id in its manager: each object has its own, and every
    /// clone of a proxy shares it.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// use multiproc::managers::Proxy;
    /// let (a, b) = (manager.list::<u8>()?, manager.list::<u8>()?);
    /// assert_ne!(a.token().id(), b.token().id());
    /// assert_eq!(a.clone().token().id(), a.token().id());
    /// # Ok(())
    /// # }
    /// ```
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The address of the manager that holds the object.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// use multiproc::managers::Proxy;
    /// let v = manager.value(1u8)?;
    /// assert_eq!(v.token().address(), manager.address());
    /// # Ok(())
    /// # }
    /// ```
    pub fn address(&self) -> &Address {
        &self.0.address
    }

    /// Sends `call` to the object (the envelope encoded once) and decodes the reply.
    fn send<Q: Serialize, R: DeserializeOwned>(&self, call: Call<Q>) -> Result<R> {
        let request = server::en(&Envelope { id: self.0.id, call })?;
        let reply = round_trip(&self.0.address, &self.0.authkey, &request)?;
        server::de::<Reply<R>>(&reply)?.into_result()
    }

    /// Makes the typed call `request` (a kind's `Request` value) and decodes its result.
    pub(crate) fn request<Q: Serialize, R: DeserializeOwned>(&self, request: &Q) -> Result<R> {
        self.send(Call::Typed(request))
    }

    /// Calls `method(args)` by name and decodes its result: the generic escape
    /// hatch under the typed proxy methods (Python's `BaseProxy._callmethod`).
    /// `args` is a tuple of the method's arguments (`()` for none, `(x,)` for one),
    /// as the server-side method takes them.
    ///
    /// # Errors
    /// [`Error::Remote`](crate::Error::Remote) for a failure in the server (a panic, a missing object,
    /// a method the object does not have);
    /// [`Error::Io`](crate::Error::Io) / [`Error::Closed`](crate::Error::Closed) if the manager cannot be reached.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// use multiproc::{Error, managers::Proxy};
    /// let s = manager.semaphore(2)?;
    /// let free: u64 = s.token().call("value", &())?;
    /// assert_eq!(free, 2);
    /// s.token().call::<_, ()>("release", &(3u64,))?; // the server's release(n)
    /// assert_eq!(s.value()?, 5);
    /// assert!(matches!(s.token().call::<_, u64>("size", &()), Err(Error::Remote(_))));
    /// # Ok(())
    /// # }
    /// ```
    pub fn call<A: Serialize + ?Sized, R: DeserializeOwned>(&self, method: &str, args: &A) -> Result<R> {
        self.send(Call::<()>::Named { method: method.to_string(), args: server::en(args)? })
    }
}

/// One request/reply on a pooled connection; the reply's bytes.
fn round_trip(address: &Address, authkey: &[u8], request: &[u8]) -> Result<Vec<u8>> {
    let pid = std::process::id();
    let peer = Peer { address: address.clone(), authkey: authkey.to_vec() };
    let pooled = with_pool(pid, |idle| idle.get_mut(&peer).and_then(Vec::pop));
    let (fd, fresh) = match pooled {
        Some(fd) => (fd, false),
        None => (connect_socket(address, Some(authkey), CLIENT_HANDSHAKE_TIMEOUT)?, true),
    };
    let fd = match codec::write_frame(fd.as_fd(), request, &[]) {
        Ok(()) => fd,
        // A pooled connection the server closed (it restarted): the request was
        // not delivered, so one retry on a fresh connection is safe.
        Err(_) if !fresh => {
            drop(fd);
            let fd = connect_socket(address, Some(authkey), CLIENT_HANDSHAKE_TIMEOUT)?;
            codec::write_frame(fd.as_fd(), request, &[])?;
            fd
        }
        Err(e) => return Err(e),
    };
    let reply = super::wire::Reader::default().read(fd.as_fd(), MAX_REQUEST)?;
    with_pool(pid, |idle| idle.entry(peer).or_default().push(fd));
    Ok(reply)
}
