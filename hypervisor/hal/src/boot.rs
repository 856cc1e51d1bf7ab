//! Entry from QEMU's PVH loader into 64-bit Rust, and the firmware's start info.
//!
//! QEMU reads `XEN_ELFNOTE_PHYS32_ENTRY` from the note below and jumps to
//! `_start32` in 32-bit protected mode with paging off and EBX = the physical
//! address of its `hvm_start_info`. The code clears `.bss`, identity-maps the low
//! 4 GiB with 2 MiB pages, enters long mode with a three-entry boot GDT and calls
//! `hal_start` with the start-info address, which sets up COM1 and the IDT and
//! hands a [`Boot`] to the VM logic's entry point (named with [`entry!`]). Machine
//! memory above 4 GiB is not mapped (the run script gives QEMU at most 2 GiB below
//! the PCI hole).
//!
//! The loader's data (start info, command line, memory map, module list, the
//! payload module) is read-only to ebbhv: nothing writes it, and
//! [`crate::memory`] takes it out of every allocator before anything allocates.

use ebbhv_core::abi::codec::AbiRecord;
use ebbhv_x86::start_info::{self, HvmMemmapEntry, HvmModlistEntry, HvmStartInfo};

use crate::frame::MAPPED_LIMIT;

/// Names the VM logic's entry point: `ebbhv_hal::entry!(path::to::main)`, where
/// `main` is `fn(Boot) -> !`.
///
/// The boot code needs a symbol to call, and a crate that forbids unsafe code
/// cannot export one itself; this macro writes the export, with the one
/// signature that `hal_start` declares.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[export_name = "ebbhv_hal_vm_main"]
        fn __ebbhv_hal_vm_main(boot: $crate::boot::Boot) -> ! {
            $main(boot)
        }
    };
}

extern "Rust" {
    /// The VM logic's entry point, defined by [`entry!`].
    fn ebbhv_hal_vm_main(boot: Boot) -> !;
}

/// Proof that the machine was entered through the PVH boot path, with the start
/// info's address; only `hal_start` makes one.
///
/// # Invariants
///
/// `start_info` is the physical address the PVH loader passed in EBX.
pub struct Boot {
    start_info: u64,
}

/// Called by the entry code below with EBX from the loader.
#[no_mangle]
extern "C" fn hal_start(start_info_pa: u64) -> ! {
    crate::serial::init();
    crate::idt::init();
    // INVARIANT: EBX as the loader passed it, untouched by the entry code.
    let boot = Boot {
        start_info: start_info_pa,
    };
    // SAFETY: `entry!` defines this symbol with exactly this signature; a second
    // definition would not link, a missing one would not either.
    unsafe { ebbhv_hal_vm_main(boot) }
}

/// The loader's read-only data `[pa, pa + len)`.
///
/// # Safety
///
/// The range must be data the PVH loader wrote (start info and what it points
/// to), which nothing writes after boot and no allocator hands out.
#[expect(
    clippy::expect_used,
    reason = "boot: no guest yet; a loader that points outside memory stops here"
)]
unsafe fn firmware_bytes(pa: u64, len: usize) -> &'static [u8] {
    let end = pa
        .checked_add(len as u64)
        .expect("firmware range overflows");
    assert!(end <= MAPPED_LIMIT, "firmware data beyond the identity map");
    // SAFETY: identity-mapped (checked above); the caller guarantees the bytes are
    // immutable loader data for the rest of the run.
    unsafe { core::slice::from_raw_parts(pa as usize as *const u8, len) }
}

/// The `count` records of an array the start info points to at `base`.
fn firmware_array<T: AbiRecord>(base: u64, count: u32) -> impl Iterator<Item = T> {
    (0..u64::from(count)).map(move |i| {
        let at = base + i * T::SIZE as u64;
        // SAFETY: an array of the loader's start info (memory map, module list),
        // read-only firmware data.
        T::decode(unsafe { firmware_bytes(at, T::SIZE) })
    })
}

/// What the PVH loader handed over.
pub struct Firmware {
    /// The start info.
    pub start_info: HvmStartInfo,
    /// ebbhv's command line (QEMU's `-append`), empty without one.
    pub cmdline: &'static str,
}

