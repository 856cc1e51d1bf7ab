//! The guest's virtual CPU as the x86 architecture sees it: the SVM vCPU with its
//! nested page tables (in `ebbhv_hal::svm`), the virtual local APIC, and the
//! interrupt offered through V_IRQ; and the architectural exits that need nothing
//! else: CPUID, RDMSR/WRMSR ([`msr`]), port reads ([`io`]).
//!
//! Interrupt delivery is level-triggered: before every VMRUN the highest pending
//! vector (an event channel upcall on the callback vector, or a self-IPI of the
//! virtual LAPIC) is offered through V_IRQ with V_IGN_TPR; the CPU delivers it as
//! soon as the guest's RFLAGS.IF and interrupt shadow allow (that is the interrupt
//! window, with no exit needed) and clears V_IRQ when it does. The callback vector
//! needs no EOI. A LAPIC vector moves from IRR to ISR once the CPU has taken it
//! (V_IRQ found clear at the next exit, before that exit's own work such as an EOI
//! write).

pub mod io;
pub mod msr;

use ebbhv_hal::svm::Vcpu;
use ebbhv_x86::cpuid::{self, Context};
use ebbhv_x86::lapic::VLapic;
use ebbhv_x86::msr::EFER_AUTOIBRS;
use ebbhv_x86::vintr::{self, Offered};
use ebbhv_x86::vmcb::EVENTINJ_VALID;
use ebbhv_x86::walk::PagingMode;

/// RFLAGS.IF.
const RFLAGS_IF: u64 = 1 << 9;
/// The CPUID leaf whose EAX[7:0] is MAXPHYADDR.
const PHYS_ADDR_LEAF: u32 = 0x8000_0008;
/// The CPUID leaf whose EAX[8] offers EFER.AUTOIBRS.
const EXT_FEATURES2_LEAF: u32 = 0x8000_0021;
const EXT21_EAX_AUTOIBRS: u32 = 1 << 8;
/// Exception vectors ebbhv injects or reflects.
const DB: u8 = 1;
const UD: u8 = 6;
const GP: u8 = 13;
const AC: u8 = 17;

/// The guest's CPU: the vCPU (registers, VMCB, nested page tables), its local
/// APIC, and the vector offered to the current run.
pub struct Cpu {
    vcpu: Vcpu,
    /// The guest's MAXPHYADDR: CPUID passes the host's leaf 0x80000008 through.
    phys_bits: u32,
    /// The EFER bits the host CPU offers besides the ones every guest may set.
    efer_extra: u64,
    lapic: VLapic,
    offered: Option<Offered>,
}

impl Cpu {
    /// The CPU of a new guest.
    pub fn new(vcpu: Vcpu) -> Cpu {
        Cpu {
            vcpu,
            phys_bits: ebbhv_hal::cpuid(PHYS_ADDR_LEAF, 0)[0] & 0xff,
            efer_extra: if ebbhv_hal::cpuid(EXT_FEATURES2_LEAF, 0)[0] & EXT21_EAX_AUTOIBRS != 0 {
                EFER_AUTOIBRS
            } else {
                0
            },
            lapic: VLapic::default(),
            offered: None,
        }
    }

    /// The SVM vCPU.
    pub fn vcpu(&self) -> &Vcpu {
        &self.vcpu
    }

    /// The SVM vCPU, to change.
    pub fn vcpu_mut(&mut self) -> &mut Vcpu {
        &mut self.vcpu
    }

    /// The guest's paging registers and privilege, for walking its page tables
    /// as its own access would.
    pub fn paging_mode(&self) -> PagingMode {
        let s = self.vcpu.save();
        PagingMode {
            cr0: s.cr0,
            cr3: s.cr3,
            cr4: s.cr4,
            efer: s.efer,
            rflags: s.rflags,
            cpl: s.cpl,
            phys_bits: self.phys_bits,
        }
    }

    /// Whether the guest runs with interrupts enabled.
    pub fn interrupts_enabled(&self) -> bool {
        self.vcpu.save().rflags & RFLAGS_IF != 0
    }

    /// Whether the local APIC has a vector to deliver.
    pub fn lapic_pending(&self) -> bool {
        self.lapic.deliverable().is_some()
    }

    /// Offers the higher of `upcall` and the LAPIC's deliverable vector through
    /// V_IRQ for the next run (or withdraws the offer).
    pub fn offer_interrupt(&mut self, upcall: Option<u8>) {
        let offer = vintr::choose(upcall, self.lapic.deliverable());
        self.offered = offer;
        let v = vintr::encode(self.vcpu.control().vintr, offer);
        self.vcpu.set_vintr(v);
    }

    /// Settles what happened to the offered vector during the run that just
    /// ended, and re-injects an event whose delivery the exit interrupted.
    pub fn after_exit(&mut self) {
        let c = self.vcpu.control();
        let (vintr, int_info) = (c.vintr, c.exit_int_info);
        if let (true, Some(Offered::Lapic(v))) = (vintr::taken(vintr), self.offered) {
            self.lapic.accept(v);
        }
        self.offered = None;
        if int_info & EVENTINJ_VALID != 0 {
            self.vcpu.set_event_inj(int_info);
        }
    }

    /// Moves RIP past an instruction of `len` bytes.
    pub fn skip(&mut self, len: u64) {
        self.vcpu.skip(len);
    }

    /// Injects #UD (an instruction the guest's CPU does not have).
    pub fn inject_ud(&mut self) {
        self.vcpu.inject_exception(UD, None);
    }

    /// Injects #GP(0).
    pub fn inject_gp(&mut self) {
        self.vcpu.inject_exception(GP, Some(0));
    }

    /// Gives back to the guest a #DB or #AC that ebbhv intercepted (XSA-156: with
    /// the intercept, a guest whose exception delivery raises the same exception
    /// again loops through exits the hypervisor sees, instead of wedging the CPU
    /// inside microcode). #AC carries its error code (always 0), #DB none. The
    /// event whose delivery the exception interrupted, if any, is dropped, as the
    /// CPU drops it for a benign exception handled serially. `false` for any other
    /// vector.
    pub fn reflect_exception(&mut self, vector: u8) -> bool {
        let error = match vector {
            DB => None,
            AC => Some(self.vcpu.control().exit_info1 as u32),
            _ => return false,
        };
        self.vcpu.inject_exception(vector, error);
        true
    }

    /// Completes a HLT (with interrupts on): RIP past it, no interrupt shadow.
    pub fn complete_hlt(&mut self) {
        self.vcpu.skip(1);
        self.vcpu.clear_interrupt_shadow();
    }

    /// The CPUID exit: the guest's view of the leaf, from the host's and the
    /// policy in `ebbhv_x86::cpuid`.
    pub fn cpuid_exit(&mut self, tsc_hz: u64) {
        let leaf = self.vcpu.save().rax as u32;
        let sub = self.vcpu.regs().rcx as u32;
        let ctx = Context {
            guest_cr4: self.vcpu.save().cr4,
            tsc_khz: (tsc_hz / 1000) as u32,
        };
        let [a, b, c, d] = cpuid::guest_leaf(leaf, sub, ebbhv_hal::cpuid(leaf, sub), &ctx);
        self.vcpu.save_mut().rax = u64::from(a);
        let r = self.vcpu.regs_mut();
        r.rbx = u64::from(b);
        r.rcx = u64::from(c);
        r.rdx = u64::from(d);
        self.vcpu.skip(2);
    }
}
