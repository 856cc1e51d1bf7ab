//! The guest's RDMSR/WRMSR exits.
//!
//! MSRs whose state lives in the VMCB (segment bases, SYSCALL/SYSENTER targets) or
//! is harmless (TSC_AUX) go straight to the hardware ([`PASS_THROUGH`]); every
//! other MSR exits. EFER is shadowed so that SVME stays set underneath the guest
//! but is never shown to it; PAT goes to the VMCB's G_PAT; a value VMRUN would
//! refuse in either gets #GP (`ebbhv_x86::msr::guest_efer_write`,
//! `guest_pat_valid`), so a guest cannot stop its own VMRUN; APIC_BASE and the
//! x2APIC range go to the virtual local APIC; anything else reads as 0 and ignores
//! writes, logged once per MSR.

use ebbhv_x86::lapic::{Gp, VLapic, APIC_BASE_VALUE};
use ebbhv_x86::msr::{self, guest_efer_write, guest_pat_valid, EFER_SVME};

use super::Cpu;
use crate::diagnostics::{Diagnostics, Once};

/// MSRs the guest reads and writes without an exit.
pub const PASS_THROUGH: &[u32] = &[
    msr::FS_BASE,
    msr::GS_BASE,
    msr::KERNEL_GS_BASE,
    msr::TSC_AUX,
    msr::STAR,
    msr::LSTAR,
    msr::CSTAR,
    msr::SFMASK,
    msr::SYSENTER_CS,
    msr::SYSENTER_ESP,
    msr::SYSENTER_EIP,
];

impl Cpu {
    /// The RDMSR/WRMSR exit: completes the instruction, or injects #GP.
    pub fn msr_exit(&mut self, diag: &mut Diagnostics) {
        let msr = self.vcpu.regs().rcx as u32;
        let result = if self.vcpu.control().exit_info1 == 0 {
            self.read_msr(diag, msr).map(|v| {
                self.vcpu.save_mut().rax = v & 0xffff_ffff;
                self.vcpu.regs_mut().rdx = v >> 32;
            })
        } else {
            let value = (self.vcpu.regs().rdx << 32) | (self.vcpu.save().rax & 0xffff_ffff);
            self.write_msr(diag, msr, value)
        };
        match result {
            Ok(()) => self.skip(2),
            Err(_) => self.inject_gp(),
        }
    }

    /// RDMSR: the value, or #GP.
    fn read_msr(&mut self, diag: &mut Diagnostics, msr: u32) -> Result<u64, Gp> {
        let s = self.vcpu.save();
        Ok(match msr {
            msr::EFER => s.efer & !EFER_SVME,
            msr::PAT => s.g_pat,
            msr::APIC_BASE => APIC_BASE_VALUE,
            msr::TSC => ebbhv_hal::clock::rdtsc().wrapping_add(self.vcpu.control().tsc_offset),
            x if VLapic::is_x2apic_msr(x) => return self.lapic.read(x),
            _ => {
                diag.log_once(Once::Rdmsr(msr), format_args!("rdmsr {msr:#x}: reads as 0"));
                0
            }
        })
    }

    /// WRMSR: Ok, or #GP.
    fn write_msr(&mut self, diag: &mut Diagnostics, msr: u32, value: u64) -> Result<(), Gp> {
        match msr {
            msr::EFER => {
                let s = self.vcpu.save();
                let efer = guest_efer_write(s.efer & !EFER_SVME, value, s.cr0, self.efer_extra)?;
                self.vcpu.save_mut().efer = efer | EFER_SVME;
            }
            msr::PAT if guest_pat_valid(value) => self.vcpu.save_mut().g_pat = value,
            msr::PAT => return Err(Gp),
            msr::APIC_BASE if value & !0xfff == APIC_BASE_VALUE & !0xfff => {}
            msr::APIC_BASE => return Err(Gp),
            x if VLapic::is_x2apic_msr(x) => {
                self.lapic.write(x, value)?;
            }
            _ => diag.log_once(
                Once::Wrmsr(msr),
                format_args!("wrmsr {msr:#x} <- {value:#x}: ignored"),
            ),
        }
        Ok(())
    }
}
