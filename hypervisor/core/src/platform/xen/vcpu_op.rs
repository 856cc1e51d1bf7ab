//! `HYPERVISOR_vcpu_op` for the one vCPU: where its vcpu_info, runstate area and
//! pvclock copy live, and its one-shot timer.

use crate::abi::platform::{
    self as xen, vcpuop, RegisterVcpuInfo, RunstateInfo, SingleshotTimer, VCPU_SSHOTTMR_FUTURE,
};
use crate::addr::{CallerAddr, Gfn, PAGE_SIZE};
use crate::domain::Domain;
use crate::error::Errno;
use crate::guest::GuestMemory;
use crate::platform::{Clock, FrameBytes, Log};

use super::{VcpuInfoPlace, XenPlatform};

/// Reads the guest-virtual address the guest passed by reference.
fn read_address(mem: &mut dyn GuestMemory, arg: CallerAddr) -> Result<u64, Errno> {
    let mut b = [0u8; 8];
    mem.read(arg, &mut b).map_err(|_| Errno::EFAULT)?;
    Ok(u64::from_le_bytes(b))
}

impl<C: Clock> XenPlatform<C> {
    /// `VCPUOP_*(cmd, vcpu, arg)`.
    pub fn vcpu_op(
        &mut self,
        dom: &Domain,
        mem: &mut dyn GuestMemory,
        frames: &mut dyn FrameBytes,
        log: &mut dyn Log,
        args: [u64; 5],
    ) -> Result<i64, Errno> {
        let (cmd, vcpu, arg) = (args[0], args[1], CallerAddr(args[2]));
        if vcpu != 0 {
            return Err(Errno::ENOENT);
        }
        match cmd {
            vcpuop::IS_UP => Ok(1),
            vcpuop::REGISTER_VCPU_INFO => {
                let mut b = [0u8; RegisterVcpuInfo::SIZE];
                mem.read(arg, &mut b).map_err(|_| Errno::EFAULT)?;
                let req = RegisterVcpuInfo::read_from(&b).ok_or(Errno::EFAULT)?;
                let offset = req.offset as usize;
                if offset + xen::VCPU_INFO_SIZE > PAGE_SIZE as usize || self.vcpu_info.is_some() {
                    return Err(Errno::EINVAL);
                }
                let gfn = Gfn(req.mfn);
                match dom.p2m().entry(gfn) {
                    Some(e) if e.kind.is_ram() && e.kind.accessible() => {}
                    _ => return Err(Errno::EINVAL),
                }
                // INVARIANT: the offset leaves room for a whole vcpu_info (checked).
                self.vcpu_info = Some(VcpuInfoPlace { gfn, offset });
                log.log(format_args!(
                    "vcpu_info of vCPU 0 at gfn {:#x} + {:#x}",
                    gfn.0, offset
                ));
                self.publish_time(dom, frames);
                Ok(0)
            }
            vcpuop::REGISTER_RUNSTATE_MEMORY_AREA => {
                let area = read_address(mem, arg)?;
                let info = RunstateInfo {
                    state_entry_time: self.clocks.system_time_ns(),
                    ..Default::default()
                };
                mem.write(CallerAddr(area), &info.to_bytes())
                    .map_err(|_| Errno::EFAULT)?;
                self.runstate = Some(area);
                log.log(format_args!("runstate area of vCPU 0 at gva {area:#x}"));
                Ok(0)
            }
            vcpuop::REGISTER_VCPU_TIME_MEMORY_AREA => {
                // The pvclock record never changes after boot (a stable TSC, one
                // scale), so one copy at registration keeps the guest's vDSO copy
                // current; a NULL address unregisters.
                let area = read_address(mem, arg)?;
                if area != 0 {
                    mem.write(CallerAddr(area), &self.clocks.time_info().to_bytes())
                        .map_err(|_| Errno::EFAULT)?;
                }
                Ok(0)
            }
            vcpuop::SET_SINGLESHOT_TIMER => {
                let mut b = [0u8; SingleshotTimer::SIZE];
                mem.read(arg, &mut b).map_err(|_| Errno::EFAULT)?;
                let t = SingleshotTimer::read_from(&b).ok_or(Errno::EFAULT)?;
                if t.flags & VCPU_SSHOTTMR_FUTURE != 0
                    && t.timeout_abs_ns < self.clocks.system_time_ns()
                {
                    return Err(Errno::ETIME);
                }
                self.timer.set(Some(t.timeout_abs_ns));
                Ok(0)
            }
            vcpuop::STOP_SINGLESHOT_TIMER => {
                self.timer.set(None);
                Ok(0)
            }
            vcpuop::STOP_PERIODIC_TIMER => Ok(0),
            _ => Err(Errno::ENOSYS),
        }
    }
}
