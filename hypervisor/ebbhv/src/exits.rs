//! The exit loop: run the vCPU, then handle each #VMEXIT.
//!
//! Every exit either completes the instruction for the guest (CPUID, RDMSR/WRMSR,
//! IN/OUT, VMMCALL: RIP moves past it, computed by hand since QEMU's TCG has no
//! NRIP save), injects the fault real hardware would raise (#UD for the SVM
//! instructions the guest does not have, #GP for a bad MSR access), or stops the run
//! with a report saying why (nested page fault outside the p2m, triple fault, an
//! exit ebbhv does not expect, HLT with interrupts off). HLT with interrupts on
//! idles until the guest's next event; an INTR exit needs nothing more, because
//! the host interrupt behind it was taken on the way out of the world switch.
//! Before every entry the guest's timer is serviced and any pending vector
//! offered ([`crate::events`]).

use ebbhv_x86::cpuid::{self, Context};
use ebbhv_x86::vmcb::{ExitCode, IoExit};

use crate::events;
use crate::exit::{exit_qemu, ExitCode as RunExit};
use crate::guest::Machine;
use crate::hypercall::{self, Done};
use crate::log;
use crate::msr::cpuid as host_cpuid;
use crate::msrs;
use crate::{power, stats, vtimer};

const UD: u8 = 6;
const GP: u8 = 13;
/// RFLAGS.IF.
const RFLAGS_IF: u64 = 1 << 9;
/// PIT channel 2's counter port.
const PIT_CHANNEL2: u16 = 0x42;

/// Runs the guest for good.
pub fn run(m: &mut Machine) -> ! {
    loop {
        vtimer::service(m);
        events::prepare_entry(m);
        m.vcpu.run();
        events::after_exit(m);
        let code = m.vcpu.vmcb.control.exit_code;
        m.stats.exit(code);
        match ExitCode::decode(code) {
            Ok(ExitCode::Intr) => {}
            Ok(ExitCode::Cpuid) => cpuid_exit(m),
            Ok(ExitCode::Msr) => msr_exit(m),
            Ok(ExitCode::Ioio) => io_exit(m),
            Ok(ExitCode::Vmmcall) => match hypercall::dispatch(m) {
                Ok(Done::Return(v)) => {
                    m.vcpu.vmcb.save.rax = v as u64;
                    m.vcpu.skip(3);
                }
                Ok(Done::Again) => {}
                Err(fatal) => stop(
                    m,
                    format_args!("the core cannot continue the guest: {fatal:?}"),
                ),
            },
            Ok(ExitCode::Invd) => m.vcpu.skip(2),
            Ok(
                ExitCode::Vmrun
                | ExitCode::Vmload
                | ExitCode::Vmsave
                | ExitCode::Stgi
                | ExitCode::Clgi
                | ExitCode::Skinit
                | ExitCode::Monitor
                | ExitCode::Mwait,
            ) => m.vcpu.inject_exception(UD, None),
            Ok(ExitCode::Hlt) => {
                if m.vcpu.vmcb.save.rflags & RFLAGS_IF == 0 {
                    stop(m, format_args!("guest executed HLT with interrupts off"))
                }
                m.vcpu.skip(1);
                m.vcpu.vmcb.control.interrupt_shadow = 0;
                vtimer::block(m);
            }
            Ok(ExitCode::Npf) => {
                let c = &m.vcpu.vmcb.control;
                let (gpa, err) = (c.exit_info2, c.exit_info1);
                stop(m, format_args!("nested page fault at gpa {gpa:#x} (error {err:#x}), outside the guest's p2m"))
            }
            Ok(ExitCode::Shutdown) => stop(m, format_args!("guest triple fault (shutdown)")),
            Ok(ExitCode::Invalid) => {
                stop(m, format_args!("VMRUN refused the VMCB (VMEXIT_INVALID)"))
            }
            Ok(other) => stop(m, format_args!("unexpected exit {other:?}")),
            Err(raw) => stop(m, format_args!("unknown exit code {raw:#x}")),
        }
    }
}

