//! Shared state: typed values and arrays in anonymous shared memory, named
//! segments, a manager that unlinks the segments it made, and the tracker that
//! unlinks named segments when their creator ends.

mod shared_memory;
mod shared_memory_manager;
pub(crate) mod tracker;
mod value;

pub use shared_memory::{ShareableList, SharedMemory, SharedMemoryOptions};
pub use shared_memory_manager::SharedMemoryManager;
pub use value::{Array, ArrayGuard, RawArray, RawValue, Value, ValueGuard};
