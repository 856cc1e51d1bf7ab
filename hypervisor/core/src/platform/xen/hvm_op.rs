//! `HYPERVISOR_hvm_op`: getting and setting HVM parameters. The guest may set
//! only the parameters `hvmop::guest_may_set` allows (`-EPERM` for the rest, the
//! store's and console's frame and port among them, as Xen refuses them).

use crate::abi::platform::{hvmop, HvmParam};
use crate::addr::{CallerAddr, DomId};
use crate::error::Errno;
use crate::guest::GuestMemory;
use crate::platform::{Clock, Log};

use super::XenPlatform;

impl<C: Clock> XenPlatform<C> {
    /// `HVMOP_set_param` and `HVMOP_get_param` on the guest's own parameters.
    pub fn hvm_op(
        &mut self,
        mem: &mut dyn GuestMemory,
        log: &mut dyn Log,
        cmd: u64,
        arg: CallerAddr,
    ) -> Result<i64, Errno> {
        if cmd != hvmop::SET_PARAM && cmd != hvmop::GET_PARAM {
            return Err(Errno::ENOSYS);
        }
        let mut b = [0u8; HvmParam::SIZE];
        mem.read(arg, &mut b).map_err(|_| Errno::EFAULT)?;
        let mut p = HvmParam::read_from(&b).ok_or(Errno::EFAULT)?;
        if p.domid != DomId::SELF.0 && p.domid != self.domid.0 {
            return Err(Errno::EPERM);
        }
        let slot = self.params.get_mut(p.index as usize).ok_or(Errno::EINVAL)?;
        if cmd == hvmop::SET_PARAM {
            if !hvmop::guest_may_set(p.index) {
                return Err(Errno::EPERM);
            }
            *slot = p.value;
            log.log(format_args!("hvm param {} set to {:#x}", p.index, p.value));
            return Ok(0);
        }
        p.value = *slot;
        mem.write(arg, &p.to_bytes()).map_err(|_| Errno::EFAULT)?;
        Ok(0)
    }
}
