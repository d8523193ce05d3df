//! `multiproc::dummy::Pool`: the pool API on threads, for I/O-bound work.
//!
//! Ports the seed article's `multiprocessing.dummy` example (create a pool,
//! report it, close it), then downloads pages concurrently — from a small HTTP
//! server this example starts itself on 127.0.0.1, since there is no internet.
//!
//! Run it with `cargo run --release --example thread_pool`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

// ANCHOR: all
/// Serves `/page/N` with a body of N bytes, one connection per request.
fn serve(listener: TcpListener) {
    for stream in listener.incoming().flatten() {
        let mut reader = BufReader::new(stream);
        let mut request = String::new();
        if reader.read_line(&mut request).is_err() {
            continue;
        }
        let n: usize = request.split('/').nth(2).and_then(|s| s.split(' ').next()?.parse().ok()).unwrap_or(0);
        let body = "x".repeat(n);
        let mut stream = reader.into_inner();
        let _ = write!(stream, "HTTP/1.0 200 OK\r\nContent-Length: {n}\r\n\r\n{body}");
    }
}

/// Downloads one URL path and returns the body's length (blocking I/O: a thread's job).
fn download(addr: String, path: String) -> std::io::Result<usize> {
    let mut s = TcpStream::connect(addr)?;
    write!(s, "GET {path} HTTP/1.0\r\n\r\n")?;
    let mut response = Vec::new();
    s.read_to_end(&mut response)?;
    let head_end = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(response.len(), |i| i + 4);
    Ok(response.len() - head_end)
}

fn main() -> multiproc::Result<()> {
    // create a pool, report its details, close it (the seed's example)
    let pool = multiproc::dummy::Pool::new(multiproc::cpu_count())?;
    println!("{pool:?}");
    pool.close();
    pool.join()?;

    // I/O-bound work on threads: closures and non-serde results are fine here.
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| multiproc::Error::Io { op: "bind", source: e })?;
    let addr = listener.local_addr().map_err(|e| multiproc::Error::Io { op: "local_addr", source: e })?.to_string();
    std::thread::spawn(move || serve(listener));

    let pool = multiproc::dummy::Pool::new(8)?;
    let paths: Vec<String> = (1..=10).map(|i| format!("/page/{}", i * 100)).collect();
    let sizes = pool.map(move |path: String| download(addr.clone(), path), paths.clone())?;
    for (path, size) in paths.iter().zip(sizes) {
        match size {
            Ok(n) => println!("{path}: {n} bytes"),
            Err(e) => println!("{path}: failed: {e}"), // the task's own error, unwrapped
        }
    }
    pool.close();
    pool.join()
}
// ANCHOR_END: all
