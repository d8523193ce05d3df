//! [`Listener`] and [`Client`]: connections between unrelated processes, over
//! Unix sockets (a path or an abstract name) and TCP, authenticated with an
//! HMAC challenge-response before any payload is decoded.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{self as unix, UnixListener, UnixStream};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Connection, auth};
use crate::error::{Error, IoContext, Result};
use crate::sys;

/// How long a peer of a [`Listener`] has to complete the authentication
/// handshake, by default: long enough for any live client on a loaded
/// machine, short enough that silent connections cost little.
///
/// ```
/// use multiproc::connection::DEFAULT_HANDSHAKE_TIMEOUT;
///
/// assert_eq!(DEFAULT_HANDSHAKE_TIMEOUT, std::time::Duration::from_secs(2));
/// ```
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long [`Client::connect`] waits for the listener to complete the
/// handshake (longer than a listener gives: the listener may be busy).
pub(crate) const CLIENT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most handshakes a listener runs at once; further peers wait in the kernel's backlog.
const MAX_PENDING_HANDSHAKES: usize = 1024;
/// Stack of a handshake thread: it only reads and writes a few hundred bytes.
const HANDSHAKE_STACK: usize = 256 << 10;

/// Where a [`Listener`] listens and a [`Client`] connects (Python's `address` and `family`).
///
/// Parse one from a string with [`str::parse`]: `"host:port"` or `"1.2.3.4:port"`
/// is TCP, `"\0name"` or `"@name"` an abstract Unix socket (Linux), anything else
/// a Unix socket path.
///
/// ```
/// use multiproc::connection::Address;
///
/// let tcp: Address = "127.0.0.1:6000".parse()?;
/// let socket: std::net::SocketAddr = "127.0.0.1:6000".parse().unwrap();
/// assert_eq!(tcp, Address::Tcp(socket));
/// assert_eq!(Address::from(socket), tcp);
/// assert_eq!("@name".parse::<Address>()?, Address::Abstract("name".into()));
/// assert_eq!("/tmp/app.sock".parse::<Address>()?, Address::Unix("/tmp/app.sock".into()));
/// assert_eq!(Address::Abstract("name".into()).to_string(), "@name");
/// # Ok::<(), multiproc::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Address {
    /// A Unix socket at a filesystem path (`AF_UNIX`); the listener removes the file when dropped.
    Unix(PathBuf),
    /// A Unix socket in Linux's abstract namespace (Python's `"\0name"`): no file, gone with its listener.
    Abstract(String),
    /// A TCP socket (`AF_INET`/`AF_INET6`). Port 0 binds a free port; see [`Listener::address`].
    Tcp(SocketAddr),
}

impl Address {
    /// A fresh abstract Unix address no other listener uses (Python's default `Listener()` address).
    ///
    /// # Errors
    /// [`Error::Io`] if the kernel's random source cannot be read.
    ///
    /// ```
    /// use multiproc::connection::{Address, Listener};
    ///
    /// let (a, b) = (Address::unique_abstract()?, Address::unique_abstract()?);
    /// assert!(matches!(&a, Address::Abstract(_)));
    /// assert_ne!(a, b);
    /// let listener = Listener::bind(a.clone(), None)?;
    /// assert_eq!(listener.address(), &a);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn unique_abstract() -> Result<Address> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nonce: String = auth::random_bytes(8)?.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Address::Abstract(format!(
            "multiproc-{}-{}-{nonce}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )))
    }

    /// A TCP address; the first one `addr` resolves to (`"localhost:6000"`, `("0.0.0.0", 0)`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `addr` resolves to nothing.
    ///
    /// ```
    /// use multiproc::connection::Address;
    /// use std::net::SocketAddr;
    ///
    /// let any_port = Address::tcp(("127.0.0.1", 0))?;
    /// assert_eq!(any_port, Address::Tcp(SocketAddr::from(([127, 0, 0, 1], 0))));
    /// let nowhere: &[SocketAddr] = &[];
    /// assert!(matches!(Address::tcp(nowhere), Err(multiproc::Error::InvalidArgument(_))));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn tcp(addr: impl ToSocketAddrs) -> Result<Address> {
        addr.to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .map(Address::Tcp)
            .ok_or_else(|| Error::InvalidArgument("the TCP address resolves to nothing".into()))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "{}", p.display()),
            Address::Abstract(name) => write!(f, "@{name}"),
            Address::Tcp(a) => write!(f, "{a}"),
        }
    }
}

