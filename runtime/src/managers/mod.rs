//! Managers: shared objects that live in a server process and are used
//! through proxies (Python's `multiprocessing.managers`).
//!
//! [`Manager::start`] starts a server process (with the default or a chosen
//! start method) listening on a private abstract Unix socket, or on a TCP
//! address for remote use. Proxies ([`DictProxy`], [`QueueProxy`], …) send each
//! method call over an HMAC-authenticated connection and return
//! `multiproc::Result`. A proxy is a valid task argument: a child reconnects
//! to the manager with the address and authkey the proxy carries.
//!
//! The server exits when [`Manager::shutdown`] is called, when the `Manager`
//! is dropped, or when its owner process dies (even by `SIGKILL`: the server
//! watches a control connection that the kernel closes with the owner).
//!
//! Inside, each kind of object (`kinds/<kind>.rs`, and each
//! `#[multiproc::managed]` type) has one list of methods from which both the
//! proxy's calls and the server's dispatch are generated (see `protocol.rs`):
//! a request is a serde enum with a variant per method, so the two sides
//! cannot disagree on a method's name or types. On the wire, a request is one
//! codec-encoded `Envelope` (object id and call) and a reply one `Reply`.
//!
//! How this differs from Python:
//! - proxies are typed (`DictProxy<String, u64>`), so a wrong value type or a
//!   misspelt method is a compile error, not a runtime error;
//! - values are copies (as in Python): `d.get(&k)?` returns a value, and
//!   mutating it does not change the manager; store a proxy as the value to
//!   share a nested container (see the book's "Managers" chapter);
//! - [`Manager::create`] takes a value of your `#[multiproc::managed]` type:
//!   a serde type moves to the server process (as in Python); any other type
//!   is served by a thread of the process that created it, so it needs no
//!   serde implementation at all;
//! - an object is freed when the last proxy of it in any process is dropped
//!   (as in Python), but an object stored as a value in a shared container is
//!   held until that container is freed, even once the value is removed.

mod client;
mod kinds;
mod protocol;
mod proxy;
mod server;
mod table;
mod wire;

#[cfg(test)]
mod test;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::connection::{Address, Connection, Listener, pipe, random_bytes};
use crate::context::StartMethod;
use crate::error::{Error, Result};
use crate::process::Process;

use kinds::Init;

pub use client::Token;
pub use kinds::{
    BarrierProxy, ConditionProxy, DictProxy, EventProxy, ListProxy, LockProxy, NamespaceProxy, PoolProxy, QueueProxy,
    RLockProxy, SemaphoreProxy, SetProxy, ValueProxy,
};
pub use proxy::Proxy;

/// A type whose methods a manager can serve: implemented by `#[multiproc::managed]`
/// on the type's `impl` block, which also generates its proxy. Do not implement it by hand.
///
/// A serde type moves to the manager's server process (as after Python's
/// `register`); its proxy ([`Managed::Proxy`], here `TallyProxy`) calls it there:
///
/// ```
/// use multiproc::managers::Managed;
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Tally {
///     n: u64,
/// }
///
/// #[multiproc::managed]
/// impl Tally {
///     fn add(&mut self, by: u64) -> u64 {
///         self.n += by;
///         self.n
///     }
///     fn host_pid(&self) -> u32 {
///         std::process::id()
///     }
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let manager = multiproc::Manager::start()?;
///     let t: <Tally as Managed>::Proxy = manager.create(Tally { n: 1 })?;
///     assert_eq!(t.add(2)?, 3);
///     assert_eq!(Some(t.host_pid()?), manager.pid()); // it lives in the server
///     assert!(Tally::TYPE_NAME.ends_with("::Tally"));
///     Ok(())
/// }
/// ```
pub trait Managed: Send + 'static {
    /// The generated proxy type (`CounterProxy` for `Counter`).
    type Proxy: Proxy;
    /// The type's path (`module::path::Type`): its kind, and the name under which
    /// the server process finds a serde type.
    const TYPE_NAME: &'static str;
    /// Runs the method called `method` on encoded `args` (a tuple of its
    /// arguments, in the manager's encoding, as [`Token::call`] sends them), in
    /// this process and without a server; returns its encoded result. To call a
    /// shared object by name with typed arguments, use [`Token::call`].
    ///
    /// # Errors
    /// [`Error::Remote`] for an unknown method (or one not exposed); [`Error::Decode`] for bad arguments.
    ///
    /// ```
    /// use multiproc::managers::Managed;
    ///
    /// struct Counter {
    ///     n: u64,
    /// }
    ///
    /// #[multiproc::managed]
    /// impl Counter {
    ///     fn reset(&mut self) {
    ///         self.n = 0;
    ///     }
    /// }
    ///
    /// let mut c = Counter { n: 5 };
    /// c.dispatch("reset", &[])?; // no arguments: the empty tuple is no bytes
    /// assert_eq!(c.n, 0);
    /// assert!(matches!(c.dispatch("rewind", &[]), Err(multiproc::Error::Remote(_))));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    fn dispatch(&mut self, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        let call = server::en(&__managed::Call::<()>::Named { method: method.to_string(), args: args.to_vec() })?;
        let reply = self.serve(&call)?;
        // `Reply::Ok(r)` is its variant tag followed by `r`'s bytes: read the tag, keep the rest.
        let (head, n) = crate::codec::decode_prefix::<server::Reply<()>>(&reply, "a manager reply")?;
        head.into_result()?;
        Ok(reply[n..].to_vec())
    }
    /// Runs one call from the proxy (the codec bytes of a `Call` of the
    /// request enum generated beside the proxy); the encoded `Reply::Ok` of its result.
    #[doc(hidden)]
    fn serve(&mut self, call: &[u8]) -> Result<Vec<u8>>;
    /// The value encoded for the server process, if the type is also
    /// `Serialize + Deserialize` (`None`: it is served by the creating process).
    #[doc(hidden)]
    fn encode_for_server(&self) -> Option<Result<Vec<u8>>>;
}

