//! AMD SVM: turning it on, the VMCB of the one vCPU, its I/O and MSR permission
//! maps, its nested page tables, and the world switch.
//!
//! QEMU's TCG emulates SVM with nested paging but without NRIP save, decode
//! assists or VMCB clean bits; it flushes the whole TLB on every VMRUN and
//! #VMEXIT. So the intercepts are kept to what the guest needs: physical interrupts
//! (the host timer must end a guest run), CPUID, HLT, every
//! port (the guest owns no device), the MSRs not in the pass-through list given
//! to [`Vcpu::new_pvh`], VMMCALL (the
//! hypercall), VMRUN (required) and the other SVM instructions (the guest sees no
//! SVM, but EFER.SVME stays set underneath it), and SHUTDOWN. CR reads, RDTSC and
//! RDTSCP are deliberately not intercepted: QEMU 10 misreports those exits.
//!
//! What VMRUN is allowed to trust is kept here: the VM logic reads and writes the
//! guest's registers and state save area freely (they only describe the guest,
//! which nested paging confines), but of the control area it may only read, and
//! set the few fields that concern event delivery and the TLB. The fields that
//! point at host memory (the permission maps, the nested page table root) and
//! the intercepts are set here once and never handed out.

use alloc::boxed::Box;
use core::alloc::Layout;

use ebbhv_x86::msr::{self, EFER_SVME};
use ebbhv_x86::vmcb::*;

use crate::heap::Pages;
use crate::msr::{cpuid, rdmsr, wrmsr};
use crate::npt::Npt;

/// The guest's general registers that VMRUN does not keep in the VMCB (RAX and
/// RSP live there).
#[repr(C)]
#[derive(Default, Debug, Clone, Copy)]
pub struct GuestRegs {
    /// RBX.
    pub rbx: u64,
    /// RCX.
    pub rcx: u64,
    /// RDX.
    pub rdx: u64,
    /// RSI.
    pub rsi: u64,
    /// RDI.
    pub rdi: u64,
    /// RBP.
    pub rbp: u64,
    /// R8.
    pub r8: u64,
    /// R9.
    pub r9: u64,
    /// R10.
    pub r10: u64,
    /// R11.
    pub r11: u64,
    /// R12.
    pub r12: u64,
    /// R13.
    pub r13: u64,
    /// R14.
    pub r14: u64,
    /// R15.
    pub r15: u64,
}
const _: () = {
    assert!(core::mem::offset_of!(GuestRegs, rbx) == 0);
    assert!(core::mem::offset_of!(GuestRegs, rsi) == 24);
    assert!(core::mem::offset_of!(GuestRegs, r8) == 48);
    assert!(core::mem::offset_of!(GuestRegs, r15) == 104);
};

/// Checks for SVM with nested paging and turns it on. Called once at boot.
#[expect(
    clippy::expect_used,
    reason = "boot: no guest yet; a machine without a page for the host save area stops here"
)]
pub fn enable() {
    let ext = cpuid(0x8000_0001, 0);
    assert!(
        ext[2] & (1 << 2) != 0,
        "the CPU has no SVM (run QEMU with -cpu max)"
    );
    let features = cpuid(0x8000_000a, 0);
    assert!(features[3] & 1 != 0, "the CPU has no nested paging");
    crate::log!(
        "SVM revision {} with {} ASIDs, features {:#x} (nrip_save {})",
        features[0] & 0xff,
        features[1],
        features[3],
        features[3] & (1 << 3) != 0
    );
    let hsave = Pages::new(1).expect("boot allocator has a page for the host save area");
    // SAFETY: SVM exists (checked above); VM_CR.SVMDIS is clear under QEMU, setting
    // EFER.SVME only enables the SVM instructions, and VM_HSAVE_PA gets a page that is
    // never freed (leaked below) and used by nothing else.
    unsafe {
        assert!(
            rdmsr(msr::VM_CR) & (1 << 4) == 0,
            "SVM is disabled in VM_CR"
        );
        wrmsr(msr::EFER, rdmsr(msr::EFER) | EFER_SVME);
        wrmsr(msr::VM_HSAVE_PA, hsave.leak().0);
    }
}

