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
