//! The guest's virtual local APIC, x2APIC mode only, as a register file.
//!
//! The guest reaches it through MSR 0x1B (APIC_BASE, always EN | EXTD | BSP: the
//! APIC starts in x2APIC mode, so Linux never touches the xAPIC MMIO page) and the
//! x2APIC MSRs 0x800–0x8FF (Intel SDM vol. 3, 11.12.1.2). This file keeps the
//! registers and says what a write means ([`Effect`]); interrupt delivery and the
//! timer are the platform's (issue 5). A bad access is [`Gp`]: the guest gets #GP,
//! as from hardware.

/// APIC_BASE: the bootstrap processor.
pub const APIC_BASE_BSP: u64 = 1 << 8;
/// APIC_BASE: x2APIC mode.
pub const APIC_BASE_EXTD: u64 = 1 << 10;
/// APIC_BASE: enabled.
pub const APIC_BASE_EN: u64 = 1 << 11;
/// The APIC_BASE value the guest always reads.
pub const APIC_BASE_VALUE: u64 = 0xfee0_0000 | APIC_BASE_EN | APIC_BASE_EXTD | APIC_BASE_BSP;

/// Version register: version 0x14, six LVT entries (max LVT index 5).
const VERSION: u32 = 0x0005_0014;

const ID: u32 = 0x802;
const VER: u32 = 0x803;
const TPR: u32 = 0x808;
const PPR: u32 = 0x80a;
const EOI: u32 = 0x80b;
const LDR: u32 = 0x80d;
const SVR: u32 = 0x80f;
const ISR0: u32 = 0x810;
const TMR0: u32 = 0x818;
const IRR0: u32 = 0x820;
const ESR: u32 = 0x828;
const ICR: u32 = 0x830;
const LVT_TIMER: u32 = 0x832;
const LVT_ERROR: u32 = 0x837;
const TIMER_INITIAL: u32 = 0x838;
const TIMER_CURRENT: u32 = 0x839;
const TIMER_DIVIDE: u32 = 0x83e;
const SELF_IPI: u32 = 0x83f;

/// LVT mask bit.
pub const LVT_MASKED: u32 = 1 << 16;

/// The access must raise #GP in the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gp;

/// What a register write asks of the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Nothing beyond the stored value.
    None,
    /// An interrupt became pending in IRR (self-IPI).
    Pending(u8),
    /// The timer's LVT, divider or initial count changed.
    TimerChanged,
}

/// The register file.
#[derive(Clone, Debug)]
pub struct VLapic {
    tpr: u32,
    svr: u32,
    esr: u32,
    icr: u64,
    /// LVT timer, thermal, perf, LINT0, LINT1, error.
    lvt: [u32; 6],
    isr: [u32; 8],
    tmr: [u32; 8],
    irr: [u32; 8],
    timer_initial: u32,
    timer_divide: u32,
}

impl Default for VLapic {
    fn default() -> Self {
        VLapic {
            tpr: 0,
            svr: 0xff,
            esr: 0,
            icr: 0,
            lvt: [LVT_MASKED; 6],
            isr: [0; 8],
            tmr: [0; 8],
            irr: [0; 8],
            timer_initial: 0,
            timer_divide: 0,
        }
    }
}

// A vector's word, `v / 32`, is below 8 for every u8, so the `get_mut`s below
// always find it.

fn set(bits: &mut [u32; 8], v: u8) {
    if let Some(word) = bits.get_mut(usize::from(v / 32)) {
        *word |= 1 << (v % 32);
    }
}

fn clear(bits: &mut [u32; 8], v: u8) {
    if let Some(word) = bits.get_mut(usize::from(v / 32)) {
        *word &= !(1 << (v % 32));
    }
}

fn highest(bits: &[u32; 8]) -> Option<u8> {
    let (i, word) = bits.iter().enumerate().rev().find(|(_, w)| **w != 0)?;
    Some((i * 32 + 31 - word.leading_zeros() as usize) as u8)
}

/// Register `index` of a bank of registers; the callers' match arms keep `index`
/// inside the bank.
fn reg(bank: &[u32], index: u32) -> u32 {
    bank.get(index as usize).copied().unwrap_or(0)
}

impl VLapic {
    /// Whether `msr` is one of the x2APIC registers.
    pub fn is_x2apic_msr(msr: u32) -> bool {
        (0x800..=0x8ff).contains(&msr)
    }

    /// RDMSR of an x2APIC register.
    pub fn read(&self, msr: u32) -> Result<u64, Gp> {
        let v = match msr {
            ID => 0,
            VER => VERSION,
            TPR => self.tpr,
            PPR => self
                .tpr
                .max(highest(&self.isr).map_or(0, |v| u32::from(v) & 0xf0)),
            LDR => 1,
            SVR => self.svr,
            ISR0..=0x817 => reg(&self.isr, msr - ISR0),
            TMR0..=0x81f => reg(&self.tmr, msr - TMR0),
            IRR0..=0x827 => reg(&self.irr, msr - IRR0),
            ESR => self.esr,
            ICR => return Ok(self.icr),
            LVT_TIMER..=LVT_ERROR => reg(&self.lvt, msr - LVT_TIMER),
            TIMER_INITIAL => self.timer_initial,
            TIMER_CURRENT => 0,
            TIMER_DIVIDE => self.timer_divide,
            _ => return Err(Gp),
        };
        Ok(u64::from(v))
    }

