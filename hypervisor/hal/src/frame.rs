//! Machine frames of the guest-frame pool, read and written by copy: guest RAM,
//! the shared_info page, the xenstore ring, every frame the core's heap hands out.
//!
//! The boot code identity-maps machine memory below [`MAPPED_LIMIT`], so a
//! machine address is also a pointer. [`memory`](crate::memory) registers, once,
//! the RAM that the core's frame heap will own (the *pool*): every machine
//! address outside ebbhv's image, its own allocator and the firmware's data.
//! This module is the only way to that memory.
//!
//! # Invariants
//!
//! - Every access is to a frame inside the registered pool, within one page: a
//!   request for anything else (ebbhv's own memory, the firmware's, a range that
//!   crosses a page) is a bug in the hypervisor and panics before touching memory.
//! - No Rust reference into the pool ever exists: data is copied in and out
//!   through raw pointers, so the only other party touching those bytes is the
//!   guest, and the guest is stopped whenever ebbhv runs (see the crate's docs).
//!
//! Typed views (the event bitmaps in shared_info and vcpu_info, the xenstore
//! ring, guest virtual memory) are built on top of these accessors in `ebbhv`.

use ebbhv_core::addr::{Mfn, PAGE_SIZE};
use ebbhv_x86::ranges::RangeSet;

use crate::sync::SpinLock;

/// Machine addresses below this are identity-mapped (the boot page tables).
pub const MAPPED_LIMIT: u64 = 4 << 30;

/// Bytes in a frame.
pub const FRAME_BYTES: usize = PAGE_SIZE as usize;

/// The guest-frame pool, once [`register_pool`] has run.
static POOL: SpinLock<Option<RangeSet<64>>> = SpinLock::new(None);

/// Declares the guest-frame pool. Called once, by [`crate::memory`], before the
/// core's heap exists.
pub(crate) fn register_pool(pool: &RangeSet<64>) {
    let mut p = POOL.lock();
    assert!(p.is_none(), "the guest-frame pool is registered once");
    *p = Some(pool.clone());
}

/// Whether the machine memory `[start, start + len)` lies inside the guest-frame
/// pool (and so inside the identity map).
pub(crate) fn in_pool(start: u64, len: u64) -> bool {
    let Some(end) = start.checked_add(len) else {
        return false;
    };
    end <= MAPPED_LIMIT
        && POOL.lock().as_ref().is_some_and(|pool| {
            pool.as_slice()
                .iter()
                .any(|r| r.start <= start && end <= r.end)
        })
}

/// The machine address of `[offset, offset + len)` in `frame`, checked against the
/// invariants above.
fn checked(frame: Mfn, offset: usize, len: usize) -> *mut u8 {
    assert!(
        offset
            .checked_add(len)
            .is_some_and(|end| end <= FRAME_BYTES),
        "{frame:?} + {offset:#x}, {len:#x} bytes: not inside one frame"
    );
    let start = frame.addr().0;
    assert!(
        in_pool(start, FRAME_BYTES as u64),
        "{frame:?} is not a frame of the guest-frame pool"
    );
    (start + offset as u64) as usize as *mut u8
}

/// Copies `buf.len()` bytes at `offset` of `frame` into `buf`.
pub fn read(frame: Mfn, offset: usize, buf: &mut [u8]) {
    let src = checked(frame, offset, buf.len());
    // SAFETY: `checked` proved the bytes are identity-mapped pool memory inside one
    // frame; no reference to pool memory exists (module invariant), `buf` is
    // ebbhv's own memory, so the two do not overlap; the guest is stopped.
    unsafe { core::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
}

/// Copies `data` to `offset` of `frame`.
pub fn write(frame: Mfn, offset: usize, data: &[u8]) {
    let dst = checked(frame, offset, data.len());
    // SAFETY: as in `read`, with the roles swapped.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) };
}

/// The little-endian `u64` at `offset` of `frame`.
pub fn read_u64(frame: Mfn, offset: usize) -> u64 {
    let mut b = [0u8; 8];
    read(frame, offset, &mut b);
    u64::from_le_bytes(b)
}

/// Writes the little-endian `u64` at `offset` of `frame`.
pub fn write_u64(frame: Mfn, offset: usize, value: u64) {
    write(frame, offset, &value.to_le_bytes());
}

/// Fills `frame` with zeroes.
pub fn zero(frame: Mfn) {
    let dst = checked(frame, 0, FRAME_BYTES);
    // SAFETY: as in `write`: a whole pool frame, no reference to it exists.
    unsafe { core::ptr::write_bytes(dst, 0, FRAME_BYTES) };
}

/// Copies the contents of frame `from` to frame `to`.
pub fn copy(from: Mfn, to: Mfn) {
    if from == to {
        return;
    }
    let src = checked(from, 0, FRAME_BYTES);
    let dst = checked(to, 0, FRAME_BYTES);
    // SAFETY: two distinct whole pool frames (so they do not overlap), neither
    // referenced anywhere (module invariant); the guest is stopped.
    unsafe { core::ptr::copy_nonoverlapping(src, dst, FRAME_BYTES) };
}
