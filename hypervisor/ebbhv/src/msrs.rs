//! The guest's RDMSR/WRMSR exits.
//!
//! MSRs whose state lives in the VMCB (segment bases, SYSCALL/SYSENTER targets) or
//! is harmless (TSC_AUX) go straight to the hardware; every other MSR exits. EFER
//! is shadowed so that SVME stays set underneath the guest but is never shown to it;
//! PAT goes to the VMCB's G_PAT; APIC_BASE and the x2APIC range go to the virtual
//! local APIC; anything else reads as 0 and ignores writes, logged once per MSR.

use crate::msr;

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

use ebbhv_x86::lapic::{Gp, VLapic, APIC_BASE_VALUE};

use crate::guest::Machine;
use crate::msr::EFER_SVME;

/// MSR_IA32_TSC.
const TSC: u32 = 0x10;

/// RDMSR: the value, or #GP.
pub fn read(m: &mut Machine, msr: u32) -> Result<u64, Gp> {
    Ok(match msr {
        msr::EFER => m.vcpu.vmcb.save.efer & !EFER_SVME,
        msr::PAT => m.vcpu.vmcb.save.g_pat,
        msr::APIC_BASE => APIC_BASE_VALUE,
        TSC => crate::clock::rdtsc().wrapping_add(m.vcpu.vmcb.control.tsc_offset),
        x if VLapic::is_x2apic_msr(x) => return m.lapic.read(x),
        _ => {
            m.log_once(
                u64::MAX,
                u64::from(msr),
                format_args!("rdmsr {msr:#x}: reads as 0"),
            );
            0
        }
    })
}

/// WRMSR: Ok, or #GP.
pub fn write(m: &mut Machine, msr: u32, value: u64) -> Result<(), Gp> {
    match msr {
        msr::EFER => m.vcpu.vmcb.save.efer = value | EFER_SVME,
        msr::PAT => m.vcpu.vmcb.save.g_pat = value,
        msr::APIC_BASE if value & !0xfff == APIC_BASE_VALUE & !0xfff => {}
        msr::APIC_BASE => return Err(Gp),
        x if VLapic::is_x2apic_msr(x) => {
            m.lapic.write(x, value)?;
        }
        _ => m.log_once(
            u64::MAX - 1,
            u64::from(msr),
            format_args!("wrmsr {msr:#x} <- {value:#x}: ignored"),
        ),
    }
    Ok(())
}
