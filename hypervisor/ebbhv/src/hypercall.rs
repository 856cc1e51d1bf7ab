//! VMMCALL: the Xen hypercall dispatcher.
//!
//! RAX holds the hypercall number, RDI RSI RDX R10 R8 the arguments, and the result
//! goes back in RAX. Memory ops (and anything else the platform does not serve
//! itself) go to the core, with the caller's memory reached through its page tables
//! and the NPT; the platform serves xen_version, console_io, vcpu_op, hvm_op,
//! sched_op, set_timer_op and event_channel_op (through the core's port table,
//! [`crate::events`]) from the state in [`Machine`]. Anything unsupported returns
//! `-ENOSYS`, logged once per (hypercall, sub-op): grant_table_op among them, so
//! Linux falls back to grant table v1 with 4 frames, which it maps with
//! add_to_physmap (served by the core).

use ebbhv_core::addr::{CallerAddr, DomId, Gfn};
use ebbhv_core::error::{Errno, Fatal};
use ebbhv_core::guest::GuestMemory;
use ebbhv_core::hypercall::{Caller, Hypercall, Outcome};
use ebbhv_x86::cpuid::XEN_VERSION;
use ebbhv_x86::xen::{
    self, consoleio, feature, hvmop, hypercall as nr, schedop, vcpuop, xenver, FeatureInfo,
    HvmParam, RegisterVcpuInfo, RunstateInfo, SchedShutdown, SingleshotTimer, VCPU_SSHOTTMR_FUTURE,
};

use crate::guest::{Machine, VcpuInfoPlace};
use crate::loader::DOMID;
use crate::log;
use crate::platform::{GuestVirtMemory, HostFrames, Translate};
use crate::{events, power, stats, vtimer};

/// How the hypercall ended for the vCPU.
pub enum Done {
    /// Put the value in RAX and move past the VMMCALL.
    Return(i64),
    /// Re-issue: RIP stays on the VMMCALL, the arguments were rewritten.
    Again,
}

type Result<T> = core::result::Result<T, Errno>;

/// Handles the VMMCALL the guest just made.
pub fn dispatch(m: &mut Machine) -> core::result::Result<Done, Fatal> {
    let r = &m.vcpu.regs;
    let call = Hypercall {
        nr: m.vcpu.vmcb.save.rax,
        args: [r.rdi, r.rsi, r.rdx, r.r10, r.r8],
    };
    let sub = if call.nr == nr::MEMORY_OP {
        call.args[0] & 0x3f
    } else {
        call.args[0]
    };
    m.stats.hypercall(call.nr, sub);
    let platform = match call.nr {
        nr::XEN_VERSION => Some(xen_version(m, call.args[0], CallerAddr(call.args[1]))),
        nr::CONSOLE_IO => Some(console_io(m, call.args)),
        nr::VCPU_OP => Some(vcpu_op(m, call.args)),
        nr::HVM_OP => Some(hvm_op(m, call.args[0], CallerAddr(call.args[1]))),
        nr::SCHED_OP => Some(sched_op(m, call.args[0], CallerAddr(call.args[1]))),
        nr::EVENT_CHANNEL_OP => Some(events::event_channel_op(
            m,
            call.args[0],
            CallerAddr(call.args[1]),
        )),
        nr::SET_TIMER_OP => {
            vtimer::set(m, (call.args[0] != 0).then_some(call.args[0]));
            Some(Ok(0))
        }
        nr::GRANT_TABLE_OP | nr::PHYSDEV_OP | nr::VM_ASSIST => Some(Err(Errno::ENOSYS)),
        _ => None,
    };
    let value = match platform {
        Some(result) => result.unwrap_or_else(Errno::as_return),
        None => match core_hypercall(m, call)? {
            Some(v) => v,
            None => return Ok(Done::Again),
        },
    };
    if value == Errno::ENOSYS.as_return() {
        m.log_once(
            call.nr,
            sub,
            format_args!("hypercall {} sub-op {sub}: -ENOSYS", call.nr),
        );
    }
    Ok(Done::Return(value))
}

