//! Pipes and connections: typed, framed messages between processes, and
//! [`Listener`] / [`Client`] for processes that are not parent and child
//! (Python's `multiprocessing.connection`).
//!
//! ```
//! use multiproc::connection::{Address, Client, Listener, wait};
//!
//! let listener = Listener::bind(Address::unique_abstract()?, None)?;
//! let client = Client::connect::<String>(listener.address(), None)?;
//! let server = listener.accept::<String>()?;
//! let (_a, idle) = multiproc::pipe::<String>()?;
//! client.send(&"over the socket".to_string())?;
//! assert_eq!(wait(&[&idle, &server], None)?, [1]); // the server end has a message
//! assert_eq!(server.recv()?, "over the socket");
//! # Ok::<(), multiproc::Error>(())
//! ```

use std::cell::Cell;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::time::Duration;

use serde::de::{DeserializeOwned, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::{Error, IoContext, Result};
use crate::sys;

mod auth;
mod listener;

pub(crate) use auth::random_bytes;
pub use listener::{Address, Client, DEFAULT_HANDSHAKE_TIMEOUT, Listener};
pub(crate) use listener::{CLIENT_HANDSHAKE_TIMEOUT, ListenerCloser, connect_socket};

/// Sends and receives `T` (invariant, `Send`) but is not `Sync`: one thread at a time uses an end.
type Marker<T> = PhantomData<(fn(T) -> T, Cell<()>)>;

/// One end of a pipe: sends and receives values of type `T` (Python's `Connection`).
///
/// Messages are length-prefixed frames on a Unix socket; values are encoded
/// with the crate's codec (bincode), and handles inside them (another
/// `Connection`, a `Queue`, …) travel with their file descriptors. A reader
/// spins briefly before sleeping, so a prompt reply costs a few µs, not a
/// cross-CPU wake-up.
///
/// A `Connection` is a valid task argument under every start method. It may be
/// moved between threads but not shared (`!Sync`), as in Python.
///
/// ```
/// use multiproc::Connection;
///
/// // A connection is a value like any other: here one end travels through another pipe.
/// let (a, b) = multiproc::pipe::<Connection<String>>()?;
/// let (mine, theirs) = multiproc::pipe::<String>()?;
/// a.send(&theirs)?; // its file descriptor goes along
/// let received = b.recv()?;
/// received.send(&"through the passed end".to_string())?;
/// assert_eq!(mine.recv()?, "through the passed end");
/// # Ok::<(), multiproc::Error>(())
/// ```
pub struct Connection<T> {
    fd: Option<OwnedFd>,
    readable: bool,
    writable: bool,
    max_message: usize,
    _marker: Marker<T>,
}

impl<T> std::fmt::Debug for Connection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("fd", &self.fd.as_ref().map(|f| f.as_raw_fd()))
            .field("readable", &self.readable)
            .field("writable", &self.writable)
            .finish()
    }
}

/// A duplex pipe: both ends can send and receive. Python's `Pipe()`.
///
/// # Errors
/// [`Error::Io`] if the sockets cannot be created.
///
/// ```
/// let (left, right) = multiproc::pipe::<String>()?;
/// left.send(&"ping".to_string())?;
/// assert_eq!(right.recv()?, "ping");
/// right.send(&"pong".to_string())?;
/// assert_eq!(left.recv()?, "pong");
/// # Ok::<(), multiproc::Error>(())
/// ```
pub fn pipe<T>() -> Result<(Connection<T>, Connection<T>)> {
    let (a, b) = sys::fd::socketpair().ctx("socketpair")?;
    Ok((Connection::from_fd(a, true, true), Connection::from_fd(b, true, true)))
}

/// A one-way pipe: `(reader, writer)`. Python's `Pipe(duplex=False)`.
///
/// # Errors
/// [`Error::Io`] if the sockets cannot be created.
///
/// ```
/// let (reader, writer) = multiproc::pipe_oneway::<u32>()?;
/// writer.send(&1)?;
/// assert_eq!(reader.recv()?, 1);
/// assert!(matches!(reader.send(&2), Err(multiproc::Error::InvalidState(_))));
/// # Ok::<(), multiproc::Error>(())
/// ```
pub fn pipe_oneway<T>() -> Result<(Connection<T>, Connection<T>)> {
    let (r, w) = sys::fd::socketpair().ctx("socketpair")?;
    sys::fd::shutdown(r.as_fd(), libc::SHUT_WR).ctx("shutdown")?;
    sys::fd::shutdown(w.as_fd(), libc::SHUT_RD).ctx("shutdown")?;
    Ok((Connection::from_fd(r, true, false), Connection::from_fd(w, false, true)))
}

