//! `XEN_DOMCTL_*` (`public/domctl.h`): the domctl header and the shadow op (log-dirty).

use core::mem::{offset_of, size_of};

use super::codec::abi_record;

/// `XEN_DOMCTL_INTERFACE_VERSION` that ebbhv speaks.
pub const XEN_DOMCTL_INTERFACE_VERSION: u32 = 0x18;
/// `XEN_DOMCTL_shadow_op`.
pub const XEN_DOMCTL_SHADOW_OP: u32 = 10;

/// Bytes of the domctl union.
pub const DOMCTL_UNION_BYTES: usize = 128;

/// `struct xen_domctl` (144 bytes).
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct XenDomctl {
    /// `cmd`: `XEN_DOMCTL_*`.
    pub cmd: u32,
    /// `interface_version`.
    pub interface_version: u32,
    /// `domain`.
    pub domain: u16,
    /// Padding to the union's 8-byte alignment.
    pub pad: [u8; 6],
    /// `u`: the command's argument.
    pub u: [u8; DOMCTL_UNION_BYTES],
}
abi_record!(XenDomctl {
    cmd,
    interface_version,
    domain,
    pad,
    u
});
const _: () = {
    assert!(size_of::<XenDomctl>() == 144);
    assert!(offset_of!(XenDomctl, interface_version) == 4);
    assert!(offset_of!(XenDomctl, domain) == 8);
    assert!(offset_of!(XenDomctl, u) == 16);
};

/// `XEN_DOMCTL_SHADOW_OP_OFF`.
pub const SHADOW_OP_OFF: u32 = 0;
/// `XEN_DOMCTL_SHADOW_OP_ENABLE_TEST`.
pub const SHADOW_OP_ENABLE_TEST: u32 = 1;
/// `XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY`.
pub const SHADOW_OP_ENABLE_LOGDIRTY: u32 = 2;
/// `XEN_DOMCTL_SHADOW_OP_CLEAN`.
pub const SHADOW_OP_CLEAN: u32 = 11;
/// `XEN_DOMCTL_SHADOW_OP_PEEK`.
pub const SHADOW_OP_PEEK: u32 = 12;
/// `XEN_DOMCTL_SHADOW_OP_GET_ALLOCATION`.
pub const SHADOW_OP_GET_ALLOCATION: u32 = 30;
/// `XEN_DOMCTL_SHADOW_OP_SET_ALLOCATION`.
pub const SHADOW_OP_SET_ALLOCATION: u32 = 31;
/// `XEN_DOMCTL_SHADOW_OP_ENABLE`.
pub const SHADOW_OP_ENABLE: u32 = 32;

/// `XEN_DOMCTL_SHADOW_ENABLE_LOG_DIRTY` (mode of `SHADOW_OP_ENABLE`).
pub const SHADOW_ENABLE_LOG_DIRTY: u32 = 1 << 2;
/// `XEN_DOMCTL_SHADOW_LOGDIRTY_FINAL`: the only mode CLEAN and PEEK accept.
pub const SHADOW_LOGDIRTY_FINAL: u32 = 1 << 0;

/// `struct xen_domctl_shadow_op` (40 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct XenDomctlShadowOp {
    /// `op`: `SHADOW_OP_*`.
    pub op: u32,
    /// `mode`.
    pub mode: u32,
    /// `mb`: shadow memory allocation in MiB.
    pub mb: u32,
    /// Padding.
    pub pad: u32,
    /// `dirty_bitmap`: handle to the bitmap (one bit per guest frame).
    pub dirty_bitmap: u64,
    /// `pages`: in, bits the bitmap holds; out, bits written.
    pub pages: u64,
    /// `stats.fault_count`.
    pub fault_count: u32,
    /// `stats.dirty_count`.
    pub dirty_count: u32,
}
abi_record!(XenDomctlShadowOp {
    op,
    mode,
    mb,
    pad,
    dirty_bitmap,
    pages,
    fault_count,
    dirty_count
});
const _: () = {
    assert!(size_of::<XenDomctlShadowOp>() == 40);
    assert!(offset_of!(XenDomctlShadowOp, mode) == 4);
    assert!(offset_of!(XenDomctlShadowOp, mb) == 8);
    assert!(offset_of!(XenDomctlShadowOp, dirty_bitmap) == 16);
    assert!(offset_of!(XenDomctlShadowOp, pages) == 24);
    assert!(offset_of!(XenDomctlShadowOp, fault_count) == 32);
    assert!(offset_of!(XenDomctlShadowOp, dirty_count) == 36);
};
