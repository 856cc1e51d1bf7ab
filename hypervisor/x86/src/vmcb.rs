//! The SVM virtual machine control block (AMD APM vol. 2, appendix B, "Layout of
//! VMCB"), the intercept bits ebbhv uses and the #VMEXIT codes it handles.
//!
//! The layout is checked field by field at compile time against the offsets in
//! tables B-1 (control area) and B-2 (state save area). Fields ebbhv never touches
//! are folded into explicit `reserved`/`unused` byte arrays.

use core::mem::{offset_of, size_of};

/// A segment register in the save area: selector, attributes in the VMCB's packed
/// form (type/S/DPL/P in bits 0..7, AVL/L/DB/G in bits 8..11), limit and base.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    /// Selector.
    pub selector: u16,
    /// Packed attributes.
    pub attrib: u16,
    /// Limit (in bytes, already scaled by G).
    pub limit: u32,
    /// Base address.
    pub base: u64,
}
const _: () = assert!(size_of::<Segment>() == 16);

impl Segment {
    /// A flat 4 GiB segment with the given selector and packed attributes.
    pub const fn flat(selector: u16, attrib: u16) -> Segment {
        Segment {
            selector,
            attrib,
            limit: 0xffff_ffff,
            base: 0,
        }
    }
}

/// Packed attributes: 32-bit code, execute/read, accessed, present, DB, G.
pub const ATTR_CODE32: u16 = 0xc9b;
/// Packed attributes: read/write data, accessed, present, DB, G.
pub const ATTR_DATA32: u16 = 0xc93;
/// Packed attributes: busy 32-bit TSS, present.
pub const ATTR_TSS_BUSY: u16 = 0x8b;
/// Packed attributes: LDT, present.
pub const ATTR_LDT: u16 = 0x82;

/// The control area (table B-1), 1 KiB.
#[repr(C)]
pub struct Control {
    /// Bits 0..15 intercept CR0..15 reads, 16..31 writes.
    pub intercept_cr: u32,
    /// Bits 0..15 intercept DR0..15 reads, 16..31 writes.
    pub intercept_dr: u32,
    /// Bit n intercepts exception vector n.
    pub intercept_exceptions: u32,
    /// Intercept vector 3 (`INTERCEPT_*` in word 3).
    pub intercept_misc1: u32,
    /// Intercept vector 4 (`INTERCEPT2_*`).
    pub intercept_misc2: u32,
    /// Intercept vector 5.
    pub intercept_misc3: u32,
    /// Reserved.
    pub reserved_18: [u8; 0x24],
    /// Pause filter threshold.
    pub pause_filter_threshold: u16,
    /// Pause filter count.
    pub pause_filter_count: u16,
    /// Physical address of the 12 KiB I/O permission map.
    pub iopm_base_pa: u64,
    /// Physical address of the 8 KiB MSR permission map.
    pub msrpm_base_pa: u64,
    /// Added to the TSC the guest reads.
    pub tsc_offset: u64,
    /// The guest's ASID (never 0).
    pub guest_asid: u32,
    /// `TLB_CONTROL_*`.
    pub tlb_control: u8,
    /// Reserved.
    pub reserved_5d: [u8; 3],
    /// V_TPR, V_IRQ, V_INTR_PRIO, V_IGN_TPR, V_INTR_MASKING, V_INTR_VECTOR (`VINTR_*`).
    pub vintr: u64,
    /// Bit 0: the guest is in an interrupt shadow.
    pub interrupt_shadow: u64,
    /// The #VMEXIT code.
    pub exit_code: u64,
    /// Exit-specific information 1.
    pub exit_info1: u64,
    /// Exit-specific information 2.
    pub exit_info2: u64,
    /// An event that was being delivered when the exit happened.
    pub exit_int_info: u64,
    /// Bit 0 enables nested paging.
    pub np_control: u64,
    /// AVIC APIC BAR (unused).
    pub avic_apic_bar: u64,
    /// GHCB address (unused).
    pub ghcb_pa: u64,
    /// Event to inject at the next VMRUN (`EVENTINJ_*`).
    pub event_inj: u64,
    /// Nested page table root (host-physical).
    pub n_cr3: u64,
    /// LBR virtualisation enable.
    pub lbr_virt: u64,
    /// VMCB clean bits (QEMU ignores them; ebbhv leaves them 0 = all dirty).
    pub clean_bits: u32,
    /// Reserved.
    pub reserved_c4: u32,
    /// Next RIP (only with NRIP save, which QEMU's TCG lacks).
    pub next_rip: u64,
    /// Bytes fetched (decode assists, unused).
    pub insn_len: u8,
    /// Instruction bytes (decode assists, unused).
    pub insn_bytes: [u8; 15],
    /// Reserved and AVIC fields ebbhv does not use.
    pub reserved_e0: [u8; 0x320],
}