/// A zeroed VMCB on its own page.
fn new_vmcb() -> Box<Vmcb> {
    let layout = Layout::new::<Vmcb>();
    // SAFETY: the layout is non-zero-sized. A VMCB is plain integers and byte arrays,
    // so all-zero bytes are a valid value; the allocation has Vmcb's layout, which is
    // what Box::from_raw requires.
    unsafe {
        let p = alloc::alloc::alloc_zeroed(layout) as *mut Vmcb;
        assert!(!p.is_null(), "out of hypervisor memory for a VMCB");
        Box::from_raw(p)
    }
}

/// One virtual CPU: its VMCB, a VMCB for the host's VMSAVE state, the permission
/// maps, the nested page tables and the registers VMRUN does not save.
///
/// # Invariants
///
/// `vmcb.control.iopm_base_pa`, `msrpm_base_pa` and `n_cr3` are the addresses of
/// `iopm`, `msrpm` and `npt`'s root, which this value owns; the intercepts and
/// `np_control` are those [`Vcpu::new_pvh`] set; `vintr` keeps V_INTR_MASKING.
pub struct Vcpu {
    vmcb: Box<Vmcb>,
    host: Box<Vmcb>,
    iopm: Pages,
    msrpm: Pages,
    npt: Npt,
    regs: GuestRegs,
}

/// The guest's ASID (0 belongs to the host).
const GUEST_ASID: u32 = 1;
/// The exceptions intercepted (bit n of the VMCB's exception intercepts is
/// vector n): #DB and #AC.
const VECTOR_DB: u32 = 1;
const VECTOR_AC: u32 = 17;
/// The PAT value at reset.
const PAT_RESET: u64 = 0x0007_0406_0007_0406;

