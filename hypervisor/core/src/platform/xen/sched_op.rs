//! `HYPERVISOR_sched_op`, decoded: what the guest asks of the scheduler. Acting
//! on it (polling devices, idling the vCPU, ending the run) is the platform's.

use crate::abi::platform::{schedop, SchedShutdown};
use crate::addr::CallerAddr;
use crate::error::Errno;
use crate::guest::GuestMemory;

/// A scheduler request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SchedOp {
    /// `SCHEDOP_yield`: let others run (the platform polls its devices).
    Yield,
    /// `SCHEDOP_block`: idle until an event is pending.
    Block,
    /// `SCHEDOP_shutdown` with Xen's `SHUTDOWN_*` reason (not checked: the
    /// platform names the ones it knows and ends the run for any).
    Shutdown(u32),
}

/// Decodes `HYPERVISOR_sched_op(cmd, arg)`: `-EFAULT` for an unreadable
/// `sched_shutdown`, `-ENOSYS` for the sub-ops ebbhv does not serve.
pub fn sched_op(mem: &mut dyn GuestMemory, cmd: u64, arg: CallerAddr) -> Result<SchedOp, Errno> {
    match cmd {
        schedop::YIELD => Ok(SchedOp::Yield),
        schedop::BLOCK => Ok(SchedOp::Block),
        schedop::SHUTDOWN => {
            let mut b = [0u8; SchedShutdown::SIZE];
            mem.read(arg, &mut b).map_err(|_| Errno::EFAULT)?;
            let reason = SchedShutdown::read_from(&b).ok_or(Errno::EFAULT)?.reason;
            Ok(SchedOp::Shutdown(reason))
        }
        _ => Err(Errno::ENOSYS),
    }
}
