//! `XENMEM_add_to_physmap` and `XENMEM_remove_from_physmap`.

use crate::abi::memory::*;
use crate::addr::{CallerAddr, Gfn};
use crate::error::{Errno, Error};
use crate::guest::{read_record, write_record, GuestMemory};
use crate::hv::{Hypervisor, MapSpace};
use crate::hypercall::{Caller, Hypercall, Outcome};
use crate::platform::FrameOps;

impl Hypervisor {
    /// Maps the shared info page, a grant table frame, or moves RAM frames
    /// (`gmfn`, `gmfn_range`: `size` frames from `idx` to `gpfn`, stopping at the
    /// first failure). Other spaces are `-EINVAL`. A range moves at most
    /// `preempt_frames` frames per call: then, as Xen does, the request is written
    /// back with `idx` and `gpfn` advanced and `size` reduced by what was done, and
    /// the call continues.
    pub(super) fn add_to_physmap_op(
        &mut self,
        caller: Caller,
        call: Hypercall,
        memory: &mut dyn GuestMemory,
        frames: &mut dyn FrameOps,
    ) -> Result<Outcome, Error> {
        let arg = CallerAddr(call.args[1]);
        let request: XenAddToPhysmap = read_record(memory, arg)?;
        let domain = self.target_domain(caller, request.domid)?;
        let gpfn = Gfn(request.gpfn);
        match request.space {
            XENMAPSPACE_SHARED_INFO if request.idx == 0 => {
                self.add_to_physmap(domain, MapSpace::SharedInfo, gpfn, frames)?;
            }
            XENMAPSPACE_GRANT_TABLE if request.idx & XENMAPIDX_GRANT_TABLE_STATUS == 0 => {
                self.add_to_physmap(domain, MapSpace::GrantTable(request.idx), gpfn, frames)?;
            }
            XENMAPSPACE_GMFN => {
                self.add_to_physmap(domain, MapSpace::Gmfn(Gfn(request.idx)), gpfn, frames)?;
            }
            XENMAPSPACE_GMFN_RANGE => {
                for i in 0..u64::from(request.size) {
                    if i >= self.config.preempt_frames {
                        let rest = XenAddToPhysmap {
                            // `i` < `size`, a u16.
                            size: request.size - i as u16,
                            idx: request.idx.checked_add(i).ok_or(Errno::EINVAL)?,
                            gpfn: request.gpfn.checked_add(i).ok_or(Errno::EINVAL)?,
                            ..request
                        };
                        write_record(memory, arg, &rest)?;
                        return Ok(Outcome::Continue(call));
                    }
                    let source = request.idx.checked_add(i).ok_or(Errno::EINVAL)?;
                    let target = request.gpfn.checked_add(i).ok_or(Errno::EINVAL)?;
                    self.add_to_physmap(domain, MapSpace::Gmfn(Gfn(source)), Gfn(target), frames)?;
                }
            }
            _ => return Err(Errno::EINVAL.into()),
        }
        Ok(Outcome::Return(0))
    }

    /// Removes the mapping at `gpfn`.
    pub(super) fn remove_from_physmap_op(
        &mut self,
        caller: Caller,
        arg: CallerAddr,
        memory: &mut dyn GuestMemory,
    ) -> Result<i64, Error> {
        let request: XenRemoveFromPhysmap = read_record(memory, arg)?;
        let domain = self.target_domain(caller, request.domid)?;
        self.remove_from_physmap(domain, Gfn(request.gpfn))?;
        Ok(0)
    }
}