/// The state save area (table B-2), 3 KiB.
#[repr(C)]
pub struct Save {
    /// ES.
    pub es: Segment,
    /// CS.
    pub cs: Segment,
    /// SS.
    pub ss: Segment,
    /// DS.
    pub ds: Segment,
    /// FS.
    pub fs: Segment,
    /// GS.
    pub gs: Segment,
    /// GDTR (base and limit only).
    pub gdtr: Segment,
    /// LDTR.
    pub ldtr: Segment,
    /// IDTR (base and limit only).
    pub idtr: Segment,
    /// TR.
    pub tr: Segment,
    /// Reserved.
    pub reserved_a0: [u8; 0x2b],
    /// Current privilege level.
    pub cpl: u8,
    /// Reserved.
    pub reserved_cc: u32,
    /// EFER (SVME must stay set).
    pub efer: u64,
    /// Reserved.
    pub reserved_d8: [u8; 0x70],
    /// CR4.
    pub cr4: u64,
    /// CR3.
    pub cr3: u64,
    /// CR0.
    pub cr0: u64,
    /// DR7.
    pub dr7: u64,
    /// DR6.
    pub dr6: u64,
    /// RFLAGS.
    pub rflags: u64,
    /// RIP.
    pub rip: u64,
    /// Reserved.
    pub reserved_180: [u8; 0x58],
    /// RSP.
    pub rsp: u64,
    /// S_CET, SSP, ISST_ADDR (unused).
    pub cet: [u64; 3],
    /// RAX.
    pub rax: u64,
    /// STAR.
    pub star: u64,
    /// LSTAR.
    pub lstar: u64,
    /// CSTAR.
    pub cstar: u64,
    /// SFMASK.
    pub sfmask: u64,
    /// KernelGSBase.
    pub kernel_gs_base: u64,
    /// SYSENTER_CS.
    pub sysenter_cs: u64,
    /// SYSENTER_ESP.
    pub sysenter_esp: u64,
    /// SYSENTER_EIP.
    pub sysenter_eip: u64,
    /// CR2.
    pub cr2: u64,
    /// Reserved.
    pub reserved_248: [u8; 0x20],
    /// The guest's PAT under nested paging.
    pub g_pat: u64,
    /// DBGCTL and the LBR records, then reserved space to the end of the page.
    pub unused_270: [u8; 0xc00 - 0x270],
}

/// A whole VMCB: one 4 KiB page.
#[repr(C, align(4096))]
pub struct Vmcb {
    /// Control area at 0x000.
    pub control: Control,
    /// State save area at 0x400.
    pub save: Save,
}

const _: () = {
    assert!(size_of::<Control>() == 0x400);
    assert!(size_of::<Save>() == 0xc00);
    assert!(size_of::<Vmcb>() == 0x1000);
    assert!(offset_of!(Control, pause_filter_threshold) == 0x03c);
    assert!(offset_of!(Control, iopm_base_pa) == 0x040);
    assert!(offset_of!(Control, msrpm_base_pa) == 0x048);
    assert!(offset_of!(Control, tsc_offset) == 0x050);
    assert!(offset_of!(Control, guest_asid) == 0x058);
    assert!(offset_of!(Control, tlb_control) == 0x05c);
    assert!(offset_of!(Control, vintr) == 0x060);
    assert!(offset_of!(Control, interrupt_shadow) == 0x068);
    assert!(offset_of!(Control, exit_code) == 0x070);
    assert!(offset_of!(Control, exit_info1) == 0x078);
    assert!(offset_of!(Control, exit_info2) == 0x080);
    assert!(offset_of!(Control, exit_int_info) == 0x088);
    assert!(offset_of!(Control, np_control) == 0x090);
    assert!(offset_of!(Control, event_inj) == 0x0a8);
    assert!(offset_of!(Control, n_cr3) == 0x0b0);
    assert!(offset_of!(Control, clean_bits) == 0x0c0);
    assert!(offset_of!(Control, next_rip) == 0x0c8);
    assert!(offset_of!(Control, insn_len) == 0x0d0);
    assert!(offset_of!(Vmcb, save) == 0x400);
    assert!(offset_of!(Save, gdtr) == 0x060);
    assert!(offset_of!(Save, tr) == 0x090);
    assert!(offset_of!(Save, cpl) == 0x0cb);
    assert!(offset_of!(Save, efer) == 0x0d0);
    assert!(offset_of!(Save, cr4) == 0x148);
    assert!(offset_of!(Save, cr3) == 0x150);
    assert!(offset_of!(Save, cr0) == 0x158);
    assert!(offset_of!(Save, dr7) == 0x160);
    assert!(offset_of!(Save, dr6) == 0x168);
    assert!(offset_of!(Save, rflags) == 0x170);
    assert!(offset_of!(Save, rip) == 0x178);
    assert!(offset_of!(Save, rsp) == 0x1d8);
    assert!(offset_of!(Save, rax) == 0x1f8);
    assert!(offset_of!(Save, star) == 0x200);
    assert!(offset_of!(Save, kernel_gs_base) == 0x220);
    assert!(offset_of!(Save, sysenter_eip) == 0x238);
    assert!(offset_of!(Save, cr2) == 0x240);
    assert!(offset_of!(Save, g_pat) == 0x268);
};

