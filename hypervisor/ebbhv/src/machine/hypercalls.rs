//! VMMCALL: the Xen hypercall table.
//!
//! Only the guest's kernel (CPL 0) may call; a call from user space gets `-EPERM`
//! and is not dispatched (`ebbhv_core::hypercall::guest_may_call`).
//!
//! RAX holds the hypercall number, RDI RSI RDX R10 R8 the arguments, and the result
//! goes back in RAX. Memory ops (and anything else the platform does not serve
//! itself) go to the core, with the caller's memory reached through its page tables
//! and the NPT; xen_version, console_io, vcpu_op, hvm_op, sched_op, set_timer_op
//! and event_channel_op are served by the core's `platform::xen` (host-tested and
//! fuzzed) over the machine's parts and the hal's frames, clocks and log, and what
//! needs the machine (sched_op's idling and shutdown, the store's kick) is acted on
//! here. Anything unsupported returns `-ENOSYS`, logged once per (hypercall,
//! sub-op): grant_table_op among them, so Linux falls back to grant table v1 with 4
//! frames, which it maps with add_to_physmap (served by the core).
//!
//! A new platform hypercall gets its arm in [`Machine::hypercall`] and its handler
//! in `ebbhv_core::platform::xen` (for Xen platform state) or the part whose
//! state it uses; a new memory op belongs to `ebbhv-core`.

use ebbhv_core::abi::hypercall as nr;
use ebbhv_core::addr::CallerAddr;
use ebbhv_core::error::{Errno, Fatal};
use ebbhv_core::hypercall::{guest_may_call, Caller, Hypercall, Outcome};
use ebbhv_core::platform::xen::console_io::console_io;
use ebbhv_core::platform::xen::sched_op::{sched_op, SchedOp};
use ebbhv_core::platform::xen::version::xen_version;

use super::{caller_memory, domain, Machine};
use crate::diagnostics::Once;
use crate::guest_memory::{GuestVirtMemory, HostFrames, Translate};
use crate::xen::HalLog;

/// How the hypercall ended for the vCPU.
pub enum Done {
    /// Put the value in RAX and move past the VMMCALL.
    Return(i64),
    /// Re-issue: RIP stays on the VMMCALL, the arguments were rewritten.
    Again,
}

type Result<T> = core::result::Result<T, Errno>;

impl Machine {
    /// Handles the VMMCALL the guest just made.
    pub(super) fn hypercall(&mut self) -> core::result::Result<Done, Fatal> {
        let v = self.cpu.vcpu();
        if let Err(refused) = guest_may_call(v.save().cpl) {
            // A user process's call: nothing of it is looked at, and it is counted
            // under one key, so it cannot grow the stats either.
            self.diag.stats_mut().refused_hypercall();
            return Ok(Done::Return(refused.as_return()));
        }
        let r = v.regs();
        let call = Hypercall {
            nr: v.save().rax,
            args: [r.rdi, r.rsi, r.rdx, r.r10, r.r8],
        };
        let sub = if call.nr == nr::MEMORY_OP {
            call.args[0] & 0x3f
        } else {
            call.args[0]
        };
        let rip = v.save().rip;
        self.diag.stats_mut().hypercall(rip, call.nr, call.args);
        let arg1 = CallerAddr(call.args[1]);
        let platform = match call.nr {
            nr::XEN_VERSION => {
                let mut mem = caller_memory(&self.hv, self.domid, &self.cpu);
                Some(xen_version(&mut mem, call.args[0], arg1))
            }
            nr::CONSOLE_IO => {
                let mut mem = caller_memory(&self.hv, self.domid, &self.cpu);
                let result = console_io(&mut mem, &mut self.devices, call.args);
                if self.devices.console().take_seen() {
                    self.devices.console().flush();
                    self.report("boot to /init");
                }
                Some(result)
            }
            nr::VCPU_OP => {
                let mut mem = caller_memory(&self.hv, self.domid, &self.cpu);
                Some(self.xen.vcpu_op(
                    domain(&self.hv, self.domid),
                    &mut mem,
                    &mut HostFrames,
                    &mut HalLog,
                    call.args,
                ))
            }
            nr::HVM_OP => {
                let mut mem = caller_memory(&self.hv, self.domid, &self.cpu);
                Some(self.xen.hvm_op(&mut mem, &mut HalLog, call.args[0], arg1))
            }
            nr::SCHED_OP => Some(self.sched_op(call.args[0], arg1)),
            nr::EVENT_CHANNEL_OP => Some(self.event_channel_op(call.args[0], arg1)),
            nr::SET_TIMER_OP => Some(self.xen.set_timer_op(call.args[0])),
            nr::GRANT_TABLE_OP | nr::PHYSDEV_OP | nr::VM_ASSIST => Some(Err(Errno::ENOSYS)),
            _ => None,
        };
        let value = match platform {
            Some(result) => result.unwrap_or_else(Errno::as_return),
            None => match self.core_hypercall(call)? {
                Some(v) => v,
                None => {
                    let v = self.cpu.vcpu();
                    let r = v.regs();
                    let next = [r.rdi, r.rsi, r.rdx, r.r10, r.r8];
                    self.diag.stats_mut().continued(rip, v.save().rax, next);
                    return Ok(Done::Again);
                }
            },
        };
        if value == Errno::ENOSYS.as_return() {
            self.diag.log_once(
                Once::Hypercall(call.nr, sub),
                format_args!("hypercall {} sub-op {sub}: -ENOSYS", call.nr),
            );
        }
        Ok(Done::Return(value))
    }

