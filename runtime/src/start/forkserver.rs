//! The forkserver start method: one clean, single-threaded server process per
//! parent, started lazily through the spawn path, forks each child on request.
//!
//! Parent → server: the child's boot message, with fds `[go socket, args…]`.
//! Server → parent: `Ok(pid)` with the child's pidfd attached; then the parent
//! sends one byte on the go socket, the child's go (a child whose start the
//! parent never heard of reads end-of-file and runs nothing). The server exits
//! when its parent's end of the control socket closes.
//!
//! The server's death kills nobody (CPython's bpo-31308): the server forks
//! each child as its own *sibling* (`clone(CLONE_PARENT)`,
//! [`sys::process::fork_sibling`]), so the child's parent is the real parent
//! from birth. The parent waits for it and reaps it like a child it forked
//! itself, and the child's death signal follows the real parent, not the
//! server. A dead server is restarted on the next start.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Mutex;

use super::{ChildHandle, Waiter, spawn};
use crate::boot::{Boot, Entry, ServerBoot};
use crate::codec;
use crate::error::{Error, IoContext, Result};
use crate::identity;
use crate::sys;

struct Server {
    owner: i32,
    handle: ChildHandle,
    ctl: OwnedFd,
}

static SERVER: Mutex<Option<Server>> = Mutex::new(None);

type Reply = std::result::Result<i32, String>;

inventory::submit! { crate::sys::forklock::ForkLock::new(&SERVER) }

/// Forgets the parent's server in a forked child (its fds are already closed there).
pub(crate) fn forget_after_fork() {
    if let Ok(mut g) = SERVER.try_lock()
        && let Some(old) = g.take()
    {
        std::mem::forget(old);
    }
}

/// The fork server's pid, if one is running for this process.
pub(crate) fn server_pid() -> Option<u32> {
    let g = SERVER.lock().unwrap_or_else(|p| p.into_inner());
    g.as_ref().filter(|s| s.owner == sys::process::getpid()).map(|s| s.handle.pid() as u32)
}

/// The fds this process keeps open for its fork server.
pub(crate) fn server_fds() -> Vec<RawFd> {
    let g = SERVER.lock().unwrap_or_else(|p| p.into_inner());
    g.as_ref()
        .filter(|s| s.owner == sys::process::getpid())
        .map(|s| vec![s.ctl.as_raw_fd(), s.handle.sentinel().as_raw_fd()])
        .unwrap_or_default()
}

fn launch_server(entry: &Entry) -> Result<Server> {
    let me = identity::me();
    let boot =
        ServerBoot { fingerprint: crate::registry::fingerprint(), parent: (me.name, sys::process::getpid() as u32) };
    let bytes = codec::encode(&boot, "fork server boot")?.bytes;
    let (handle, ctl) = spawn::launch("forkserver", entry, &bytes, &[])?;
    Ok(Server { owner: sys::process::getpid(), handle, ctl })
}

/// Asks the fork server (starting it if needed) to fork a child running `boot`.
/// A server found dead is replaced, and the request sent once more.
pub(crate) fn start(entry: &Entry, boot: &Boot, fds: &[OwnedFd]) -> Result<ChildHandle> {
    let request = codec::encode(boot, "boot message")?.bytes;
    let mut guard = SERVER.lock().unwrap_or_else(|p| p.into_inner());
    match start_once(&mut guard, entry, &request, fds) {
        Err(Error::ForkServerDied { .. }) => {
            if let Some(old) = guard.take() {
                retire(old);
            }
            start_once(&mut guard, entry, &request, fds)
        }
        other => other,
    }
}

/// One request to this process's server, launched first if there is none (or
/// it has visibly ended). [`Error::ForkServerDied`] if it fails on the way.
fn start_once(server: &mut Option<Server>, entry: &Entry, request: &[u8], fds: &[OwnedFd]) -> Result<ChildHandle> {
    let me = sys::process::getpid();
    let usable = match server.as_ref() {
        Some(s) => s.owner == me && !sys::fd::readable_now(s.handle.sentinel()).ctx("poll")?,
        None => false,
    };
    if !usable && let Some(old) = server.take() {
        retire(old);
    }
    let server = match server {
        Some(s) if usable => s,
        slot => slot.insert(launch_server(entry)?),
    };
    let (go, go_child) = sys::fd::socketpair().ctx("socketpair")?;
    let mut out: Vec<BorrowedFd<'_>> = vec![go_child.as_fd()];
    out.extend(fds.iter().map(AsFd::as_fd));
    let sent = codec::write_frame(server.ctl.as_fd(), request, &out)
        .and_then(|()| codec::read_frame(server.ctl.as_fd(), 64 << 10, None))
        .map_err(died);
    drop(go_child);
    let (bytes, mut pidfds) = sent?;
    let pid = codec::decode::<Reply>(&bytes, Vec::new(), "fork server reply")?
        .map_err(|reason| Error::Handshake { pid: 0, reason })?;
    let pidfd =
        pidfds.pop().ok_or_else(|| Error::Decode { what: "fork server reply", reason: "no pidfd attached".into() })?;
    sys::socket::send_all(go.as_fd(), GO, &[], &[]).ctx("fork server child's go")?;
    Ok(ChildHandle { pid, pidfd, waiter: Waiter::Own })
}

