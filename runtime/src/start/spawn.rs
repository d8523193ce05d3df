//! The spawn start method: fork+exec of this binary with its role in the
//! environment, then a handshake over a control socket.
//!
//! The fork+exec happens on one long-lived launcher thread: `PR_SET_PDEATHSIG`
//! fires when the *thread* that forked a child exits, so forking from a
//! short-lived thread (a test, a pool's helper) would kill the child with it.

use std::ffi::{CString, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::sync::Mutex;
use std::sync::mpsc;

use super::{ChildHandle, Waiter};
use crate::boot::{self, Ack, Entry};
use crate::codec;
use crate::error::{Error, ExitStatus, IoContext, Result};
use crate::sys;

type Job = Box<dyn FnOnce() + Send>;

static LAUNCHER: Mutex<Option<(i32, mpsc::Sender<Job>)>> = Mutex::new(None);

inventory::submit! { crate::sys::forklock::ForkLock::new(&LAUNCHER) }

/// Runs `f` on the launcher thread and returns its result.
pub(crate) fn on_launcher<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Result<R> {
    let (tx, rx) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = tx.send(f());
    });
    {
        let mut guard = LAUNCHER.lock().unwrap_or_else(|p| p.into_inner());
        let pid = sys::process::getpid();
        let alive = matches!(&*guard, Some((p, _)) if *p == pid);
        if !alive {
            let (jtx, jrx) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("multiproc-launcher".into())
                .spawn(move || {
                    for job in jrx {
                        job();
                    }
                })
                .ctx("spawning the launcher thread")?;
            *guard = Some((pid, jtx));
        }
        let sent = match guard.as_ref() {
            Some((_, sender)) => sender.send(job).is_ok(),
            None => false,
        };
        if !sent {
            *guard = None;
            return Err(Error::InvalidState("the launcher thread is gone".into()));
        }
    }
    rx.recv().map_err(|_| Error::InvalidState("the launcher thread dropped a job".into()))
}

/// Forgets the parent's launcher thread in a forked child (it does not exist there).
pub(crate) fn forget_after_fork() {
    if let Ok(mut g) = LAUNCHER.try_lock()
        && let Some(old) = g.take()
    {
        std::mem::forget(old);
    }
}

/// Starts this binary in role `kind`, sends it `boot` (with `fds`) and waits for
/// its handshake. Returns the child and the parent's end of the control socket.
#[allow(unsafe_code)] // the one fork call of this start method; see its SAFETY comment
pub(crate) fn launch(kind: &str, entry: &Entry, boot: &[u8], fds: &[OwnedFd]) -> Result<(ChildHandle, OwnedFd)> {
    let (ctl, ctl_child) = sys::fd::socketpair().ctx("socketpair")?;
    let child_fd = ctl_child.as_raw_fd();
    let argv0 = std::env::args_os().next().unwrap_or_else(|| OsString::from("multiproc-child"));
    let mut argv: Vec<OsString> = vec![argv0];
    let test = match entry {
        Entry::Main => "",
        Entry::Test(name) => {
            argv.extend(
                [*name, "--exact", "--include-ignored", "--test-threads=1", "--nocapture", "-q"]
                    .into_iter()
                    .map(OsString::from),
            );
            name
        }
    };
    let mut env: Vec<OsString> = std::env::vars_os()
        .filter(|(k, _)| k != boot::ROLE_VAR)
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            kv
        })
        .collect();
    env.push(OsString::from(format!("{}={kind};{child_fd};{test}", boot::ROLE_VAR)));
    let to_c = |v: Vec<OsString>| -> Result<Vec<CString>> {
        v.into_iter()
            .map(|s| CString::new(s.into_vec()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Error::InvalidArgument("an argument or environment variable contains a NUL byte".into()))
    };
    let (argv, env) = (to_c(argv)?, to_c(env)?);
    let parent = sys::process::getpid();
    let (pid, pidfd) = on_launcher(move || -> Result<(i32, OwnedFd)> {
        let path = c"/proc/self/exe";
        let argv_p = sys::process::c_array(&argv);
        let env_p = sys::process::c_array(&env);
        // SAFETY: the child only makes async-signal-safe calls (prctl, getppid,
        // close_range, fcntl, execve, _exit) before exec; everything was allocated before fork.
        match unsafe { sys::process::fork() }.ctx("fork")? {
            None => {
                sys::process::child_prelude(parent, &[child_fd]);
                let _ = sys::fd::clear_cloexec(child_fd);
                let _ = sys::process::exec(path, &argv_p, &env_p);
                sys::process::exit_now(127)
            }
            Some(pid) => Ok((pid, sys::process::pidfd_open(pid).ctx("pidfd_open")?)),
        }
    })??;
    drop(ctl_child);
    let child = ChildHandle { pid, pidfd, waiter: Waiter::Own };
    match handshake(&ctl, boot, fds) {
        Ok(()) => Ok((child, ctl)),
        Err(reason) => {
            let _ = child.signal(libc::SIGKILL);
            let status = child.wait(None).ok().flatten();
            Err(match status {
                Some(ExitStatus::Code(boot::EXIT_NOT_ANNOTATED)) => Error::NotAnnotated {
                    what: "the child could not take its role (its entry point is not annotated)".into(),
                },
                Some(ExitStatus::Code(127)) => {
                    Error::Handshake { pid: pid as u32, reason: "could not execute /proc/self/exe".into() }
                }
                _ => Error::Handshake { pid: pid as u32, reason },
            })
        }
    }
}

fn handshake(ctl: &OwnedFd, boot: &[u8], fds: &[OwnedFd]) -> std::result::Result<(), String> {
    codec::write_frame(ctl.as_fd(), boot, &fds.iter().map(AsFd::as_fd).collect::<Vec<_>>())
        .map_err(|e| format!("sending the boot message: {e}"))?;
    match codec::read_frame(ctl.as_fd(), 64 << 10, Some(boot::HANDSHAKE_TIMEOUT)) {
        Ok((bytes, _)) => match codec::decode::<Ack>(&bytes, Vec::new(), "handshake") {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(reason),
            Err(e) => Err(e.to_string()),
        },
        Err(Error::Timeout(t)) => Err(format!(
            "no handshake within {t:?}; is `fn main` annotated with #[multiproc::main] (or the test with #[multiproc::test])?"
        )),
        Err(Error::Closed(_)) => Err("it exited before its handshake".into()),
        Err(e) => Err(e.to_string()),
    }
}
