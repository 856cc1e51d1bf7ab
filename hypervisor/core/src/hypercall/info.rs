//! The read-only memory ops: current/maximum reservation, maximum gpfn, memory map.

use crate::abi::memory::*;
use crate::addr::CallerAddr;
use crate::error::{Errno, Error};
use crate::guest::{read_record, write_record, GuestArray, GuestMemory};
use crate::hv::Hypervisor;
use crate::hypercall::Caller;

impl Hypervisor {
    /// `XENMEM_current_reservation` (frames owned), `maximum_reservation` (the cap)
    /// and `maximum_gpfn` (the p2m's high-water mark); `arg` points at a `domid_t`.
    pub(super) fn reservation_info(
        &self,
        caller: Caller,
        op: u64,
        arg: CallerAddr,
        memory: &mut dyn GuestMemory,
    ) -> Result<i64, Error> {
        let domid: u16 = read_record(memory, arg)?;
        let domain = self.target_domain(caller, domid)?;
        let dom = self.domain(domain).ok_or(Errno::ESRCH)?;
        let value = match op {
            XENMEM_CURRENT_RESERVATION => dom.tot_pages(),
            XENMEM_MAXIMUM_RESERVATION => dom.max_pages(),
            _ => dom.p2m().high_water().map_or(0, |gfn| gfn.0),
        };
        i64::try_from(value).map_err(|_| Errno::EINVAL.into())
    }

    /// `XENMEM_memory_map`: the caller's own e820 map, at most `nr_entries` entries,
    /// `-ENOENT` if it has none.
    pub(super) fn memory_map_op(
        &self,
        caller: Caller,
        arg: CallerAddr,
        memory: &mut dyn GuestMemory,
    ) -> Result<i64, Error> {
        let Caller::Guest(me) = caller else {
            return Err(Errno::ESRCH.into());
        };
        let mut request: XenMemoryMap = read_record(memory, arg)?;
        let dom = self.domain(me).ok_or(Errno::ESRCH)?;
        let map = dom.memory_map();
        if map.is_empty() {
            return Err(Errno::ENOENT.into());
        }
        let count = map.len().min(request.nr_entries as usize);
        let buffer = GuestArray::<E820Entry>::new(request.buffer);
        for (i, entry) in map.iter().take(count).enumerate() {
            buffer.write(memory, i as u64, entry)?;
        }
        request.nr_entries = count as u32;
        write_record(memory, arg, &request)?;
        Ok(0)
    }
}
