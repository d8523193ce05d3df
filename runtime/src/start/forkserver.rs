//! The forkserver start method: one clean, single-threaded server process per
//! parent, started lazily through the spawn path, forks each child on request.
//!
//! Parent → server: the child's boot message, with fds `[status socket, args…]`.
//! Server → parent: `Ok(pid)` with the child's pidfd attached. When the child
//! ends, the server reaps it and writes its exit status on the status socket.
//! The server exits when its parent's end of the control socket closes; its
//! children die with it (`PR_SET_PDEATHSIG`). A dead server is restarted on
//! the next start.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::Duration;

use super::{ChildHandle, Waiter, spawn};
use crate::boot::{Boot, Entry, ServerBoot};
use crate::codec;
use crate::error::{Error, ExitStatus, IoContext, Result};
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
    let (status, status_child) = sys::fd::socketpair().ctx("socketpair")?;
    let mut out: Vec<BorrowedFd<'_>> = vec![status_child.as_fd()];
    out.extend(fds.iter().map(AsFd::as_fd));
    let sent = codec::write_frame(server.ctl.as_fd(), request, &out)
        .and_then(|()| codec::read_frame(server.ctl.as_fd(), 64 << 10, None))
        .map_err(died);
    drop(status_child);
    let (bytes, mut pidfds) = sent?;
    let pid = codec::decode::<Reply>(&bytes, Vec::new(), "fork server reply")?
        .map_err(|reason| Error::Handshake { pid: 0, reason })?;
    let pidfd =
        pidfds.pop().ok_or_else(|| Error::Decode { what: "fork server reply", reason: "no pidfd attached".into() })?;
    Ok(ChildHandle { pid, pidfd, waiter: Waiter::Server(status) })
}

/// What the frame layer says when the server is gone (the socket closed, or
/// broke off mid-message), as the one typed error callers match.
fn died(e: Error) -> Error {
    match e {
        Error::Closed(_) | Error::Decode { .. } => Error::ForkServerDied { reason: e.to_string() },
        other => other,
    }
}

/// Reads a fork-server child's exit status from its status socket, waiting up
/// to `timeout` (`None`: forever); `Ok(None)` if it is still running.
/// [`Error::ForkServerDied`] if the server went away without writing it.
pub(crate) fn read_status(status: BorrowedFd<'_>, timeout: Option<Duration>) -> Result<Option<ExitStatus>> {
    match codec::read_frame(status, 1024, timeout) {
        Ok((bytes, _)) => Ok(Some(codec::decode(&bytes, Vec::new(), "exit status")?)),
        Err(Error::Timeout(_)) => Ok(None),
        Err(e) => Err(Error::ForkServerDied { reason: format!("no exit status: {e}") }),
    }
}

fn retire(server: Server) {
    let Server { handle, ctl, .. } = server;
    drop(ctl);
    let _ = handle.signal(libc::SIGKILL);
    let _ = handle.wait(None);
}

struct Child {
    pid: i32,
    pidfd: OwnedFd,
    status: OwnedFd,
}

/// The fork server's loop (runs in the server process; never returns). Each
/// forked child runs `child` (the child body, handed down by the role that
/// made this process a server) with its boot message and fds.
#[allow(unsafe_code)] // the one fork call of this start method; see its SAFETY comment
pub(crate) fn serve(ctl: OwnedFd, child: fn(Boot, Vec<OwnedFd>) -> !) -> ! {
    let me = sys::process::getpid();
    // As Python's, the server ignores SIGINT: Ctrl-C reaches the whole
    // foreground process group, and a parent that handles it keeps its server.
    // Children get back what the server inherited.
    let sigint_was_ignored = sys::process::ignore_sigint();
    let mut children: Vec<Child> = Vec::new();
    loop {
        let mut watch: Vec<BorrowedFd<'_>> = vec![ctl.as_fd()];
        watch.extend(children.iter().map(|c| c.pidfd.as_fd()));
        let ready = match sys::fd::poll_readable(&watch, None) {
            Ok(r) => r,
            Err(_) => {
                sys::process::flush_stdio();
                sys::process::exit_now(1)
            }
        };
        let exited: Vec<usize> = ready[1..].iter().enumerate().filter(|(_, r)| **r).map(|(i, _)| i).collect();
        for i in exited.into_iter().rev() {
            let c = children.swap_remove(i);
            if let Ok(Some(raw)) = sys::process::wait_child(c.pid, false) {
                if let Ok(p) = codec::encode(&ExitStatus::from(raw), "exit status") {
                    let _ = codec::write_frame(c.status.as_fd(), &p.bytes, &[]);
                }
            } else {
                children.push(c);
            }
        }
        if !ready[0] {
            continue;
        }
        let (bytes, mut fds) = match codec::read_frame(ctl.as_fd(), codec::DEFAULT_MAX_MESSAGE, None) {
            Ok(frame) => frame,
            // The parent is gone: leave; our children die with us.
            Err(_) => sys::process::exit_now(0),
        };
        let reply: Reply = match (codec::decode::<Boot>(&bytes, Vec::new(), "boot message"), fds.is_empty()) {
            (Ok(boot), false) => {
                let status = fds.remove(0);
                let mut keep: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
                keep.push(status.as_raw_fd());
                keep.sort_unstable();
                // SAFETY: the fork server is single-threaded, so the child may run anything.
                match unsafe { sys::process::fork() } {
                    Ok(None) => {
                        sys::process::child_prelude(me, &keep);
                        if !sigint_was_ignored {
                            sys::process::default_sigint();
                        }
                        super::forget_after_fork();
                        drop(status);
                        child(boot, fds)
                    }
                    Ok(Some(pid)) => match sys::process::pidfd_open(pid) {
                        Ok(pidfd) => {
                            let reply: Reply = Ok(pid);
                            if let Ok(p) = codec::encode(&reply, "fork server reply") {
                                let _ = codec::write_frame(ctl.as_fd(), &p.bytes, &[pidfd.as_fd()]);
                            }
                            children.push(Child { pid, pidfd, status });
                            continue;
                        }
                        Err(e) => Err(format!("pidfd_open: {e}")),
                    },
                    Err(e) => Err(format!("fork: {e}")),
                }
            }
            (Ok(_), true) => Err("request without a status socket".into()),
            (Err(e), _) => Err(e.to_string()),
        };
        if let Ok(p) = codec::encode(&reply, "fork server reply") {
            let _ = codec::write_frame(ctl.as_fd(), &p.bytes, &[]);
        }
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