impl FromStr for Address {
    type Err = Error;

    fn from_str(s: &str) -> Result<Address> {
        if let Some(name) = s.strip_prefix('\0').or_else(|| s.strip_prefix('@')) {
            return Ok(Address::Abstract(name.to_string()));
        }
        if s.contains('/') || !s.contains(':') {
            return Ok(Address::Unix(PathBuf::from(s)));
        }
        Address::tcp(s)
    }
}

impl From<SocketAddr> for Address {
    fn from(a: SocketAddr) -> Address {
        Address::Tcp(a)
    }
}

fn unix_addr(name: &str) -> io::Result<unix::SocketAddr> {
    unix::SocketAddr::from_abstract_name(name.as_bytes())
}

enum Socket {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Socket::Unix(l) => l.as_fd(),
            Socket::Tcp(l) => l.as_fd(),
        }
    }

    fn accept(&self) -> io::Result<OwnedFd> {
        match self {
            Socket::Unix(l) => l.accept().map(|(s, _)| OwnedFd::from(s)),
            Socket::Tcp(l) => l.accept().map(|(s, _)| {
                let _ = s.set_nodelay(true);
                OwnedFd::from(s)
            }),
        }
    }
}

type Handshaken = Result<(OwnedFd, Option<String>)>;

/// Accepts connections on an [`Address`] (Python's `multiprocessing.connection.Listener`).
///
/// With an authkey, every accepted peer must pass the HMAC-SHA256 challenge
/// in both directions before [`accept`](Self::accept) hands its connection
/// out; nothing the peer sends is decoded before that. Handshakes run on
/// their own threads with a timeout ([`set_handshake_timeout`](Self::set_handshake_timeout)),
/// so a slow, silent or malicious peer never delays other clients.
///
/// ```
/// use multiproc::connection::{Address, Client, Listener};
///
/// # fn main() -> multiproc::Result<()> {
/// let listener = Listener::bind(Address::tcp("127.0.0.1:0")?, Some(b"secret password"))?;
/// let address = listener.address().clone();
/// let client = std::thread::spawn(move || -> multiproc::Result<String> {
///     let conn = Client::connect::<String>(&address, Some(b"secret password"))?;
///     conn.recv()
/// });
/// let conn = listener.accept::<String>()?;
/// conn.send(&"hello".to_string())?;
/// assert_eq!(client.join().unwrap()?, "hello");
/// # Ok(())
/// # }
/// ```
pub struct Listener {
    socket: Socket,
    address: Address,
    authkey: Option<Arc<[u8]>>,
    handshake_timeout: Duration,
    done_tx: mpsc::Sender<Handshaken>,
    done_rx: mpsc::Receiver<Handshaken>,
    wake_rx: UnixStream,
    wake_tx: Arc<UnixStream>,
    closed: Arc<AtomicBool>,
    in_flight: Arc<AtomicUsize>,
    last_accepted: Mutex<Option<String>>,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("address", &self.address)
            .field("authenticated", &self.authkey.is_some())
            .finish()
    }
}

