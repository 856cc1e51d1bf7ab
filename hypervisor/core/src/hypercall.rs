//! Hypercall entry: decoding arguments from the caller's memory, checking privilege,
//! calling the [`Hypervisor`] operations, and encoding Xen's return conventions.
//!
//! One entry point, [`Hypervisor::hypercall`], takes the hypercall number and its five
//! argument registers and returns either the value for the caller's `rax` or a
//! continuation (the same hypercall with new arguments, which the platform re-issues
//! after letting other work run — for a guest, by not advancing its RIP). Bad
//! requests become `-errno` (or an extent count); only a [`Fatal`] leaves this layer
//! as an error.
//!
//! Privilege: a guest's hypercall is served only when its kernel made it
//! ([`guest_may_call`]); [`Caller::Guest`] may act only on itself (memory ops naming another
//! domain are denied) and never use sysctl or domctl (`-EPERM`);
//! [`Caller::ControlPlane`] (ebbctl over the control serial line) may act on any
//! domain but is no domain itself.

pub mod count;
mod domctl;
mod exchange;
mod info;
mod physmap;
mod reservation;
mod sysctl;

use crate::abi::hypercall::{DOMCTL, MEMORY_OP, SYSCTL};
use crate::abi::memory::*;
use crate::addr::{CallerAddr, DomId};
use crate::error::{Errno, Error, Fatal};
use crate::guest::GuestMemory;
use crate::hv::Hypervisor;
use crate::platform::FrameOps;

/// Who made a hypercall.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Caller {
    /// A guest, from a VMMCALL.
    Guest(DomId),
    /// The host's control plane.
    ControlPlane,
}

/// Whether a guest's hypercall may be served, from the privilege level it was made
/// at (0 the most privileged: x86's CPL). Only the guest's kernel may call: a user
/// process would otherwise reach every guest address through the buffers it names
/// and could balloon out kernel frames or power the machine off (KVM's
/// CVE-2009-3290). As Xen's `hvm_hypercall`, any other level is refused with
/// `-EPERM`, before the call is decoded or counted by its number.
pub fn guest_may_call(privilege_level: u8) -> Result<(), Errno> {
    if privilege_level == 0 {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// A hypercall as made: its number and argument registers (rdi, rsi, rdx, r10, r8).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Hypercall {
    /// The hypercall number (rax).
    pub nr: u64,
    /// The arguments.
    pub args: [u64; 5],
}

/// How a hypercall ends.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// Put this in the caller's rax.
    Return(i64),
    /// Not finished: issue this hypercall again (progress is in its arguments or in
    /// the caller's memory).
    Continue(Hypercall),
}

impl Hypervisor {
    /// Handles one hypercall. `memory` reaches the caller's address space; `frames`
    /// the contents of machine frames. Unknown hypercalls and sub-ops are `-ENOSYS`;
    /// the platform routes the hypercalls it handles itself (console, events) first.
    pub fn hypercall(
        &mut self,
        caller: Caller,
        call: Hypercall,
        memory: &mut dyn GuestMemory,
        frames: &mut dyn FrameOps,
    ) -> Result<Outcome, Fatal> {
        let result = match call.nr {
            MEMORY_OP => self.memory_op(caller, call, memory, frames),
            SYSCTL => self
                .sysctl(caller, CallerAddr(call.args[0]), memory, frames)
                .map(Outcome::Return),
            DOMCTL => self
                .domctl(caller, CallerAddr(call.args[0]), memory)
                .map(Outcome::Return),
            _ => Err(Errno::ENOSYS.into()),
        };
        match result {
            Ok(outcome) => Ok(outcome),
            Err(Error::Request(errno)) => Ok(Outcome::Return(errno.as_return())),
            Err(Error::Fatal(fatal)) => Err(fatal),
        }
    }

    fn memory_op(
        &mut self,
        caller: Caller,
        call: Hypercall,
        memory: &mut dyn GuestMemory,
        frames: &mut dyn FrameOps,
    ) -> Result<Outcome, Error> {
        let cmd = call.args[0];
        let arg = CallerAddr(call.args[1]);
        let returned = |value: Result<i64, Error>| value.map(Outcome::Return);
        match cmd & MEMOP_CMD_MASK {
            XENMEM_INCREASE_RESERVATION | XENMEM_DECREASE_RESERVATION | XENMEM_POPULATE_PHYSMAP => {
                self.reservation_op(caller, call, memory, frames)
            }
            XENMEM_EXCHANGE => self.exchange_op(caller, call, memory, frames),
            XENMEM_CURRENT_RESERVATION | XENMEM_MAXIMUM_RESERVATION | XENMEM_MAXIMUM_GPFN => {
                returned(self.reservation_info(caller, cmd & MEMOP_CMD_MASK, arg, memory))
            }
            XENMEM_MEMORY_MAP => returned(self.memory_map_op(caller, arg, memory)),
            XENMEM_ADD_TO_PHYSMAP => returned(self.add_to_physmap_op(caller, arg, memory, frames)),
            XENMEM_REMOVE_FROM_PHYSMAP => {
                returned(self.remove_from_physmap_op(caller, arg, memory))
            }
            _ => Err(Errno::ENOSYS.into()),
        }
    }

    /// The domain a request names, if the caller may act on it: a guest only on
    /// itself (`DOMID_SELF` or its own id, else `EPERM`), the control plane on any
    /// existing domain (`ESRCH` otherwise, and for `DOMID_SELF`: it is no domain).
    pub(crate) fn target_domain(&self, caller: Caller, domid: u16) -> Result<DomId, Errno> {
        let target = match caller {
            Caller::Guest(me) if domid == DomId::SELF.0 || domid == me.0 => me,
            Caller::Guest(_) => return Err(Errno::EPERM),
            Caller::ControlPlane => DomId(domid),
        };
        if self.domains.contains_key(&target) {
            Ok(target)
        } else {
            Err(Errno::ESRCH)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_guest_kernel_may_call() {
        assert_eq!(guest_may_call(0), Ok(()));
        for user in 1..=3 {
            assert_eq!(guest_may_call(user), Err(Errno::EPERM));
        }
        // What the refused caller finds in rax: Xen's -EPERM.
        assert_eq!(Errno::EPERM.as_return() as u64, u64::MAX);
    }
}