impl Vcpu {
    /// A vCPU in the PVH entry state (32-bit protected mode, paging off, flat
    /// segments, a busy TSS) at `rip` with `rbx`, on the nested page tables `npt`;
    /// RDMSR/WRMSR of the MSRs in `pass_through` reach the hardware without an exit.
    #[expect(
        clippy::expect_used,
        reason = "boot: the vCPU is made before its guest runs; a machine without the pages stops here"
    )]
    pub fn new_pvh(npt: Npt, rip: u64, rbx: u64, pass_through: &[u32]) -> Vcpu {
        let mut iopm = Pages::new(3).expect("hypervisor memory for the I/O permission map");
        iopm.bytes_mut().fill(0xff);
        let mut msrpm = Pages::new(2).expect("hypervisor memory for the MSR permission map");
        msrpm.bytes_mut().fill(0xff);
        let n_cr3 = npt.root();
        let mut v = Vcpu {
            vmcb: new_vmcb(),
            host: new_vmcb(),
            iopm,
            msrpm,
            npt,
            regs: GuestRegs {
                rbx,
                ..Default::default()
            },
        };
        for m in pass_through {
            v.set_msr_intercept(*m, false);
        }
        let c = &mut v.vmcb.control;
        c.intercept_misc1 = INTERCEPT_INTR
            | INTERCEPT_CPUID
            | INTERCEPT_HLT
            | INTERCEPT_IOIO_PROT
            | INTERCEPT_MSR_PROT
            | INTERCEPT_SHUTDOWN
            | INTERCEPT_INVD;
        c.intercept_misc2 = INTERCEPT2_VMRUN
            | INTERCEPT2_VMMCALL
            | INTERCEPT2_VMLOAD
            | INTERCEPT2_VMSAVE
            | INTERCEPT2_STGI
            | INTERCEPT2_CLGI
            | INTERCEPT2_SKINIT
            | INTERCEPT2_MONITOR
            | INTERCEPT2_MWAIT;
        c.intercept_exceptions = (1 << VECTOR_DB) | (1 << VECTOR_AC);
        c.iopm_base_pa = v.iopm.phys().0;
        c.msrpm_base_pa = v.msrpm.phys().0;
        c.guest_asid = GUEST_ASID;
        c.tlb_control = TLB_CONTROL_FLUSH_ALL;
        c.vintr = VINTR_MASKING;
        c.np_control = NP_ENABLE;
        // INVARIANT: the maps and the tree this value owns.
        c.n_cr3 = n_cr3.0;

        let s = &mut v.vmcb.save;
        s.cs = Segment::flat(0x10, ATTR_CODE32);
        for seg in [&mut s.ds, &mut s.es, &mut s.ss, &mut s.fs, &mut s.gs] {
            *seg = Segment::flat(0x18, ATTR_DATA32);
        }
        s.tr = Segment {
            selector: 0x20,
            attrib: ATTR_TSS_BUSY,
            limit: 0x67,
            base: 0,
        };
        s.ldtr = Segment {
            selector: 0,
            attrib: ATTR_LDT,
            limit: 0xffff,
            base: 0,
        };
        s.gdtr = Segment {
            selector: 0,
            attrib: 0,
            limit: 0xffff,
            base: 0,
        };
        s.idtr = Segment {
            selector: 0,
            attrib: 0,
            limit: 0xffff,
            base: 0,
        };
        s.cr0 = 0x11; // PE | ET
        s.cr4 = 0;
        s.efer = EFER_SVME;
        s.rflags = 0x2;
        s.rip = rip;
        s.dr6 = 0xffff_0ff0;
        s.dr7 = 0x400;
        s.g_pat = PAT_RESET;
        v
    }

    /// Whether RDMSR/WRMSR of `msr` exit (`true`) or go to the hardware.
    fn set_msr_intercept(&mut self, msr: u32, intercept: bool) {
        let base = match msr {
            0..=0x1fff => 0,
            0xc000_0000..=0xc000_1fff => 0x800,
            0xc001_0000..=0xc001_1fff => 0x1000,
            _ => return,
        };
        let bit = ((msr & 0x1fff) * 2) as usize;
        let byte = base + bit / 8;
        let mask = 0b11u8 << (bit % 8);
        // `byte` is below 0x1800, inside the two pages of the map.
        if let Some(b) = self.msrpm.bytes_mut().get_mut(byte) {
            *b = if intercept { *b | mask } else { *b & !mask };
        }
    }

    /// Runs the guest until the next #VMEXIT. A host interrupt that arrives meanwhile
    /// ends the run (INTR exit) and is taken by its IDT handler before this returns.
    pub fn run(&mut self) {
        let guest = &*self.vmcb as *const Vmcb as u64;
        let host = &*self.host as *const Vmcb as u64;
        // SAFETY: both VMCBs are live, page-aligned and identity-mapped (so their
        // addresses are physical); SVM is enabled with a host save area (`enable`);
        // by the type invariant the VMCB's host-memory fields are this vCPU's own
        // maps and nested tables, whose leaves reach only the guest-frame pool
        // (`Npt`'s invariant). `svm_run` preserves every callee-saved register and
        // the stack, and writes only `self.regs` and the two VMCBs; the interrupt it
        // lets in after the run goes to an IDT handler that preserves every register.
        unsafe { svm_run(guest, &mut self.regs, host) };
        self.vmcb.control.tlb_control = 0;
    }

    /// The guest's state save area (registers, segments, control registers).
    pub fn save(&self) -> &Save {
        &self.vmcb.save
    }

    /// The guest's state save area, to change: it describes only the guest.
    pub fn save_mut(&mut self) -> &mut Save {
        &mut self.vmcb.save
    }

    /// The control area, to read (exit code and information).
    pub fn control(&self) -> &Control {
        &self.vmcb.control
    }

    /// The general registers VMRUN does not keep in the VMCB.
    pub fn regs(&self) -> &GuestRegs {
        &self.regs
    }

    /// The general registers, to change.
    pub fn regs_mut(&mut self) -> &mut GuestRegs {
        &mut self.regs
    }

    /// The nested page tables.
    pub fn npt(&self) -> &Npt {
        &self.npt
    }

    /// The nested page tables, to change (flush the TLB afterwards).
    pub fn npt_mut(&mut self) -> &mut Npt {
        &mut self.npt
    }

    /// Sets the virtual interrupt fields (V_IRQ, its vector and priority);
    /// V_INTR_MASKING stays set, so the host's interrupts keep ending guest runs.
    pub fn set_vintr(&mut self, vintr: u64) {
        // INVARIANT: V_INTR_MASKING kept.
        self.vmcb.control.vintr = vintr | VINTR_MASKING;
    }

    /// Queues an event for the next VMRUN (`EVENTINJ` format).
    pub fn set_event_inj(&mut self, event: u64) {
        self.vmcb.control.event_inj = event;
    }

    /// Ends the guest's interrupt shadow (after HLT, which has none).
    pub fn clear_interrupt_shadow(&mut self) {
        self.vmcb.control.interrupt_shadow = 0;
    }

    /// Asks for a full guest TLB flush at the next VMRUN (after NPT changes).
    pub fn flush_tlb(&mut self) {
        self.vmcb.control.tlb_control = TLB_CONTROL_FLUSH_ALL;
    }

    /// Moves RIP past an instruction of `len` bytes (no NRIP save under TCG).
    pub fn skip(&mut self, len: u64) {
        self.vmcb.save.rip = self.vmcb.save.rip.wrapping_add(len);
    }

    /// Queues an exception for the guest at the next VMRUN.
    pub fn inject_exception(&mut self, vector: u8, error: Option<u32>) {
        self.vmcb.control.event_inj = event_exception(vector, error);
    }
}

