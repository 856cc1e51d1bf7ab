//! A small, fixed-capacity set of address ranges, for carving the boot memory map
//! before any allocator exists: start from the firmware's RAM entries, take out
//! what ebbhv's image, the payload bundle and the low 1 MiB occupy, and take out
//! ranges for the hypervisor's own allocator.

/// A half-open range `[start, end)` of addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Range {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
}

impl Range {
    /// `[start, end)`.
    pub const fn new(start: u64, end: u64) -> Range {
        Range { start, end }
    }

    /// Bytes covered.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range covers nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Up to `N` disjoint ranges, sorted by start.
#[derive(Clone, Debug)]
pub struct RangeSet<const N: usize> {
    ranges: [Range; N],
    len: usize,
}

/// The set is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

impl<const N: usize> Default for RangeSet<N> {
    fn default() -> Self {
        RangeSet {
            ranges: [Range::default(); N],
            len: 0,
        }
    }
}

impl<const N: usize> RangeSet<N> {
    /// The ranges, sorted.
    pub fn as_slice(&self) -> &[Range] {
        &self.ranges[..self.len]
    }

    /// Adds a range (merging with neighbours it touches).
    pub fn add(&mut self, r: Range) -> Result<(), Full> {
        if r.is_empty() {
            return Ok(());
        }
        let mut merged = r;
        let mut out = RangeSet::<N>::default();
        let mut placed = false;
        for &x in self.as_slice() {
            if x.end < merged.start {
                out.push(x)?;
            } else if merged.end < x.start {
                if !placed {
                    out.push(merged)?;
                    placed = true;
                }
                out.push(x)?;
            } else {
                merged = Range::new(merged.start.min(x.start), merged.end.max(x.end));
            }
        }
        if !placed {
            out.push(merged)?;
        }
        *self = out;
        Ok(())
    }

    /// Removes every address of `r`.
    pub fn remove(&mut self, r: Range) -> Result<(), Full> {
        let mut out = RangeSet::<N>::default();
        for &x in self.as_slice() {
            if x.end <= r.start || r.end <= x.start {
                out.push(x)?;
                continue;
            }
            if x.start < r.start {
                out.push(Range::new(x.start, r.start))?;
            }
            if r.end < x.end {
                out.push(Range::new(r.end, x.end))?;
            }
        }
        *self = out;
        Ok(())
    }

    /// Takes `size` bytes aligned to `align` (a power of two) from the lowest range
    /// that has them at or above `min`, and removes them from the set.
    pub fn take(&mut self, size: u64, align: u64, min: u64) -> Option<Range> {
        let found = self.as_slice().iter().find_map(|x| {
            let start = x.start.max(min).checked_add(align - 1)? & !(align - 1);
            let end = start.checked_add(size)?;
            (end <= x.end).then_some(Range::new(start, end))
        })?;
        self.remove(found).ok()?;
        Some(found)
    }

    /// Total bytes.
    pub fn total(&self) -> u64 {
        self.as_slice().iter().map(Range::len).sum()
    }

    fn push(&mut self, r: Range) -> Result<(), Full> {
        if r.is_empty() {
            return Ok(());
        }
        let slot = self.ranges.get_mut(self.len).ok_or(Full)?;
        *slot = r;
        self.len += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_merges_and_remove_splits() {
        let mut s = RangeSet::<8>::default();
        s.add(Range::new(0x10_0000, 0x4000_0000)).unwrap();
        s.add(Range::new(0, 0x9f000)).unwrap();
        s.add(Range::new(0x9f000, 0xa0000)).unwrap();
        assert_eq!(
            s.as_slice(),
            &[Range::new(0, 0xa0000), Range::new(0x10_0000, 0x4000_0000)]
        );
        s.remove(Range::new(0, 0x10_0000)).unwrap();
        s.remove(Range::new(0x20_0000, 0x30_0000)).unwrap();
        assert_eq!(
            s.as_slice(),
            &[
                Range::new(0x10_0000, 0x20_0000),
                Range::new(0x30_0000, 0x4000_0000)
            ]
        );
        assert_eq!(s.total(), 0x10_0000 + 0x4000_0000 - 0x30_0000);
    }

    #[test]
    fn take_respects_alignment_minimum_and_capacity() {
        let mut s = RangeSet::<2>::default();
        s.add(Range::new(0x1000, 0x30_0000)).unwrap();
        s.add(Range::new(0x100_0000, 0x200_0000)).unwrap();
        let r = s.take(0x20_0000, 0x20_0000, 0).unwrap();
        assert_eq!(r, Range::new(0x100_0000, 0x120_0000));
        assert!(s.take(0x1000_0000, 0x1000, 0).is_none());
        let mut full = RangeSet::<1>::default();
        full.add(Range::new(0, 100)).unwrap();
        assert_eq!(full.remove(Range::new(10, 20)), Err(Full));
    }
}
