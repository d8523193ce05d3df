//! The one panic capture (rayon-core's `unwind.rs` is the model).
//!
//! A pool (process workers, thread pools, MPI ranks) runs user code that may
//! panic; the panic must fail only that call, with its message and
//! `file:line:col`, in one text format everywhere. [`catch`] runs a closure and
//! turns a panic into a [`Panic`]. The message comes from the payload; the
//! location only reaches a panic *hook*, so [`catch`] installs, once per
//! process, a hook that **chains** to the one it found: while this thread is
//! inside [`catch`] (or [`capturing`]) it records the location (and prints
//! nothing); any other panic goes to the previous hook unchanged.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, PanicHookInfo, catch_unwind};
use std::sync::Once;

/// What a panic left: its message and where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Panic {
    /// The payload as text (`panic!("…")`'s message), or [`NO_MESSAGE`].
    pub(crate) message: String,
    /// `file:line:col`, or [`NO_LOCATION`] if the hook did not see it.
    pub(crate) location: String,
}

/// The message of a panic whose payload is not a string.
pub(crate) const NO_MESSAGE: &str = "Box<dyn Any>";
/// The location of a panic the hook did not record.
pub(crate) const NO_LOCATION: &str = "<unknown>";

thread_local! {
    /// How many [`capturing`] scopes this thread is in.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The last captured panic of this thread: message and location.
    static LAST: RefCell<Option<(String, String)>> = const { RefCell::new(None) };
}

/// A panic payload as text.
fn payload_text(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| NO_MESSAGE.to_string())
}

/// Installs the recording hook once; it chains to the hook it replaces.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
            if DEPTH.with(Cell::get) == 0 {
                return previous(info);
            }
            let location = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            let message = payload_text(info.payload());
            LAST.with(|c| *c.borrow_mut() = Some((message, location.unwrap_or_else(|| NO_LOCATION.into()))));
        }));
    });
}

/// Runs `f` with this thread's panics recorded instead of printed (for code
/// that catches its own panics, e.g. a batch invoker, and then calls [`take`]).
pub(crate) fn capturing<R>(f: impl FnOnce() -> R) -> R {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        }
    }
    install_hook();
    DEPTH.with(|d| d.set(d.get() + 1));
    let _leave = Leave;
    f()
}

/// The message and location of this thread's last captured panic (inside
/// [`capturing`]), in the one format; the fallbacks if none was recorded.
pub(crate) fn take() -> (String, String) {
    LAST.with(|c| c.borrow_mut().take()).unwrap_or_else(|| (NO_MESSAGE.into(), NO_LOCATION.into()))
}

/// Runs `f`; a panic becomes a [`Panic`] (message and `file:line:col`) and
/// prints nothing.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Panic> {
    capturing(|| {
        LAST.with(|c| c.borrow_mut().take());
        catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
            let (message, location) = LAST
                .with(|c| c.borrow_mut().take())
                .unwrap_or_else(|| (payload_text(payload.as_ref()), NO_LOCATION.into()));
            Panic { message, location }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_gives_its_message_and_location() {
        let line = line!() + 1;
        let p = catch(|| panic!("boom {}", 7)).unwrap_err();
        assert_eq!(p.message, "boom 7");
        assert!(p.location.starts_with(&format!("{}:{line}:", file!())), "{}", p.location);
    }

    #[test]
    fn a_value_passes_through_and_non_string_payloads_have_the_fallback() {
        assert_eq!(catch(|| 5), Ok(5));
        let p = catch(|| std::panic::panic_any(3u8)).unwrap_err();
        assert_eq!(p.message, NO_MESSAGE);
        assert_eq!(take(), (NO_MESSAGE.to_string(), NO_LOCATION.to_string()));
    }

    #[test]
    fn outside_a_capture_the_previous_hook_runs() {
        install_hook();
        // Not captured: nothing is recorded for this thread.
        let r = std::thread::spawn(|| {
            let _ = std::panic::catch_unwind(|| panic!("not captured"));
            LAST.with(|c| c.borrow().is_none())
        })
        .join();
        assert_eq!(r.ok(), Some(true));
    }
}