/// Passes the call to the core; `None` means a continuation was set up.
fn core_hypercall(m: &mut Machine, call: Hypercall) -> core::result::Result<Option<i64>, Fatal> {
    let mode = m.paging_mode();
    let mut mem = GuestVirtMemory {
        translate: Translate::Npt(&m.npt),
        mode,
    };
    let outcome =
        m.hv.hypercall(Caller::Guest(DOMID), call, &mut mem, &mut HostFrames)?;
    m.sync_npt();
    if call.nr == nr::MEMORY_OP {
        // add_to_physmap(shared_info) may have just mapped the page the guest reads
        // its clock from; it must be valid the moment the guest looks.
        m.publish_time();
    }
    Ok(match outcome {
        Outcome::Return(v) => Some(v),
        Outcome::Continue(next) => {
            let r = &mut m.vcpu.regs;
            m.vcpu.vmcb.save.rax = next.nr;
            [r.rdi, r.rsi, r.rdx, r.r10, r.r8] = next.args;
            None
        }
    })
}

fn write_str(mem: &mut GuestVirtMemory<'_>, at: CallerAddr, s: &[u8], len: usize) -> Result<i64> {
    let mut buf = [0u8; 1024];
    let n = s.len().min(len - 1);
    buf[..n].copy_from_slice(&s[..n]);
    mem.write(at, &buf[..len]).map_err(|_| Errno::EFAULT)?;
    Ok(0)
}