impl Boot {
    /// Reads the start info and the command line.
    pub fn firmware(&self) -> Firmware {
        // SAFETY: by the type invariant, the address the PVH protocol gives for the
        // start info, which the loader placed in low memory that nothing else uses.
        let bytes = unsafe { firmware_bytes(self.start_info, HvmStartInfo::SIZE) };
        #[expect(
            clippy::expect_used,
            reason = "boot: no guest yet; without a start info there is nothing to run"
        )]
        let start_info = start_info::parse(bytes).expect("no hvm_start_info from the loader");
        let mut cmdline = "";
        if start_info.cmdline_paddr != 0 {
            // SAFETY: the command line is a NUL-terminated string the loader placed in
            // low memory (below 1 MiB, never handed to any allocator); 256 bytes stay
            // inside it for the short options ebbhv takes, and nothing writes it.
            let raw = unsafe { firmware_bytes(start_info.cmdline_paddr, 256) };
            // Up to the NUL; none in reach reads as no command line.
            let text = raw
                .iter()
                .position(|&c| c == 0)
                .and_then(|len| raw.get(..len))
                .unwrap_or_default();
            cmdline = core::str::from_utf8(text).unwrap_or("");
        }
        Firmware {
            start_info,
            cmdline,
        }
    }
}

impl Firmware {
    /// The loader's memory map.
    pub fn memmap(&self) -> impl Iterator<Item = HvmMemmapEntry> {
        let si = &self.start_info;
        firmware_array(si.memmap_paddr, si.memmap_entries)
    }

    /// The loader's module list.
    pub fn modules(&self) -> impl Iterator<Item = HvmModlistEntry> {
        let si = &self.start_info;
        firmware_array(si.modlist_paddr, si.nr_modules)
    }

    /// The contents of module 0 (the payload bundle), which [`crate::memory`]
    /// keeps out of every allocator.
    pub(crate) fn module0(&self) -> Option<&'static [u8]> {
        let m = self.modules().next()?;
        // SAFETY: the loader's module, read-only for the whole run: `memory::init`
        // takes its range out of the free RAM before any allocator exists.
        Some(unsafe { firmware_bytes(m.paddr, m.size as usize) })
    }
}

core::arch::global_asm!(
    r#"
    .section .note.ebbhv, "a", @note
    .balign 4
    .long 4                 /* namesz: "Xen\0" */
    .long 8                 /* descsz */
    .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad _start32
    .balign 4

    .section .text.boot, "ax"
    .code32
    .global _start32
_start32:
    cli
    cld
    mov %ebx, %esi

    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb

    /* 2048 PD entries: P | RW | PS, 2 MiB each, identity over 4 GiB */
    mov $boot_pd, %edi
    mov $0x83, %eax
    xor %ecx, %ecx
1:  mov %eax, (%edi,%ecx,8)
    movl $0, 4(%edi,%ecx,8)
    add $0x200000, %eax
    inc %ecx
    cmp $2048, %ecx
    jne 1b

    mov $boot_pdpt, %edi
    mov $boot_pd + 3, %eax
    xor %ecx, %ecx
2:  mov %eax, (%edi,%ecx,8)
    add $0x1000, %eax
    inc %ecx
    cmp $4, %ecx
    jne 2b

    mov $boot_pml4, %edi
    movl $boot_pdpt + 3, (%edi)

    mov %cr4, %eax
    or $0x20, %eax          /* CR4.PAE */
    mov %eax, %cr4
    mov %edi, %cr3
    mov $0xc0000080, %ecx   /* EFER */
    rdmsr
    or $0x100, %eax         /* LME */
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax    /* PG | PE */
    mov %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $3f

    .code64
3:  mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    mov $boot_stack_top, %rsp
    mov %esi, %edi
    call hal_start
4:  hlt
    jmp 4b

    .section .rodata
    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff    /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff    /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .bss
    .balign 4096
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4 * 4096
boot_stack:
    .skip 64 * 1024
boot_stack_top:
    .code64
"#,
    options(att_syntax)
);
