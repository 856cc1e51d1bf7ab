//! Reaching the caller's memory: the [`GuestMemory`] trait the platform implements,
//! and typed accessors that turn every bad address into `-EFAULT`.
//!
//! Hypercall arguments are addresses in the caller's address space. The core never
//! dereferences them; it asks [`GuestMemory`] to copy bytes, and a copy that fails
//! (unmapped, not writable, overflowing) is the caller's mistake, reported as
//! [`Errno::EFAULT`].

use core::marker::PhantomData;

use crate::abi::codec::AbiRecord;
use crate::addr::CallerAddr;
use crate::error::Errno;

/// The caller's address was not readable or writable for the whole length.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BadAddress;

/// Copying to and from the hypercall caller's memory.
///
/// For a guest the platform walks the guest's page tables (then the p2m) for each
/// page touched; for the control plane it reads its request buffer. Either may fail
/// part way; the core treats any failure as `-EFAULT`, and the bytes already written
/// by a failed write are unspecified (as in Xen's `copy_to_guest`).
pub trait GuestMemory {
    /// Fills `buf` from the caller's memory at `addr`.
    fn read(&mut self, addr: CallerAddr, buf: &mut [u8]) -> Result<(), BadAddress>;

    /// Writes `data` to the caller's memory at `addr`.
    fn write(&mut self, addr: CallerAddr, data: &[u8]) -> Result<(), BadAddress>;
}

/// The largest ABI structure read in one piece (`struct xen_domctl`).
const MAX_RECORD_BYTES: usize = 144;

/// Reads one ABI structure at `addr`.
pub fn read_record<T: AbiRecord>(
    memory: &mut dyn GuestMemory,
    addr: CallerAddr,
) -> Result<T, Errno> {
    let mut buf = [0u8; MAX_RECORD_BYTES];
    let bytes = buf.get_mut(..T::SIZE).ok_or(Errno::EFAULT)?;
    memory
        .read(addr, bytes)
        .map_err(|BadAddress| Errno::EFAULT)?;
    Ok(T::decode(bytes))
}

/// Writes one ABI structure at `addr`.
pub fn write_record<T: AbiRecord>(
    memory: &mut dyn GuestMemory,
    addr: CallerAddr,
    value: &T,
) -> Result<(), Errno> {
    let mut buf = [0u8; MAX_RECORD_BYTES];
    let bytes = buf.get_mut(..T::SIZE).ok_or(Errno::EFAULT)?;
    value.encode(bytes);
    memory
        .write(addr, bytes)
        .map_err(|BadAddress| Errno::EFAULT)
}

/// A Xen guest handle to an array of `T` (`XEN_GUEST_HANDLE(T)`): a base address the
/// caller gave. Element addresses are computed with overflow checks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct GuestArray<T> {
    base: CallerAddr,
    element: PhantomData<T>,
}

impl<T: AbiRecord> GuestArray<T> {
    /// The array at `base` (as found in a hypercall argument).
    pub fn new(base: u64) -> GuestArray<T> {
        GuestArray {
            base: CallerAddr(base),
            element: PhantomData,
        }
    }

    /// Whether the handle is NULL (some ops treat that as "no array").
    pub fn is_null(&self) -> bool {
        self.base.0 == 0
    }

    /// Address of element `index`, or `-EFAULT` if it overflows.
    pub fn element(&self, index: u64) -> Result<CallerAddr, Errno> {
        index
            .checked_mul(T::SIZE as u64)
            .and_then(|offset| self.base.0.checked_add(offset))
            .map(CallerAddr)
            .ok_or(Errno::EFAULT)
    }

    /// Reads element `index`.
    pub fn read(&self, memory: &mut dyn GuestMemory, index: u64) -> Result<T, Errno> {
        read_record(memory, self.element(index)?)
    }

    /// Writes element `index`.
    pub fn write(&self, memory: &mut dyn GuestMemory, index: u64, value: &T) -> Result<(), Errno> {
        write_record(memory, self.element(index)?, value)
    }
}