/// Prints a report on the guest's state and ends the run.
fn stop(m: &mut Machine, why: core::fmt::Arguments<'_>) -> ! {
    m.console.flush();
    m.e9.flush();
    let c = &m.vcpu.vmcb.control;
    let s = &m.vcpu.vmcb.save;
    let r = &m.vcpu.regs;
    log!("guest stopped: {why}");
    log!(
        "  exit {:#x} info1 {:#x} info2 {:#x} intinfo {:#x}",
        c.exit_code,
        c.exit_info1,
        c.exit_info2,
        c.exit_int_info
    );
    log!(
        "  rip {:#018x} rsp {:#018x} rflags {:#x} cs {:#x} cpl {}",
        s.rip,
        s.rsp,
        s.rflags,
        s.cs.selector,
        s.cpl
    );
    log!(
        "  rax {:#018x} rbx {:#018x} rcx {:#018x} rdx {:#018x}",
        s.rax,
        r.rbx,
        r.rcx,
        r.rdx
    );
    log!(
        "  rsi {:#018x} rdi {:#018x} rbp {:#018x} r8  {:#018x}",
        r.rsi,
        r.rdi,
        r.rbp,
        r.r8
    );
    log!(
        "  cr0 {:#x} cr2 {:#x} cr3 {:#x} cr4 {:#x} efer {:#x}",
        s.cr0,
        s.cr2,
        s.cr3,
        s.cr4,
        s.efer
    );
    stats::report(m, "guest stopped");
    exit_qemu(RunExit::GuestFatal)
}

fn cpuid_exit(m: &mut Machine) {
    let leaf = m.vcpu.vmcb.save.rax as u32;
    let sub = m.vcpu.regs.rcx as u32;
    let ctx = Context {
        guest_cr4: m.vcpu.vmcb.save.cr4,
        tsc_khz: (m.clocks.tsc_hz / 1000) as u32,
    };
    let [a, b, c, d] = cpuid::guest_leaf(leaf, sub, host_cpuid(leaf, sub), &ctx);
    m.vcpu.vmcb.save.rax = u64::from(a);
    m.vcpu.regs.rbx = u64::from(b);
    m.vcpu.regs.rcx = u64::from(c);
    m.vcpu.regs.rdx = u64::from(d);
    m.vcpu.skip(2);
}

fn msr_exit(m: &mut Machine) {
    let msr = m.vcpu.regs.rcx as u32;
    let result = if m.vcpu.vmcb.control.exit_info1 == 0 {
        msrs::read(m, msr).map(|v| {
            m.vcpu.vmcb.save.rax = v & 0xffff_ffff;
            m.vcpu.regs.rdx = v >> 32;
        })
    } else {
        let value = (m.vcpu.regs.rdx << 32) | (m.vcpu.vmcb.save.rax & 0xffff_ffff);
        msrs::write(m, msr, value)
    };
    match result {
        Ok(()) => m.vcpu.skip(2),
        Err(_) => m.vcpu.inject_exception(GP, Some(0)),
    }
}

fn io_exit(m: &mut Machine) {
    let io = IoExit::decode(m.vcpu.vmcb.control.exit_info1);
    let next = m.vcpu.vmcb.control.exit_info2;
    *m.stats.io_ports.entry(io.port).or_insert(0) += 1;
    if io.string {
        m.log_once(
            u64::MAX - 2,
            u64::from(io.port),
            format_args!("string I/O on port {:#x}: skipped", io.port),
        );
    } else if io.input {
        // No device: the bus floats high, which makes Linux find no PIC, PIT or RTC.
        // A 32-bit IN zero-extends into RAX; 8 and 16-bit ones keep the upper bits.
        // The exception is PIT channel 2's counter, which reads 0: Linux's quick
        // PIT calibration of the CPU clock polls it until its top byte leaves 0xFF,
        // 100 000 exits (about a second under TCG) that a 0 cuts to one.
        let all_ones = if io.port == PIT_CHANNEL2 { 0 } else { u64::MAX };
        let rax = &mut m.vcpu.vmcb.save.rax;
        *rax = match io.size {
            1 => (*rax & !0xff) | (all_ones & 0xff),
            2 => (*rax & !0xffff) | (all_ones & 0xffff),
            _ => all_ones & 0xffff_ffff,
        };
    } else if io.port == 0xe9 {
        let byte = m.vcpu.vmcb.save.rax as u8;
        m.e9.write(&[byte]);
    } else {
        power::port_write(m, io.port, m.vcpu.vmcb.save.rax as u8);
    }
    m.vcpu.vmcb.save.rip = next;
}