impl<T> Connection<T> {
    pub(crate) fn from_fd(fd: OwnedFd, readable: bool, writable: bool) -> Self {
        sys::fd::set_socket_buffers(fd.as_fd(), 4 << 20);
        Connection { fd: Some(fd), readable, writable, max_message: codec::DEFAULT_MAX_MESSAGE, _marker: PhantomData }
    }

    /// A connected stream socket (Unix or TCP) as a duplex connection.
    pub(crate) fn from_socket(fd: OwnedFd) -> Self {
        Connection::from_fd(fd, true, true)
    }

    /// A second handle on the same connection (its socket `dup`ed, Python's
    /// `os.dup` of `fileno()`): both send and receive on one channel, so one
    /// end can be handed to several processes or threads. Each message goes
    /// to whichever handle reads it first.
    ///
    /// # Errors
    /// [`Error::Closed`] if this handle is closed; [`Error::Io`] if `dup` fails.
    ///
    /// ```
    /// let (a, b) = multiproc::pipe::<u32>()?;
    /// let a2 = a.try_clone()?;
    /// a.send(&1)?;
    /// a2.send(&2)?;
    /// assert_eq!((b.recv()?, b.recv()?), (1, 2));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn try_clone(&self) -> Result<Connection<T>> {
        let fd = self.fd()?.try_clone_to_owned().ctx("dup")?;
        Ok(Connection {
            fd: Some(fd),
            readable: self.readable,
            writable: self.writable,
            max_message: self.max_message,
            _marker: PhantomData,
        })
    }

    /// The connection's file descriptor, for an event loop (Python's
    /// `fileno()`): readable when a message (or end of stream) is waiting.
    /// It stays owned by the connection; [`AsRawFd`] gives the same number.
    ///
    /// # Errors
    /// [`Error::Closed`] if this handle is closed.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    ///
    /// let (a, _b) = multiproc::pipe::<u32>()?;
    /// assert_eq!(a.fileno()?, a.as_raw_fd());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn fileno(&self) -> Result<RawFd> {
        Ok(self.fd()?.as_raw_fd())
    }

    /// The same connection viewed with another message type (Python's
    /// connections carry any object; here the type changes explicitly). Both
    /// ends must agree on the type of each message.
    ///
    /// ```
    /// let (a, b) = multiproc::pipe::<u32>()?;
    /// a.send(&2)?; // say how many strings follow
    /// let count = b.recv()?;
    /// let (a, b) = (a.retype::<String>(), b.retype::<String>());
    /// a.send(&"x".to_string())?;
    /// a.send(&"y".to_string())?;
    /// let words: Vec<String> = (0..count).map(|_| b.recv()).collect::<Result<_, _>>()?;
    /// assert_eq!(words, ["x", "y"]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn retype<U>(mut self) -> Connection<U> {
        Connection {
            fd: self.fd.take(),
            readable: self.readable,
            writable: self.writable,
            max_message: self.max_message,
            _marker: PhantomData,
        }
    }

    fn fd(&self) -> Result<BorrowedFd<'_>> {
        self.fd.as_ref().map(AsFd::as_fd).ok_or(Error::Closed("this connection"))
    }

    /// The largest message (in bytes) [`recv`](Self::recv) accepts. A longer one
    /// is never buffered: its bytes are read and dropped, and the receive returns
    /// [`Error::MessageTooLarge`]; the next receive gets the next message. Default 1 GiB.
    ///
    /// ```
    /// let (a, mut b) = multiproc::pipe::<Vec<u8>>()?;
    /// b.set_max_message(64);
    /// a.send(&vec![0; 1000])?;
    /// a.send(&vec![1; 10])?;
    /// assert!(matches!(b.recv(), Err(multiproc::Error::MessageTooLarge { .. })));
    /// assert_eq!(b.recv()?, [1; 10]); // the next message is intact
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn set_max_message(&mut self, bytes: usize) {
        self.max_message = bytes;
    }

    /// Whether this end can receive (Python's `readable`).
    ///
    /// ```
    /// let (reader, writer) = multiproc::pipe_oneway::<u32>()?;
    /// assert!(reader.readable() && !writer.readable());
    /// let (a, _b) = multiproc::pipe::<u32>()?;
    /// assert!(a.readable()); // both ends of a duplex pipe
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn readable(&self) -> bool {
        self.readable
    }

    /// Whether this end can send (Python's `writable`).
    ///
    /// ```
    /// let (reader, writer) = multiproc::pipe_oneway::<u32>()?;
    /// assert!(writer.writable() && !reader.writable());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// Whether [`close`](Self::close) was called (Python's `closed`).
    ///
    /// ```
    /// let (mut a, _b) = multiproc::pipe::<u32>()?;
    /// assert!(!a.closed());
    /// a.close();
    /// assert!(a.closed());
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn closed(&self) -> bool {
        self.fd.is_none()
    }

    /// Closes this end (Python's `close`; dropping it does the same); once the
    /// messages already sent are read, the peer's next receive reports [`Error::Closed`].
    ///
    /// ```
    /// let (mut a, b) = multiproc::pipe::<u32>()?;
    /// a.send(&1)?;
    /// a.close();
    /// assert_eq!(b.recv()?, 1); // what was sent before arrives
    /// assert!(matches!(b.recv(), Err(multiproc::Error::Closed(_))));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn close(&mut self) {
        self.fd = None;
    }

    fn check(&self, write: bool) -> Result<BorrowedFd<'_>> {
        let fd = self.fd()?;
        match (write, self.readable, self.writable) {
            (true, _, false) => Err(Error::InvalidState("this end of a one-way pipe cannot send".into())),
            (false, false, _) => Err(Error::InvalidState("this end of a one-way pipe cannot receive".into())),
            _ => Ok(fd),
        }
    }

    /// Sends raw bytes as one message (Python's `send_bytes`).
    ///
    /// # Errors
    /// [`Error::Closed`] if the peer is gone; [`Error::MessageTooLarge`] past 4 GiB.
    ///
    /// ```
    /// let (a, b) = multiproc::pipe::<()>()?;
    /// a.send_bytes(b"raw")?;
    /// assert_eq!(b.recv_bytes()?, b"raw");
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        codec::write_frame(self.check(true)?, bytes, &[])
    }

    /// Receives one message as raw bytes (Python's `recv_bytes`). Blocks until one arrives.
    ///
    /// # Errors
    /// [`Error::Closed`] if the peer closed; [`Error::MessageTooLarge`] over the limit.
    ///
    /// ```
    /// let (a, b) = multiproc::pipe::<()>()?;
    /// a.send_bytes(&[1, 2])?;
    /// a.send_bytes(&[3])?;
    /// assert_eq!(b.recv_bytes()?, [1, 2]); // message boundaries are kept
    /// assert_eq!(b.recv_bytes()?, [3]);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn recv_bytes(&self) -> Result<Vec<u8>> {
        Ok(codec::read_frame(self.check(false)?, self.max_message, None)?.0)
    }

    /// Receives one message into `buf[offset..]`; returns its length (Python's
    /// `recv_bytes_into`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `offset` is past the end;
    /// [`Error::BufferTooShort`], which holds the whole message, if it does not
    /// fit (Python's `BufferTooShort`).
    ///
    /// ```
    /// let (a, b) = multiproc::pipe::<()>()?;
    /// a.send_bytes(b"abc")?;
    /// let mut buf = [b'.'; 6];
    /// assert_eq!(b.recv_bytes_into(&mut buf, 2)?, 3);
    /// assert_eq!(&buf, b"..abc.");
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn recv_bytes_into(&self, buf: &mut [u8], offset: usize) -> Result<usize> {
        if offset > buf.len() {
            return Err(Error::InvalidArgument(format!("offset {offset} is past the buffer's end ({})", buf.len())));
        }
        let msg = self.recv_bytes()?;
        let room = buf.len() - offset;
        if msg.len() > room {
            return Err(Error::BufferTooShort { room, message: msg });
        }
        buf[offset..offset + msg.len()].copy_from_slice(&msg);
        Ok(msg.len())
    }

    /// Sends a file descriptor (a file, socket, pipe, memfd…) to the process
    /// holding the other end, which gets its own descriptor for the same
    /// open file from [`recv_handle`](Self::recv_handle) — Python's
    /// `multiprocessing.reduction.send_handle` (no destination pid is needed:
    /// the kernel passes it with the message, `SCM_RIGHTS`). `handle` stays
    /// open here.
    ///
    /// # Errors
    /// [`Error::Closed`] if the peer is gone; [`Error::InvalidState`] on the
    /// receiving end of a one-way pipe.
    ///
    /// ```
    /// use std::io::{Read, Seek, Write};
    /// use std::os::fd::AsFd;
    ///
    /// let (a, b) = multiproc::pipe::<()>()?;
    /// let mut file = std::fs::File::from(std::os::fd::OwnedFd::from(std::fs::File::options()
    ///     .read(true).write(true).create(true).truncate(true)
    ///     .open(std::env::temp_dir().join(format!("multiproc-doc-handle-{}", std::process::id())))?));
    /// a.send_handle(file.as_fd())?;
    /// let mut same = std::fs::File::from(b.recv_handle()?);
    /// same.write_all(b"through the handle")?;
    /// let mut text = String::new();
    /// file.rewind()?;
    /// file.read_to_string(&mut text)?;
    /// assert_eq!(text, "through the handle");
    /// # std::fs::remove_file(std::env::temp_dir().join(format!("multiproc-doc-handle-{}", std::process::id())))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_handle(&self, handle: BorrowedFd<'_>) -> Result<()> {
        codec::write_frame(self.check(true)?, HANDLE_MESSAGE, &[handle])
    }

    /// Receives a file descriptor sent with [`send_handle`](Self::send_handle)
    /// (Python's `multiprocessing.reduction.recv_handle`).
    ///
    /// # Errors
    /// [`Error::Decode`] if the next message is not a handle (it is consumed);
    /// [`Error::Closed`] if the peer closed.
    ///
    /// ```
    /// use std::os::fd::AsFd;
    ///
    /// let (a, b) = multiproc::pipe::<u32>()?;
    /// let null = std::fs::File::open("/dev/null")?; // any fd will do
    /// a.send_handle(null.as_fd())?;
    /// assert!(b.recv_handle().is_ok());
    /// a.send(&7)?;
    /// assert!(matches!(b.recv_handle(), Err(multiproc::Error::Decode { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_handle(&self) -> Result<OwnedFd> {
        let (body, mut fds) = codec::read_frame(self.check(false)?, self.max_message, None)?;
        let count = fds.len();
        match fds.pop() {
            Some(fd) if body == HANDLE_MESSAGE && count == 1 => Ok(fd),
            _ => Err(Error::Decode {
                what: "a handle",
                reason: format!(
                    "expected a message from send_handle, got {} bytes with {count} file descriptor(s)",
                    body.len()
                ),
            }),
        }
    }

    /// Whether a message (or end of stream) is waiting, waiting at most `timeout`
    /// (`None`: until one is). Python's `poll`.
    ///
    /// # Errors
    /// [`Error::Closed`] if this end is closed.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (a, b) = multiproc::pipe::<u32>()?;
    /// assert!(!b.poll(Some(Duration::ZERO))?); // nothing yet
    /// a.send(&1)?;
    /// assert!(b.poll(Some(Duration::from_secs(1)))?);
    /// assert_eq!(b.recv()?, 1);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn poll(&self, timeout: Option<Duration>) -> Result<bool> {
        let fd = self.check(false)?;
        Ok(sys::fd::poll_readable(&[fd], timeout).ctx("poll")?[0])
    }
}