/// A [`Managed`] type that [`Manager::create`] accepts: implemented by
/// `#[multiproc::managed]`, unless the block says `create_method = false`
/// (Python's `register(typeid, create_method=False)`). Such a type is only made
/// by a method of another shared object, listed in that one's
/// `method_to_typeid`, whose result comes back as a proxy:
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Library {
///     titles: Vec<String>,
/// }
///
/// struct Cursor {
///     titles: Vec<String>,
///     at: usize,
/// }
///
/// #[multiproc::managed(method_to_typeid = "browse")]
/// impl Library {
///     fn browse(&self) -> Cursor {
///         Cursor { titles: self.titles.clone(), at: 0 }
///     }
/// }
///
/// #[multiproc::managed(create_method = false)]
/// impl Cursor {
///     fn next_title(&mut self) -> Option<String> {
///         self.at += 1;
///         self.titles.get(self.at - 1).cloned()
///     }
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let manager = multiproc::Manager::start()?;
///     let library = manager.create(Library { titles: vec!["Emma".into()] })?;
///     let cursor: CursorProxy = library.browse()?; // a new shared object, in the server
///     assert_eq!(cursor.next_title()?.as_deref(), Some("Emma"));
///     assert_eq!(cursor.next_title()?, None);
///     // `manager.create(Cursor { .. })` would not compile: `Cursor` is not `Creatable`.
///     Ok(())
/// }
/// ```
pub trait Creatable: Managed {}

/// Not public API: helpers for code `#[multiproc::managed]` generates.
#[doc(hidden)]
pub mod __managed {
    use std::marker::PhantomData;

    use serde::Serialize;
    use serde::de::DeserializeOwned;

    pub use super::server::{Call, Shared, calling, de as decode_args, ok_reply as encode_result};
    use super::{Managed, Proxy, Token, server};
    use crate::error::Result;

    /// Shares `value`, a method's result, as a new object of the server
    /// running the method (`method_to_typeid`); the encoded reply of its token.
    pub fn share<T: Managed>(value: T) -> Result<Vec<u8>> {
        server::share(std::sync::Arc::new(super::kinds::Custom(std::sync::Mutex::new(value))))
    }

    /// The proxy of an object a method shared, taking the reference the server counted for it.
    pub fn adopt<P: Proxy>(shared: Shared) -> P {
        P::from_token(Token::adopt(shared.address, shared.authkey, shared.id, shared.kind))
    }

    /// Whether two kinds are the same (a `proxytype`'s `KIND` must be its type's `TYPE_NAME`).
    pub const fn same_kind(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    /// The error for a method name the type does not have.
    pub fn unknown_method(type_name: &str, method: &str) -> crate::Error {
        crate::Error::Remote(format!("`{type_name}` has no managed method `{method}`"))
    }

    /// Sends the typed `request` (the generated request enum) and decodes the result.
    pub fn request<Q: Serialize, R: DeserializeOwned>(token: &Token, request: &Q) -> Result<R> {
        token.request(request)
    }

    /// Decodes `call` into the generated request enum `Q`; `named` maps a call
    /// by name (`None`: `T` has no such method).
    pub fn decode_call<T: Managed, Q: DeserializeOwned>(
        call: &[u8],
        named: fn(&str, &[u8]) -> Option<Result<Q>>,
    ) -> Result<Q> {
        super::protocol::decode_call(call, named, |m| unknown_method(T::TYPE_NAME, m))
    }

    /// A managed value behind a type-erased box, as the server holds it.
    pub trait Erased: Send {
        /// As [`Managed::serve`].
        fn serve(&mut self, call: &[u8]) -> Result<Vec<u8>>;
    }

    impl<T: Managed> Erased for T {
        fn serve(&mut self, call: &[u8]) -> Result<Vec<u8>> {
            Managed::serve(self, call)
        }
    }

    /// Decodes a value sent by [`Manager::create`](super::Manager::create).
    pub type Builder = fn(&[u8]) -> Result<Box<dyn Erased>>;

    /// A managed type the server process can build from bytes, by name.
    pub struct ManagedEntry {
        /// [`Managed::TYPE_NAME`].
        pub name: &'static str,
        /// `Some` if the type is `Serialize + Deserialize`.
        pub builder: fn() -> Option<Builder>,
    }

    inventory::collect!(ManagedEntry);

    pub(crate) fn builder(name: &str) -> Option<Builder> {
        inventory::iter::<ManagedEntry>.into_iter().find(|e| e.name == name).and_then(|e| (e.builder)())
    }

    fn build<T: Managed + DeserializeOwned>(bytes: &[u8]) -> Result<Box<dyn Erased>> {
        Ok(Box::new(server::de::<T>(bytes)?))
    }

    /// Autoref specialisation: [`ViaSerde`] applies when `T` is a serde type,
    /// [`ViaLocal`] otherwise (`(&&Probe::<T>(PhantomData)).mp_builder()`).
    pub struct Probe<T>(pub PhantomData<T>);

    /// The serde case: the value can travel to the server process.
    pub trait ViaSerde<T> {
        /// The server-side decoder.
        fn mp_builder(&self) -> Option<Builder>;
        /// The value's bytes.
        fn mp_encode(&self, value: &T) -> Option<Result<Vec<u8>>>;
    }

    impl<T: Managed + Serialize + DeserializeOwned> ViaSerde<T> for &Probe<T> {
        fn mp_builder(&self) -> Option<Builder> {
            Some(build::<T>)
        }
        fn mp_encode(&self, value: &T) -> Option<Result<Vec<u8>>> {
            Some(server::en(value))
        }
    }

    /// The other case: the value stays in the creating process.
    pub trait ViaLocal<T> {
        /// `None`.
        fn mp_builder(&self) -> Option<Builder>;
        /// `None`.
        fn mp_encode(&self, value: &T) -> Option<Result<Vec<u8>>>;
    }

    impl<T> ViaLocal<T> for Probe<T> {
        fn mp_builder(&self) -> Option<Builder> {
            None
        }
        fn mp_encode(&self, _: &T) -> Option<Result<Vec<u8>>> {
            None
        }
    }
}

/// How long [`Manager::start`] waits for the server process to be ready.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`Manager::shutdown`] waits for the server to exit before killing it.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Serialize, Deserialize)]
enum Control {
    Ready(Address),
    Failed(String),
    Shutdown,
}

/// A registered task's name and its encoded arguments (no file descriptors).
type InitCall = (String, Vec<u8>);

/// Runs the initializer in the server process; what went wrong, for the owner.
fn run_initializer(init: Option<InitCall>) -> std::result::Result<(), String> {
    let Some((name, args)) = init else { return Ok(()) };
    let entry = crate::registry::lookup(&name).map_err(|e| e.to_string())?;
    match crate::unwind::catch(|| entry.run_target(&args, Vec::new())) {
        Ok(Ok(None)) => Ok(()),
        Ok(Ok(Some(failure))) => Err(format!("the initializer `{name}` failed: {failure}")),
        Ok(Err(e)) => Err(format!("the initializer `{name}` failed: {e}")),
        Err(p) => Err(format!("the initializer `{name}` panicked at {}: {}", p.location, p.message)),
    }
}

/// The manager server process: run the initializer, then serve until told
/// to stop or the owner is gone.
#[multiproc::task]
fn serve_manager(control: Connection<Control>, address: Address, authkey: Vec<u8>, init: Option<InitCall>) {
    if let Err(reason) = run_initializer(init) {
        let _ = control.send(&Control::Failed(reason));
        return;
    }
    let listener = match Listener::bind(address, Some(&authkey)) {
        Ok(l) => l,
        Err(e) => {
            let _ = control.send(&Control::Failed(e.to_string()));
            return;
        }
    };
    let bound = listener.address().clone();
    let server = match server::Server::start(listener, Arc::default(), &authkey) {
        Ok(s) => s,
        Err(e) => {
            let _ = control.send(&Control::Failed(e.to_string()));
            return;
        }
    };
    if control.send(&Control::Ready(bound)).is_ok() {
        // Returns on Shutdown, and on end of stream when the owner exits or is killed.
        while let Ok(msg) = control.recv() {
            if matches!(msg, Control::Shutdown) {
                break;
            }
        }
    }
    // Exit now: the process's end takes every connection thread with it, even
    // one stuck in a user method.
    std::mem::forget(server);
}

struct Owned {
    process: Process,
    control: Connection<Control>,
}

struct Host {
    address: Address,
    table: Arc<table::Table>,
    _server: server::Server,
}

/// A manager: a server process holding shared objects, and the way to create
/// them (Python's `multiprocessing.Manager()` / `SyncManager`).
///
/// ```
/// #[multiproc::task]
/// fn record(d: multiproc::managers::DictProxy<String, u64>, key: String, v: u64) {
///     d.insert(key, v).unwrap();
/// }
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let manager = multiproc::Manager::start()?;
///     let d = manager.dict::<String, u64>()?;
///     let mut p = multiproc::Process::new(record, (d.clone(), "a".to_string(), 1))?;
///     p.start()?;
///     p.join()?;
///     assert_eq!(d.get(&"a".to_string())?, Some(1));
///     Ok(())
/// }
/// ```
pub struct Manager {
    address: Address,
    authkey: Vec<u8>,
    owned: Mutex<Option<Owned>>,
    host: Mutex<Option<Host>>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").field("address", &self.address).field("pid", &self.pid()).finish_non_exhaustive()
    }
}

/// Configures a [`Manager`] before it starts ([`Manager::builder`]; Python's
/// `SyncManager(address, authkey)` followed by `start()`).
///
/// ```
/// use multiproc::StartMethod;
///
/// #[multiproc::main]
/// fn main() -> multiproc::Result<()> {
///     let manager = multiproc::Manager::builder()
///         .start_method(StartMethod::Fork)
///         .authkey(b"our secret".to_vec())
///         .start()?;
///     assert_eq!(manager.authkey(), b"our secret");
///     assert!(manager.list_from([1, 2])? == vec![1, 2]);
///     Ok(())
/// }
/// ```
#[derive(Debug, Default, Clone)]
pub struct ManagerBuilder {
    method: Option<StartMethod>,
    address: Option<Address>,
    authkey: Option<Vec<u8>>,
    initializer: Option<std::result::Result<InitCall, String>>,
}

impl ManagerBuilder {
    /// The start method of the server process (default: the process-wide
    /// default, [`get_start_method`](crate::get_start_method)).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// use multiproc::{Manager, StartMethod};
    /// let manager = Manager::builder().start_method(StartMethod::Spawn).start()?;
    /// assert_ne!(manager.pid(), Some(std::process::id())); // a process of its own
    /// assert_eq!(manager.value(3u8)?.get()?, 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn start_method(mut self, method: StartMethod) -> Self {
        self.method = Some(method);
        self
    }

    /// Where the server listens (default: a fresh abstract Unix address). Give a
    /// TCP address to let other programs [`connect`](Manager::connect); port 0
    /// picks a free port, which [`Manager::address`] then reports.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// use multiproc::connection::Address;
    /// let manager = multiproc::Manager::builder().address(Address::tcp("127.0.0.1:0")?).start()?;
    /// assert!(matches!(manager.address(), Address::Tcp(a) if a.port() != 0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn address(mut self, address: Address) -> Self {
        self.address = Some(address);
        self
    }

    /// The authkey clients must prove they hold (default: 32 random bytes;
    /// Python's `authkey=`).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// use multiproc::{Error, Manager};
    /// let manager = Manager::builder().authkey(b"right".to_vec()).start()?;
    /// assert!(Manager::connect(manager.address(), b"right").is_ok());
    /// let wrong = Manager::connect(manager.address(), b"wrong");
    /// assert!(matches!(wrong, Err(Error::Authentication(_))));
    /// # Ok(())
    /// # }
    /// ```
    pub fn authkey(mut self, authkey: impl Into<Vec<u8>>) -> Self {
        self.authkey = Some(authkey.into());
        self
    }

    /// A task the server process runs before it serves (Python's
    /// `manager.start(initializer, initargs)`): to set up process-wide state
    /// (logging, a global, signal handling) that managed values use there.
    /// The arguments cannot hold file descriptors.
    ///
    /// ```
    /// use std::sync::OnceLock;
    ///
    /// static MOTTO: OnceLock<String> = OnceLock::new();
    ///
    /// #[multiproc::task]
    /// fn set_motto(motto: String) {
    ///     MOTTO.set(motto).unwrap();
    /// }
    ///
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Speaker;
    ///
    /// #[multiproc::managed]
    /// impl Speaker {
    ///     fn motto(&self) -> Option<String> {
    ///         MOTTO.get().cloned() // runs in the server process
    ///     }
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let manager = multiproc::Manager::builder().initializer(set_motto, ("carpe diem".to_string(),)).start()?;
    ///     let s = manager.create(Speaker)?;
    ///     assert_eq!(s.motto()?.as_deref(), Some("carpe diem"));
    ///     assert_eq!(MOTTO.get(), None); // not in this process
    ///     Ok(())
    /// }
    /// ```
    pub fn initializer<F, A>(mut self, task: F, args: A) -> Self
    where
        F: crate::task::Task<A>,
        A: Serialize,
    {
        let call = task.task_name().and_then(|name| {
            let p = task.encode_args(&args)?;
            if !p.fds.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "the manager initializer `{name}`'s arguments hold a file descriptor (a Queue, Lock or \
                     Connection), which a manager server cannot receive: pass plain values"
                )));
            }
            Ok((name.to_string(), p.bytes))
        });
        self.initializer = Some(call.map_err(|e| e.to_string()));
        self
    }

    /// Starts the server process and waits until it listens.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an [`initializer`](Self::initializer)
    /// that is not a registered task or whose arguments cannot be sent;
    /// [`Error::InvalidState`] if the initializer failed or panicked, or the
    /// server could not bind its address; the
    /// errors of [`Process::start`]; [`Error::Timeout`] if the server did not
    /// report in time.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let manager = multiproc::Manager::builder().start()?;
    /// assert!(manager.pid().is_some()); // the server is running
    /// # Ok(())
    /// # }
    /// ```
    pub fn start(mut self) -> Result<Manager> {
        let (address, authkey) = self.address_and_key()?;
        let init = self.initializer.transpose().map_err(Error::InvalidArgument)?;
        let (control, theirs) = pipe::<Control>()?;
        let mut builder =
            Process::builder(serve_manager, (theirs, address, authkey.clone(), init)).daemon(true).name("SyncManager");
        if let Some(m) = self.method {
            builder = builder.start_method(m);
        }
        let mut process = builder.build()?;
        process.start()?;
        let failed = |mut process: Process, e: Error| {
            let _ = process.kill();
            let _ = process.join();
            Err(e)
        };
        match control.recv_timeout(STARTUP_TIMEOUT) {
            Ok(Control::Ready(address)) => Ok(Manager {
                address,
                authkey,
                owned: Mutex::new(Some(Owned { process, control })),
                host: Mutex::new(None),
            }),
            Ok(Control::Failed(reason)) => {
                failed(process, Error::InvalidState(format!("the manager server could not start: {reason}")))
            }
            Ok(Control::Shutdown) => failed(process, Error::InvalidState("unexpected message from the server".into())),
            Err(e) => failed(process, e),
        }
    }
}

