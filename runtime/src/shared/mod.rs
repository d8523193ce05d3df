//! Shared state: typed values and arrays in anonymous shared memory, named
//! segments, and the tracker that unlinks named segments when their creator ends.

mod shared_memory;
pub(crate) mod tracker;
mod value;

pub use shared_memory::{ShareableList, SharedMemory};
pub use value::{Array, ArrayGuard, RawArray, RawValue, Value, ValueGuard};
