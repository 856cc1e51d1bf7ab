//! The host's own timer: the machine's local APIC (QEMU's emulated one, in x2APIC
//! mode) counting down in one-shot mode, used to wake ebbhv when the guest's
//! one-shot timer is due.
//!
//! ebbhv sets one wake-up time at a time ([`arm_at`], in TSC ticks). The APIC count
//! register has 32 bits, so a far deadline is programmed as the longest count that
//! fits and re-armed when that fires early; the interrupt handler only acknowledges
//! the interrupt and records that it fired ([`take_fired`]). The rest of the
//! machine's interrupt sources stay off: both 8259 PICs are masked, as are LINT0,
//! LINT1 and the error LVT, so the APIC timer is the only interrupt ebbhv takes.
//!
//! Locking: the state is three atomics written by the one CPU (the handler only
//! sets [`FIRED`]).

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ebbhv_x86::time::{apply_ratio, ratio_32_32};

use ebbhv_x86::msr::APIC_BASE;

use crate::clock::rdtsc;
use crate::msr::{rdmsr, wrmsr};
use crate::port::outb;

/// The host timer's interrupt vector (its IDT gate leads to
/// [`host_timer_interrupt`]).
pub const TIMER_VECTOR: u8 = 0x20;

/// x2APIC MSRs (Intel SDM vol. 3, table 11-6).
const X2APIC_EOI: u32 = 0x80b;
const X2APIC_SVR: u32 = 0x80f;
const X2APIC_LVT_TIMER: u32 = 0x832;
const X2APIC_LVT_LINT0: u32 = 0x835;
const X2APIC_LVT_LINT1: u32 = 0x836;
const X2APIC_LVT_ERROR: u32 = 0x837;
const X2APIC_INITIAL_COUNT: u32 = 0x838;
const X2APIC_CURRENT_COUNT: u32 = 0x839;
const X2APIC_DIVIDE: u32 = 0x83e;

/// APIC_BASE: global enable and x2APIC mode.
const APIC_BASE_EN_EXTD: u64 = (1 << 11) | (1 << 10);
/// SVR: APIC software enable, spurious vector 0xFF.
const SVR_ENABLE: u64 = 0x1ff;
/// LVT: masked.
const LVT_MASKED: u64 = 1 << 16;
/// Divide configuration: divide by 1.
const DIVIDE_BY_1: u64 = 0xb;

/// APIC timer ticks per TSC tick, as a 32.32 fixed-point ratio.
static APIC_PER_TSC: AtomicU64 = AtomicU64::new(0);
/// The TSC time the timer is armed for (0: not armed).
static ARMED_AT: AtomicU64 = AtomicU64::new(0);
/// Set by the interrupt handler.
static FIRED: AtomicBool = AtomicBool::new(false);

