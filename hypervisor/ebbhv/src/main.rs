//! ebbhv: a bare-metal x86-64 hypervisor (AMD SVM with nested paging) that runs one
//! Linux guest as a Xen PVH domain, with every memory decision made by
//! `ebbhv-core`.
//!
//! This crate is the VM logic and forbids unsafe code: every access to the
//! machine (memory by frame, VMRUN, ports, MSRs, timers, serial lines) goes
//! through the safe interfaces of `ebbhv-hal`. The crate root declares the modules
//! and names the entry point, [`start::main`] (see `hypervisor/ARCHITECTURE.md`).
#![no_std]
#![no_main]
#![forbid(unsafe_code)]
// Nothing a guest or the control channel sends may panic the hypervisor. Boot code
// that runs before any guest exists may stop on a broken machine, each such `expect`
// allowed where it stands with its reason.
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

mod devices;
mod diagnostics;
mod guest_memory;
mod loader;
mod machine;
mod start;
mod store;
mod stub;
mod vcpu;
mod xen;

ebbhv_hal::entry!(start::main);
