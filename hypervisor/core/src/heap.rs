//! The machine frame heap: every frame the hypervisor knows of, its state, and a buddy
//! allocator over the free ones.
//!
//! See [`FrameHeap`] for the allocator and its invariants, `frame` for the per-frame
//! record (at most 16 bytes), `offline` for Xen's page offline/online/query and
//! `check` for the invariant checker the tests run after every step.

mod allocator;
mod check;
mod frame;
mod offline;

pub use allocator::{FrameHeap, FreeBlockSearch, HeapError, Owner};
pub use check::HeapCensus;
pub use frame::{FrameState, FRAME_RECORD_BYTES};
pub use offline::OfflineReply;

#[cfg(test)]
mod tests;
