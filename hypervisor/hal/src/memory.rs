//! The machine's memory at boot: what the firmware's map says is RAM, minus what
//! is already in use (the low 1 MiB, ebbhv's image, the payload bundle), split into
//! ebbhv's own allocator pool and the guest-frame pool that the core's heap will
//! own, and handed to [`crate::heap`] and [`crate::frame`].

use ebbhv_x86::ranges::{Range, RangeSet};
use ebbhv_x86::start_info::E820_RAM;

use crate::boot::{Boot, Firmware};
use crate::frame::MAPPED_LIMIT;

/// Bytes of machine memory for ebbhv's own allocator.
const POOL_BYTES: u64 = 48 << 20;

/// Where things are.
pub struct MachineMemory {
    /// RAM that is nobody's yet: for the core's frame heap (the guest-frame pool).
    pub free: RangeSet<64>,
    /// The range handed to ebbhv's own allocator.
    pub pool: Range,
    /// The payload bundle (QEMU's `-initrd`), if any: read-only for the whole run.
    pub bundle: Option<&'static [u8]>,
    /// Where the bundle lies.
    pub bundle_range: Option<Range>,
}

extern "C" {
    static __image_start: u8;
    static __image_end: u8;
}

/// Plans the memory from the firmware's map and module list, starts ebbhv's own
/// allocator on its pool and registers the rest as the guest-frame pool. Takes the
/// [`Boot`] so that it runs once.
#[expect(
    clippy::expect_used,
    reason = "boot: no guest yet; a machine whose memory map cannot be planned stops here"
)]
pub fn init(_once: Boot, fw: &Firmware) -> MachineMemory {
    let mut free = RangeSet::<64>::default();
    for e in fw.memmap() {
        if e.kind == E820_RAM {
            let start = (e.addr + 0xfff) & !0xfff;
            let end = (e.addr + e.size) & !0xfff;
            let end = end.min(MAPPED_LIMIT);
            if start < end {
                free.add(Range::new(start, end)).expect("few RAM ranges");
            }
        }
    }
    free.remove(Range::new(0, 1 << 20)).expect("few RAM ranges");
    // Only the addresses of the linker-script symbols are taken, never their contents.
    let (img_start, img_end) = (
        core::ptr::addr_of!(__image_start) as u64,
        core::ptr::addr_of!(__image_end) as u64,
    );
    free.remove(Range::new(img_start & !0xfff, (img_end + 0xfff) & !0xfff))
        .expect("few RAM ranges");
    let mut bundle_range = None;
    if let Some(m) = fw.modules().next() {
        let r = Range::new(m.paddr, m.paddr + m.size);
        free.remove(Range::new(r.start & !0xfff, (r.end + 0xfff) & !0xfff))
            .expect("few RAM ranges");
        bundle_range = Some(r);
    }
    let pool = free
        .take(POOL_BYTES, 2 << 20, 0)
        .expect("RAM for ebbhv's own allocator");
    // SAFETY: the pool came out of the free RAM, away from the image, the bundle
    // and the low 1 MiB, all below the identity-map limit; `free` no longer holds
    // it, so neither the guest-frame pool nor anything else will use it.
    unsafe { crate::heap::init(pool) };
    crate::frame::register_pool(&free);
    MachineMemory {
        free,
        pool,
        bundle: fw.module0(),
        bundle_range,
    }
}