impl Listener {
    /// Binds a listening socket at `address`. With `authkey`, clients must
    /// prove they hold the same key (an empty key is allowed, as in Python).
    ///
    /// # Errors
    /// [`Error::Io`] if the address is in use or cannot be bound.
    ///
    /// ```
    /// use multiproc::connection::{Address, Listener};
    ///
    /// let path = std::env::temp_dir().join(format!("multiproc-doc-{}.sock", std::process::id()));
    /// let listener = Listener::bind(Address::Unix(path.clone()), None)?;
    /// assert!(path.exists());
    /// assert!(Listener::bind(Address::Unix(path.clone()), None).is_err()); // in use
    /// drop(listener);
    /// assert!(!path.exists()); // removed with its listener
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn bind(address: Address, authkey: Option<&[u8]>) -> Result<Listener> {
        let (socket, address) = match address {
            Address::Unix(path) => (Socket::Unix(UnixListener::bind(&path).ctx("bind")?), Address::Unix(path)),
            Address::Abstract(name) => {
                let l = UnixListener::bind_addr(&unix_addr(&name).ctx("abstract address")?).ctx("bind")?;
                (Socket::Unix(l), Address::Abstract(name))
            }
            Address::Tcp(addr) => {
                let l = TcpListener::bind(addr).ctx("bind")?;
                let bound = l.local_addr().ctx("getsockname")?;
                (Socket::Tcp(l), Address::Tcp(bound))
            }
        };
        match &socket {
            Socket::Unix(l) => l.set_nonblocking(true),
            Socket::Tcp(l) => l.set_nonblocking(true),
        }
        .ctx("set_nonblocking")?;
        let (wake_rx, wake_tx) = UnixStream::pair().ctx("socketpair")?;
        wake_rx.set_nonblocking(true).ctx("set_nonblocking")?;
        wake_tx.set_nonblocking(true).ctx("set_nonblocking")?;
        let (done_tx, done_rx) = mpsc::channel();
        Ok(Listener {
            socket,
            address,
            authkey: authkey.map(Arc::from),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            done_tx,
            done_rx,
            wake_rx,
            wake_tx: Arc::new(wake_tx),
            closed: Arc::new(AtomicBool::new(false)),
            in_flight: Arc::new(AtomicUsize::new(0)),
            last_accepted: Mutex::new(None),
        })
    }