/// Intercept vector 3: physical interrupts.
pub const INTERCEPT_INTR: u32 = 1 << 0;
/// Intercept vector 3: CPUID.
pub const INTERCEPT_CPUID: u32 = 1 << 18;
/// Intercept vector 3: INVD.
pub const INTERCEPT_INVD: u32 = 1 << 22;
/// Intercept vector 3: HLT.
pub const INTERCEPT_HLT: u32 = 1 << 24;
/// Intercept vector 3: IN/OUT through the I/O permission map.
pub const INTERCEPT_IOIO_PROT: u32 = 1 << 27;
/// Intercept vector 3: RDMSR/WRMSR through the MSR permission map.
pub const INTERCEPT_MSR_PROT: u32 = 1 << 28;
/// Intercept vector 3: shutdown (triple fault).
pub const INTERCEPT_SHUTDOWN: u32 = 1 << 31;

/// Intercept vector 4: VMRUN (must be set, or VMRUN fails).
pub const INTERCEPT2_VMRUN: u32 = 1 << 0;
/// Intercept vector 4: VMMCALL (the Xen hypercall instruction on AMD).
pub const INTERCEPT2_VMMCALL: u32 = 1 << 1;
/// Intercept vector 4: VMLOAD.
pub const INTERCEPT2_VMLOAD: u32 = 1 << 2;
/// Intercept vector 4: VMSAVE.
pub const INTERCEPT2_VMSAVE: u32 = 1 << 3;
/// Intercept vector 4: STGI.
pub const INTERCEPT2_STGI: u32 = 1 << 4;
/// Intercept vector 4: CLGI.
pub const INTERCEPT2_CLGI: u32 = 1 << 5;
/// Intercept vector 4: SKINIT.
pub const INTERCEPT2_SKINIT: u32 = 1 << 6;
/// Intercept vector 4: MONITOR.
pub const INTERCEPT2_MONITOR: u32 = 1 << 10;
/// Intercept vector 4: MWAIT.
pub const INTERCEPT2_MWAIT: u32 = 1 << 11;
/// Intercept vector 4: XSETBV.
pub const INTERCEPT2_XSETBV: u32 = 1 << 13;

/// `tlb_control`: flush the whole TLB on the next VMRUN.
pub const TLB_CONTROL_FLUSH_ALL: u8 = 1;

/// `vintr`: a virtual interrupt is pending (V_IRQ).
pub const VINTR_IRQ: u64 = 1 << 8;
/// `vintr`: the virtual interrupt ignores the virtual TPR (V_IGN_TPR).
pub const VINTR_IGN_TPR: u64 = 1 << 20;
/// `vintr`: the guest's RFLAGS.IF masks only virtual interrupts (V_INTR_MASKING).
pub const VINTR_MASKING: u64 = 1 << 24;

/// `np_control`: nested paging on.
pub const NP_ENABLE: u64 = 1;

/// `event_inj`: valid.
pub const EVENTINJ_VALID: u64 = 1 << 31;
/// `event_inj`: an error code is pushed.
pub const EVENTINJ_ERROR_VALID: u64 = 1 << 11;
/// `event_inj`: type exception.
pub const EVENTINJ_TYPE_EXCEPTION: u64 = 3 << 8;

/// An exception to inject: `vector`, with `error` if the vector pushes one.
pub fn event_exception(vector: u8, error: Option<u32>) -> u64 {
    let base = u64::from(vector) | EVENTINJ_TYPE_EXCEPTION | EVENTINJ_VALID;
    match error {
        Some(e) => base | EVENTINJ_ERROR_VALID | (u64::from(e) << 32),
        None => base,
    }
}

/// IOIO exit_info1: the access is IN.
pub const IOIO_IN: u64 = 1 << 0;
/// IOIO exit_info1: string instruction.
pub const IOIO_STR: u64 = 1 << 2;

/// A decoded IOIO exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoExit {
    /// The port.
    pub port: u16,
    /// True for IN.
    pub input: bool,
    /// Operand size in bytes (1, 2 or 4).
    pub size: u8,
    /// INS/OUTS.
    pub string: bool,
}

