//! Which interrupt the guest is offered through V_IRQ, and how the VMCB's
//! `vintr` word (V_TPR, V_IRQ, V_IGN_TPR, V_INTR_PRIO, V_INTR_VECTOR; AMD APM vol. 2,
//! 15.21.4 and appendix B) encodes the offer.
//!
//! Two sources compete for the one V_IRQ: the Xen event channel upcall (the
//! `HVM_PARAM_CALLBACK_IRQ` vector, level-triggered, no EOI) and the virtual
//! LAPIC's highest deliverable vector (self-IPIs, which go to ISR when taken). The
//! higher vector wins, as in a LAPIC; the other waits for a later entry.

use crate::vmcb::{VINTR_IGN_TPR, VINTR_IRQ};

/// `vintr` bits 16..19: V_INTR_PRIO.
const PRIO_SHIFT: u32 = 16;
/// `vintr` bits 32..39: V_INTR_VECTOR.
const VECTOR_SHIFT: u32 = 32;
/// Every bit of an offer.
const OFFER_BITS: u64 = VINTR_IRQ | VINTR_IGN_TPR | (0xf << PRIO_SHIFT) | (0xff << VECTOR_SHIFT);

/// What V_IRQ carries into a guest run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offered {
    /// The event channel upcall vector.
    Upcall(u8),
    /// A virtual LAPIC vector (moves from IRR to ISR once taken).
    Lapic(u8),
}

impl Offered {
    /// The vector offered.
    pub fn vector(self) -> u8 {
        match self {
            Offered::Upcall(v) | Offered::Lapic(v) => v,
        }
    }
}

/// The offer for the next run: the pending upcall vector (if the upcall is
/// pending) and the LAPIC's deliverable vector, the higher winning; ties go to the
/// upcall, which needs no bookkeeping when taken.
pub fn choose(upcall: Option<u8>, lapic: Option<u8>) -> Option<Offered> {
    match (upcall, lapic) {
        (Some(u), Some(l)) if l > u => Some(Offered::Lapic(l)),
        (Some(u), _) => Some(Offered::Upcall(u)),
        (None, Some(l)) => Some(Offered::Lapic(l)),
        (None, None) => None,
    }
}

/// `vintr` with `offer` in it (V_IRQ at the highest priority, ignoring V_TPR, on the
/// offered vector), or with any previous offer withdrawn; other bits are kept.
pub fn encode(vintr: u64, offer: Option<Offered>) -> u64 {
    let kept = vintr & !OFFER_BITS;
    match offer {
        Some(o) => {
            kept | VINTR_IRQ
                | VINTR_IGN_TPR
                | (0xf << PRIO_SHIFT)
                | (u64::from(o.vector()) << VECTOR_SHIFT)
        }
        None => kept,
    }
}

/// Whether the CPU took the offer during the run that just ended: it clears V_IRQ
/// when it delivers the virtual interrupt.
pub fn taken(vintr_after_exit: u64) -> bool {
    vintr_after_exit & VINTR_IRQ == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vmcb::VINTR_MASKING;

    #[test]
    fn higher_vector_wins() {
        assert_eq!(choose(None, None), None);
        assert_eq!(choose(Some(0xf3), None), Some(Offered::Upcall(0xf3)));
        assert_eq!(choose(None, Some(0x40)), Some(Offered::Lapic(0x40)));
        assert_eq!(choose(Some(0xf3), Some(0xf6)), Some(Offered::Lapic(0xf6)));
        assert_eq!(choose(Some(0xf3), Some(0x40)), Some(Offered::Upcall(0xf3)));
        assert_eq!(choose(Some(0xf3), Some(0xf3)), Some(Offered::Upcall(0xf3)));
    }

    #[test]
    fn encoding_keeps_other_bits() {
        let base = VINTR_MASKING | 0x5; // V_INTR_MASKING and a V_TPR of 5
        let v = encode(base, Some(Offered::Upcall(0xf3)));
        assert_eq!(
            v,
            base | VINTR_IRQ | VINTR_IGN_TPR | (0xf << 16) | (0xf3 << 32)
        );
        assert!(!taken(v));
        let v2 = encode(v, Some(Offered::Lapic(0x41)));
        assert_eq!(v2 >> 32, 0x41, "the vector is replaced, not or-ed");
        assert_eq!(encode(v2, None), base, "withdrawn");
        assert!(taken(base));
    }
}