/// What the frame layer says when the server is gone (the socket closed,
/// broke off mid-message, or was reset or broken by its death), as the one
/// typed error callers match.
fn died(e: Error) -> Error {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset};
    match e {
        Error::Closed(_) | Error::Decode { .. } => Error::ForkServerDied { reason: e.to_string() },
        Error::Io { ref source, .. } if matches!(source.kind(), BrokenPipe | ConnectionReset | ConnectionAborted) => {
            Error::ForkServerDied { reason: e.to_string() }
        }
        other => other,
    }
}

fn retire(server: Server) {
    let Server { handle, ctl, .. } = server;
    drop(ctl);
    let _ = handle.signal(libc::SIGKILL);
    let _ = handle.wait(None);
}

/// The byte that lets a freshly forked child run (see the module docs).
const GO: &[u8] = b"g";

/// In a freshly forked child: waits for the parent's go; leaves at once if it
/// does not come (the parent gave up on this start).
fn await_go(go: OwnedFd) {
    use std::io::Read;
    let mut byte = [0u8; 1];
    if !matches!(std::fs::File::from(go).read(&mut byte), Ok(1)) {
        sys::process::exit_now(1);
    }
}

/// The fork server's loop (runs in the server process; never returns). Each
/// forked child runs `child` (the child body, handed down by the role that
/// made this process a server) with its boot message and fds.
pub(crate) fn serve(ctl: OwnedFd, child: fn(Boot, Vec<OwnedFd>) -> !) -> ! {
    // As Python's, the server ignores SIGINT: Ctrl-C reaches the whole
    // foreground process group, and a parent that handles it keeps its server.
    // Children get back what the server inherited.
    let sigint_was_ignored = sys::process::ignore_sigint();
    loop {
        let (bytes, mut fds) = match codec::read_frame(ctl.as_fd(), codec::DEFAULT_MAX_MESSAGE, None) {
            Ok(frame) => frame,
            // The parent is gone: leave. Our children are its, not ours.
            Err(_) => sys::process::exit_now(0),
        };
        let reply: Reply = match (codec::decode::<Boot>(&bytes, Vec::new(), "boot message"), fds.is_empty()) {
            (Ok(boot), false) => {
                let go = fds.remove(0);
                match fork_child(go, boot, fds, sigint_was_ignored, child) {
                    Ok((pid, pidfd)) => {
                        if let Ok(p) = codec::encode(&Reply::Ok(pid), "fork server reply") {
                            let _ = codec::write_frame(ctl.as_fd(), &p.bytes, &[pidfd.as_fd()]);
                        }
                        continue;
                    }
                    Err(e) => Err(e),
                }
            }
            (Ok(_), true) => Err("request without a go socket".into()),
            (Err(e), _) => Err(e.to_string()),
        };
        if let Ok(p) = codec::encode(&reply, "fork server reply") {
            let _ = codec::write_frame(ctl.as_fd(), &p.bytes, &[]);
        }
    }
}

/// Forks one child as a sibling of the server (a child of the real parent);
/// in the server, returns its pid and pidfd.
#[allow(unsafe_code)] // the one fork call of this start method; see its SAFETY comment
fn fork_child(
    go: OwnedFd,
    boot: Boot,
    fds: Vec<OwnedFd>,
    sigint_was_ignored: bool,
    child: fn(Boot, Vec<OwnedFd>) -> !,
) -> std::result::Result<(i32, OwnedFd), String> {
    let real_parent = sys::process::getppid();
    let mut keep: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    keep.push(go.as_raw_fd());
    keep.sort_unstable();
    // SAFETY: the fork server is single-threaded, so the child may run
    // anything; it refreshes the cached ids first (no atfork handlers ran).
    match unsafe { sys::process::fork_sibling() } {
        Ok(None) => {
            sys::futex::after_fork_child();
            sys::process::child_prelude(real_parent, &keep);
            if !sigint_was_ignored {
                sys::process::default_sigint();
            }
            super::forget_after_fork();
            await_go(go);
            child(boot, fds)
        }
        Ok(Some(pid)) => sys::process::pidfd_open(pid).map(|fd| (pid, fd)).map_err(|e| format!("pidfd_open: {e}")),
        Err(e) => Err(format!("clone(CLONE_PARENT): {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_to_a_server_that_is_gone_is_fork_server_died() {
        // A server process that still runs but no longer reads its socket.
        let mut proc = std::process::Command::new("sleep").arg("60").spawn().unwrap();
        let pid = proc.id() as i32;
        let handle = ChildHandle { pid, pidfd: sys::process::pidfd_open(pid).unwrap(), waiter: Waiter::Own };
        let (ctl, server_end) = sys::fd::socketpair().unwrap();
        drop(server_end);
        let mut slot = Some(Server { owner: sys::process::getpid(), handle, ctl });
        let boot = codec::encode(&"boot", "boot message").unwrap().bytes;
        let got = start_once(&mut slot, &Entry::Main, &boot, &[]);
        if let Some(server) = slot.take() {
            retire(server); // kills and reaps the sleep, before any assertion can fail
        }
        assert!(matches!(got, Err(Error::ForkServerDied { .. })), "{got:?}");
        assert!(proc.try_wait().is_err_and(|e| e.raw_os_error() == Some(libc::ECHILD)), "not reaped");
    }
}