impl IoExit {
    /// Decodes exit_info1 of an IOIO exit (APM vol. 2, 15.10.2).
    pub fn decode(info1: u64) -> IoExit {
        let size = if info1 & (1 << 4) != 0 {
            1
        } else if info1 & (1 << 5) != 0 {
            2
        } else {
            4
        };
        IoExit {
            port: (info1 >> 16) as u16,
            input: info1 & IOIO_IN != 0,
            size,
            string: info1 & IOIO_STR != 0,
        }
    }
}

/// The #VMEXIT codes ebbhv handles (APM vol. 2, appendix C). Others are reported
/// by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// Exception `n` (0x40 + n).
    Exception(u8),
    /// A physical interrupt (0x60).
    Intr,
    /// A virtual interrupt window (0x64).
    Vintr,
    /// CPUID (0x72).
    Cpuid,
    /// INVD (0x76).
    Invd,
    /// HLT (0x78).
    Hlt,
    /// IN/OUT (0x7b).
    Ioio,
    /// RDMSR/WRMSR (0x7c).
    Msr,
    /// Shutdown (0x7f).
    Shutdown,
    /// VMRUN (0x80).
    Vmrun,
    /// VMMCALL (0x81).
    Vmmcall,
    /// VMLOAD (0x82).
    Vmload,
    /// VMSAVE (0x83).
    Vmsave,
    /// STGI (0x84).
    Stgi,
    /// CLGI (0x85).
    Clgi,
    /// SKINIT (0x86).
    Skinit,
    /// MONITOR (0x8a).
    Monitor,
    /// MWAIT (0x8b).
    Mwait,
    /// XSETBV (0x8d).
    Xsetbv,
    /// Nested page fault (0x400).
    Npf,
    /// VMRUN refused the VMCB (-1; QEMU stores it as 32 bits, so only the low 32
    /// bits are compared).
    Invalid,
}

impl ExitCode {
    /// Decodes an exit code; unknown ones come back as the raw number.
    pub fn decode(code: u64) -> Result<ExitCode, u64> {
        Ok(match code {
            0x40..=0x5f => ExitCode::Exception((code - 0x40) as u8),
            0x60 => ExitCode::Intr,
            0x64 => ExitCode::Vintr,
            0x72 => ExitCode::Cpuid,
            0x76 => ExitCode::Invd,
            0x78 => ExitCode::Hlt,
            0x7b => ExitCode::Ioio,
            0x7c => ExitCode::Msr,
            0x7f => ExitCode::Shutdown,
            0x80 => ExitCode::Vmrun,
            0x81 => ExitCode::Vmmcall,
            0x82 => ExitCode::Vmload,
            0x83 => ExitCode::Vmsave,
            0x84 => ExitCode::Stgi,
            0x85 => ExitCode::Clgi,
            0x86 => ExitCode::Skinit,
            0x8a => ExitCode::Monitor,
            0x8b => ExitCode::Mwait,
            0x8d => ExitCode::Xsetbv,
            0x400 => ExitCode::Npf,
            c if c as u32 == u32::MAX => ExitCode::Invalid,
            c => return Err(c),
        })
    }
}

/// NPF exit_info1: the nested entry was present (protection fault).
pub const NPF_PRESENT: u64 = 1 << 0;
/// NPF exit_info1: the access was a write.
pub const NPF_WRITE: u64 = 1 << 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_exit_matches_on_low_32_bits() {
        assert_eq!(ExitCode::decode(0xffff_ffff), Ok(ExitCode::Invalid));
        assert_eq!(ExitCode::decode(u64::MAX), Ok(ExitCode::Invalid));
        assert_eq!(ExitCode::decode(0x4e), Ok(ExitCode::Exception(14)));
        assert_eq!(ExitCode::decode(0x81), Ok(ExitCode::Vmmcall));
        assert_eq!(ExitCode::decode(0x401), Err(0x401));
    }

    #[test]
    fn ioio_decode() {
        // OUT dx, al to 0xe9: SZ8, port in bits 16..31.
        let io = IoExit::decode((0xe9 << 16) | (1 << 4));
        assert_eq!(
            io,
            IoExit {
                port: 0xe9,
                input: false,
                size: 1,
                string: false
            }
        );
        let io = IoExit::decode((0x71 << 16) | (1 << 6) | IOIO_IN);
        assert_eq!(
            io,
            IoExit {
                port: 0x71,
                input: true,
                size: 4,
                string: false
            }
        );
    }

    #[test]
    fn exception_events() {
        assert_eq!(event_exception(6, None), 0x8000_0306);
        assert_eq!(event_exception(13, Some(0)), 0x8000_0b0d);
    }
}
