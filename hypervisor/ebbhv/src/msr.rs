//! Model-specific registers ebbhv touches, as named constants with typed access.

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

/// Reads an MSR.
///
/// # Safety
///
/// The MSR must exist on this CPU (reading a missing one raises #GP in ebbhv).
pub unsafe fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the caller guarantees the MSR exists; RDMSR has no memory effects.
    unsafe {
        core::arch::asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Writes an MSR.
///
/// # Safety
///
/// The MSR must exist and the value must be one that keeps ebbhv running (EFER,
/// for one, controls long mode).
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller guarantees the MSR and value are valid; WRMSR has no memory
    // effects visible to the compiler.
    unsafe {
        core::arch::asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nostack, preserves_flags))
    };
}

/// Executes CPUID on the host.
pub fn cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    [r.eax, r.ebx, r.ecx, r.edx]
}
