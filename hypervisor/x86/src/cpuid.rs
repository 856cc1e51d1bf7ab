//! The guest's CPUID: the host's leaves with what the guest must not see taken out,
//! plus Xen's hypervisor leaves at 0x40000000.
//!
//! Hidden: SVM (the guest cannot nest), MONITOR/MWAIT (so that Linux idles with HLT,
//! which exits), LA57 (the hypercall walker does 4-level paging), TSC-deadline (QEMU
//! does not emulate it), SKINIT. Kept: AuthenticAMD, APIC and x2APIC (Linux needs a
//! local APIC for its Xen clock event). OSXSAVE and OSPKE follow the guest's CR4,
//! not the host's. The Xen leaves follow `xen/include/public/arch-x86/cpuid.h`.

/// The first Xen leaf.
pub const XEN_BASE: u32 = 0x4000_0000;
/// The Xen version the guest sees (the one `xen_version` reports).
pub const XEN_VERSION: u32 = ebbhv_core::abi::platform::xenver::REPORTED;

/// "XenVMMXenVMM" in EBX, ECX, EDX.
const XEN_SIGNATURE: [u32; 3] = [0x566e_6558, 0x6558_4d4d, 0x4d4d_566e];
/// `XEN_CPUID_TSC_MODE_NEVER_EMULATE`: the guest reads the TSC directly.
const XEN_TSC_MODE_NEVER_EMULATE: u32 = 2;
/// `XEN_HVM_CPUID_VCPU_ID_PRESENT`: EBX of leaf 4 holds the vCPU id.
const XEN_HVM_CPUID_VCPU_ID_PRESENT: u32 = 1 << 3;

const LEAF1_ECX_MONITOR: u32 = 1 << 3;
const LEAF1_ECX_X2APIC: u32 = 1 << 21;
const LEAF1_ECX_TSC_DEADLINE: u32 = 1 << 24;
const LEAF1_ECX_OSXSAVE: u32 = 1 << 27;
const LEAF1_ECX_HYPERVISOR: u32 = 1 << 31;
const LEAF1_EDX_APIC: u32 = 1 << 9;
const LEAF7_ECX_OSPKE: u32 = 1 << 4;
const LEAF7_ECX_LA57: u32 = 1 << 16;
const EXT1_ECX_SVM: u32 = 1 << 2;
const EXT1_ECX_SKINIT: u32 = 1 << 12;
const EXT1_ECX_MONITORX: u32 = 1 << 29;

const CR4_OSXSAVE: u64 = 1 << 18;
const CR4_PKE: u64 = 1 << 22;

/// What the answer depends on besides the host's own leaf.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    /// The guest's CR4 at the time of the CPUID.
    pub guest_cr4: u64,
    /// The TSC frequency in kHz (leaf 0x40000003).
    pub tsc_khz: u32,
}

/// The guest's CPUID result for `leaf`/`subleaf`, given the host's result `host`
/// (EAX, EBX, ECX, EDX).
pub fn guest_leaf(leaf: u32, subleaf: u32, host: [u32; 4], ctx: &Context) -> [u32; 4] {
    if (XEN_BASE..=0x4fff_ffff).contains(&leaf) {
        return xen_leaf(leaf, subleaf, ctx);
    }
    let [a, mut b, mut c, mut d] = host;
    match leaf {
        1 => {
            c &= !(LEAF1_ECX_MONITOR | LEAF1_ECX_TSC_DEADLINE | LEAF1_ECX_OSXSAVE);
            c |= LEAF1_ECX_X2APIC | LEAF1_ECX_HYPERVISOR;
            if ctx.guest_cr4 & CR4_OSXSAVE != 0 {
                c |= LEAF1_ECX_OSXSAVE;
            }
            d |= LEAF1_EDX_APIC;
            // Initial APIC id 0, one logical processor.
            b = (b & 0x0000_ffff) | (1 << 16);
        }
        5 => return [0; 4],
        7 if subleaf == 0 => {
            c &= !(LEAF7_ECX_LA57 | LEAF7_ECX_OSPKE);
            if ctx.guest_cr4 & CR4_PKE != 0 {
                c |= LEAF7_ECX_OSPKE;
            }
        }
        0x8000_0001 => c &= !(EXT1_ECX_SVM | EXT1_ECX_SKINIT | EXT1_ECX_MONITORX),
        0x8000_000a => return [0; 4],
        _ => {}
    }
    [a, b, c, d]
}

