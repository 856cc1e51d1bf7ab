//! `XEN_SYSCTL_*` (`public/sysctl.h`): the sysctl header and the page offline op.

use core::mem::{offset_of, size_of};

use super::codec::abi_record;

/// `XEN_SYSCTL_INTERFACE_VERSION` that ebbhv speaks.
pub const XEN_SYSCTL_INTERFACE_VERSION: u32 = 0x16;
/// `XEN_SYSCTL_page_offline_op`.
pub const XEN_SYSCTL_PAGE_OFFLINE_OP: u32 = 14;

/// Bytes of the sysctl union.
pub const SYSCTL_UNION_BYTES: usize = 128;

/// `struct xen_sysctl` (136 bytes): a header and a 128-byte union.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct XenSysctl {
    /// `cmd`: `XEN_SYSCTL_*`.
    pub cmd: u32,
    /// `interface_version`.
    pub interface_version: u32,
    /// `u`: the command's argument.
    pub u: [u8; SYSCTL_UNION_BYTES],
}
abi_record!(XenSysctl {
    cmd,
    interface_version,
    u
});
const _: () = {
    assert!(size_of::<XenSysctl>() == 136);
    assert!(offset_of!(XenSysctl, interface_version) == 4);
    assert!(offset_of!(XenSysctl, u) == 8);
};

/// `sysctl_page_offline_op.cmd`: offline.
pub const SYSCTL_PAGE_OFFLINE: u32 = 1;
/// `sysctl_page_offline_op.cmd`: online.
pub const SYSCTL_PAGE_ONLINE: u32 = 2;
/// `sysctl_page_offline_op.cmd`: query.
pub const SYSCTL_QUERY_PAGE_OFFLINE: u32 = 3;

/// `struct xen_sysctl_page_offline_op` (24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct XenSysctlPageOfflineOp {
    /// `cmd`: `SYSCTL_PAGE_*`.
    pub cmd: u32,
    /// `start`: first machine frame.
    pub start: u32,
    /// `end`: last machine frame (inclusive).
    pub end: u32,
    /// Padding.
    pub pad: u32,
    /// `status`: handle to `end - start + 1` `u32` status words.
    pub status: u64,
}
abi_record!(XenSysctlPageOfflineOp {
    cmd,
    start,
    end,
    pad,
    status
});
const _: () = {
    assert!(size_of::<XenSysctlPageOfflineOp>() == 24);
    assert!(offset_of!(XenSysctlPageOfflineOp, start) == 4);
    assert!(offset_of!(XenSysctlPageOfflineOp, end) == 8);
    assert!(offset_of!(XenSysctlPageOfflineOp, status) == 16);
};

/// Status bits of page offline / online / query (`PG_OFFLINE_*`, `PG_ONLINE_*`).
pub mod page_offline {
    /// Not processed (the tool pre-fills the array with this byte).
    pub const PG_OFFLINE_INVALID: u32 = 1 << 0;
    /// Offlined.
    pub const PG_OFFLINE_OFFLINED: u32 = 1 << 1;
    /// Will be offlined when its owner frees it.
    pub const PG_OFFLINE_PENDING: u32 = 1 << 2;
    /// Refused.
    pub const PG_OFFLINE_FAILED: u32 = 1 << 3;
    /// Try again (broken frame still owned).
    pub const PG_OFFLINE_AGAIN: u32 = 1 << 4;
    /// Online result: onlined.
    pub const PG_ONLINE_ONLINED: u32 = PG_OFFLINE_OFFLINED;
    /// Online result: refused.
    pub const PG_ONLINE_FAILED: u32 = PG_OFFLINE_FAILED;
    /// Query: offlined.
    pub const PG_OFFLINE_STATUS_OFFLINED: u32 = 1 << 1;
    /// Query: online (Xen defines it but its query never sets it; neither do we).
    pub const PG_OFFLINE_STATUS_ONLINE: u32 = 1 << 2;
    /// Query: offline pending.
    pub const PG_OFFLINE_STATUS_OFFLINE_PENDING: u32 = 1 << 3;
    /// Query: broken.
    pub const PG_OFFLINE_STATUS_BROKEN: u32 = 1 << 4;
    /// Reason: a hypervisor frame.
    pub const PG_OFFLINE_XENPAGE: u32 = 1 << 8;
    /// Reason: a frame of the control domain.
    pub const PG_OFFLINE_DOM0PAGE: u32 = 1 << 9;
    /// Reason: in use by nobody known.
    pub const PG_OFFLINE_ANONYMOUS: u32 = 1 << 10;
    /// Reason: not conventional RAM.
    pub const PG_OFFLINE_NOT_CONV_RAM: u32 = 1 << 11;
    /// Reason: owned by a domain (its id is in the owner bits).
    pub const PG_OFFLINE_OWNED: u32 = 1 << 12;
    /// Reason: broken.
    pub const PG_OFFLINE_BROKEN: u32 = 1 << 13;
    /// Online reason: broken.
    pub const PG_ONLINE_BROKEN: u32 = PG_OFFLINE_BROKEN;
    /// Shift of the owner's domid.
    pub const PG_OFFLINE_OWNER_SHIFT: u32 = 16;
}