impl ManagerBuilder {
    /// A server for this builder's address and authkey, to run in this
    /// process with [`serve_forever`](ManagerServer::serve_forever) (Python's
    /// `BaseManager(address, authkey).get_server()`). It listens from now on;
    /// other processes [`connect`](Manager::connect) to it. The start method
    /// is not used.
    ///
    /// # Errors
    /// [`Error::Io`] if the address cannot be bound (already taken).
    ///
    /// ```
    /// use multiproc::connection::Address;
    /// let server = multiproc::Manager::builder().address(Address::tcp("127.0.0.1:0")?).get_server()?;
    /// assert!(matches!(server.address(), Address::Tcp(a) if a.port() != 0));
    /// assert_eq!(server.authkey().len(), 32); // random, as for `start`
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn get_server(mut self) -> Result<ManagerServer> {
        let (address, authkey) = self.address_and_key()?;
        let listener = Listener::bind(address, Some(&authkey))?;
        Ok(ManagerServer { address: listener.address().clone(), authkey, listener })
    }

    /// The address and key chosen, or a fresh abstract address and a random 32-byte key.
    fn address_and_key(&mut self) -> Result<(Address, Vec<u8>)> {
        let authkey = match self.authkey.take() {
            Some(k) => k,
            None => random_bytes(32)?,
        };
        let address = match self.address.take() {
            Some(a) => a,
            None => Address::unique_abstract()?,
        };
        Ok((address, authkey))
    }
}

