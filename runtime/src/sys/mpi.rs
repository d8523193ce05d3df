//! Non-blocking MPI sends that own their buffer.
//!
//! rsmpi ties a request to a borrowed buffer through a scope, which cannot
//! outlive one call; a pool keeps chunks in flight across calls. An
//! [`OwnedSend`] keeps the `Vec<u8>` beside its `MPI_Request` until `MPI_Test`
//! reports the send complete, so neither side ever blocks on a rendezvous
//! send while its peer is also sending (the deadlock of two blocking sends).

use std::os::raw::c_int;

use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::SimpleCommunicator;

/// A send in progress; the buffer lives as long as MPI may read it.
pub(crate) struct OwnedSend {
    request: ffi::MPI_Request,
    buf: Vec<u8>,
    done: bool,
}

// `MPI_Request` is a raw pointer in Open MPI, so `Send` must be claimed by hand.
// SAFETY: a request handle is plain data that any thread may pass to MPI, provided
// MPI was initialised with at least MPI_THREAD_SERIALIZED and calls are serialised;
// the pool makes every MPI call under one process-wide lock (`mpi::world::lock`).
unsafe impl Send for OwnedSend {}

/// Starts sending `buf` (at most `i32::MAX` bytes, checked by the caller) to `dest` with `tag`.
pub(crate) fn isend(comm: &SimpleCommunicator, dest: c_int, tag: c_int, buf: Vec<u8>) -> OwnedSend {
    let count = c_int::try_from(buf.len()).unwrap_or(c_int::MAX);
    let mut request = std::mem::MaybeUninit::<ffi::MPI_Request>::uninit();
    // SAFETY: `buf` is moved into the returned value and not touched (nor its heap
    // block freed) until MPI_Test reports completion or Drop frees the request and
    // leaks the block; `count` bytes of `buf` are initialised; `comm` is a live
    // communicator; MPI writes the request handle before returning.
    let request = unsafe {
        ffi::MPI_Isend(buf.as_ptr().cast(), count, ffi::RSMPI_UINT8_T, dest, tag, comm.as_raw(), request.as_mut_ptr());
        request.assume_init()
    };
    OwnedSend { request, buf, done: false }
}

impl OwnedSend {
    /// Whether the send has completed (MPI may no longer read the buffer).
    pub(crate) fn test(&mut self) -> bool {
        if !self.done {
            let mut flag: c_int = 0;
            // SAFETY: `self.request` is the live handle MPI_Isend returned (MPI_Test sets
            // it to MPI_REQUEST_NULL on completion, after which `done` stops further calls).
            unsafe {
                ffi::MPI_Test(&mut self.request, &mut flag, ffi::RSMPI_STATUS_IGNORE);
            }
            self.done = flag != 0;
        }
        self.done
    }
}

impl OwnedSend {
    /// The buffer back: moved out once the send is complete, else a copy
    /// (MPI may still read the original, which stays until it is done).
    pub(crate) fn take_buf(&mut self) -> Vec<u8> {
        if self.test() { std::mem::take(&mut self.buf) } else { self.buf.clone() }
    }
}

impl Drop for OwnedSend {
    fn drop(&mut self) {
        if !self.test() {
            // Still in flight: let MPI finish and free the request on its own, and
            // leak the buffer, which MPI may still be reading.
            // SAFETY: the handle is live; MPI_Request_free on an active send is allowed.
            unsafe {
                ffi::MPI_Request_free(&mut self.request);
            }
            std::mem::forget(std::mem::take(&mut self.buf));
        }
    }
}