fn xen_version(m: &mut Machine, cmd: u64, arg: CallerAddr) -> Result<i64> {
    let mut mem = m.guest_memory();
    match cmd {
        xenver::VERSION => Ok(i64::from(XEN_VERSION)),
        xenver::EXTRAVERSION => write_str(&mut mem, arg, b".0-ebbhv", 16),
        xenver::CAPABILITIES => write_str(&mut mem, arg, b"hvm-3.0-x86_64", 1024),
        xenver::CHANGESET => write_str(&mut mem, arg, b"ebbhv", 64),
        xenver::GUEST_HANDLE => write_str(&mut mem, arg, b"", 16),
        xenver::PAGESIZE => Ok(4096),
        xenver::GET_FEATURES => {
            let mut b = [0u8; FeatureInfo::SIZE];
            mem.read(arg, &mut b).map_err(|_| Errno::EFAULT)?;
            let mut fi = FeatureInfo::read_from(&b).ok_or(Errno::EFAULT)?;
            fi.submap = match fi.submap_idx {
                0 => {
                    feature::WRITABLE_PAGE_TABLES
                        | feature::AUTO_TRANSLATED_PHYSMAP
                        | feature::HVM_CALLBACK_VECTOR
                        | feature::HVM_SAFE_PVCLOCK
                }
                _ => 0,
            };
            mem.write(arg, &fi.to_bytes()).map_err(|_| Errno::EFAULT)?;
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// Most bytes one console_io write prints (Linux writes in smaller chunks).
const CONSOLE_CHUNK: usize = 4096;

fn console_io(m: &mut Machine, args: [u64; 5]) -> Result<i64> {
    match args[0] {
        consoleio::WRITE => {
            let len = (args[1] as usize).min(CONSOLE_CHUNK);
            let mut buf = [0u8; CONSOLE_CHUNK];
            m.guest_memory()
                .read(CallerAddr(args[2]), &mut buf[..len])
                .map_err(|_| Errno::EFAULT)?;
            m.console.write(&buf[..len]);
            if m.console.take_seen() {
                m.console.flush();
                stats::report(m, "boot to /init");
            }
            Ok(0)
        }
        consoleio::READ => {
            let len = (args[1] as usize).min(CONSOLE_CHUNK);
            let mut buf = [0u8; CONSOLE_CHUNK];
            let n = m.console_in.read(&mut buf[..len]);
            m.guest_memory()
                .write(CallerAddr(args[2]), &buf[..n])
                .map_err(|_| Errno::EFAULT)?;
            Ok(n as i64)
        }
        _ => Err(Errno::ENOSYS),
    }
}

fn vcpu_op(m: &mut Machine, args: [u64; 5]) -> Result<i64> {
    let (cmd, vcpu, arg) = (args[0], args[1], CallerAddr(args[2]));
    if vcpu != 0 {
        return Err(Errno::ENOENT);
    }
    match cmd {
        vcpuop::IS_UP => Ok(1),
        vcpuop::REGISTER_VCPU_INFO => {
            let mut b = [0u8; RegisterVcpuInfo::SIZE];
            m.guest_memory()
                .read(arg, &mut b)
                .map_err(|_| Errno::EFAULT)?;
            let req = RegisterVcpuInfo::read_from(&b).ok_or(Errno::EFAULT)?;
            let offset = req.offset as usize;
            if offset + xen::VCPU_INFO_SIZE > 4096 || m.vcpu_info.is_some() {
                return Err(Errno::EINVAL);
            }
            let gfn = Gfn(req.mfn);
            let dom = m.hv.domain(DOMID).ok_or(Errno::ESRCH)?;
            match dom.p2m().entry(gfn) {
                Some(e) if e.kind.is_ram() => {}
                _ => return Err(Errno::EINVAL),
            }
            m.vcpu_info = Some(VcpuInfoPlace { gfn, offset });
            log!("vcpu_info of vCPU 0 at gfn {:#x} + {:#x}", gfn.0, offset);
            m.publish_time();
            Ok(0)
        }
        vcpuop::REGISTER_RUNSTATE_MEMORY_AREA => {
            let mut b = [0u8; 8];
            m.guest_memory()
                .read(arg, &mut b)
                .map_err(|_| Errno::EFAULT)?;
            let area = u64::from_le_bytes(b);
            let info = RunstateInfo {
                state_entry_time: m.system_time_ns(),
                ..Default::default()
            };
            m.guest_memory()
                .write(CallerAddr(area), &info.to_bytes())
                .map_err(|_| Errno::EFAULT)?;
            m.runstate = Some(area);
            log!("runstate area of vCPU 0 at gva {area:#x}");
            Ok(0)
        }
        vcpuop::REGISTER_VCPU_TIME_MEMORY_AREA => {
            // The pvclock record never changes after boot (a stable TSC, one
            // scale), so one copy at registration keeps the guest's vDSO copy
            // current; a NULL address unregisters.
            let mut b = [0u8; 8];
            m.guest_memory()
                .read(arg, &mut b)
                .map_err(|_| Errno::EFAULT)?;
            let area = u64::from_le_bytes(b);
            if area != 0 {
                let time = m.time_info().to_bytes();
                m.guest_memory()
                    .write(CallerAddr(area), &time)
                    .map_err(|_| Errno::EFAULT)?;
            }
            Ok(0)
        }
        vcpuop::SET_SINGLESHOT_TIMER => {
            let mut b = [0u8; SingleshotTimer::SIZE];
            m.guest_memory()
                .read(arg, &mut b)
                .map_err(|_| Errno::EFAULT)?;
            let t = SingleshotTimer::read_from(&b).ok_or(Errno::EFAULT)?;
            if t.flags & VCPU_SSHOTTMR_FUTURE != 0 && t.timeout_abs_ns < m.system_time_ns() {
                return Err(Errno::ETIME);
            }
            vtimer::set(m, Some(t.timeout_abs_ns));
            Ok(0)
        }
        vcpuop::STOP_SINGLESHOT_TIMER => {
            vtimer::set(m, None);
            Ok(0)
        }
        vcpuop::STOP_PERIODIC_TIMER => Ok(0),
        _ => Err(Errno::ENOSYS),
    }
}

fn hvm_op(m: &mut Machine, cmd: u64, arg: CallerAddr) -> Result<i64> {
    if cmd != hvmop::SET_PARAM && cmd != hvmop::GET_PARAM {
        return Err(Errno::ENOSYS);
    }
    let mut b = [0u8; HvmParam::SIZE];
    m.guest_memory()
        .read(arg, &mut b)
        .map_err(|_| Errno::EFAULT)?;
    let mut p = HvmParam::read_from(&b).ok_or(Errno::EFAULT)?;
    if p.domid != DomId::SELF.0 && p.domid != DOMID.0 {
        return Err(Errno::EPERM);
    }
    let slot = m.params.get_mut(p.index as usize).ok_or(Errno::EINVAL)?;
    if cmd == hvmop::SET_PARAM {
        *slot = p.value;
        log!("hvm param {} set to {:#x}", p.index, p.value);
        return Ok(0);
    }
    p.value = *slot;
    m.guest_memory()
        .write(arg, &p.to_bytes())
        .map_err(|_| Errno::EFAULT)?;
    Ok(0)
}

fn sched_op(m: &mut Machine, cmd: u64, arg: CallerAddr) -> Result<i64> {
    match cmd {
        schedop::YIELD => {
            vtimer::poll_devices(m);
            Ok(0)
        }
        schedop::BLOCK => {
            vtimer::block(m);
            Ok(0)
        }
        schedop::SHUTDOWN => {
            let mut b = [0u8; SchedShutdown::SIZE];
            m.guest_memory()
                .read(arg, &mut b)
                .map_err(|_| Errno::EFAULT)?;
            let reason = SchedShutdown::read_from(&b).ok_or(Errno::EFAULT)?.reason;
            power::shutdown(m, reason, "SCHEDOP_shutdown")
        }
        _ => Err(Errno::ENOSYS),
    }
}