    /// WRMSR of an x2APIC register.
    pub fn write(&mut self, msr: u32, value: u64) -> Result<Effect, Gp> {
        let v = value as u32;
        match msr {
            TPR => self.tpr = v & 0xff,
            EOI => {
                if let Some(vec) = highest(&self.isr) {
                    clear(&mut self.isr, vec);
                }
            }
            SVR => self.svr = v & 0x13ff,
            ESR => self.esr = 0,
            ICR => {
                self.icr = value;
                // Fixed delivery to self (shorthand 01, or destination 0 = us).
                let vector = value as u8;
                let shorthand = (value >> 18) & 3;
                let fixed = (value >> 8) & 7 == 0;
                if fixed && (shorthand == 1 || (shorthand == 0 && value >> 32 == 0)) && vector >= 16
                {
                    set(&mut self.irr, vector);
                    return Ok(Effect::Pending(vector));
                }
            }
            LVT_TIMER => {
                self.lvt[0] = v & 0x7_10ff;
                return Ok(Effect::TimerChanged);
            }
            0x833..=LVT_ERROR => {
                if let Some(lvt) = self.lvt.get_mut((msr - LVT_TIMER) as usize) {
                    *lvt = v & 0x1_17ff;
                }
            }
            TIMER_INITIAL => {
                self.timer_initial = v;
                return Ok(Effect::TimerChanged);
            }
            TIMER_DIVIDE => {
                self.timer_divide = v & 0xb;
                return Ok(Effect::TimerChanged);
            }
            SELF_IPI => {
                let vector = v as u8;
                if vector >= 16 {
                    set(&mut self.irr, vector);
                    return Ok(Effect::Pending(vector));
                }
            }
            _ => return Err(Gp),
        }
        Ok(Effect::None)
    }

    /// The highest-priority pending vector that may be delivered now (above the
    /// TPR and any in-service vector's class), if any.
    pub fn deliverable(&self) -> Option<u8> {
        let v = highest(&self.irr)?;
        let floor = self.tpr.max(highest(&self.isr).map_or(0, u32::from)) & 0xf0;
        (u32::from(v) & 0xf0 > floor).then_some(v)
    }

    /// Moves `vector` from IRR to ISR (the platform injected it).
    pub fn accept(&mut self, vector: u8) {
        clear(&mut self.irr, vector);
        set(&mut self.isr, vector);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_registers() {
        let l = VLapic::default();
        assert_eq!(l.read(ID), Ok(0));
        assert_eq!(l.read(VER), Ok(u64::from(VERSION)));
        assert_eq!(l.read(LDR), Ok(1));
        assert_eq!(l.read(EOI), Err(Gp), "write-only");
        assert_eq!(l.read(0x8ff), Err(Gp));
        assert_eq!(
            APIC_BASE_VALUE & (APIC_BASE_EN | APIC_BASE_EXTD),
            APIC_BASE_EN | APIC_BASE_EXTD
        );
    }

    #[test]
    fn read_only_registers_reject_writes() {
        let mut l = VLapic::default();
        assert_eq!(l.write(ID, 5), Err(Gp));
        assert_eq!(l.write(IRR0, 1), Err(Gp));
        assert_eq!(l.write(TIMER_CURRENT, 1), Err(Gp));
    }

    #[test]
    fn self_ipi_then_accept_then_eoi() {
        let mut l = VLapic::default();
        l.write(SVR, 0x1ff).unwrap();
        assert_eq!(l.write(SELF_IPI, 0xf3), Ok(Effect::Pending(0xf3)));
        assert_eq!(l.read(IRR0 + 7), Ok(1 << 19));
        assert_eq!(l.deliverable(), Some(0xf3));
        l.accept(0xf3);
        assert_eq!(l.deliverable(), None);
        assert_eq!(l.read(ISR0 + 7), Ok(1 << 19));
        l.write(EOI, 0).unwrap();
        assert_eq!(l.read(ISR0 + 7), Ok(0));
        // ICR fixed to self by shorthand.
        assert_eq!(l.write(ICR, (1 << 18) | 0x40), Ok(Effect::Pending(0x40)));
    }

    #[test]
    fn tpr_blocks_lower_classes() {
        let mut l = VLapic::default();
        l.write(TPR, 0x50).unwrap();
        l.write(SELF_IPI, 0x41).unwrap();
        assert_eq!(l.deliverable(), None);
        l.write(TPR, 0).unwrap();
        assert_eq!(l.deliverable(), Some(0x41));
    }

    #[test]
    fn timer_writes_are_reported() {
        let mut l = VLapic::default();
        assert_eq!(l.write(LVT_TIMER, 0xef), Ok(Effect::TimerChanged));
        assert_eq!(l.write(TIMER_INITIAL, 1000), Ok(Effect::TimerChanged));
        assert_eq!(l.read(TIMER_INITIAL), Ok(1000));
        assert_eq!(l.read(LVT_TIMER), Ok(0xef));
    }
}