/// A manager server that runs in the process that made it (Python's
/// `Server`, from [`Manager::get_server`] or [`ManagerBuilder::get_server`]),
/// instead of in a server process of its own. Clients
/// [`connect`](Manager::connect) with its address and authkey, create objects
/// and register them; [`Manager::shutdown_server`] from any client stops it.
///
/// ```
/// use multiproc::Manager;
///
/// let server = Manager::get_server()?;
/// let (address, key) = (server.address().clone(), server.authkey().to_vec());
/// let serving = std::thread::spawn(move || server.serve_forever());
/// let client = Manager::connect(&address, &key)?;
/// let d = client.dict_from([(1u8, 'a')])?;
/// assert_eq!(d.get(&1)?, Some('a'));
/// client.shutdown_server()?;
/// serving.join().expect("the serving thread")?;
/// # Ok::<(), multiproc::Error>(())
/// ```
pub struct ManagerServer {
    address: Address,
    authkey: Vec<u8>,
    listener: Listener,
}

impl std::fmt::Debug for ManagerServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagerServer").field("address", &self.address).finish_non_exhaustive()
    }
}

impl ManagerServer {
    /// The address it listens on (a TCP port 0 resolved to the real port).
    ///
    /// ```
    /// use multiproc::connection::Address;
    /// let server = multiproc::Manager::get_server()?;
    /// assert!(matches!(server.address(), Address::Abstract(_))); // the default
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The authkey clients must hold.
    ///
    /// ```
    /// let server = multiproc::Manager::builder().authkey(b"k".to_vec()).get_server()?;
    /// assert_eq!(server.authkey(), b"k");
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn authkey(&self) -> &[u8] {
        &self.authkey
    }

