//! ebbhv-hal: the hardware layer of ebbhv, and the only crate of the hypervisor
//! workspace that contains `unsafe` code.
//!
//! Everything above it (the VM logic in `ebbhv`, the portable `ebbhv-core`, the
//! definitions in `ebbhv-x86`) says `#![forbid(unsafe_code)]` and reaches the
//! machine only through the safe interfaces here, in the manner of Asterinas' OSTD:
//! when the VM logic needs something new from the hardware, the answer is a new
//! safe function in this crate whose invariant is argued once, not an `unsafe`
//! block at the call site.
//!
//! What each module owns, and the invariant its safe interface rests on:
//!
//! | module | owns | why its safe interface is sound |
//! |---|---|---|
//! | [`boot`] | the PVH entry, the identity map, the firmware's start info | the loader's data is read-only and taken out of every allocator |
//! | [`memory`] | the boot memory plan | runs once, before anything allocates |
//! | [`frame`] | machine frames of the guest-frame pool (guest RAM, shared_info, rings) | only frames of the pool registered at boot are reachable, by copy, never by reference, and the guest is stopped whenever ebbhv runs |
//! | [`heap`] | ebbhv's own allocator and whole pages from it | the pool is disjoint from the guest-frame pool and the image |
//! | [`npt`] | the nested page tables | table pages are the tree's own; leaves may only point into the guest-frame pool |
//! | [`svm`] | SVM, the VMCB, the permission maps, VMRUN | the VM logic can change guest state, never the fields that reach host memory |
//! | [`idt`] | the host IDT and exception reports | loaded once at boot |
//! | [`timer`], [`clock`] | the host local APIC timer, TSC, PIT, CMOS RTC | devices ebbhv owns; the guest reaches no port |
//! | [`serial`] | COM1 (log, console) and COM2 (control) | the UARTs are ebbhv's |
//! | [`sync`] | the spin lock behind the few globals | the guard is the only way to the data |
//! | [`qemu_exit`] | ending the run, the panic handler | |
//!
//! Concurrency: one physical CPU runs ebbhv with interrupts off, except inside
//! VMRUN and the idle wait, where only the host timer's handler (which touches
//! atomics) can run. The guest runs only inside [`svm::Vcpu::run`], which takes the
//! vCPU by `&mut`; so whenever any other code of ebbhv runs, the guest is stopped.
#![no_std]
// No panic on what a guest or the control channel can reach. The boot code
// (identity map, memory plan, SVM set-up) stops on a broken machine before any
// guest exists; each such `expect` is allowed where it stands with its reason.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented,
    clippy::indexing_slicing
)]

extern crate alloc;

pub mod boot;
pub mod clock;
pub mod frame;
pub mod heap;
pub mod idt;
pub mod memory;
mod msr;
pub mod npt;
mod port;
pub mod qemu_exit;
pub mod serial;
pub mod svm;
pub mod sync;
pub mod timer;

pub use msr::cpuid;