    /// The address clients connect to (with the real port if bound to port 0):
    /// Python's `Listener.address`.
    ///
    /// ```
    /// use multiproc::connection::{Address, Listener};
    ///
    /// let listener = Listener::bind(Address::tcp("127.0.0.1:0")?, None)?;
    /// let Address::Tcp(bound) = listener.address() else { panic!("a TCP listener has a TCP address") };
    /// assert_ne!(bound.port(), 0); // the port the kernel picked
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// How long a peer has to pass the handshake (default [`DEFAULT_HANDSHAKE_TIMEOUT`]).
    /// A peer that takes longer is dropped, and `accept` serves the next one.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// use multiproc::connection::{Address, Client, Listener};
    ///
    /// let path = std::env::temp_dir().join(format!("multiproc-doc-hs-{}.sock", std::process::id()));
    /// let mut listener = Listener::bind(Address::Unix(path.clone()), Some(b"key"))?;
    /// listener.set_handshake_timeout(Duration::from_millis(50));
    /// let mut silent = std::os::unix::net::UnixStream::connect(&path)?; // never answers the challenge
    /// let address = listener.address().clone();
    /// let good = std::thread::spawn(move || -> multiproc::Result<()> {
    ///     let _ = silent.read_to_end(&mut Vec::new()); // dropped after 50 ms
    ///     Client::connect::<u32>(&address, Some(b"key"))?.send(&1)
    /// });
    /// assert_eq!(listener.accept::<u32>()?.recv()?, 1);
    /// good.join().unwrap()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn set_handshake_timeout(&mut self, timeout: Duration) {
        self.handshake_timeout = timeout;
    }

    /// The peer of the last accepted connection, if known (Python's `last_accepted`).
    ///
    /// ```
    /// use multiproc::connection::{Address, Client, Listener};
    ///
    /// let listener = Listener::bind(Address::tcp("127.0.0.1:0")?, None)?;
    /// assert_eq!(listener.last_accepted(), None);
    /// let _client = Client::connect::<u32>(listener.address(), None)?;
    /// let _conn = listener.accept::<u32>()?;
    /// assert!(listener.last_accepted().is_some_and(|peer| peer.starts_with("127.0.0.1:")));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn last_accepted(&self) -> Option<String> {
        self.last_accepted.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A handle that makes a blocked [`accept`](Self::accept) return [`Error::Closed`].
    pub(crate) fn closer(&self) -> ListenerCloser {
        ListenerCloser { closed: self.closed.clone(), wake: self.wake_tx.clone() }
    }

    /// Waits for the next client and returns its connection (Python's `accept`), authenticated if
    /// the listener has a key. Blocks until a client has connected (and passed
    /// the handshake).
    ///
    /// A peer that fails the handshake — another key, a reset, a close,
    /// something that is not a handshake, or no answer within the handshake
    /// timeout — is refused (logged at `warn`; the client itself gets
    /// [`Error::Authentication`]) without disturbing `accept`, which waits for
    /// the next one: a server loop of `accept()?` survives hostile and broken
    /// peers. (Python's `accept` raises `AuthenticationError` for a client
    /// with another key; here that client cannot stop the server.)
    ///
    /// # Errors
    /// [`Error::Io`] if accepting itself fails; [`Error::Closed`] once the
    /// listener is closed.
    ///
    /// ```
    /// use multiproc::connection::{Address, Client, Listener};
    ///
    /// let listener = Listener::bind(Address::unique_abstract()?, None)?;
    /// let client = Client::connect::<String>(listener.address(), None)?;
    /// let conn = listener.accept::<String>()?;
    /// client.send(&"hi".to_string())?;
    /// assert_eq!(conn.recv()?, "hi");
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn accept<T>(&self) -> Result<Connection<T>> {
        self.accept_fd().map(Connection::from_socket)
    }

    pub(crate) fn accept_fd(&self) -> Result<OwnedFd> {
        loop {
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed("the listener"));
            }
            if let Ok(done) = self.done_rx.try_recv() {
                let (fd, peer) = done?;
                *self.last_accepted.lock().unwrap_or_else(|p| p.into_inner()) = peer;
                return Ok(fd);
            }
            // At the cap, wait for a handshake to finish before accepting more.
            let full = self.in_flight.load(Ordering::Acquire) >= MAX_PENDING_HANDSHAKES;
            let fds = [self.wake_rx.as_fd(), self.socket.as_fd()];
            let ready = sys::fd::poll_readable(if full { &fds[..1] } else { &fds }, None).ctx("poll")?;
            if ready[0] {
                let mut sink = [0u8; 64];
                while matches!((&self.wake_rx).read(&mut sink), Ok(n) if n > 0) {}
            }
            if full || !ready[1] {
                continue;
            }
            let fd = match self.socket.accept() {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => continue,
                // A peer that reset before we accepted it: not our error.
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => continue,
                Err(e) => return Err(Error::Io { op: "accept", source: e }),
            };
            let peer = peer_name(&self.socket, &fd);
            let Some(key) = self.authkey.clone() else {
                *self.last_accepted.lock().unwrap_or_else(|p| p.into_inner()) = peer;
                return Ok(fd);
            };
            let tx = self.done_tx.clone();
            let wake = self.wake_tx.clone();
            let in_flight = self.in_flight.clone();
            let deadline = crate::backoff::deadline_after(self.handshake_timeout);
            in_flight.fetch_add(1, Ordering::AcqRel);
            let handshake = std::thread::Builder::new().name("multiproc-handshake".into()).stack_size(HANDSHAKE_STACK);
            let spawned = handshake.spawn(move || {
                let done = match auth::server_handshake(fd.as_fd(), &key, deadline) {
                    Ok(()) => Some(Ok((fd, peer))),
                    Err(e) => {
                        log::warn!("listener: refused a peer{} that failed the handshake: {e}", at(&peer));
                        None
                    }
                };
                in_flight.fetch_sub(1, Ordering::AcqRel);
                if let Some(done) = done {
                    let _ = tx.send(done);
                }
                let _ = (&*wake).write(&[1]);
            });
            if let Err(e) = spawned {
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
                return Err(Error::Io { op: "spawn handshake thread", source: e });
            }
        }
    }
}

/// " at <peer>" when the peer's address is known.
fn at(peer: &Option<String>) -> String {
    peer.as_deref().map(|p| format!(" at {p}")).unwrap_or_default()
}

