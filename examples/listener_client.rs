//! Python's `multiprocessing.connection` example: a server accepts one
//! authenticated client and sends it an object, bytes, and an array's bytes.
//! Prints:
//!
//! ```text
//! connection accepted from 127.0.0.1:<port>
//! (2.25, None, "junk", "f64")
//! b"hello"
//! 8
//! [42, 1729, 0, 0, 0]
//! ```
//!
//! Run it with `cargo run --example listener_client`. The server runs in a
//! child process; the client is the parent.

use multiproc::Connection;
use multiproc::connection::{Address, Client, Listener};

type Object = (f64, Option<()>, String, String);

// ANCHOR: server
#[multiproc::task]
fn server(ready: Connection<Address>) {
    let address = Address::tcp("localhost:0").unwrap();
    let listener = Listener::bind(address, Some(b"secret password")).unwrap();
    ready.send(listener.address()).unwrap();
    let conn: Connection<Object> = listener.accept().unwrap();
    println!("connection accepted from {}", listener.last_accepted().unwrap_or_default());
    conn.send(&(2.25, None, "junk".into(), std::any::type_name::<f64>().into())).unwrap();
    conn.send_bytes(b"hello").unwrap();
    let array: Vec<u8> = [42i32, 1729].iter().flat_map(|i| i.to_ne_bytes()).collect();
    conn.send_bytes(&array).unwrap();
}
// ANCHOR_END: server

// ANCHOR: client
#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let (ready, theirs) = multiproc::pipe()?;
    let mut p = multiproc::Process::new(server, (theirs,))?;
    p.start()?;
    let address = ready.recv()?;

    let conn: Connection<Object> = Client::connect(&address, Some(b"secret password"))?;
    println!("{:?}", conn.recv()?); // => (2.25, None, "junk", "f64")
    println!("b{:?}", String::from_utf8_lossy(&conn.recv_bytes()?)); // => b"hello"
    let mut arr = [0u8; 5 * 4];
    println!("{}", conn.recv_bytes_into(&mut arr, 0)?); // => 8
    let ints: Vec<i32> = arr.chunks(4).map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect();
    println!("{ints:?}"); // => [42, 1729, 0, 0, 0]
    p.join()
}
// ANCHOR_END: client