/// Xen's leaves; everything else in the hypervisor range is empty (no second
/// hypervisor signature at 0x40000100 and up).
fn xen_leaf(leaf: u32, subleaf: u32, ctx: &Context) -> [u32; 4] {
    match (leaf - XEN_BASE, subleaf) {
        (0, _) => [
            XEN_BASE + 4,
            XEN_SIGNATURE[0],
            XEN_SIGNATURE[1],
            XEN_SIGNATURE[2],
        ],
        (1, _) => [XEN_VERSION, 0, 0, 0],
        (2, _) => [1, XEN_BASE, 0, 0],
        (3, 0) => [0, XEN_TSC_MODE_NEVER_EMULATE, ctx.tsc_khz, 0],
        (4, 0) => [XEN_HVM_CPUID_VCPU_ID_PRESENT, 0, 0, 0],
        _ => [0; 4],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CTX: Context = Context {
        guest_cr4: 0,
        tsc_khz: 2_000_000,
    };

    #[test]
    fn xen_leaves() {
        let r = guest_leaf(XEN_BASE, 0, [0x1234; 4], &CTX);
        assert_eq!(r[0], 0x4000_0004);
        let mut sig = [0u8; 12];
        for (i, w) in r[1..].iter().enumerate() {
            sig[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        assert_eq!(&sig, b"XenVMMXenVMM");
        assert_eq!(
            guest_leaf(0x4000_0001, 0, [7; 4], &CTX),
            [XEN_VERSION, 0, 0, 0]
        );
        assert_eq!(
            guest_leaf(0x4000_0002, 0, [7; 4], &CTX),
            [1, XEN_BASE, 0, 0]
        );
        assert_eq!(guest_leaf(0x4000_0003, 0, [7; 4], &CTX)[2], 2_000_000);
        assert_eq!(
            guest_leaf(0x4000_0004, 0, [7; 4], &CTX),
            [XEN_HVM_CPUID_VCPU_ID_PRESENT, 0, 0, 0]
        );
        assert_eq!(
            guest_leaf(0x4000_0100, 0, [7; 4], &CTX),
            [0; 4],
            "no second hypervisor"
        );
    }

    #[test]
    fn hides_svm_monitor_la57_and_keeps_apic() {
        let all = [u32::MAX; 4];
        let l1 = guest_leaf(1, 0, all, &CTX);
        assert_eq!(l1[2] & LEAF1_ECX_MONITOR, 0);
        assert_eq!(l1[2] & LEAF1_ECX_OSXSAVE, 0, "follows the guest's CR4");
        assert_ne!(l1[2] & LEAF1_ECX_X2APIC, 0);
        assert_ne!(l1[2] & LEAF1_ECX_HYPERVISOR, 0);
        assert_ne!(l1[3] & LEAF1_EDX_APIC, 0);
        assert_eq!(l1[1] >> 24, 0, "APIC id 0");
        let cr4 = Context {
            guest_cr4: CR4_OSXSAVE,
            ..CTX
        };
        assert_ne!(guest_leaf(1, 0, all, &cr4)[2] & LEAF1_ECX_OSXSAVE, 0);
        assert_eq!(guest_leaf(7, 0, all, &CTX)[2] & LEAF7_ECX_LA57, 0);
        assert_eq!(guest_leaf(0x8000_0001, 0, all, &CTX)[2] & EXT1_ECX_SVM, 0);
        assert_eq!(guest_leaf(0x8000_000a, 0, all, &CTX), [0; 4]);
        assert_eq!(guest_leaf(0, 0, [0xd, 1, 2, 3], &CTX), [0xd, 1, 2, 3]);
    }
}
