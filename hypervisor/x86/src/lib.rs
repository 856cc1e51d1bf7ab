//! ebbhv-x86: the x86 hardware and PVH boot definitions of ebbhv, and the pure
//! logic over them, apart from the code that touches hardware. Addresses, the
//! byte codec and the Xen hypercall ABI come from `ebbhv-core`.
//!
//! Everything here is safe code over bytes and numbers, so it runs under
//! `cargo test` on the host: layouts with compile-time size and offset checks (VMCB,
//! start info, ACPI tables), the page-table walker over a memory
//! trait, the CPUID policy, the ELF/PVH-note loader, the payload bundle parser and
//! the virtual local APIC's register file. `ebbhv-hal` adds the privileged
//! instructions and the memory accesses.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
// Nothing a guest or the control channel sends may panic the hypervisor: a bad
// value is an error for the caller (see the crate docs). Tests may unwrap.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented,
        clippy::indexing_slicing
    )
)]

#[cfg(any(test, feature = "testing"))]
extern crate alloc;

pub mod acpi;
pub mod cpio;
pub mod cpuid;
pub mod elf;
pub mod lapic;
pub mod msr;
pub mod npt;
pub mod npt_mirror;
pub mod paging;
pub mod ranges;
pub mod start_info;
// The fakes for tests and fuzzing, never in the image: they may stop on misuse.
#[cfg(any(test, feature = "testing"))]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
pub mod testing;
pub mod time;
pub mod vintr;
pub mod vmcb;
pub mod walk;
