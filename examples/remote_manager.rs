//! Python's "Using a remote manager" example: a server holds one queue on a
//! TCP address; one client puts 'hello' into it, another gets it.
//!
//! ```text
//! cargo run --example remote_manager                      # all three roles, prints 'hello'
//! cargo run --example remote_manager -- serve 127.0.0.1:50000
//! cargo run --example remote_manager -- put 127.0.0.1:50000 hello
//! cargo run --example remote_manager -- get 127.0.0.1:50000
//! ```
//!
//! The roles are separate programs: with no arguments, this one starts the
//! server itself and runs the two clients as separate invocations of its own
//! executable.

use std::io::BufRead;
use std::process::Command;

use multiproc::connection::Address;
use multiproc::managers::QueueProxy;
use multiproc::{Error, Manager};

const AUTHKEY: &[u8] = b"abracadabra";

// ANCHOR: server
fn serve(address: Address) -> multiproc::Result<Manager> {
    let manager = Manager::builder().address(address).authkey(AUTHKEY).start()?;
    let queue = manager.queue::<String>()?;
    manager.register("get_queue", &queue)?;
    Ok(manager)
}
// ANCHOR_END: server

// ANCHOR: client
fn put(address: &Address, message: String) -> multiproc::Result<()> {
    let m = Manager::connect(address, AUTHKEY)?;
    let queue: QueueProxy<String> = m.lookup("get_queue")?;
    queue.put(message)
}

fn get(address: &Address) -> multiproc::Result<String> {
    let m = Manager::connect(address, AUTHKEY)?;
    let queue: QueueProxy<String> = m.lookup("get_queue")?;
    queue.get()
}
// ANCHOR_END: client

fn run_self(args: &[&str]) -> multiproc::Result<String> {
    let exe = std::env::current_exe().map_err(|e| Error::Io { op: "current_exe", source: e })?;
    let out = Command::new(exe).args(args).output().map_err(|e| Error::Io { op: "run client", source: e })?;
    if !out.status.success() {
        return Err(Error::InvalidState(String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[multiproc::main]
fn main() -> multiproc::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let address = |i: usize| -> multiproc::Result<Address> {
        args.get(i).map_or_else(|| Address::tcp("127.0.0.1:50000"), |a| a.parse())
    };
    match args.first().map(String::as_str) {
        Some("serve") => {
            let manager = serve(address(1)?)?;
            eprintln!("serving a queue on {}; close stdin (Ctrl-D) to stop", manager.address());
            for _ in std::io::stdin().lock().lines() {}
            manager.shutdown()
        }
        Some("put") => put(&address(1)?, args.get(2).cloned().unwrap_or_else(|| "hello".into())),
        Some("get") => {
            println!("'{}'", get(&address(1)?)?);
            Ok(())
        }
        Some(other) => Err(Error::InvalidArgument(format!("unknown role `{other}`; use serve, put or get"))),
        None => {
            // Port 0: the kernel picks a free port, so the demo never collides.
            let manager = serve(Address::tcp("127.0.0.1:0")?)?;
            let addr = manager.address().to_string();
            run_self(&["put", &addr, "hello"])?;
            print!("{}", run_self(&["get", &addr])?);
            manager.shutdown()
        }
    }
}