extern "C" {
    /// The world switch: VMSAVE host state, load guest registers, VMLOAD/VMRUN/
    /// VMSAVE the guest, store guest registers, VMLOAD host state. Host RFLAGS.IF is
    /// set across VMRUN (with GIF clear around it) because with V_INTR_MASKING the
    /// host's IF decides whether physical interrupts reach the INTR intercept; one
    /// that arrived is taken right after STGI, then IF is cleared again.
    fn svm_run(guest_vmcb: u64, regs: *mut GuestRegs, host_vmcb: u64);
}

core::arch::global_asm!(
    r#"
    .section .text
    .global svm_run
svm_run:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    push rdx
    push rsi
    push rdi
    clgi
    sti
    mov rax, rdx
    vmsave rax
    mov rax, rsi
    mov rbx, [rax + 0]
    mov rcx, [rax + 8]
    mov rdx, [rax + 16]
    mov rsi, [rax + 24]
    mov rdi, [rax + 32]
    mov rbp, [rax + 40]
    mov r8,  [rax + 48]
    mov r9,  [rax + 56]
    mov r10, [rax + 64]
    mov r11, [rax + 72]
    mov r12, [rax + 80]
    mov r13, [rax + 88]
    mov r14, [rax + 96]
    mov r15, [rax + 104]
    mov rax, [rsp]
    vmload rax
    vmrun rax
    vmsave rax
    mov rax, [rsp + 8]
    mov [rax + 0], rbx
    mov [rax + 8], rcx
    mov [rax + 16], rdx
    mov [rax + 24], rsi
    mov [rax + 32], rdi
    mov [rax + 40], rbp
    mov [rax + 48], r8
    mov [rax + 56], r9
    mov [rax + 64], r10
    mov [rax + 72], r11
    mov [rax + 80], r12
    mov [rax + 88], r13
    mov [rax + 96], r14
    mov [rax + 104], r15
    mov rax, [rsp + 16]
    vmload rax
    stgi
    cli
    add rsp, 24
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret
"#
);
