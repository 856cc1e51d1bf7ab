//! The machine's memory at boot: what the firmware's map says is RAM, minus what
//! is already in use (the low 1 MiB, ebbhv's image, the payload bundle), split into
//! ebbhv's own allocator pool and the frames the core's heap will own.

use ebbhv_x86::addr::HostPhys;
use ebbhv_x86::ranges::{Range, RangeSet};
use ebbhv_x86::start_info::{HvmMemmapEntry, HvmModlistEntry, HvmStartInfo, E820_RAM};

use crate::phys;

/// Bytes of machine memory for ebbhv's own allocator.
const POOL_BYTES: u64 = 48 << 20;

/// Where things are.
pub struct MachineMemory {
    /// RAM that is nobody's yet: for the core's frame heap.
    pub free: RangeSet<64>,
    /// The pool handed to [`crate::heap`].
    pub pool: Range,
    /// The payload bundle (QEMU's `-initrd`), if any.
    pub bundle: Option<Range>,
}

extern "C" {
    static __image_start: u8;
    static __image_end: u8;
}

/// Reads the firmware memory map and module list and plans the memory.
pub fn plan(si: &HvmStartInfo) -> MachineMemory {
    let mut free = RangeSet::<64>::default();
    for i in 0..u64::from(si.memmap_entries) {
        // SAFETY: the loader's memory map array; read-only firmware data.
        let b = unsafe { phys::slice(HostPhys(si.memmap_paddr + i * 24), HvmMemmapEntry::SIZE) };
        let e = HvmMemmapEntry::read_from(b).expect("slice has the entry's size");
        if e.kind == E820_RAM {
            let start = (e.addr + 0xfff) & !0xfff;
            let end = (e.addr + e.size) & !0xfff;
            let end = end.min(phys::MAPPED_LIMIT);
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
    let mut bundle = None;
    if si.nr_modules > 0 {
        // SAFETY: the loader's module list; read-only firmware data.
        let b = unsafe { phys::slice(HostPhys(si.modlist_paddr), HvmModlistEntry::SIZE) };
        let m = HvmModlistEntry::read_from(b).expect("slice has the entry's size");
        let r = Range::new(m.paddr, m.paddr + m.size);
        free.remove(Range::new(r.start & !0xfff, (r.end + 0xfff) & !0xfff))
            .expect("few RAM ranges");
        bundle = Some(r);
    }
    let pool = free
        .take(POOL_BYTES, 2 << 20, 0)
        .expect("RAM for ebbhv's own allocator");
    MachineMemory { free, pool, bundle }
}
