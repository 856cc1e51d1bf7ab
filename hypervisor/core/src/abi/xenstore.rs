//! The xenstore wire protocol (`public/io/xs_wire.h`): message types, the
//! `xsd_sockmsg` header, the error strings and the layout of the shared ring page
//! (`xenstore_domain_interface`).
//!
//! The layouts are checked at compile time against the header: the message header
//! is 16 bytes, the ring page's two 1 KiB rings are followed by four ring indices
//! and the `server_features`, `connection` and `error` words.

use core::mem::{offset_of, size_of};

use super::codec::abi_record;

/// Message types (`enum xsd_sockmsg_type`).
pub mod msg {
    /// `XS_CONTROL` (was `XS_DEBUG`).
    pub const CONTROL: u32 = 0;
    /// `XS_DIRECTORY`.
    pub const DIRECTORY: u32 = 1;
    /// `XS_READ`.
    pub const READ: u32 = 2;
    /// `XS_GET_PERMS`.
    pub const GET_PERMS: u32 = 3;
    /// `XS_WATCH`.
    pub const WATCH: u32 = 4;
    /// `XS_UNWATCH`.
    pub const UNWATCH: u32 = 5;
    /// `XS_TRANSACTION_START`.
    pub const TRANSACTION_START: u32 = 6;
    /// `XS_TRANSACTION_END`.
    pub const TRANSACTION_END: u32 = 7;
    /// `XS_INTRODUCE`.
    pub const INTRODUCE: u32 = 8;
    /// `XS_RELEASE`.
    pub const RELEASE: u32 = 9;
    /// `XS_GET_DOMAIN_PATH`.
    pub const GET_DOMAIN_PATH: u32 = 10;
    /// `XS_WRITE`.
    pub const WRITE: u32 = 11;
    /// `XS_MKDIR`.
    pub const MKDIR: u32 = 12;
    /// `XS_RM`.
    pub const RM: u32 = 13;
    /// `XS_SET_PERMS`.
    pub const SET_PERMS: u32 = 14;
    /// `XS_WATCH_EVENT`.
    pub const WATCH_EVENT: u32 = 15;
    /// `XS_ERROR`.
    pub const ERROR: u32 = 16;
    /// `XS_IS_DOMAIN_INTRODUCED`.
    pub const IS_DOMAIN_INTRODUCED: u32 = 17;
    /// `XS_RESUME`.
    pub const RESUME: u32 = 18;
    /// `XS_SET_TARGET`.
    pub const SET_TARGET: u32 = 19;
    /// `XS_RESET_WATCHES` (`XS_SET_TARGET + 2`: `XS_RESTRICT` was removed).
    pub const RESET_WATCHES: u32 = 21;
    /// `XS_DIRECTORY_PART`.
    pub const DIRECTORY_PART: u32 = 22;
}

/// Bytes in each of the two rings.
pub const RING_SIZE: u32 = 1024;
/// The largest payload of one message (`XENSTORE_PAYLOAD_MAX`).
pub const PAYLOAD_MAX: usize = 4096;
/// The longest absolute path (`XENSTORE_ABS_PATH_MAX`).
pub const ABS_PATH_MAX: usize = 3072;
/// The longest relative path (`XENSTORE_REL_PATH_MAX`).
pub const REL_PATH_MAX: usize = 2048;
/// `connection`: the ring is connected (`XENSTORE_CONNECTED`).
pub const CONNECTED: u32 = 0;
/// `error`: the guest broke the ring indices (`XENSTORE_ERROR_RINGIDX`).
pub const ERROR_RINGIDX: u32 = 2;
/// `error`: the guest sent a message the server cannot frame (`XENSTORE_ERROR_PROTO`).
pub const ERROR_PROTO: u32 = 3;

/// `struct xsd_sockmsg`: every message's header, followed by `len` payload bytes.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct XsdSockmsg {
    /// One of [`msg`].
    pub ty: u32,
    /// Chosen by the client, echoed in the reply.
    pub req_id: u32,
    /// Transaction id, 0 for none.
    pub tx_id: u32,
    /// Payload bytes that follow.
    pub len: u32,
}
abi_record!(XsdSockmsg {
    ty,
    req_id,
    tx_id,
    len
});
const _: () = {
    assert!(size_of::<XsdSockmsg>() == 16);
    assert!(offset_of!(XsdSockmsg, req_id) == 4);
    assert!(offset_of!(XsdSockmsg, tx_id) == 8);
    assert!(offset_of!(XsdSockmsg, len) == 12);
};

