//! The host IDT: every CPU exception taken by ebbhv itself prints a report (vector,
//! error code, registers, control registers) and stops the machine; the external
//! interrupt vectors lead to the host timer's handler ([`TIMER_VECTOR`]) or, for any
//! other vector, to a handler that counts the stray interrupt and acknowledges it.
//!
//! An exception in the hypervisor is a bug in the hypervisor, never something to
//! resume from; guest exceptions do not come here (they stay in the guest or become
//! #VMEXITs). Interrupts reach ebbhv only where it opens the window on purpose: in
//! `svm_run` (a physical interrupt during the guest ends it with an INTR exit and
//! is taken at STGI) and in the idle loop's `sti; hlt`.

use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::qemu_exit::{exit_qemu, ExitCode};
use crate::serial::emergency_writer;
use crate::timer::TIMER_VECTOR;

/// The timer's gate in the IDT (a constant index, checked against its length).
const TIMER_GATE: usize = TIMER_VECTOR as usize;

/// One 64-bit interrupt gate (Intel SDM vol. 3, 6.14.1; AMD APM vol. 2, 4.8.4).
#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}
const _: () = assert!(core::mem::size_of::<Gate>() == 16);

/// Present, DPL 0, 64-bit interrupt gate.
const GATE_INTERRUPT: u8 = 0x8e;
/// The boot GDT's 64-bit code selector.
const KERNEL_CS: u16 = 0x08;

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static mut IDT: Idt = Idt([Gate {
    offset_low: 0,
    selector: 0,
    ist: 0,
    type_attr: 0,
    offset_mid: 0,
    offset_high: 0,
    reserved: 0,
}; 256]);

#[repr(C, packed)]
struct Pointer {
    limit: u16,
    base: u64,
}

/// Interrupts taken on vectors nobody programmed (counted, then acknowledged).
pub static STRAY_INTERRUPTS: AtomicU64 = AtomicU64::new(0);

extern "C" {
    /// The 32 exception entry stubs' addresses, from the assembly below.
    static isr_stub_table: [u64; 32];
    /// Entry of the host timer interrupt.
    fn irq_timer_entry();
    /// Entry of every other external interrupt vector.
    fn irq_stray_entry();
}

fn gate(addr: u64) -> Gate {
    Gate {
        offset_low: addr as u16,
        selector: KERNEL_CS,
        ist: 0,
        type_attr: GATE_INTERRUPT,
        offset_mid: (addr >> 16) as u16,
        offset_high: (addr >> 32) as u32,
        reserved: 0,
    }
}

/// Fills the IDT (exceptions and interrupts) and loads it. Called once at boot.
pub(crate) fn init() {
    // SAFETY: called once on the boot CPU before anything else uses the IDT, so the
    // exclusive reference to it is unique; `isr_stub_table` is immutable data emitted by
    // the assembly below, and the interrupt entries are functions defined there.
    unsafe {
        let idt = &mut *core::ptr::addr_of_mut!(IDT);
        let stubs = &*core::ptr::addr_of!(isr_stub_table);
        for (g, &addr) in idt.0.iter_mut().zip(stubs.iter()) {
            *g = gate(addr);
        }
        for g in &mut idt.0[32..] {
            *g = gate(irq_stray_entry as *const () as u64);
        }
        idt.0[TIMER_GATE] = gate(irq_timer_entry as *const () as u64);
        let ptr = Pointer {
            limit: (core::mem::size_of::<Idt>() - 1) as u16,
            base: idt as *const Idt as u64,
        };
        core::arch::asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack, preserves_flags));
    }
}

/// What the stubs push: general registers, the vector, the error code (0 when the
/// CPU pushes none) and the CPU's interrupt frame.
#[repr(C)]
pub struct ExceptionFrame {
    r15: u64,
    r14: u64,
    r13: u64,
    r12: u64,
    r11: u64,
    r10: u64,
    r9: u64,
    r8: u64,
    rbp: u64,
    rdi: u64,
    rsi: u64,
    rdx: u64,
    rcx: u64,
    rbx: u64,
    rax: u64,
    vector: u64,
    error: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}
const _: () = assert!(core::mem::size_of::<ExceptionFrame>() == 22 * 8);

