//! Who this process is, as `current_process()` reports it: `MainProcess`, or
//! the identity a child was given in its boot message; and how its own
//! children are numbered (`Process-1`, `Process-1:2`, …, as Python's).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};

/// Who a process is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Me {
    pub(crate) name: String,
    pub(crate) identity: Vec<u32>,
    pub(crate) daemon: bool,
    /// The parent's name and pid.
    pub(crate) parent: Option<(String, u32)>,
}

static ME: Mutex<Option<Me>> = Mutex::new(None);
inventory::submit! { crate::sys::forklock::ForkLock::new(&ME) }

/// How many children this process has numbered so far.
static CHILD_COUNTER: AtomicU32 = AtomicU32::new(0);

/// This process's identity (the main process unless a role set it).
pub(crate) fn me() -> Me {
    ME.lock().unwrap_or_else(|p| p.into_inner()).clone().unwrap_or_else(|| Me {
        name: "MainProcess".into(),
        identity: Vec::new(),
        daemon: false,
        parent: None,
    })
}

/// This process becomes `me` (a child taking the identity its parent gave it);
/// its own children are numbered from 1 again.
pub(crate) fn set_me(me: Me) {
    CHILD_COUNTER.store(0, Ordering::Relaxed);
    *ME.lock().unwrap_or_else(|p| p.into_inner()) = Some(me);
}

/// Identity and default name of the next child: `Process-3`, `Process-1:2`, …
pub(crate) fn next_child_identity() -> (Vec<u32>, String) {
    let mut identity = me().identity;
    identity.push(CHILD_COUNTER.fetch_add(1, Ordering::Relaxed) + 1);
    let name = format!("Process-{}", identity.iter().map(u32::to_string).collect::<Vec<_>>().join(":"));
    (identity, name)
}
