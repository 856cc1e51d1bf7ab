//! Errors, split by who is at fault.
//!
//! [`Errno`] is a bad or impossible request: the caller gets `-errno` (or, for the
//! reservation ops, the count of extents done) and carries on. [`Fatal`] means the
//! guest cannot be continued (an access the hypervisor cannot satisfy or emulate): the
//! platform kills or pauses that domain. The hypervisor itself never panics on either.

use crate::addr::{DomId, Gfn};

/// Xen's error numbers (`xen/include/public/errno.h`, same values as Linux on x86).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(i32)]
pub enum Errno {
    /// Operation not permitted.
    EPERM = 1,
    /// No such entry.
    ENOENT = 2,
    /// No such domain.
    ESRCH = 3,
    /// Try again.
    EAGAIN = 11,
    /// Out of memory.
    ENOMEM = 12,
    /// Interface version mismatch.
    EACCES = 13,
    /// Bad guest address.
    EFAULT = 14,
    /// Resource busy.
    EBUSY = 16,
    /// Already exists.
    EEXIST = 17,
    /// Invalid argument.
    EINVAL = 22,
    /// No space left (no free event channel port).
    ENOSPC = 28,
    /// Unknown hypercall or sub-op.
    ENOSYS = 38,
    /// Timer expired (a one-shot timer asked to be in the future is not).
    ETIME = 62,
    /// Operation not supported for this kind of domain.
    EOPNOTSUPP = 95,
}

impl Errno {
    /// Every error number, for lookups by name.
    pub const ALL: [Errno; 14] = [
        Errno::EPERM,
        Errno::ENOENT,
        Errno::ESRCH,
        Errno::EAGAIN,
        Errno::ENOMEM,
        Errno::EACCES,
        Errno::EFAULT,
        Errno::EBUSY,
        Errno::EEXIST,
        Errno::EINVAL,
        Errno::ENOSPC,
        Errno::ENOSYS,
        Errno::ETIME,
        Errno::EOPNOTSUPP,
    ];

    /// The value a hypercall returns for this error.
    pub fn as_return(self) -> i64 {
        -(self as i64)
    }

    /// Its name, as in `errno.h`.
    pub fn name(self) -> &'static str {
        match self {
            Errno::EPERM => "EPERM",
            Errno::ENOENT => "ENOENT",
            Errno::ESRCH => "ESRCH",
            Errno::EAGAIN => "EAGAIN",
            Errno::ENOMEM => "ENOMEM",
            Errno::EACCES => "EACCES",
            Errno::EFAULT => "EFAULT",
            Errno::EBUSY => "EBUSY",
            Errno::EEXIST => "EEXIST",
            Errno::EINVAL => "EINVAL",
            Errno::ENOSPC => "ENOSPC",
            Errno::ENOSYS => "ENOSYS",
            Errno::ETIME => "ETIME",
            Errno::EOPNOTSUPP => "EOPNOTSUPP",
        }
    }

    /// The error named `name`.
    pub fn from_name(name: &str) -> Option<Errno> {
        Errno::ALL.into_iter().find(|e| e.name() == name)
    }
}

/// Why a guest cannot be continued.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fatal {
    /// The guest accessed a guest frame that has no mapping it may use in that way
    /// (not mapped, or a write to a read-only entry that is not log-dirty).
    UnhandledAccess {
        /// The domain that faulted.
        domain: DomId,
        /// The frame it touched.
        gfn: Gfn,
    },
    /// The core found its own bookkeeping inconsistent while serving this domain. It
    /// stops the guest rather than the machine; the property tests exist to make this
    /// unreachable.
    Inconsistent(&'static str),
}

/// The result of an operation that may fail either way.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Error {
    /// A bad request: report `-errno` to the caller.
    Request(Errno),
    /// The guest must die.
    Fatal(Fatal),
}

impl From<Errno> for Error {
    fn from(errno: Errno) -> Error {
        Error::Request(errno)
    }
}

impl From<Fatal> for Error {
    fn from(fatal: Fatal) -> Error {
        Error::Fatal(fatal)
    }
}
