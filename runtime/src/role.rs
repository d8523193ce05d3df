//! The child entry, at the top of the crate: the parent's entry point, or a
//! child taking its role.
//!
//! A process started by spawn or forkserver is this same binary re-executed
//! with `MULTIPROC_ROLE` in its environment. `#[multiproc::main]` and
//! `#[multiproc::test]` call [`main_entry`] / [`test_entry`] before any user
//! code; those read the role, shake hands with the parent over the control
//! socket (build fingerprint), and run the task ([`process::bootstrap`]) or the
//! fork server (handing it the same child body). They never return into user
//! code. Nothing below calls back up into this module.

use std::os::fd::{AsFd, OwnedFd};

use crate::boot::{self, Ack, Boot, EXIT_NOT_ANNOTATED, ROLE_VAR, ServerBoot};
use crate::codec;
use crate::identity::{self, Me};
use crate::process;
use crate::registry;
use crate::sys;

/// A re-executed child's role, as its parent wrote it in [`ROLE_VAR`].
#[derive(Debug)]
struct Role {
    kind: String,
    fd: i32,
    test: String,
}

/// The role in the environment, if any; removed from it, so that this
/// process's own children do not inherit it.
fn take_role() -> Option<Role> {
    let value = std::env::var(ROLE_VAR).ok()?;
    sys::process::remove_env(ROLE_VAR);
    let mut parts = value.splitn(3, ';');
    let kind = parts.next()?.to_string();
    let fd = parts.next()?.parse().ok()?;
    let test = parts.next().unwrap_or("").to_string();
    Some(Role { kind, fd, test })
}

/// Not public API: the body of `#[multiproc::main]`.
#[doc(hidden)]
pub fn main_entry<R>(body: impl FnOnce() -> R) -> R {
    // Set before taking a role too: a child may start children of its own.
    boot::entered_main();
    if let Some(role) = take_role() {
        run_role(role);
    }
    #[cfg(feature = "mpi")]
    if crate::mpi::is_mpi_launch() {
        let out = crate::mpi::run_main(body);
        crate::dummy::join_threads(None);
        process::shutdown_children(None);
        return out;
    }
    #[cfg(not(feature = "mpi"))]
    crate::mpi::refuse_launch_without_feature();
    let out = body();
    crate::dummy::join_threads(None);
    process::shutdown_children(None);
    out
}

/// Not public API: the body of `#[multiproc::test]`.
#[doc(hidden)]
pub fn test_entry<R>(path: &'static str, body: impl FnOnce() -> R) -> R {
    // module_path!() starts with the crate name; libtest names tests without it.
    let name = path.split_once("::").map_or(path, |(_, rest)| rest);
    if let Some(role) = take_role() {
        if role.test == name {
            // A child may start spawn/forkserver children of its own: they re-run this test too.
            boot::child_of_test(name);
            run_role(role);
        }
        eprintln!("multiproc: child meant for test `{}` ran `{name}`; exiting", role.test);
        sys::process::exit_now(EXIT_NOT_ANNOTATED);
    }
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            boot::set_this_test(None);
            crate::dummy::join_threads(Some(std::thread::current().id()));
            process::shutdown_children(Some(std::thread::current().id()));
        }
    }
    boot::set_this_test(Some(name));
    let _reset = Reset;
    body()
}

/// Takes a re-executed child's role; never returns.
fn run_role(role: Role) -> ! {
    let ctl = match sys::fd::adopt(role.fd) {
        Ok(fd) => fd,
        Err(e) => die(&format!("control fd {} from {ROLE_VAR}: {e}", role.fd)),
    };
    let (bytes, fds) = match codec::read_frame(ctl.as_fd(), codec::DEFAULT_MAX_MESSAGE, Some(boot::HANDSHAKE_TIMEOUT)) {
        Ok(frame) => frame,
        Err(e) => die(&format!("reading the boot message: {e}")),
    };
    match role.kind.as_str() {
        "task" => {
            let boot: Boot = match codec::decode(&bytes, Vec::new(), "boot message") {
                Ok(b) => b,
                Err(e) => die(&e.to_string()),
            };
            acknowledge(&ctl, boot.fingerprint);
            drop(ctl);
            process::bootstrap(boot, fds, None)
        }
        "forkserver" => {
            let boot: ServerBoot = match codec::decode(&bytes, Vec::new(), "fork server boot") {
                Ok(b) => b,
                Err(e) => die(&e.to_string()),
            };
            acknowledge(&ctl, boot.fingerprint);
            identity::set_me(Me {
                name: "ForkServer".into(),
                identity: Vec::new(),
                daemon: true,
                parent: Some(boot.parent),
            });
            crate::start::forkserver::serve(ctl, |boot, fds| process::bootstrap(boot, fds, None))
        }
        other => die(&format!("unknown role `{other}`")),
    }
}

fn acknowledge(ctl: &OwnedFd, fingerprint: u64) {
    let ack: Ack = if fingerprint == registry::fingerprint() {
        Ok(())
    } else {
        Err("the child is a different build of the program than its parent (rebuilt binary?)".into())
    };
    let ok = ack.is_ok();
    if let Ok(p) = codec::encode(&ack, "handshake") {
        let _ = codec::write_frame(ctl.as_fd(), &p.bytes, &[]);
    }
    if !ok {
        sys::process::exit_now(EXIT_NOT_ANNOTATED);
    }
}

fn die(msg: &str) -> ! {
    eprintln!("multiproc child: {msg}");
    sys::process::flush_stdio();
    sys::process::exit_now(2)
}
