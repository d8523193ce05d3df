//! Helper for `tests/process_start_methods.rs`: a program whose `main` is NOT
//! annotated with `#[multiproc::main]` (Python's script without the
//! `if __name__ == "__main__":` guard).
//!
//! `unannotated <method>|default`: prints `main body <pid>` once, tries to start a
//! child; prints `child ran` from the child if it runs, and then `error: <e>`
//! or `exitcode <status>`. Exit code 3 if the start failed with `NotAnnotated`.

use multiproc::{Error, StartMethod};

#[multiproc::task]
fn hello() {
    println!("child ran");
}

fn main() {
    println!("main body {}", std::process::id());
    let method = std::env::args().nth(1).unwrap_or_default();
    let method = match StartMethod::from_name(&method) {
        Ok(m) => m,
        Err(_) if method == "default" => multiproc::get_start_method(),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let result = multiproc::get_context(method).process(hello, ()).and_then(|mut p| {
        p.start()?;
        p.join()?;
        Ok(p.exitcode())
    });
    match result {
        Ok(status) => println!("exitcode {status:?}"),
        Err(e @ Error::NotAnnotated { .. }) => {
            println!("error: {e}");
            std::process::exit(3);
        }
        Err(e) => {
            println!("error: {e}");
            std::process::exit(4);
        }
    }
}