const NAMES: [&str; 32] = [
    "#DE divide error",
    "#DB debug",
    "NMI",
    "#BP breakpoint",
    "#OF overflow",
    "#BR bound range",
    "#UD invalid opcode",
    "#NM device not available",
    "#DF double fault",
    "coprocessor overrun",
    "#TS invalid TSS",
    "#NP segment not present",
    "#SS stack fault",
    "#GP general protection",
    "#PF page fault",
    "reserved 15",
    "#MF x87 error",
    "#AC alignment check",
    "#MC machine check",
    "#XM SIMD error",
    "#VE virtualisation",
    "#CP control protection",
    "reserved 22",
    "reserved 23",
    "reserved 24",
    "reserved 25",
    "reserved 26",
    "reserved 27",
    "#HV injection",
    "#VC VMM communication",
    "#SX security",
    "reserved 31",
];

/// Called by the assembly with the frame it built; prints and stops.
#[no_mangle]
extern "C" fn exception_report(f: &ExceptionFrame) -> ! {
    let (cr0, cr2, cr3, cr4): (u64, u64, u64, u64);
    // SAFETY: reading control registers has no side effects.
    unsafe {
        core::arch::asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack, preserves_flags));
        core::arch::asm!("mov {}, cr2", out(reg) cr2, options(nomem, nostack, preserves_flags));
        core::arch::asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack, preserves_flags));
        core::arch::asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack, preserves_flags));
    }
    let mut w = emergency_writer();
    let name = NAMES.get(f.vector as usize).copied().unwrap_or("?");
    let _ = write!(
        w,
        "\n[hv] EXCEPTION {} (vector {}) error {:#x} in ebbhv\n\
         [hv]   rip {:#018x} cs {:#x} rflags {:#x} rsp {:#018x} ss {:#x}\n\
         [hv]   rax {:#018x} rbx {:#018x} rcx {:#018x} rdx {:#018x}\n\
         [hv]   rsi {:#018x} rdi {:#018x} rbp {:#018x} r8  {:#018x}\n\
         [hv]   r9  {:#018x} r10 {:#018x} r11 {:#018x} r12 {:#018x}\n\
         [hv]   r13 {:#018x} r14 {:#018x} r15 {:#018x}\n\
         [hv]   cr0 {:#x} cr2 {:#x} cr3 {:#x} cr4 {:#x}\n",
        name,
        f.vector,
        f.error,
        f.rip,
        f.cs,
        f.rflags,
        f.rsp,
        f.ss,
        f.rax,
        f.rbx,
        f.rcx,
        f.rdx,
        f.rsi,
        f.rdi,
        f.rbp,
        f.r8,
        f.r9,
        f.r10,
        f.r11,
        f.r12,
        f.r13,
        f.r14,
        f.r15,
        cr0,
        cr2,
        cr3,
        cr4
    );
    exit_qemu(ExitCode::HypervisorFault)
}

/// Called by the stray-interrupt entry: counts it and signals end of interrupt.
#[no_mangle]
extern "C" fn stray_interrupt() {
    STRAY_INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    crate::timer::end_of_interrupt();
}

core::arch::global_asm!(
    r#"
    .section .text
    /* External interrupts: save the registers the C ABI lets a callee clobber,
       call the Rust handler on a 16-byte aligned stack, restore, return. */
    .macro irq_entry name, handler
    .balign 16
    .global \name
\name:
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    push %rbp
    mov %rsp, %rbp
    and $-16, %rsp
    call \handler
    mov %rbp, %rsp
    pop %rbp
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    iretq
    .endm
    irq_entry irq_timer_entry, host_timer_interrupt
    irq_entry irq_stray_entry, stray_interrupt

    .macro stub_noerr n
    .balign 16
isr_stub_\n:
    pushq $0
    pushq $\n
    jmp isr_common
    .endm
    .macro stub_err n
    .balign 16
isr_stub_\n:
    pushq $\n
    jmp isr_common
    .endm

    .irp n, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
    stub_noerr \n
    .endr
    .irp n, 8,10,11,12,13,14,17,21,29,30
    stub_err \n
    .endr

isr_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, %rdi
    and $-16, %rsp
    call exception_report
    ud2

    .section .rodata
    .balign 8
    .global isr_stub_table
isr_stub_table:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad isr_stub_\n
    .endr
"#,
    options(att_syntax)
);
