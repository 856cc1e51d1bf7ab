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
pub mod platform;
pub mod sysctl;
pub mod xenstore;

/// Hypercall numbers (`__HYPERVISOR_*`, `public/xen.h`): the core serves
/// memory_op, sysctl and domctl, the platform the others.
pub mod hypercall {
    /// set_timer_op.
    pub const SET_TIMER_OP: u64 = 15;
    /// memory_op.
    pub const MEMORY_OP: u64 = 12;
    /// xen_version.
    pub const XEN_VERSION: u64 = 17;
    /// console_io.
    pub const CONSOLE_IO: u64 = 18;
    /// grant_table_op.
    pub const GRANT_TABLE_OP: u64 = 20;
    /// vm_assist.
    pub const VM_ASSIST: u64 = 21;
    /// vcpu_op.
    pub const VCPU_OP: u64 = 24;
    /// sched_op.
    pub const SCHED_OP: u64 = 29;
    /// event_channel_op.
    pub const EVENT_CHANNEL_OP: u64 = 32;
    /// physdev_op.
    pub const PHYSDEV_OP: u64 = 33;
    /// hvm_op.
    pub const HVM_OP: u64 = 34;
    /// sysctl.
    pub const SYSCTL: u64 = 35;
    /// domctl.
    pub const DOMCTL: u64 = 36;
}
