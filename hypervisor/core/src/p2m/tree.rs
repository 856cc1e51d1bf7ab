//! The p2m's radix tree: a sparse top level of 1 GiB slots, each a leaf or a table of
//! 512 2 MiB slots, each empty, a leaf or a table of 512 4 KiB entries — the shape of
//! the x86 NPT below its top two levels, so that every core leaf is one NPT leaf.
//!
//! Tables count their present slots, so "full" (a merge candidate) and "empty" (to be
//! freed) are O(1) questions; merging itself checks the 512 entries only when full.

use alloc::boxed::Box;
use alloc::vec;

use super::entry::Entry;
use crate::addr::Order;

/// Slots per table.
pub(super) const FANOUT: usize = 512;

/// A populated 1 GiB slot of the top level.
pub(super) enum Node1G {
    Leaf(Entry),
    Table(Box<Table2M>),
}

/// One 2 MiB slot.
pub(super) enum Node2M {
    Empty,
    Leaf(Entry),
    Table(Box<Table4K>),
}

/// 512 2 MiB slots.
///
/// # Invariants
///
/// `slots.len() == FANOUT`; `present` is the number of slots that are not `Empty`;
/// `tables` is the number of slots that are `Table`.
pub(super) struct Table2M {
    slots: Box<[Node2M]>,
    present: u16,
    tables: u16,
}

/// 512 4 KiB entries.
///
/// # Invariants
///
/// `entries.len() == FANOUT`; `present` is the number of `Some` entries.
pub(super) struct Table4K {
    entries: Box<[Option<Entry>]>,
    present: u16,
}

impl Table4K {
    pub(super) fn empty() -> Table4K {
        // INVARIANT: FANOUT empty entries, none present.
        Table4K {
            entries: vec![None; FANOUT].into_boxed_slice(),
            present: 0,
        }
    }

    /// The table that maps the same frames as the 2 MiB leaf `leaf`.
    pub(super) fn from_leaf(leaf: Entry) -> Table4K {
        let entries = (0..FANOUT as u64).map(|i| Some(leaf.offset(i))).collect();
        // INVARIANT: FANOUT entries, all present.
        Table4K {
            entries,
            present: FANOUT as u16,
        }
    }

    pub(super) fn get(&self, index: usize) -> Option<Entry> {
        self.entries.get(index).copied().flatten()
    }

    pub(super) fn set(&mut self, index: usize, entry: Option<Entry>) {
        let Some(slot) = self.entries.get_mut(index) else {
            return;
        };
        // INVARIANT: `present` follows the change of this one slot.
        match (slot.is_some(), entry.is_some()) {
            (false, true) => self.present += 1,
            (true, false) => self.present -= 1,
            _ => {}
        }
        *slot = entry;
    }

    pub(super) fn is_empty(&self) -> bool {
        self.present == 0
    }

    /// The 2 MiB leaf this table is equivalent to, if it is one: full, same type,
    /// contiguous frames starting 2 MiB-aligned.
    pub(super) fn merged(&self) -> Option<Entry> {
        if usize::from(self.present) != FANOUT {
            return None;
        }
        let first = self.entries.first().copied().flatten()?;
        if !first.mfn.is_aligned(Order::ORDER_2M) {
            return None;
        }
        let contiguous = self
            .entries
            .iter()
            .zip(0u64..)
            .all(|(entry, i)| *entry == Some(first.offset(i)));
        contiguous.then_some(first)
    }
}

impl Node2M {
    pub(super) fn is_empty(&self) -> bool {
        matches!(self, Node2M::Empty)
    }

    fn is_table(&self) -> bool {
        matches!(self, Node2M::Table(_))
    }
}

impl Table2M {
    pub(super) fn empty() -> Table2M {
        let slots = (0..FANOUT).map(|_| Node2M::Empty).collect();
        // INVARIANT: FANOUT empty slots, none present, no table.
        Table2M {
            slots,
            present: 0,
            tables: 0,
        }
    }

    /// The table that maps the same frames as the 1 GiB leaf `leaf`.
    pub(super) fn from_leaf(leaf: Entry) -> Table2M {
        let slots = (0..FANOUT as u64)
            .map(|i| Node2M::Leaf(leaf.offset(i * Order::ORDER_2M.frames())))
            .collect();
        // INVARIANT: FANOUT slots, all present leaves.
        Table2M {
            slots,
            present: FANOUT as u16,
            tables: 0,
        }
    }

    pub(super) fn slot(&self, index: usize) -> Option<&Node2M> {
        self.slots.get(index)
    }

    /// The 4 KiB table in a slot, to change its entries (replacing the slot itself
    /// goes through [`Table2M::set`], which keeps the counts).
    pub(super) fn table_4k_mut(&mut self, index: usize) -> Option<&mut Table4K> {
        match self.slots.get_mut(index) {
            Some(Node2M::Table(t)) => Some(t),
            _ => None,
        }
    }

    /// Changes the entry of a 2 MiB leaf in place (same frames, new type).
    pub(super) fn leaf_mut(&mut self, index: usize) -> Option<&mut Entry> {
        match self.slots.get_mut(index) {
            Some(Node2M::Leaf(e)) => Some(e),
            _ => None,
        }
    }

    /// Replaces a slot, keeping the present and table counts.
    pub(super) fn set(&mut self, index: usize, node: Node2M) {
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        // INVARIANT: `present` and `tables` follow the change of this one slot.
        match (slot.is_empty(), node.is_empty()) {
            (true, false) => self.present += 1,
            (false, true) => self.present -= 1,
            _ => {}
        }
        match (slot.is_table(), node.is_table()) {
            (false, true) => self.tables += 1,
            (true, false) => self.tables -= 1,
            _ => {}
        }
        *slot = node;
    }

    /// How many of its slots are 4 KiB tables.
    pub(super) fn tables(&self) -> u64 {
        u64::from(self.tables)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.present == 0
    }

    pub(super) fn slots(&self) -> impl Iterator<Item = &Node2M> {
        self.slots.iter()
    }

    /// The 1 GiB leaf this table is equivalent to, if it is one.
    pub(super) fn merged(&self) -> Option<Entry> {
        if usize::from(self.present) != FANOUT {
            return None;
        }
        let Some(&Node2M::Leaf(first)) = self.slots.first() else {
            return None;
        };
        if !first.mfn.is_aligned(Order::ORDER_1G) {
            return None;
        }
        let contiguous = self.slots.iter().zip(0u64..).all(|(slot, i)| {
            matches!(slot, Node2M::Leaf(e) if *e == first.offset(i * Order::ORDER_2M.frames()))
        });
        contiguous.then_some(first)
    }
}
