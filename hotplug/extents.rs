// SPDX-License-Identifier: GPL-2.0

//! A set of the 2 MiB extents of one memory block, by index in the block.
//!
//! Pure logic: this file uses nothing but `core`, so that `tests/unit` runs its tests
//! on the host.

/// A set of extent indices below [`ExtentSet::CAPACITY`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ExtentSet(u64);

impl ExtentSet {
    /// The most extents a block may have: a 128 MiB block has 64.
    pub(crate) const CAPACITY: usize = u64::BITS as usize;

    /// No extent.
    pub(crate) const EMPTY: Self = Self(0);

    /// Extents `0..count`, every extent of a block of `count` extents; `count` is at
    /// most [`ExtentSet::CAPACITY`].
    pub(crate) const fn first(count: usize) -> Self {
        match count {
            0 => Self::EMPTY,
            _ => Self(u64::MAX >> (Self::CAPACITY - count)),
        }
    }

    /// Extents `start..start + count` (within [`ExtentSet::CAPACITY`]).
    pub(crate) const fn range(start: usize, count: usize) -> Self {
        Self(Self::first(count).0 << start)
    }

    /// Adds `extent` (below [`ExtentSet::CAPACITY`]).
    pub(crate) fn insert(&mut self, extent: usize) {
        self.0 |= 1 << extent;
    }

    /// Removes `extent`.
    pub(crate) fn remove(&mut self, extent: usize) {
        if extent < Self::CAPACITY {
            self.0 &= !(1 << extent);
        }
    }

    /// Whether the set is empty.
    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The number of extents in the set.
    pub(crate) fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The extents in either set.
    pub(crate) fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The extents in both sets.
    pub(crate) fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    /// The extents in this set and not in `other`.
    pub(crate) fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// The extents in ascending order.
    pub(crate) fn iter(self) -> impl Iterator<Item = usize> {
        let mut rest = self.0;
        core::iter::from_fn(move || {
            if rest == 0 {
                return None;
            }
            let extent = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            Some(extent)
        })
    }
}