/// Turns on the host APIC in x2APIC mode with every source but the timer masked,
/// masks the 8259 PICs, and measures the timer against the TSC over 10 ms. Returns
/// the APIC timer's rate in Hz. Called once at boot, with interrupts off.
pub fn init(tsc_hz: u64) -> u64 {
    // SAFETY: the APIC and the PICs belong to ebbhv (the guest has its own virtual
    // LAPIC and reaches no port). QEMU's -cpu max has x2APIC; enabling it and
    // masking every LVT but the timer's leaves only interrupts ebbhv handles, and
    // interrupts stay off (IF = 0) until ebbhv opens a window on purpose. Writing
    // 0xFF to both PIC data ports masks all their lines.
    unsafe {
        outb(0x21, 0xff);
        outb(0xa1, 0xff);
        wrmsr(APIC_BASE, rdmsr(APIC_BASE) | APIC_BASE_EN_EXTD);
        wrmsr(X2APIC_SVR, SVR_ENABLE);
        wrmsr(X2APIC_LVT_LINT0, LVT_MASKED);
        wrmsr(X2APIC_LVT_LINT1, LVT_MASKED);
        wrmsr(X2APIC_LVT_ERROR, LVT_MASKED);
        wrmsr(X2APIC_DIVIDE, DIVIDE_BY_1);
        // Count down from the top, masked, to measure the rate.
        wrmsr(X2APIC_LVT_TIMER, LVT_MASKED | u64::from(TIMER_VECTOR));
        wrmsr(X2APIC_INITIAL_COUNT, u64::from(u32::MAX));
    }
    let t0 = rdtsc();
    // SAFETY: reading the current count has no side effects.
    let c0 = unsafe { rdmsr(X2APIC_CURRENT_COUNT) };
    let window = tsc_hz / 100;
    while rdtsc().wrapping_sub(t0) < window {
        core::hint::spin_loop();
    }
    // SAFETY: as above.
    let c1 = unsafe { rdmsr(X2APIC_CURRENT_COUNT) };
    let t1 = rdtsc();
    let ratio = ratio_32_32(c0.saturating_sub(c1).max(1), t1.wrapping_sub(t0)).max(1);
    APIC_PER_TSC.store(ratio, Ordering::Relaxed);
    // SAFETY: stops the calibration count and unmasks the timer's LVT in one-shot
    // mode on TIMER_VECTOR, whose IDT gate is the handler below.
    unsafe {
        wrmsr(X2APIC_INITIAL_COUNT, 0);
        wrmsr(X2APIC_LVT_TIMER, u64::from(TIMER_VECTOR));
    }
    apply_ratio(tsc_hz, ratio)
}

/// Asks for an interrupt at TSC time `tsc` (at once if it has passed); replaces
/// any earlier request. A deadline beyond the 32-bit count fires early, and the
/// caller re-arms (it checks its own deadlines after every wake-up).
pub fn arm_at(tsc: u64) {
    if ARMED_AT.load(Ordering::Relaxed) == tsc {
        return;
    }
    let now = rdtsc();
    let delta = tsc.saturating_sub(now);
    let count =
        apply_ratio(delta, APIC_PER_TSC.load(Ordering::Relaxed)).clamp(1, u64::from(u32::MAX));
    ARMED_AT.store(tsc, Ordering::Relaxed);
    // SAFETY: the timer LVT is set up by `init`; a new initial count restarts the
    // one-shot countdown and has no other effect.
    unsafe { wrmsr(X2APIC_INITIAL_COUNT, count) };
}

/// Cancels the pending wake-up, if any.
pub fn disarm() {
    if ARMED_AT.swap(0, Ordering::Relaxed) != 0 {
        // SAFETY: a zero initial count stops the timer.
        unsafe { wrmsr(X2APIC_INITIAL_COUNT, 0) };
    }
}

/// Whether the timer fired since the last call.
pub fn take_fired() -> bool {
    FIRED.swap(false, Ordering::Relaxed)
}

/// Waits with interrupts open until the timer fires (or any interrupt arrives).
/// The CPU sleeps in HLT; under QEMU the emulator thread sleeps with it.
pub fn wait_for_interrupt() {
    // SAFETY: STI's one-instruction shadow makes `sti; hlt` atomic: an interrupt
    // that is already pending wakes the HLT instead of slipping in between. The
    // handlers reached through the IDT preserve every register; CLI closes the
    // window again before returning to code that assumes interrupts are off.
    unsafe { core::arch::asm!("sti", "hlt", "cli", options(nomem, nostack)) };
}

/// Signals end of interrupt to the host APIC.
pub(crate) fn end_of_interrupt() {
    // SAFETY: writing 0 to the x2APIC EOI register retires the in-service
    // interrupt; it has no other effect.
    unsafe { wrmsr(X2APIC_EOI, 0) };
}

/// Called by the timer's interrupt entry ([`crate::idt`]).
#[no_mangle]
extern "C" fn host_timer_interrupt() {
    ARMED_AT.store(0, Ordering::Relaxed);
    FIRED.store(true, Ordering::Relaxed);
    end_of_interrupt();
}
