//! Machine memory as bytes: the one place where a host-physical address becomes a
//! pointer.
//!
//! The boot code identity-maps machine memory below [`MAPPED_LIMIT`], so the
//! pointer for a [`HostPhys`] is its value. Whoever turns an address into a slice
//! must know that nothing else references that memory for as long as the slice
//! lives: that is what the `# Safety` sections below ask for.

use ebbhv_x86::addr::HostPhys;

/// Machine addresses below this are identity-mapped (the boot page tables).
pub const MAPPED_LIMIT: u64 = 4 << 30;

fn check(pa: HostPhys, len: usize) {
    let end =
        pa.0.checked_add(len as u64)
            .expect("physical range overflows");
    assert!(
        end <= MAPPED_LIMIT,
        "{pa:?}+{len:#x} is beyond the identity map"
    );
}

/// The machine memory `[pa, pa + len)` as bytes.
///
/// # Safety
///
/// The range must be memory (RAM or firmware tables) that no `&mut` reference and
/// no concurrent writer (including a running guest) touches while the slice lives.
pub unsafe fn slice<'a>(pa: HostPhys, len: usize) -> &'a [u8] {
    check(pa, len);
    // SAFETY: the range is identity-mapped (checked above) and the caller guarantees
    // nothing mutates it for 'a.
    unsafe { core::slice::from_raw_parts(pa.0 as usize as *const u8, len) }
}

/// The machine memory `[pa, pa + len)` as mutable bytes.
///
/// # Safety
///
/// The range must be RAM that nothing else references (ebbhv's own image, page
/// tables and heap included) while the slice lives.
pub unsafe fn slice_mut<'a>(pa: HostPhys, len: usize) -> &'a mut [u8] {
    check(pa, len);
    // SAFETY: the range is identity-mapped (checked above) and the caller guarantees
    // exclusive access for 'a.
    unsafe { core::slice::from_raw_parts_mut(pa.0 as usize as *mut u8, len) }
}