    /// Serves clients from background threads until one calls
    /// [`Manager::shutdown_server`], then hangs up on every client and
    /// returns (Python's `serve_forever`, which exits the process instead).
    /// Its objects are freed on return.
    ///
    /// # Errors
    /// [`Error::Io`] if the serving threads cannot start.
    ///
    /// ```
    /// use multiproc::Manager;
    ///
    /// let server = Manager::builder().authkey(b"secret".to_vec()).get_server()?;
    /// let address = server.address().clone();
    /// let serving = std::thread::spawn(move || server.serve_forever());
    /// let client = Manager::connect(&address, b"secret")?;
    /// client.register("jobs", &client.queue::<u32>()?)?;
    /// client.shutdown_server()?;
    /// serving.join().expect("the serving thread")?;
    /// assert!(Manager::connect(&address, b"secret").is_err()); // nobody listens now
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn serve_forever(self) -> Result<()> {
        let table: Arc<table::Table> = Arc::default();
        let (tell, stopped) = std::sync::mpsc::channel();
        table.on_stop(tell);
        let server = server::Server::start(self.listener, table, &self.authkey)?;
        // Ends on a client's shutdown request (the table keeps the sender, so never on disconnection).
        let _ = stopped.recv();
        drop(server);
        Ok(())
    }
}

