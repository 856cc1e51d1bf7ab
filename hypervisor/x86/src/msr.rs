//! Model-specific registers ebbhv touches or serves to its guest, by number
//! (AMD APM vol. 2, appendix A; Intel SDM vol. 4).

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

/// MSR_IA32_TSC.
pub const TSC: u32 = 0x10;