fn peer_name(socket: &Socket, fd: &OwnedFd) -> Option<String> {
    match socket {
        Socket::Tcp(_) => {
            let s = TcpStream::from(fd.try_clone().ok()?);
            s.peer_addr().ok().map(|a| a.to_string())
        }
        Socket::Unix(_) => None,
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Address::Unix(path) = &self.address {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Closes a [`Listener`] from another thread: its `accept` returns [`Error::Closed`].
#[derive(Clone)]
pub(crate) struct ListenerCloser {
    closed: Arc<AtomicBool>,
    wake: Arc<UnixStream>,
}

impl ListenerCloser {
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let _ = (&*self.wake).write(&[1]);
    }
}

/// Connects to a [`Listener`] (Python's `multiprocessing.connection.Client`).
///
/// ```
/// use multiproc::connection::{Address, Client, Listener};
///
/// let listener = Listener::bind(Address::unique_abstract()?, Some(b"key"))?;
/// let address = listener.address().clone();
/// let server = std::thread::spawn(move || listener.accept::<u64>()?.send(&42));
/// let conn = Client::connect::<u64>(&address, Some(b"key"))?;
/// assert_eq!(conn.recv()?, 42);
/// server.join().unwrap()?;
/// # Ok::<(), multiproc::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Client;

impl Client {
    /// Connects to `address` (Python's `Client(address, authkey=…)`); with
    /// `authkey`, runs the handshake (answering the listener's challenge, then
    /// challenging it) before returning.
    ///
    /// # Errors
    /// [`Error::Io`] if nothing listens there; [`Error::Authentication`] if the
    /// keys differ or the listener does not complete the handshake within
    /// 10 s.
    ///
    /// ```
    /// use multiproc::connection::{Address, Client, Listener};
    ///
    /// let listener = Listener::bind(Address::unique_abstract()?, Some(b"right key"))?;
    /// let address = listener.address().clone();
    /// // The listener refuses the wrong key and goes on to the next client.
    /// let server = std::thread::spawn(move || listener.accept::<u32>()?.recv());
    /// let refused = Client::connect::<u32>(&address, Some(b"wrong key"));
    /// assert!(matches!(refused, Err(multiproc::Error::Authentication(_))));
    /// Client::connect::<u32>(&address, Some(b"right key"))?.send(&7)?;
    /// assert_eq!(server.join().unwrap()?, 7);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn connect<T>(address: &Address, authkey: Option<&[u8]>) -> Result<Connection<T>> {
        Client::connect_timeout(address, authkey, CLIENT_HANDSHAKE_TIMEOUT)
    }

    /// [`connect`](Self::connect) with a bound on the connect and the handshake.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    ///
    /// ```
    /// use multiproc::connection::{Address, Client, Listener};
    /// use std::time::Duration;
    ///
    /// let nobody = Address::unique_abstract()?;
    /// let refused = Client::connect_timeout::<u32>(&nobody, None, Duration::from_millis(100));
    /// assert!(matches!(refused, Err(multiproc::Error::Io { .. })));
    /// let listener = Listener::bind(nobody, None)?;
    /// let conn = Client::connect_timeout::<u32>(listener.address(), None, Duration::from_millis(100))?;
    /// assert!(conn.writable());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn connect_timeout<T>(address: &Address, authkey: Option<&[u8]>, timeout: Duration) -> Result<Connection<T>> {
        connect_socket(address, authkey, timeout).map(Connection::from_socket)
    }
}

/// Connects a stream socket to `address` and, with `authkey`, authenticates it.
pub(crate) fn connect_socket(address: &Address, authkey: Option<&[u8]>, timeout: Duration) -> Result<OwnedFd> {
    let deadline = crate::backoff::deadline_after(timeout);
    let fd: OwnedFd = match address {
        Address::Unix(path) => UnixStream::connect(path).ctx("connect")?.into(),
        Address::Abstract(name) => {
            UnixStream::connect_addr(&unix_addr(name).ctx("abstract address")?).ctx("connect")?.into()
        }
        Address::Tcp(addr) => {
            let s = TcpStream::connect_timeout(addr, timeout).ctx("connect")?;
            let _ = s.set_nodelay(true);
            s.into()
        }
    };
    if let Some(key) = authkey {
        auth::client_handshake(fd.as_fd(), key, deadline)?;
    }
    Ok(fd)
}