impl Manager {
    /// Starts a manager server process with the default start method, on a
    /// private address with a random authkey (Python's `Manager()`).
    ///
    /// # Errors
    /// As [`ManagerBuilder::start`].
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let manager = multiproc::Manager::start()?;
    /// let e = manager.event()?;
    /// e.set()?;
    /// assert!(e.is_set()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn start() -> Result<Manager> {
        ManagerBuilder::default().start()
    }

    /// A builder to choose the start method, the address and the authkey.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let manager = multiproc::Manager::builder().authkey(b"k".to_vec()).start()?;
    /// assert_eq!(manager.authkey(), b"k");
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder() -> ManagerBuilder {
        ManagerBuilder::default()
    }

    /// Connects to a manager another process started (Python's
    /// `BaseManager(address, authkey).connect()`); use [`lookup`](Self::lookup)
    /// for the objects it registered. Dropping the result leaves the server running.
    ///
    /// # Errors
    /// [`Error::Authentication`] with the wrong key; [`Error::Io`] if nothing listens there.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// use multiproc::{Manager, managers::QueueProxy};
    /// let server = Manager::start()?;
    /// let q = server.queue::<String>()?;
    /// server.register("jobs", &q)?;
    /// let client = Manager::connect(server.address(), server.authkey())?;
    /// let jobs: QueueProxy<String> = client.lookup("jobs")?;
    /// jobs.put("hello".into())?;
    /// assert_eq!(q.get()?, "hello");
    /// assert_eq!(client.pid(), None); // it did not start the server
    /// # Ok(())
    /// # }
    /// ```
    pub fn connect(address: &Address, authkey: &[u8]) -> Result<Manager> {
        let m = Manager {
            address: address.clone(),
            authkey: authkey.to_vec(),
            owned: Mutex::new(None),
            host: Mutex::new(None),
        };
        m.with_table(|t| t.ping())?;
        Ok(m)
    }

    /// A [`ManagerServer`] on a fresh private address with a random authkey,
    /// to run in this process (Python's `BaseManager().get_server()`); see
    /// [`ManagerBuilder::get_server`] to choose them.
    ///
    /// # Errors
    /// As [`ManagerBuilder::get_server`].
    ///
    /// ```
    /// let server = multiproc::Manager::get_server()?;
    /// assert_eq!(server.authkey().len(), 32);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn get_server() -> Result<ManagerServer> {
        ManagerBuilder::default().get_server()
    }

    /// Asks the server to stop, if it runs [`ManagerServer::serve_forever`]
    /// (Python's `dispatch(conn, None, 'shutdown')`); it returns once it has
    /// answered. A server process started by [`Manager::start`] is stopped by
    /// its owner's [`shutdown`](Self::shutdown) instead.
    ///
    /// # Errors
    /// [`Error::InvalidState`] from a server started by [`Manager::start`] (it
    /// keeps running); a connection error if the server is gone.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// use multiproc::{Error, Manager};
    /// let owned = Manager::start()?;
    /// let client = Manager::connect(owned.address(), owned.authkey())?;
    /// assert!(matches!(client.shutdown_server(), Err(Error::InvalidState(_))));
    /// assert!(owned.event().is_ok()); // still serving
    /// # Ok(())
    /// # }
    /// ```
    pub fn shutdown_server(&self) -> Result<()> {
        self.with_table(|t| t.shutdown()).map_err(|e| match e {
            Error::Remote(m) if m.contains("serve_forever") => Error::InvalidState(m),
            e => e,
        })
    }

    /// The address the server listens on (Python's `manager.address`).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// use multiproc::{connection::Address, managers::Proxy};
    /// let manager = multiproc::Manager::start()?;
    /// assert!(matches!(manager.address(), Address::Abstract(_))); // the default
    /// let d = manager.dict::<u8, u8>()?;
    /// assert_eq!(d.token().address(), manager.address());
    /// # Ok(())
    /// # }
    /// ```
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The authkey clients must hold.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let manager = multiproc::Manager::start()?;
    /// assert_eq!(manager.authkey().len(), 32); // random, by default
    /// # Ok(())
    /// # }
    /// ```
    pub fn authkey(&self) -> &[u8] {
        &self.authkey
    }

    /// The server's pid, for a manager this process started and has not shut
    /// down (`None` for a [`connect`](Self::connect)ed one).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let manager = multiproc::Manager::start()?;
    /// let pid = manager.pid().expect("it started the server");
    /// assert_ne!(pid, std::process::id());
    /// manager.shutdown()?;
    /// assert_eq!(manager.pid(), None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn pid(&self) -> Option<u32> {
        self.owned.lock().unwrap_or_else(|p| p.into_inner()).as_ref().and_then(|o| o.process.pid())
    }

    /// How many shared objects the server holds (Python's
    /// `manager._number_of_objects()`). An object is freed once no process
    /// holds a proxy of it, no name is [`register`](Self::register)ed for it,
    /// and no shared container it was stored in is alive: as in Python, a
    /// proxy counts while it lives in any process, including clones and
    /// proxies sent to children. Objects [`create`](Self::create)d in this
    /// process (non-serde types) are not counted here.
    ///
    /// # Errors
    /// A connection error if the server is gone.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let manager = multiproc::Manager::start()?;
    /// let before = manager.number_of_objects()?;
    /// let d = manager.dict::<u8, u8>()?;
    /// let again = d.clone();
    /// assert_eq!(manager.number_of_objects()?, before + 1);
    /// drop(d);
    /// assert_eq!(manager.number_of_objects()?, before + 1); // `again` still holds it
    /// drop(again);
    /// assert_eq!(manager.number_of_objects()?, before);
    /// # Ok(())
    /// # }
    /// ```
    pub fn number_of_objects(&self) -> Result<usize> {
        Ok(self.with_table(|t| t.number_of_objects())? as usize)
    }

    /// Calls the manager itself (object 0) through `f`'s typed client.
    fn with_table<R>(&self, f: impl FnOnce(table::Client<'_>) -> Result<R>) -> Result<R> {
        let token = Token::new(self.address.clone(), self.authkey.clone(), 0, "manager".into());
        f(table::Client(&token))
    }

    fn create_builtin<P: Proxy>(&self, init: Init) -> Result<P> {
        let id = self.with_table(|t| t.create(init))?;
        self.adopt_new(id, P::KIND.into())
    }

    /// The proxy of the object just created as `id`, which holds the proxies
    /// encoded into its initial value.
    fn adopt_new<P: Proxy>(&self, id: u64, kind: String) -> Result<P> {
        let nested = client::take_pending();
        let token = Token::adopt(self.address.clone(), self.authkey.clone(), id, kind);
        token.hold(nested)?;
        Ok(P::from_token(token))
    }

    /// A new, empty shared dictionary (Python's `manager.dict()`).
    ///
    /// # Errors
    /// A connection error if the server is gone.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let d = manager.dict::<String, Vec<u32>>()?;
    /// assert!(d.is_empty()?);
    /// d.insert("primes".into(), vec![2, 3, 5])?;
    /// assert_eq!(d.get(&"primes".into())?, Some(vec![2, 3, 5]));
    /// # Ok(())
    /// # }
    /// ```
    pub fn dict<K: Serialize + DeserializeOwned, V: Serialize + DeserializeOwned>(&self) -> Result<DictProxy<K, V>> {
        self.create_builtin(Init::Dict(Vec::new()))
    }

    /// A new shared dictionary holding `items` (Python's `manager.dict(items)`).
    ///
    /// # Errors
    /// As [`dict`](Self::dict); [`Error::Encode`] for a value that cannot be encoded.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let d = manager.dict_from([(1u8, 'a'), (2, 'b')])?;
    /// assert_eq!(d.items()?, [(1, 'a'), (2, 'b')]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn dict_from<K, V>(&self, items: impl IntoIterator<Item = (K, V)>) -> Result<DictProxy<K, V>>
    where
        K: Serialize + DeserializeOwned,
        V: Serialize + DeserializeOwned,
    {
        // Kept until the dict exists: a proxy among them must keep its object alive until the dict holds it.
        let items: Vec<(K, V)> = items.into_iter().collect();
        let raw = items.iter().map(|(k, v)| Ok((server::en(k)?, server::en(v)?))).collect::<Result<Vec<_>>>()?;
        self.create_builtin(Init::Dict(raw))
    }

    /// A new, empty shared list (Python's `manager.list()`).
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.list::<String>()?;
    /// l.push("x".into())?;
    /// assert_eq!(l.len()?, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn list<T: Serialize + DeserializeOwned>(&self) -> Result<ListProxy<T>> {
        self.create_builtin(Init::List(Vec::new()))
    }

    /// A new shared list holding `items` (Python's `manager.list(range(10))`).
    ///
    /// # Errors
    /// As [`dict_from`](Self::dict_from).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.list_from(0..10u32)?;
    /// assert_eq!(l.len()?, 10);
    /// assert_eq!(l.get(9)?, 9);
    /// # Ok(())
    /// # }
    /// ```
    pub fn list_from<T: Serialize + DeserializeOwned>(
        &self,
        items: impl IntoIterator<Item = T>,
    ) -> Result<ListProxy<T>> {
        let items: Vec<T> = items.into_iter().collect(); // alive until created, as in `dict_from`
        let raw = items.iter().map(server::en).collect::<Result<Vec<_>>>()?;
        self.create_builtin(Init::List(raw))
    }

    /// A new, empty shared set (Python's `manager.set()`; see [`SetProxy`]
    /// for what makes two values the same).
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let s = manager.set::<u64>()?;
    /// assert!(s.add(1)?);
    /// assert!(!s.add(1)?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn set<T: Serialize + DeserializeOwned>(&self) -> Result<SetProxy<T>> {
        self.create_builtin(Init::Set(Vec::new()))
    }

    /// A new shared set holding `items`, duplicates dropped (Python's `manager.set(items)`).
    ///
    /// # Errors
    /// As [`dict_from`](Self::dict_from).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let s = manager.set_from(["b", "a", "b"].map(String::from))?;
    /// assert_eq!(s.snapshot()?, ["a", "b"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_from<T: Serialize + DeserializeOwned>(&self, items: impl IntoIterator<Item = T>) -> Result<SetProxy<T>> {
        let items: Vec<T> = items.into_iter().collect(); // alive until created, as in `dict_from`
        let raw = items.iter().map(server::en).collect::<Result<Vec<_>>>()?;
        self.create_builtin(Init::Set(raw))
    }

    /// A new shared array (Python's `manager.Array(typecode, sequence)`): a
    /// [`ListProxy`] holding `items`; `get`, `set` and `len` are Python's
    /// `a[i]`, `a[i] = v` and `len(a)`.
    ///
    /// # Errors
    /// As [`dict_from`](Self::dict_from).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let a = manager.array([0.0f64; 4])?;
    /// a.set(2, 1.5)?;
    /// assert_eq!(a.snapshot()?, [0.0, 0.0, 1.5, 0.0]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn array<T: Serialize + DeserializeOwned>(&self, items: impl IntoIterator<Item = T>) -> Result<ListProxy<T>> {
        self.list_from(items)
    }

    /// A new shared value (Python's `manager.Value(typecode, value)`).
    ///
    /// # Errors
    /// As [`dict_from`](Self::dict_from).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let v = manager.value(String::from("start"))?;
    /// assert_eq!(v.get()?, "start");
    /// # Ok(())
    /// # }
    /// ```
    pub fn value<T: Serialize + DeserializeOwned>(&self, initial: T) -> Result<ValueProxy<T>> {
        self.create_builtin(Init::Value(server::en(&initial)?))
    }

    /// A new, empty namespace (Python's `manager.Namespace()`).
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let ns = manager.namespace()?;
    /// assert!(ns.names()?.is_empty());
    /// ns.set("x", &1u8)?;
    /// assert_eq!(ns.names()?, ["x"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn namespace(&self) -> Result<NamespaceProxy> {
        self.create_builtin(Init::Namespace)
    }

    /// A new unbounded queue (Python's `manager.Queue()`).
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let q = manager.queue::<(u32, String)>()?;
    /// q.put((1, "one".into()))?;
    /// assert_eq!(q.get()?, (1, "one".to_string()));
    /// assert!(!q.full()?); // unbounded
    /// # Ok(())
    /// # }
    /// ```
    pub fn queue<T: Serialize + DeserializeOwned>(&self) -> Result<QueueProxy<T>> {
        self.create_builtin(Init::Queue { maxsize: 0 })
    }

    /// A new unbounded queue whose consumers mark items done (Python's
    /// `manager.JoinableQueue()`): a [`QueueProxy`], with
    /// [`task_done`](QueueProxy::task_done) and [`join`](QueueProxy::join).
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let q = manager.joinable_queue::<u8>()?;
    /// q.put(1)?;
    /// assert_eq!(q.get()?, 1);
    /// q.task_done()?;
    /// q.join()?; // every item put is done: returns at once
    /// # Ok(())
    /// # }
    /// ```
    pub fn joinable_queue<T: Serialize + DeserializeOwned>(&self) -> Result<QueueProxy<T>> {
        self.queue()
    }

    /// A new queue holding at most `maxsize` items (Python's
    /// `manager.Queue(maxsize)`; 0 means unbounded, as in Python).
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let q = manager.queue_bounded::<u8>(2)?;
    /// q.put(1)?;
    /// q.put(2)?;
    /// assert!(q.full()?);
    /// assert!(matches!(q.put_nowait(3), Err(multiproc::Error::Full)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn queue_bounded<T: Serialize + DeserializeOwned>(&self, maxsize: usize) -> Result<QueueProxy<T>> {
        self.create_builtin(Init::Queue { maxsize: maxsize as u64 })
    }

    /// A new lock (Python's `manager.Lock()`).
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let l = manager.lock()?;
    /// assert!(l.try_acquire()?);
    /// assert!(l.locked()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn lock(&self) -> Result<LockProxy> {
        self.create_builtin(Init::Lock)
    }

    /// A new re-entrant lock (Python's `manager.RLock()`).
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let r = manager.rlock()?;
    /// assert!(r.try_acquire()?);
    /// assert!(r.try_acquire()?); // its owner may take it again
    /// # Ok(())
    /// # }
    /// ```
    pub fn rlock(&self) -> Result<RLockProxy> {
        self.create_builtin(Init::RLock)
    }

    /// A new semaphore with `value` free units (Python's `manager.Semaphore(value)`).
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let s = manager.semaphore(2)?;
    /// assert_eq!(s.value()?, 2);
    /// s.release()?; // unbounded: may go above its initial value
    /// assert_eq!(s.value()?, 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn semaphore(&self, value: u64) -> Result<SemaphoreProxy> {
        self.create_builtin(Init::Semaphore { value, bounded: false })
    }

    /// A new bounded semaphore (Python's `manager.BoundedSemaphore(n)`): a
    /// release that would take it above `value` fails with [`Error::Remote`].
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let s = manager.bounded_semaphore(1)?;
    /// s.acquire()?;
    /// s.release()?;
    /// assert!(matches!(s.release(), Err(multiproc::Error::Remote(_))));
    /// assert_eq!(s.value()?, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn bounded_semaphore(&self, value: u64) -> Result<SemaphoreProxy> {
        self.create_builtin(Init::Semaphore { value, bounded: true })
    }

    /// A new condition variable with its own re-entrant lock (Python's `manager.Condition()`).
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let c = manager.condition()?;
    /// assert!(c.acquire()?);
    /// c.notify_all()?;
    /// c.release()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn condition(&self) -> Result<ConditionProxy> {
        self.create_builtin(Init::Condition)
    }

    /// A new event, initially clear (Python's `manager.Event()`).
    ///
    /// # Errors
    /// As [`dict`](Self::dict).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let e = manager.event()?;
    /// assert!(!e.is_set()?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn event(&self) -> Result<EventProxy> {
        self.create_builtin(Init::Event)
    }

    /// A new barrier for `parties` parties (Python's `manager.Barrier(parties)`).
    ///
    /// # Errors
    /// [`Error::Remote`] if `parties` is 0; as [`dict`](Self::dict).
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// # let manager = multiproc::Manager::start()?;
    /// let b = manager.barrier(2)?;
    /// assert_eq!(b.parties()?, 2);
    /// assert!(matches!(manager.barrier(0), Err(multiproc::Error::Remote(_))));
    /// # Ok(())
    /// # }
    /// ```
    pub fn barrier(&self, parties: usize) -> Result<BarrierProxy> {
        self.create_builtin(Init::Barrier { parties: parties as u64 })
    }

    /// A new pool in the manager, running at most `processes` calls of a
    /// `map` at a time (Python's `manager.Pool(processes)`; see [`PoolProxy`]).
    ///
    /// # Errors
    /// [`Error::Remote`] if `processes` is 0 (Python's `ValueError`); as [`dict`](Self::dict).
    ///
    /// ```
    /// #[multiproc::task]
    /// fn double(x: i32) -> i32 {
    ///     2 * x
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let manager = multiproc::Manager::start()?;
    ///     let pool = manager.pool(4)?;
    ///     assert_eq!(pool.map(double, 0..4)?, [0, 2, 4, 6]);
    ///     assert!(matches!(manager.pool(0), Err(multiproc::Error::Remote(_))));
    ///     Ok(())
    /// }
    /// ```
    pub fn pool(&self, processes: usize) -> Result<PoolProxy> {
        self.create_builtin(Init::Pool { processes: processes as u64 })
    }

    /// Shares `value`, a type with a `#[multiproc::managed]` impl block, and
    /// returns its generated proxy (Python's `manager.Maths()` after `register`).
    ///
    /// If `T` is also `Serialize + Deserialize`, the value is sent to the
    /// server process and lives there, as in Python (the server finds the type
    /// by name in this binary's registry). Otherwise it is served by a thread
    /// of this process (started on first use, on a private address with the
    /// manager's authkey), so it needs no serde implementation. Either way its
    /// proxy works from any process, under every start method, while this
    /// manager is running.
    ///
    /// # Errors
    /// [`Error::Remote`] if the server's program does not know the type (a
    /// remote manager started by another program); [`Error::Io`] if the
    /// serving socket cannot be created.
    ///
    /// ```
    /// struct Counter {
    ///     n: u64, // not serde: served by a thread of the creating process
    /// }
    ///
    /// #[multiproc::managed]
    /// impl Counter {
    ///     fn incr(&mut self) -> u64 {
    ///         self.n += 1;
    ///         self.n
    ///     }
    /// }
    ///
    /// #[multiproc::task]
    /// fn bump(c: CounterProxy) {
    ///     c.incr().unwrap();
    /// }
    ///
    /// #[multiproc::main]
    /// fn main() -> multiproc::Result<()> {
    ///     let manager = multiproc::Manager::start()?;
    ///     let c = manager.create(Counter { n: 0 })?;
    ///     let mut p = multiproc::Process::new(bump, (c.clone(),))?;
    ///     p.start()?;
    ///     p.join()?;
    ///     assert_eq!(c.incr()?, 2); // the child's call counted too
    ///     Ok(())
    /// }
    /// ```
    pub fn create<T: Creatable>(&self, value: T) -> Result<T::Proxy> {
        if let Some(bytes) = value.encode_for_server() {
            let bytes = bytes?;
            let id = self.with_table(|t| t.create_managed(T::TYPE_NAME.to_string(), bytes))?;
            return self.adopt_new(id, T::TYPE_NAME.into());
        }
        let mut host = self.host.lock().unwrap_or_else(|p| p.into_inner());
        if host.is_none() {
            let listener = Listener::bind(Address::unique_abstract()?, Some(&self.authkey))?;
            let address = listener.address().clone();
            let table: Arc<table::Table> = Arc::default();
            let server = server::Server::start(listener, table.clone(), &self.authkey)?;
            *host = Some(Host { address, table, _server: server });
        }
        let h = host.as_ref().ok_or(Error::Closed("the manager"))?;
        let id = h.table.insert(Arc::new(kinds::Custom(Mutex::new(value))));
        Ok(T::Proxy::from_token(Token::adopt(h.address.clone(), self.authkey.clone(), id, T::TYPE_NAME.into())))
    }

    /// Registers `proxy`'s object under `name`, so other processes that
    /// [`connect`](Self::connect) can [`lookup`](Self::lookup) it (Python's
    /// `register('get_queue', callable=lambda: queue)`). A name registered again
    /// names the new object.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the object does not live in this manager's server.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// use multiproc::managers::DictProxy;
    /// let manager = multiproc::Manager::start()?;
    /// let results = manager.dict::<String, u64>()?;
    /// manager.register("results", &results)?;
    /// let found: DictProxy<String, u64> = manager.lookup("results")?;
    /// found.insert("a".into(), 1)?;
    /// assert_eq!(results.get(&"a".into())?, Some(1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn register<P: Proxy>(&self, name: &str, proxy: &P) -> Result<()> {
        let token = proxy.token();
        if token.address() != &self.address {
            return Err(Error::InvalidArgument(format!(
                "`{name}` lives at {}, not in this manager's server ({}): register a built-in or serde managed object",
                token.address(),
                self.address
            )));
        }
        self.with_table(|t| t.register(name.to_string(), token.id()))
    }

    /// The object registered as `name`, through a proxy of type `P`.
    ///
    /// # Errors
    /// [`Error::Remote`] if no object has that name; [`Error::InvalidArgument`]
    /// if it is not of `P`'s kind.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// use multiproc::{Error, managers::{EventProxy, LockProxy}};
    /// let manager = multiproc::Manager::start()?;
    /// manager.register("ready", &manager.event()?)?;
    /// let ready: EventProxy = manager.lookup("ready")?;
    /// assert!(!ready.is_set()?);
    /// assert!(matches!(manager.lookup::<LockProxy>("ready"), Err(Error::InvalidArgument(_))));
    /// assert!(matches!(manager.lookup::<EventProxy>("missing"), Err(Error::Remote(_))));
    /// # Ok(())
    /// # }
    /// ```
    pub fn lookup<P: Proxy>(&self, name: &str) -> Result<P> {
        let (id, kind) = self.with_table(|t| t.lookup(name.to_string()))?;
        // The server counted a reference for us: adopt it before any check, so it is released.
        let token = Token::adopt(self.address.clone(), self.authkey.clone(), id, kind.clone());
        if kind != P::KIND {
            return Err(Error::InvalidArgument(format!("`{name}` is a {kind}, not a {}", P::KIND)));
        }
        Ok(P::from_token(token))
    }

    /// Stops the server process (and the thread serving [`create`](Self::create)d
    /// objects) and waits for it; later proxy calls fail. Idempotent. A
    /// [`connect`](Self::connect)ed manager only closes its connections
    /// (Python's `shutdown`; dropping the `Manager` does it too).
    ///
    /// # Errors
    /// [`Error::Io`] if the server process cannot be waited for.
    ///
    /// ```
    /// # #[multiproc::main]
    /// # fn main() -> multiproc::Result<()> {
    /// let manager = multiproc::Manager::start()?;
    /// let d = manager.dict::<u8, u8>()?;
    /// manager.shutdown()?;
    /// assert!(d.len().is_err()); // the server is gone
    /// manager.shutdown()?; // a second time does nothing
    /// # Ok(())
    /// # }
    /// ```
    pub fn shutdown(&self) -> Result<()> {
        client::forget(&self.address);
        let host = self.host.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = host {
            client::forget(&h.address);
            drop(h);
        }
        let owned = self.owned.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(Owned { mut process, control }) = owned {
            let _ = control.send(&Control::Shutdown);
            drop(control);
            if process.join_timeout(SHUTDOWN_TIMEOUT)?.is_none() {
                process.kill()?;
                process.join()?;
            }
        }
        Ok(())
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}
