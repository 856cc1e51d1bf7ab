//! The exit loop: run the vCPU, then dispatch each #VMEXIT.
//!
//! Every exit either completes the instruction for the guest (CPUID, RDMSR/WRMSR,
//! IN/OUT, VMMCALL: RIP moves past it, computed by hand since QEMU's TCG has no
//! NRIP save), injects the fault real hardware would raise (#UD for the SVM
//! instructions the guest does not have, #GP for a bad MSR access or value),
//! reflects the #DB and #AC it intercepts, or crashes the domain with a report
//! saying why (nested page fault outside the p2m, triple fault, VMRUN refusing the
//! guest's state, an exit ebbhv does not expect, HLT with interrupts off): the
//! guest's fault ends the guest, never the hypervisor, which keeps serving the
//! control channel (`Machine::crash`). HLT with interrupts on
//! idles until the guest's next event; an INTR exit needs nothing more, because
//! the host interrupt behind it was taken on the way out of the world switch.
//! Before every entry the guest's timer is serviced and any pending vector
//! offered ([`crate::vcpu`]). The time each exit's handling takes (idling excluded)
//! is measured from the TSC; `ebbctl info` shows the longest by exit code
//! (`exit_max_us_*`).
//!
//! A new exit reason gets its arm here and its handler in the part that owns the
//! state it touches (usually [`crate::vcpu`]).

use ebbhv_core::addr::Gfn;
use ebbhv_core::p2m::EntryType;
use ebbhv_hal::clock;
use ebbhv_x86::vmcb::ExitCode;

use super::hypercalls::Done;
use super::{domain, Machine};
use crate::devices::power;
use crate::diagnostics::Once;
use crate::guest_memory::HostFrames;
use crate::vcpu::io::PortAccess;

/// The guest's early console port (Linux's `earlyprintk=xen` fallback).
const E9_PORT: u16 = 0xe9;

impl Machine {
    /// Runs the guest for good.
    pub fn run(&mut self) -> ! {
        loop {
            self.service_timer();
            let upcall = self
                .xen
                .pending_upcall(domain(&self.hv, self.domid), &mut HostFrames);
            self.cpu.offer_interrupt(upcall);
            self.cpu.vcpu_mut().run();
            self.cpu.after_exit();
            let code = self.cpu.vcpu().control().exit_code;
            let stats = self.diag.stats_mut();
            stats.exit(code);
            let (started, idle_before) = (clock::rdtsc(), stats.idle_ticks());
            self.dispatch_exit(code);
            self.remerge_split();
            let stats = self.diag.stats_mut();
            let idled = stats.idle_ticks().wrapping_sub(idle_before);
            stats.exit_took(
                code,
                clock::rdtsc().wrapping_sub(started).saturating_sub(idled),
            );
        }
    }

    fn dispatch_exit(&mut self, code: u64) {
        match ExitCode::decode(code) {
            Ok(ExitCode::Intr) => {}
            Ok(ExitCode::Cpuid) => self.cpu.cpuid_exit(self.xen.clocks().tsc_hz()),
            Ok(ExitCode::Msr) => self.cpu.msr_exit(&mut self.diag),
            Ok(ExitCode::Ioio) => self.io_exit(),
            Ok(ExitCode::Vmmcall) => match self.hypercall() {
                Ok(Done::Return(v)) => {
                    self.cpu.vcpu_mut().save_mut().rax = v as u64;
                    self.cpu.skip(3);
                }
                Ok(Done::Again) => {}
                Err(fatal) => self.crash(format_args!(
                    "the core cannot continue the guest: {fatal:?}"
                )),
            },
            Ok(ExitCode::Invd) => self.cpu.skip(2),
            Ok(ExitCode::Exception(vector)) => {
                if !self.cpu.reflect_exception(vector) {
                    self.crash(format_args!("unexpected exception {vector} intercepted"))
                }
            }
            Ok(
                ExitCode::Vmrun
                | ExitCode::Vmload
                | ExitCode::Vmsave
                | ExitCode::Stgi
                | ExitCode::Clgi
                | ExitCode::Skinit
                | ExitCode::Monitor
                | ExitCode::Mwait,
            ) => self.cpu.inject_ud(),
            Ok(ExitCode::Hlt) => {
                if !self.cpu.interrupts_enabled() {
                    // Nothing can wake it: no NMI source exists, and its events
                    // and timer are masked.
                    self.crash(format_args!("HLT with interrupts off"))
                }
                self.cpu.complete_hlt();
                self.block();
            }
            Ok(ExitCode::Npf) => {
                let c = self.cpu.vcpu().control();
                let (gpa, err) = (c.exit_info2, c.exit_info1);
                let gfn = Gfn(gpa >> 12);
                match domain(&self.hv, self.domid).p2m().entry(gfn) {
                    Some(e) if e.kind == EntryType::Broken => self.crash(format_args!(
                        "the guest touched gfn {:#x}, whose frame was reported broken (its contents are lost) and which it had not given back",
                        gfn.0
                    )),
                    // The nested tables mirror the p2m: a fault on a gfn the p2m
                    // maps is ebbhv's own inconsistency, reported as such.
                    Some(e) => self.crash(format_args!(
                        "nested page fault at gpa {gpa:#x} (error {err:#x}): the p2m maps it ({:?}, mfn {:#x}) but the nested tables do not",
                        e.kind, e.mfn.0
                    )),
                    None => self.crash(format_args!(
                        "nested page fault at gpa {gpa:#x} (error {err:#x}), outside the guest's p2m"
                    )),
                }
            }
            Ok(ExitCode::Shutdown) => self.crash(format_args!("triple fault (shutdown intercept)")),
            Ok(ExitCode::Invalid) => self.crash(format_args!(
                "VMRUN refused the guest's state (VMEXIT_INVALID)"
            )),
            Ok(other) => self.crash(format_args!("unexpected exit {other:?}")),
            Err(raw) => self.crash(format_args!("unknown exit code {raw:#x}")),
        }
    }

    /// IN/OUT: reads float high (in [`crate::vcpu::io`]); a write goes to the early
    /// console or the power registers.
    fn io_exit(&mut self) {
        let (port, access) = self.cpu.io_exit();
        self.diag.stats_mut().io_port(port);
        match access {
            PortAccess::Done => {}
            PortAccess::String(port) => self.diag.log_once(
                Once::StringIo(port),
                format_args!("string I/O on port {port:#x}: skipped"),
            ),
            PortAccess::Write(E9_PORT, byte) => self.devices.e9().write(&[byte]),
            PortAccess::Write(port, value) => {
                if let Some((reason, how)) = power::port_write(port, value) {
                    self.shutdown(reason, how)
                }
            }
        }
    }
}