/// `struct xenstore_domain_interface`: the ring page shared with the guest. The
/// server reaches it only through byte offsets ([`RingPage`](crate::xenstore::RingPage)),
/// so this type exists for its layout.
#[repr(C)]
pub struct XenstoreDomainInterface {
    /// Requests, guest to server.
    pub req: [u8; RING_SIZE as usize],
    /// Replies and watch events, server to guest.
    pub rsp: [u8; RING_SIZE as usize],
    /// Request bytes the server consumed (free-running).
    pub req_cons: u32,
    /// Request bytes the guest produced.
    pub req_prod: u32,
    /// Reply bytes the guest consumed.
    pub rsp_cons: u32,
    /// Reply bytes the server produced.
    pub rsp_prod: u32,
    /// Features the server offers (none).
    pub server_features: u32,
    /// [`CONNECTED`].
    pub connection: u32,
    /// Why the server gave up on the ring, 0 if it did not.
    pub error: u32,
}

/// Byte offsets in the ring page.
pub mod ring {
    use super::XenstoreDomainInterface as I;
    use core::mem::offset_of;

    /// `req[]`.
    pub const REQ: usize = offset_of!(I, req);
    /// `rsp[]`.
    pub const RSP: usize = offset_of!(I, rsp);
    /// `req_cons`.
    pub const REQ_CONS: usize = offset_of!(I, req_cons);
    /// `req_prod`.
    pub const REQ_PROD: usize = offset_of!(I, req_prod);
    /// `rsp_cons`.
    pub const RSP_CONS: usize = offset_of!(I, rsp_cons);
    /// `rsp_prod`.
    pub const RSP_PROD: usize = offset_of!(I, rsp_prod);
    /// `server_features`.
    pub const SERVER_FEATURES: usize = offset_of!(I, server_features);
    /// `connection`.
    pub const CONNECTION: usize = offset_of!(I, connection);
    /// `error`.
    pub const ERROR: usize = offset_of!(I, error);
}
const _: () = {
    assert!(ring::REQ == 0);
    assert!(ring::RSP == 1024);
    assert!(ring::REQ_CONS == 2048);
    assert!(ring::REQ_PROD == 2052);
    assert!(ring::RSP_CONS == 2056);
    assert!(ring::RSP_PROD == 2060);
    assert!(ring::SERVER_FEATURES == 2064);
    assert!(ring::CONNECTION == 2068);
    assert!(ring::ERROR == 2072);
    assert!(size_of::<XenstoreDomainInterface>() == 2076);
};

/// The errors a reply may carry (`xsd_errors`), sent as their names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum XsError {
    /// Invalid argument.
    EINVAL,
    /// Permission denied.
    EACCES,
    /// Node exists.
    EEXIST,
    /// Is a directory.
    EISDIR,
    /// No such node.
    ENOENT,
    /// Out of memory (a quota).
    ENOMEM,
    /// No space (a quota).
    ENOSPC,
    /// I/O error.
    EIO,
    /// Directory not empty.
    ENOTEMPTY,
    /// Unsupported operation.
    ENOSYS,
    /// Read-only.
    EROFS,
    /// Busy.
    EBUSY,
    /// Transaction conflict: retry.
    EAGAIN,
    /// Already connected.
    EISCONN,
    /// Too big (a path, a value or a message).
    E2BIG,
    /// Over the domain's memory quota (oxenstored's name for a quota; C xenstored
    /// reports its memory quota as `ENOMEM`, which ebbhv keeps for hypercalls).
    EQUOTA,
}

impl XsError {
    /// The name sent in an `XS_ERROR` reply (without its NUL).
    pub fn name(self) -> &'static str {
        match self {
            XsError::EINVAL => "EINVAL",
            XsError::EACCES => "EACCES",
            XsError::EEXIST => "EEXIST",
            XsError::EISDIR => "EISDIR",
            XsError::ENOENT => "ENOENT",
            XsError::ENOMEM => "ENOMEM",
            XsError::ENOSPC => "ENOSPC",
            XsError::EIO => "EIO",
            XsError::ENOTEMPTY => "ENOTEMPTY",
            XsError::ENOSYS => "ENOSYS",
            XsError::EROFS => "EROFS",
            XsError::EBUSY => "EBUSY",
            XsError::EAGAIN => "EAGAIN",
            XsError::EISCONN => "EISCONN",
            XsError::E2BIG => "E2BIG",
            XsError::EQUOTA => "EQUOTA",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::codec::AbiRecord;

    #[test]
    fn header_is_little_endian_in_field_order() {
        let h = XsdSockmsg {
            ty: msg::WRITE,
            req_id: 0x0102_0304,
            tx_id: 7,
            len: 9,
        };
        let mut b = [0u8; 16];
        h.encode(&mut b);
        assert_eq!(b, [11, 0, 0, 0, 4, 3, 2, 1, 7, 0, 0, 0, 9, 0, 0, 0]);
        assert_eq!(XsdSockmsg::decode(&b), h);
    }
}