impl<T: Serialize + 'static> Connection<T> {
    /// Sends `value` (Python's `send`). Blocks only while the peer's buffer is full.
    ///
    /// # Errors
    /// [`Error::Closed`] if the peer is gone; [`Error::Encode`] if `value` cannot be encoded.
    ///
    /// ```
    /// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    /// struct Job {
    ///     id: u32,
    ///     input: Vec<f64>,
    /// }
    ///
    /// let (a, b) = multiproc::pipe::<Job>()?;
    /// a.send(&Job { id: 1, input: vec![0.5] })?;
    /// assert_eq!(b.recv()?, Job { id: 1, input: vec![0.5] });
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn send(&self, value: &T) -> Result<()> {
        let fd = self.check(true)?;
        let payload = codec::typed::encode(value, "message")?;
        let fds: Vec<BorrowedFd<'_>> = payload.fds.iter().map(AsFd::as_fd).collect();
        codec::write_frame(fd, &payload.bytes, &fds)
    }
}

impl<T: DeserializeOwned + 'static> Connection<T> {
    /// Receives one value (Python's `recv`). Blocks until one arrives.
    ///
    /// # Errors
    /// [`Error::Closed`] when the peer has closed (Python's `EOFError`);
    /// [`Error::Decode`] for bytes that are not a `T`.
    ///
    /// ```
    /// let (a, b) = multiproc::pipe::<String>()?;
    /// let sender = std::thread::spawn(move || a.send(&"later".to_string()));
    /// assert_eq!(b.recv()?, "later"); // waits for the message
    /// sender.join().unwrap()?;
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn recv(&self) -> Result<T> {
        self.recv_within(None)
    }

    /// Receives one value, waiting at most `timeout`.
    ///
    /// # Errors
    /// [`Error::Timeout`] if nothing arrived in time; otherwise as [`Connection::recv`].
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let (a, b) = multiproc::pipe::<u32>()?;
    /// assert!(matches!(b.recv_timeout(Duration::from_millis(10)), Err(multiproc::Error::Timeout(_))));
    /// a.send(&5)?;
    /// assert_eq!(b.recv_timeout(Duration::from_secs(1))?, 5);
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T> {
        self.recv_within(Some(timeout))
    }

    /// Receives one value as a `T`: a byte string in the buffer its bytes were
    /// read into (its length read apart, so nothing is copied twice), anything
    /// else as `codec::typed` decodes it.
    fn recv_within(&self, timeout: Option<Duration>) -> Result<T> {
        let fd = self.check(false)?;
        if !codec::typed::owned_bytes::<T>() {
            let (bytes, fds) = codec::read_frame(fd, self.max_message, timeout)?;
            return codec::typed::decode(&bytes, fds, "message");
        }
        match codec::read_frame_headed(fd, self.max_message, timeout)? {
            (Some(head), body, fds) if fds.is_empty() => codec::typed::decode_headed(head, body, "message"),
            (head, body, fds) => {
                // Handles beside a byte string, or a body too short for its length.
                let mut bytes = head.map(Vec::from).unwrap_or_default();
                bytes.extend_from_slice(&body);
                codec::typed::decode(&bytes, fds, "message")
            }
        }
    }
}

