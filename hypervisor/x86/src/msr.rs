//! Model-specific registers ebbhv touches or serves to its guest, by number
//! (AMD APM vol. 2, appendix A; Intel SDM vol. 4), and the checks of the values a
//! guest writes to the ones that end up in the VMCB.
//!
//! A value VMRUN's consistency checks refuse (reserved EFER bits, a PAT entry of
//! a reserved memory type) would fail the next VMRUN with VMEXIT_INVALID; as on
//! real hardware (and in Xen's `hvm_set_efer` and `hvm_set_guest_pat`) the
//! WRMSR raises #GP instead and the old value stays.

use crate::lapic::Gp;

/// EFER.
pub const EFER: u32 = 0xc000_0080;
/// The host save area for VMRUN (`VM_HSAVE_PA`).
pub const VM_HSAVE_PA: u32 = 0xc001_0117;
/// SVM control (`VM_CR`).
pub const VM_CR: u32 = 0xc001_0114;
/// IA32_APIC_BASE.
pub const APIC_BASE: u32 = 0x1b;
/// PAT.
pub const PAT: u32 = 0x277;
/// FS base.
pub const FS_BASE: u32 = 0xc000_0100;
/// GS base.
pub const GS_BASE: u32 = 0xc000_0101;
/// Kernel GS base (SWAPGS).
pub const KERNEL_GS_BASE: u32 = 0xc000_0102;
/// TSC_AUX (RDTSCP / RDPID).
pub const TSC_AUX: u32 = 0xc000_0103;
/// STAR, LSTAR, CSTAR, SFMASK: SYSCALL targets.
pub const STAR: u32 = 0xc000_0081;
/// LSTAR.
pub const LSTAR: u32 = 0xc000_0082;
/// CSTAR.
pub const CSTAR: u32 = 0xc000_0083;
/// SFMASK.
pub const SFMASK: u32 = 0xc000_0084;
/// SYSENTER_CS, SYSENTER_ESP, SYSENTER_EIP.
pub const SYSENTER_CS: u32 = 0x174;
/// SYSENTER_ESP.
pub const SYSENTER_ESP: u32 = 0x175;
/// SYSENTER_EIP.
pub const SYSENTER_EIP: u32 = 0x176;

/// EFER.SVME: SVM enabled.
pub const EFER_SVME: u64 = 1 << 12;
/// EFER.SCE: SYSCALL enabled.
pub const EFER_SCE: u64 = 1 << 0;
/// EFER.LME: long mode enabled.
pub const EFER_LME: u64 = 1 << 8;
/// EFER.LMA: long mode active (set by the CPU; writes cannot change it).
pub const EFER_LMA: u64 = 1 << 10;
/// EFER.NXE: no-execute enabled.
pub const EFER_NXE: u64 = 1 << 11;
/// EFER.AUTOIBRS: automatic IBRS, valid only where CPUID 0x80000021 EAX[8] says.
pub const EFER_AUTOIBRS: u64 = 1 << 21;
/// The EFER bits every guest may set. SVME is not among them: the guest sees no
/// SVM (ebbhv keeps it set underneath).
pub const EFER_GUEST_BITS: u64 = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
/// CR0.PG, which freezes EFER.LME.
const CR0_PG: u64 = 1 << 31;

/// The EFER the guest sees after it writes `value`, given its current EFER
/// (without SVME), its CR0, and the bits its CPU offers besides
/// [`EFER_GUEST_BITS`] (`extra`, e.g. [`EFER_AUTOIBRS`]); #GP for a reserved bit
/// or a change of LME while paging is on. LMA keeps the CPU's value.
pub fn guest_efer_write(current: u64, value: u64, cr0: u64, extra: u64) -> Result<u64, Gp> {
    if value & !(EFER_GUEST_BITS | extra) != 0 {
        return Err(Gp);
    }
    if cr0 & CR0_PG != 0 && (value ^ current) & EFER_LME != 0 {
        return Err(Gp);
    }
    Ok((value & !EFER_LMA) | (current & EFER_LMA))
}

/// Whether every entry of the PAT `value` names a defined memory type (UC, WC,
/// WT, WP, WB, UC-; types 2 and 3 and anything above 7 are reserved).
pub fn guest_pat_valid(value: u64) -> bool {
    value
        .to_le_bytes()
        .iter()
        .all(|t| matches!(t, 0 | 1 | 4 | 5 | 6 | 7))
}

/// MSR_IA32_TSC.
pub const TSC: u32 = 0x10;

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux's values: EFER in long mode, and its PAT (WB, WC, UC-, UC, WB, WP, UC-, WT).
    const LINUX_EFER: u64 = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
    const LINUX_PAT: u64 = 0x0407_0106_0007_0106;
    const PAGING: u64 = CR0_PG | 1;

    #[test]
    fn efer_takes_the_guest_bits_and_keeps_lma() {
        assert_eq!(
            guest_efer_write(LINUX_EFER, LINUX_EFER, PAGING, 0),
            Ok(LINUX_EFER)
        );
        // Clearing LMA by a write does not leave long mode.
        assert_eq!(
            guest_efer_write(LINUX_EFER, EFER_SCE | EFER_LME, PAGING, 0),
            Ok(EFER_SCE | EFER_LME | EFER_LMA)
        );
        // PVH entry: paging off, long mode enabled before paging.
        assert_eq!(guest_efer_write(0, EFER_LME, 1, 0), Ok(EFER_LME));
    }

    #[test]
    fn efer_reserved_bits_and_lme_under_paging_raise_gp() {
        assert_eq!(
            guest_efer_write(LINUX_EFER, LINUX_EFER | 1 << 1, PAGING, 0),
            Err(Gp)
        );
        assert_eq!(
            guest_efer_write(LINUX_EFER, LINUX_EFER | 1 << 63, PAGING, 0),
            Err(Gp)
        );
        assert_eq!(
            guest_efer_write(LINUX_EFER, LINUX_EFER | EFER_SVME, PAGING, 0),
            Err(Gp)
        );
        assert_eq!(
            guest_efer_write(LINUX_EFER, LINUX_EFER | EFER_AUTOIBRS, PAGING, 0),
            Err(Gp)
        );
        assert_eq!(
            guest_efer_write(
                LINUX_EFER,
                LINUX_EFER | EFER_AUTOIBRS,
                PAGING,
                EFER_AUTOIBRS
            ),
            Ok(LINUX_EFER | EFER_AUTOIBRS)
        );
        assert_eq!(
            guest_efer_write(LINUX_EFER, EFER_SCE | EFER_NXE, PAGING, 0),
            Err(Gp)
        );
        assert_eq!(
            guest_efer_write(EFER_SCE, EFER_SCE | EFER_LME, PAGING, 0),
            Err(Gp)
        );
    }

    #[test]
    fn pat_entries_must_be_defined_memory_types() {
        assert!(guest_pat_valid(LINUX_PAT));
        assert!(guest_pat_valid(0));
        assert!(!guest_pat_valid((LINUX_PAT & !0xff) | 0x02));
        assert!(!guest_pat_valid(0x0300_0000_0000_0000));
        assert!(!guest_pat_valid(0x0000_0000_0800_0000));
        assert!(!guest_pat_valid(u64::MAX));
    }
}
