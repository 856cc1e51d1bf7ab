//! How hypercalls are counted: by a key from a small, fixed set, so that a guest
//! choosing its arguments cannot grow the platform's statistics.
//!
//! A hypercall whose first argument is a command keeps it as its sub-op when it is
//! below [`MAX_SUB_OP`] (every Xen sub-op number is); any other value, the first
//! argument of a call that takes no command (`set_timer_op`'s deadline, the
//! pointers of sysctl and domctl) and every unknown hypercall number are folded
//! into [`CountKey::OTHER`] buckets. There are at most [`CountKey::COUNT`] keys.

use crate::abi::hypercall as nr;

/// Sub-ops counted on their own.
pub const MAX_SUB_OP: u64 = 64;

/// Hypercalls whose first argument is a command.
const WITH_SUB_OP: [u64; 10] = [
    nr::MEMORY_OP,
    nr::XEN_VERSION,
    nr::CONSOLE_IO,
    nr::GRANT_TABLE_OP,
    nr::VM_ASSIST,
    nr::VCPU_OP,
    nr::SCHED_OP,
    nr::EVENT_CHANNEL_OP,
    nr::PHYSDEV_OP,
    nr::HVM_OP,
];

/// Hypercalls counted without a sub-op.
const WITHOUT_SUB_OP: [u64; 3] = [nr::SET_TIMER_OP, nr::SYSCTL, nr::DOMCTL];

/// What one hypercall is counted under.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct CountKey {
    /// The hypercall number, or [`CountKey::OTHER`] for one ebbhv does not know.
    pub number: u64,
    /// The sub-op, 0 for a call without one, or [`CountKey::OTHER`].
    pub sub: u64,
}

impl CountKey {
    /// The bucket for values not counted on their own.
    pub const OTHER: u64 = u64::MAX;

    /// The most distinct keys: every sub-op and the other bucket of each call with
    /// sub-ops, one key for each call without, one for unknown calls.
    pub const COUNT: usize =
        WITH_SUB_OP.len() * (MAX_SUB_OP as usize + 1) + WITHOUT_SUB_OP.len() + 1;

    /// Whether the call is counted by sub-op.
    pub fn has_sub_op(self) -> bool {
        WITH_SUB_OP.contains(&self.number)
    }

    /// The key for hypercall `number` with first argument `arg0`.
    pub fn new(number: u64, arg0: u64) -> CountKey {
        if WITHOUT_SUB_OP.contains(&number) {
            return CountKey { number, sub: 0 };
        }
        if !WITH_SUB_OP.contains(&number) {
            return CountKey {
                number: CountKey::OTHER,
                sub: CountKey::OTHER,
            };
        }
        // memory_op keeps its continuation's extent in the bits above the command.
        let command = if number == nr::MEMORY_OP {
            arg0 & 0x3f
        } else {
            arg0
        };
        let sub = if command < MAX_SUB_OP {
            command
        } else {
            CountKey::OTHER
        };
        CountKey { number, sub }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;

    #[test]
    fn timer_deadlines_and_unknown_calls_share_keys() {
        let timer: BTreeSet<CountKey> = (0..10_000u64)
            .map(|d| CountKey::new(nr::SET_TIMER_OP, d * 1_000_003))
            .collect();
        assert_eq!(timer.len(), 1);
        assert_eq!(
            CountKey::new(99, 7),
            CountKey {
                number: CountKey::OTHER,
                sub: CountKey::OTHER
            }
        );
        assert_eq!(CountKey::new(nr::HVM_OP, 1 << 40).sub, CountKey::OTHER);
        assert_eq!(CountKey::new(nr::MEMORY_OP, (5 << 6) | 6).sub, 6);
        assert_eq!(CountKey::new(nr::VCPU_OP, 13).sub, 13);
    }

    #[test]
    fn any_argument_stream_stays_within_count_keys() {
        let mut keys = BTreeSet::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            // xorshift: numbers and arguments of every size, small ones often.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let number = (x >> 40) % 48;
            let arg0 = if x & 1 == 0 { (x >> 8) % 80 } else { x >> 3 };
            keys.insert(CountKey::new(number, arg0));
        }
        assert!(keys.len() <= CountKey::COUNT, "{}", keys.len());
        assert_eq!(CountKey::COUNT, 10 * 65 + 3 + 1);
        // memory_op's command has 6 bits: its other bucket stays empty.
        assert_eq!(keys.len(), CountKey::COUNT - 1);
    }
}