/// Something [`wait`] can wait on: a [`Connection`] or a process sentinel
/// (any [`BorrowedFd`], such as [`Process::sentinel`](crate::Process::sentinel)'s).
///
/// ```
/// use multiproc::connection::{Waitable, wait};
///
/// let (a, b) = multiproc::pipe::<u32>()?;
/// let (_c, d) = multiproc::pipe::<String>()?;
/// let objects: Vec<&dyn Waitable> = vec![&b, &d]; // different message types
/// a.send(&1)?;
/// assert_eq!(wait(&objects, None)?, [0]);
/// # Ok::<(), multiproc::Error>(())
/// ```
pub trait Waitable {
    /// The fd that becomes readable when the object is ready.
    ///
    /// # Errors
    /// [`Error::Closed`] for a closed connection.
    ///
    /// ```
    /// use multiproc::connection::Waitable;
    ///
    /// let (mut a, _b) = multiproc::pipe::<u32>()?;
    /// assert!(a.ready_fd().is_ok());
    /// a.close();
    /// assert!(matches!(a.ready_fd(), Err(multiproc::Error::Closed(_))));
    /// # Ok::<(), multiproc::Error>(())
    /// ```
    fn ready_fd(&self) -> Result<BorrowedFd<'_>>;
}

/// The connection's file descriptor for `poll`/`epoll` integration; `-1`
/// once the handle is closed (see [`Connection::fileno`] for an error instead).
///
/// ```
/// use std::os::fd::AsRawFd;
///
/// let (mut a, _b) = multiproc::pipe::<u32>()?;
/// assert!(a.as_raw_fd() >= 0);
/// a.close();
/// assert_eq!(a.as_raw_fd(), -1);
/// # Ok::<(), multiproc::Error>(())
/// ```
impl<T> AsRawFd for Connection<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }
}

