//! `HYPERVISOR_sysctl`: only `XEN_SYSCTL_page_offline_op`, only from the control
//! plane.
//!
//! The op walks `start..=end`, writes each frame's status word to the caller's array
//! and stops at the first frame whose result is an error, returning it; a bad status
//! address is `-EFAULT`. Frames are u32 in this ABI, so `end` caps the walk.

use crate::abi::codec::AbiRecord;
use crate::abi::sysctl::*;
use crate::addr::{CallerAddr, Mfn};
use crate::error::{Errno, Error};
use crate::guest::{read_record, GuestArray, GuestMemory};
use crate::hv::Hypervisor;
use crate::hypercall::Caller;
use crate::platform::FrameOps;

impl Hypervisor {
    pub(super) fn sysctl(
        &mut self,
        caller: Caller,
        arg: CallerAddr,
        memory: &mut dyn GuestMemory,
        frames: &mut dyn FrameOps,
    ) -> Result<i64, Error> {
        if caller != Caller::ControlPlane {
            return Err(Errno::EPERM.into());
        }
        let request: XenSysctl = read_record(memory, arg)?;
        if request.interface_version != XEN_SYSCTL_INTERFACE_VERSION {
            return Err(Errno::EACCES.into());
        }
        if request.cmd != XEN_SYSCTL_PAGE_OFFLINE_OP {
            return Err(Errno::ENOSYS.into());
        }
        let op = XenSysctlPageOfflineOp::decode(&request.u);
        if op.end < op.start {
            return Err(Errno::EINVAL.into());
        }
        let status = GuestArray::<u32>::new(op.status);
        for frame in op.start..=op.end {
            let mfn = Mfn(u64::from(frame));
            let reply = match op.cmd {
                SYSCTL_PAGE_OFFLINE => self.page_offline(mfn, false, frames)?,
                SYSCTL_PAGE_ONLINE => self.page_online(mfn),
                SYSCTL_QUERY_PAGE_OFFLINE => self.page_query(mfn),
                _ => return Err(Errno::EINVAL.into()),
            };
            status.write(memory, u64::from(frame - op.start), &reply.status)?;
            reply.result?;
        }
        Ok(0)
    }
}
