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
    /// The process whose reference this token counts in (0: none, as for the manager itself).
    counted: u32,
}

/// The objects this process holds proxies of, and how many tokens of each
/// (a process holds one reference to each on its server, taken when its first
/// token appears and released when its last one is dropped).
struct Local {
    pid: u32,
    counts: HashMap<(Address, u64), u64>,
}

static LOCAL: Mutex<Option<Local>> = Mutex::new(None);

inventory::submit! { crate::sys::forklock::ForkLock::new(&LOCAL) }

thread_local! {
    /// Set while a manager message is encoded: the tokens found in it.
    static NESTED: std::cell::RefCell<Option<Found>> = const { std::cell::RefCell::new(None) };
}

thread_local! {
    /// Tokens encoded into manager messages on this thread since its last call.
    static PENDING: std::cell::RefCell<Found> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` (encoding a manager message), keeping the tokens it encodes for
/// the next call from this thread, whose object will hold them.
pub(crate) fn collecting<R>(f: impl FnOnce() -> R) -> R {
    let outer = NESTED.with(|n| n.borrow_mut().replace(Vec::new()));
    let r = f();
    let found = NESTED.with(|n| std::mem::replace(&mut *n.borrow_mut(), outer)).unwrap_or_default();
    if !found.is_empty() {
        PENDING.with(|p| p.borrow_mut().extend(found));
    }
    r
}

/// The tokens [`collecting`] kept on this thread (and forgets them).
pub(crate) fn take_pending() -> Vec<(Address, Vec<u8>, u64)> {
    PENDING.try_with(|p| std::mem::take(&mut *p.borrow_mut())).unwrap_or_default()
}

/// Counts one more token of `(address, id)` in this process; whether it is the first.
fn count_up(pid: u32, address: &Address, id: u64) -> bool {
    let mut guard = LOCAL.lock().unwrap_or_else(|p| p.into_inner());
    if guard.as_ref().is_none_or(|l| l.pid != pid) {
        // A forked child holds no reference of its parent's.
        *guard = Some(Local { pid, counts: HashMap::new() });
    }
    let Some(local) = guard.as_mut() else { return false };
    let n = local.counts.entry((address.clone(), id)).or_insert(0);
    *n += 1;
    *n == 1
}

/// Counts one token fewer; whether it was the last.
fn count_down(pid: u32, address: &Address, id: u64) -> bool {
    let mut guard = LOCAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(local) = guard.as_mut().filter(|l| l.pid == pid) else { return false };
    let key = (address.clone(), id);
    match local.counts.get_mut(&key) {
        Some(n) if *n > 1 => {
            *n -= 1;
            false
        }
        Some(_) => {
            local.counts.remove(&key);
            true
        }
        None => false,
    }
}

/// Calls the manager itself at `address` (object 0) through `f`'s typed client.
fn manager_call(address: &Address, authkey: &[u8], f: impl FnOnce(Manager<'_>) -> Result<()>) -> Result<()> {
    f(Manager(&Token::new(address.clone(), authkey.to_vec(), 0, "manager".into())))
}

use super::table::Client as Manager;

/// Tokens found in a message: each one's manager address and authkey, and its id.
type Found = Vec<(Address, Vec<u8>, u64)>;

impl Drop for Inner {
    fn drop(&mut self) {
        if self.counted != 0 && self.counted == std::process::id() && count_down(self.counted, &self.address, self.id) {
            let r = manager_call(&self.address, &self.authkey, |t| t.decref(self.id));
            if let Err(e) = r {
                log::debug!("manager: could not release object {} at {}: {e}", self.id, self.address);
            }
        }
    }
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

/// A token as it travels. `lent`: the sender lent the object a reference
/// that the receiver settles once it holds its own.
#[derive(Serialize, Deserialize)]
struct WireToken {
    address: Address,
    authkey: Vec<u8>,
    id: u64,
    kind: String,
    lent: bool,
}

impl Serialize for Token {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let i = &self.0;
        // Inside a manager message the container will hold the object (see
        // `Token::send`); anywhere else, lend it a reference so it outlives
        // this token until the receiver holds its own.
        let inside = i.id != 0
            && NESTED
                .try_with(|n| n.borrow_mut().as_mut().map(|v| v.push((i.address.clone(), i.authkey.clone(), i.id))))
                .ok()
                .flatten()
                .is_some();
        let lent = i.id != 0 && !inside && manager_call(&i.address, &i.authkey, |t| t.lend(i.id)).is_ok();
        WireToken { address: i.address.clone(), authkey: i.authkey.clone(), id: i.id, kind: i.kind.clone(), lent }
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let w = WireToken::deserialize(d)?;
        let token = Token::counted(w.address, w.authkey, w.id, w.kind);
        if w.lent {
            let i = &token.0;
            let _ = manager_call(&i.address, &i.authkey, |t| t.settle(i.id));
        }
        Ok(token)
    }
}

impl Token {
    /// A token that counts no reference (the manager itself, object 0).
    pub(crate) fn new(address: Address, authkey: Vec<u8>, id: u64, kind: String) -> Token {
        Token(Arc::new(Inner { address, authkey, id, kind, counted: 0 }))
    }

    /// A token for an object the server has already counted one reference
    /// for this process (a new object, a lookup): this process's reference,
    /// or a surplus to give back if the process already holds one.
    pub(crate) fn adopt(address: Address, authkey: Vec<u8>, id: u64, kind: String) -> Token {
        let pid = std::process::id();
        if !count_up(pid, &address, id) {
            let _ = manager_call(&address, &authkey, |t| t.decref(id));
        }
        Token(Arc::new(Inner { address, authkey, id, kind, counted: pid }))
    }

    /// A token that takes this process's reference if it has none yet (a received proxy).
    fn counted(address: Address, authkey: Vec<u8>, id: u64, kind: String) -> Token {
        let pid = std::process::id();
        if id == 0 {
            return Token::new(address, authkey, id, kind);
        }
        if count_up(pid, &address, id)
            && let Err(e) = manager_call(&address, &authkey, |t| t.incref(id))
        {
            log::debug!("manager: object {id} at {address} is not available: {e}");
            count_down(pid, &address, id);
            return Token::new(address, authkey, id, kind);
        }
        Token(Arc::new(Inner { address, authkey, id, kind, counted: pid }))
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
    /// Proxies encoded into the call's values are then held by the object (a
    /// call on the manager itself leaves them to the caller: see `Manager::create_builtin`).
    fn send<Q: Serialize, R: DeserializeOwned>(&self, call: Call<Q>) -> Result<R> {
        let request = server::en(&Envelope { id: self.0.id, call })?;
        let nested = if self.0.id == 0 { Vec::new() } else { take_pending() };
        let reply = round_trip(&self.0.address, &self.0.authkey, &request)?;
        let r = server::de::<Reply<R>>(&reply)?.into_result()?;
        if !nested.is_empty() {
            self.hold(nested)?;
        }
        Ok(r)
    }

    /// Makes the object hold the objects of the `nested` tokens its last
    /// call stored (a proxy kept in a dict keeps its object alive); an object
    /// of another manager gets a lent reference instead.
    pub(crate) fn hold(&self, nested: Vec<(Address, Vec<u8>, u64)>) -> Result<()> {
        let i = &self.0;
        let mut here = Vec::new();
        for (address, authkey, id) in nested {
            if address == i.address && authkey == i.authkey {
                here.push(id);
            } else {
                let _ = manager_call(&address, &authkey, |t| t.lend(id));
            }
        }
        if here.is_empty() {
            return Ok(());
        }
        manager_call(&i.address, &i.authkey, |t| t.hold(i.id, here))
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