/// The body of a [`Connection::send_handle`] message (its fd travels beside it).
const HANDLE_MESSAGE: &[u8] = b"#HANDLE#";

/// Sends a challenge on `conn` and checks the answer: the first half of the
/// authentication handshake, done by the side that wants proof that its peer
/// holds `authkey` (Python's `multiprocessing.connection.deliver_challenge`;
/// HMAC-SHA256). [`Listener`] and [`Client`] do both halves themselves; these
/// functions are for connections made another way. Waits at most 10 s for
/// the peer.
///
/// # Errors
/// [`Error::Authentication`] if the peer's answer is wrong, late or not an
/// answer; [`Error::Closed`] if the connection is closed.
///
/// ```
/// use multiproc::connection::{answer_challenge, deliver_challenge};
///
/// let (a, b) = multiproc::pipe::<()>()?;
/// let peer = std::thread::spawn(move || answer_challenge(&b, b"key"));
/// deliver_challenge(&a, b"key")?; // a now knows b holds the key
/// peer.join().unwrap()?;
/// # Ok::<(), multiproc::Error>(())
/// ```
pub fn deliver_challenge<T>(conn: &Connection<T>, authkey: &[u8]) -> Result<()> {
    auth::deliver_challenge(conn.fd()?, authkey, crate::backoff::deadline_after(CLIENT_HANDSHAKE_TIMEOUT))
}

