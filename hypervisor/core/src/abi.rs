//! Xen's hypercall ABI as ebbhv implements it: numbers, structure layouts (x86-64
//! native) and their byte encoding.
//!
//! Every structure is `#[repr(C)]` with its padding spelt out, and its size and field
//! offsets are checked at compile time against the numbers in
//! `shared/reference/xen-abi.md` (from Xen's `xen/include/public/*.h`). Encoding and
//! decoding go through [`codec::AbiRecord`], which places each field at its
//! `offset_of!`, so the bytes and the layout cannot drift apart.

pub mod codec;
pub mod domctl;
pub mod memory;
pub mod sysctl;
pub mod xenstore;

/// Hypercall numbers (`public/xen.h`).
pub mod hypercall {
    /// `__HYPERVISOR_memory_op`.
    pub const MEMORY_OP: u64 = 12;
    /// `__HYPERVISOR_sysctl`.
    pub const SYSCTL: u64 = 35;
    /// `__HYPERVISOR_domctl`.
    pub const DOMCTL: u64 = 36;
}