    /// Passes the call to the core; `None` means a continuation was set up.
    fn core_hypercall(&mut self, call: Hypercall) -> core::result::Result<Option<i64>, Fatal> {
        // The core is borrowed mutably while it serves the call, so the caller's
        // memory is reached through the NPT, exactly as the guest's own accesses are.
        let mode = self.cpu.paging_mode();
        let mut mem = GuestVirtMemory {
            translate: Translate::Npt(self.cpu.vcpu().npt()),
            mode,
        };
        let outcome =
            self.hv
                .hypercall(Caller::Guest(self.domid), call, &mut mem, &mut HostFrames)?;
        self.sync_npt();
        if call.nr == nr::MEMORY_OP {
            // add_to_physmap(shared_info) may have just mapped the page the guest reads
            // its clock from; it must be valid the moment the guest looks.
            self.publish_time();
        }
        Ok(match outcome {
            Outcome::Return(v) => Some(v),
            Outcome::Continue(next) => {
                let v = self.cpu.vcpu_mut();
                v.save_mut().rax = next.nr;
                let r = v.regs_mut();
                [r.rdi, r.rsi, r.rdx, r.r10, r.r8] = next.args;
                None
            }
        })
    }

    /// `HYPERVISOR_sched_op` (decoded by the core): yield polls the devices,
    /// block idles, shutdown ends the run.
    fn sched_op(&mut self, cmd: u64, arg: CallerAddr) -> Result<i64> {
        let mut mem = caller_memory(&self.hv, self.domid, &self.cpu);
        match sched_op(&mut mem, cmd, arg)? {
            SchedOp::Yield => self.poll_devices(),
            SchedOp::Block => self.block(),
            SchedOp::Shutdown(reason) => self.shutdown(reason, "SCHEDOP_shutdown"),
        }
        Ok(0)
    }

    /// `HYPERVISOR_event_channel_op`, and the xenstore service when the guest sent
    /// on the store port (served synchronously, inside its EVTCHNOP_send).
    fn event_channel_op(&mut self, cmd: u64, arg: CallerAddr) -> Result<i64> {
        let dom = self.hv.domain(self.domid).ok_or(Errno::ESRCH)?;
        let mut mem = GuestVirtMemory {
            translate: Translate::P2m(dom),
            mode: self.cpu.paging_mode(),
        };
        let kicked = self
            .xen
            .event_channel_op(dom, &mut mem, &mut HostFrames, cmd, arg)?
            .is_some();
        if kicked {
            self.serve_store();
        } else {
            self.charge_platform_state();
        }
        Ok(0)
    }
}