/// Answers a challenge sent with [`deliver_challenge`], proving that this
/// side holds `authkey` (Python's `multiprocessing.connection.answer_challenge`).
/// Waits at most 10 s for the challenge and the verdict.
///
/// # Errors
/// [`Error::Authentication`] if the peer rejects the answer (another key) or
/// sends no challenge in time; [`Error::Closed`] if the connection is closed.
///
/// ```
/// use multiproc::connection::{answer_challenge, deliver_challenge};
///
/// let (a, b) = multiproc::pipe::<()>()?;
/// let peer = std::thread::spawn(move || deliver_challenge(&a, b"the key"));
/// assert!(matches!(answer_challenge(&b, b"another key"), Err(multiproc::Error::Authentication(_))));
/// assert!(matches!(peer.join().unwrap(), Err(multiproc::Error::Authentication(_))));
/// # Ok::<(), multiproc::Error>(())
/// ```
pub fn answer_challenge<T>(conn: &Connection<T>, authkey: &[u8]) -> Result<()> {
    auth::answer_challenge(conn.fd()?, authkey, crate::backoff::deadline_after(CLIENT_HANDSHAKE_TIMEOUT))
}

impl<T> Waitable for Connection<T> {
    fn ready_fd(&self) -> Result<BorrowedFd<'_>> {
        self.check(false)
    }
}

impl Waitable for BorrowedFd<'_> {
    fn ready_fd(&self) -> Result<BorrowedFd<'_>> {
        Ok(*self)
    }
}

#[derive(Serialize, Deserialize)]
struct WireConnection {
    fd: u32,
    readable: bool,
    writable: bool,
    max_message: u64,
}

impl<T> Serialize for Connection<T> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let fd = self.fd.as_ref().ok_or_else(|| serde::ser::Error::custom("cannot send a closed connection"))?;
        let index = codec::share_fd(fd.as_fd()).map_err(serde::ser::Error::custom)?;
        WireConnection {
            fd: index,
            readable: self.readable,
            writable: self.writable,
            max_message: self.max_message as u64,
        }
        .serialize(s)
    }
}

impl<'de, T> Deserialize<'de> for Connection<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let w = WireConnection::deserialize(d)?;
        let fd = codec::take_fd(w.fd).map_err(serde::de::Error::custom)?;
        Ok(Connection {
            fd: Some(fd),
            readable: w.readable,
            writable: w.writable,
            max_message: w.max_message as usize,
            _marker: PhantomData,
        })
    }
}

/// Waits until at least one of `objects` is ready — a [`Connection`] with a
/// message (or a closed peer), or a process [`sentinel`](crate::Process::sentinel)
/// whose child has ended — or `timeout` passes. Returns the indices of the ready
/// objects (empty on timeout). Python's `multiprocessing.connection.wait`.
///
/// # Errors
/// [`Error::Closed`] if a connection in `objects` is closed; [`Error::Io`] if `poll` fails.
///
/// ```
/// use multiproc::connection::wait;
/// use std::time::Duration;
///
/// let (_a1, b1) = multiproc::pipe::<u32>()?;
/// let (a2, b2) = multiproc::pipe::<u32>()?;
/// a2.send(&7)?;
/// assert_eq!(wait(&[&b1, &b2], Some(Duration::from_secs(1)))?, [1]);
/// assert_eq!(wait(&[&b1], Some(Duration::from_millis(10)))?, Vec::<usize>::new()); // timed out
/// # Ok::<(), multiproc::Error>(())
/// ```
pub fn wait(objects: &[&dyn Waitable], timeout: Option<Duration>) -> Result<Vec<usize>> {
    let fds = objects.iter().map(|o| o.ready_fd()).collect::<Result<Vec<_>>>()?;
    let ready = sys::fd::poll_readable(&fds, timeout).ctx("poll")?;
    Ok(ready.iter().enumerate().filter(|(_, r)| **r).map(|(i, _)| i).collect())
}
