//! The p2m's change log, and replaying it into a mirror (the NPT).
//!
//! Each p2m operation records the guest ranges whose leaves it changed. The platform
//! takes them after every operation that may have changed a p2m (a hypercall, a
//! fault, a control command) and rebuilds exactly those ranges of its nested page
//! tables, then flushes the guest TLB. Ranges cover whole leaves, old and new, so the
//! mirror only ever drops whole leaves it had and installs whole leaves it is given.

use alloc::vec::Vec;

use super::entry::Mapping;
use super::table::P2m;
use crate::addr::GfnRange;

/// Beyond this many separate ranges the log keeps one range covering them all: a
/// larger resync is cheaper than an unbounded log.
const MAX_RANGES: usize = 1024;

/// Guest ranges changed since they were last taken.
#[derive(Default)]
pub(super) struct ChangeLog {
    ranges: Vec<GfnRange>,
}

impl ChangeLog {
    pub(super) fn record(&mut self, range: GfnRange) {
        if let Some(last) = self.ranges.last_mut() {
            if range.start <= last.end && last.start <= range.end {
                last.start = last.start.min(range.start);
                last.end = last.end.max(range.end);
                return;
            }
        }
        if self.ranges.len() >= MAX_RANGES {
            let start = self
                .ranges
                .iter()
                .map(|r| r.start)
                .min()
                .unwrap_or(range.start);
            let end = self.ranges.iter().map(|r| r.end).max().unwrap_or(range.end);
            self.ranges.clear();
            self.ranges
                .push(GfnRange::new(start.min(range.start), end.max(range.end)));
            return;
        }
        self.ranges.push(range);
    }

    pub(super) fn take(&mut self) -> Vec<GfnRange> {
        let mut ranges = core::mem::take(&mut self.ranges);
        ranges.sort_unstable_by_key(|r| r.start);
        let mut merged: Vec<GfnRange> = Vec::with_capacity(ranges.len());
        for range in ranges {
            match merged.last_mut() {
                Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
                _ => merged.push(range),
            }
        }
        merged
    }
}

/// A second representation of a p2m that follows it: the platform's nested page
/// tables. It holds no state of its own that the p2m does not have.
pub trait P2mMirror {
    /// Drops every leaf inside `range`. The range consists of whole leaves previously
    /// installed by [`P2mMirror::map`] (and holes), so no leaf straddles its ends.
    fn unmap(&mut self, range: GfnRange);

    /// Installs one leaf (after its range was unmapped). Leaves the guest may not
    /// access ([`crate::p2m::EntryType::accessible`]) are never installed.
    fn map(&mut self, mapping: Mapping);

    /// Bytes of hypervisor memory the mirror holds for this p2m (its table
    /// pages), charged to the domain.
    fn table_bytes(&self) -> u64;
}

impl P2m {
    /// Replays every change since the last call into `mirror`: each changed range is
    /// unmapped and its current accessible leaves mapped (a broken frame stays out,
    /// so the guest's access to it faults). The caller flushes the guest's TLB
    /// afterwards if the returned count is non-zero.
    pub fn sync_mirror(&mut self, mirror: &mut dyn P2mMirror) -> usize {
        let ranges = self.take_changes();
        for range in &ranges {
            mirror.unmap(*range);
            self.for_each_mapping(*range, &mut |mapping| {
                if mapping.kind.accessible() {
                    mirror.map(mapping);
                }
            });
        }
        ranges.len()
    }
}
