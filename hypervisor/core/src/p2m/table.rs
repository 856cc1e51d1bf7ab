//! The p2m's operations: look up, map, unmap, retype and remap, each recording the
//! guest ranges it changed.
//!
//! Every operation works on a range and walks the tree once, splitting a leaf only
//! when the range covers part of it and merging tables back when they become
//! equivalent to one leaf. Recorded ranges always cover whole leaves, both as they
//! were and as they are now, so a mirror never has to split anything itself.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::changes::ChangeLog;
use super::entry::{Entry, EntryType, Mapping, PageSize};
use super::tree::{Node1G, Node2M, Table2M, Table4K, FANOUT};
use crate::addr::{Gfn, GfnRange, Mfn, Order};

const FRAMES_2M: u64 = 1 << 9;
const FRAMES_1G: u64 = 1 << 18;

/// Why the p2m refused a change. It is unchanged when it returns one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum P2mError {
    /// The range reaches beyond the p2m's limit (or overflows).
    OutOfRange,
    /// Part of the range is already mapped.
    Occupied,
    /// The guest or machine frame is not aligned to the order.
    Unaligned,
    /// Nothing is mapped where a mapping was expected.
    NotMapped,
}

/// One domain's p2m.
///
/// # Invariants
///
/// - Every leaf maps a range aligned to its size to a machine range aligned to it.
/// - `mapped` is the number of guest frames covered by leaves.
/// - No table is empty (empty tables are removed) and no full table is equivalent to
///   one leaf (those are merged) — the representation of a mapping is unique.
/// - `changes` covers every range whose leaves differ from what was last taken.
/// - `tables` counts the top-level slots and the tables of `top`.
pub struct P2m {
    top: BTreeMap<u64, Node1G>,
    limit: Gfn,
    mapped: u64,
    high_water: Option<Gfn>,
    changes: ChangeLog,
    tables: TableCount,
}

/// What a p2m's tree holds besides its leaves: the hypervisor memory it costs.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct TableCount {
    /// Populated 1 GiB slots of the top level (leaves or tables).
    pub top_slots: u64,
    /// Tables of 512 2 MiB slots.
    pub tables_2m: u64,
    /// Tables of 512 4 KiB entries.
    pub tables_4k: u64,
}

impl TableCount {
    /// Bytes of the hypervisor's heap these take. A top-level slot is counted twice
    /// its key and node because the B-tree keeps its nodes at least half full.
    pub fn bytes(self) -> u64 {
        let top_slot = 2 * (size_of::<u64>() + size_of::<Node1G>()) as u64;
        let table_2m = (size_of::<Table2M>() + FANOUT * size_of::<Node2M>()) as u64;
        let table_4k = (size_of::<Table4K>() + FANOUT * size_of::<Option<Entry>>()) as u64;
        self.top_slots * top_slot + self.tables_2m * table_2m + self.tables_4k * table_4k
    }

    /// Nested page table pages a mirror may need for these: one per table, and one
    /// per top-level slot for the level above it.
    pub fn mirror_pages(self) -> u64 {
        self.top_slots + self.tables_2m + self.tables_4k
    }

    /// What `self` has beyond `other`, level by level (never negative).
    pub fn growth_from(self, other: TableCount) -> TableCount {
        TableCount {
            top_slots: self.top_slots.saturating_sub(other.top_slots),
            tables_2m: self.tables_2m.saturating_sub(other.tables_2m),
            tables_4k: self.tables_4k.saturating_sub(other.tables_4k),
        }
    }

    /// Both counts together.
    pub fn plus(self, other: TableCount) -> TableCount {
        TableCount {
            top_slots: self.top_slots + other.top_slots,
            tables_2m: self.tables_2m + other.tables_2m,
            tables_4k: self.tables_4k + other.tables_4k,
        }
    }

    fn add(&mut self, other: TableCount) {
        self.top_slots += other.top_slots;
        self.tables_2m += other.tables_2m;
        self.tables_4k += other.tables_4k;
    }

    fn sub(&mut self, other: TableCount) {
        self.top_slots -= other.top_slots;
        self.tables_2m -= other.tables_2m;
        self.tables_4k -= other.tables_4k;
    }
}

/// The tables of the top-level slots `slots`.
fn count_tables<'a>(slots: impl Iterator<Item = &'a Node1G>) -> TableCount {
    let mut count = TableCount::default();
    for node in slots {
        count.top_slots += 1;
        if let Node1G::Table(t) = node {
            count.tables_2m += 1;
            count.tables_4k += t.tables();
        }
    }
    count
}

fn index_1g(gfn: u64) -> u64 {
    gfn >> 18
}

fn index_2m(gfn: u64) -> usize {
    ((gfn >> 9) as usize) & (FANOUT - 1)
}

fn index_4k(gfn: u64) -> usize {
    (gfn as usize) & (FANOUT - 1)
}

fn range(start: u64, end: u64) -> GfnRange {
    GfnRange::new(Gfn(start), Gfn(end))
}

impl P2m {
    /// An empty p2m accepting guest frames below `limit`.
    pub fn new(limit: Gfn) -> P2m {
        // INVARIANT: nothing mapped, nothing changed.
        P2m {
            top: BTreeMap::new(),
            limit,
            mapped: 0,
            high_water: None,
            changes: ChangeLog::default(),
            tables: TableCount::default(),
        }
    }

    /// The tables the tree holds now.
    pub fn tables(&self) -> TableCount {
        self.tables
    }

    /// Counts the tables by walking the whole tree (for the invariant checks).
    pub fn count_tables(&self) -> TableCount {
        count_tables(self.top.values())
    }

    /// The tables a leaf of `order` at `gfn` (or a split down to it) would add: a
    /// 2 MiB-slot table unless a table already covers the 1 GiB slot, a 4 KiB table
    /// unless one already covers the 2 MiB slot, and the top-level slot itself.
    pub fn tables_to_reach(&self, gfn: Gfn, order: Order) -> TableCount {
        let mut need = TableCount::default();
        if order.frames() >= FRAMES_1G {
            need.top_slots = u64::from(!self.top.contains_key(&index_1g(gfn.0)));
            return need;
        }
        let slot = match self.top.get(&index_1g(gfn.0)) {
            None => {
                need.top_slots = 1;
                None
            }
            Some(Node1G::Leaf(_)) => None,
            Some(Node1G::Table(t)) => t.slot(index_2m(gfn.0)),
        };
        if slot.is_none() {
            need.tables_2m = 1;
        }
        if order.frames() < FRAMES_2M && !matches!(slot, Some(Node2M::Table(_))) {
            need.tables_4k = 1;
        }
        need
    }

    /// Re-counts the tables of the top-level slots `from..=to` around a change to
    /// them: `before` is their count from before the change.
    fn recount(&mut self, from: u64, to: u64, before: TableCount) {
        let after = count_tables(self.top.range(from..=to).map(|(_, n)| n));
        self.tables.sub(before);
        self.tables.add(after);
    }

    fn count_range(&self, from: u64, to: u64) -> TableCount {
        count_tables(self.top.range(from..=to).map(|(_, n)| n))
    }

    /// The first guest frame this p2m cannot map.
    pub fn limit(&self) -> Gfn {
        self.limit
    }

    /// Number of guest frames mapped.
    pub fn mapped_frames(&self) -> u64 {
        self.mapped
    }

    /// The highest guest frame ever mapped (Xen's `max_mapped_pfn`: it never goes
    /// down, so a guest that ballooned its top out still sees its old maximum).
    pub fn high_water(&self) -> Option<Gfn> {
        self.high_water
    }

    /// The leaf containing `gfn`.
    pub fn lookup(&self, gfn: Gfn) -> Option<Mapping> {
        let g = gfn.0;
        match self.top.get(&index_1g(g))? {
            Node1G::Leaf(e) => Some(leaf(g & !(FRAMES_1G - 1), *e, PageSize::Size1G)),
            Node1G::Table(t) => match t.slot(index_2m(g))? {
                Node2M::Empty => None,
                Node2M::Leaf(e) => Some(leaf(g & !(FRAMES_2M - 1), *e, PageSize::Size2M)),
                Node2M::Table(t) => t.get(index_4k(g)).map(|e| leaf(g, e, PageSize::Size4K)),
            },
        }
    }

    /// What `gfn` itself maps to: the machine frame and type at 4 KiB granularity.
    pub fn entry(&self, gfn: Gfn) -> Option<Entry> {
        let mapping = self.lookup(gfn)?;
        Some(Entry {
            mfn: mapping.mfn.plus(gfn.0 - mapping.gfn.0),
            kind: mapping.kind,
        })
    }

    /// Whether no frame of `range` is mapped.
    pub fn is_unmapped(&self, range: GfnRange) -> bool {
        let mut any = false;
        self.for_each_mapping(range, &mut |_| any = true);
        !any
    }

    /// Calls `visit` with every leaf that overlaps `range`, in guest order.
    pub fn for_each_mapping(&self, range: GfnRange, visit: &mut dyn FnMut(Mapping)) {
        if range.is_empty() {
            return;
        }
        let (start, end) = (range.start.0, range.end.0);
        for (&i1, node) in self.top.range(index_1g(start)..=index_1g(end - 1)) {
            let base = i1 << 18;
            match node {
                Node1G::Leaf(e) => visit(leaf(base, *e, PageSize::Size1G)),
                Node1G::Table(t) => {
                    for (i2, slot) in t.slots().enumerate() {
                        let slot_base = base + i2 as u64 * FRAMES_2M;
                        if slot_base + FRAMES_2M <= start || slot_base >= end {
                            continue;
                        }
                        match slot {
                            Node2M::Empty => {}
                            Node2M::Leaf(e) => visit(leaf(slot_base, *e, PageSize::Size2M)),
                            Node2M::Table(t4) => {
                                for i3 in 0..FANOUT {
                                    let g = slot_base + i3 as u64;
                                    if (start..end).contains(&g) {
                                        if let Some(e) = t4.get(i3) {
                                            visit(leaf(g, e, PageSize::Size4K));
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Maps the `order` block at `gfn` to the block at `mfn` with `kind`, using the
    /// largest leaves the alignment allows. The block must be unmapped.
    pub fn map(
        &mut self,
        gfn: Gfn,
        mfn: Mfn,
        order: Order,
        kind: EntryType,
    ) -> Result<(), P2mError> {
        let target = self.checked_range(gfn, order.frames())?;
        if !gfn.is_aligned(order) || !mfn.is_aligned(order) {
            return Err(P2mError::Unaligned);
        }
        if !self.is_unmapped(target) {
            return Err(P2mError::Occupied);
        }
        let (first, last) = (index_1g(target.start.0), index_1g(target.end.0 - 1));
        let before = self.count_range(first, last);
        let mapped = self.map_checked(target, mfn, kind);
        self.recount(first, last, before);
        mapped?;
        self.mapped += order.frames();
        let last = Gfn(target.end.0 - 1);
        self.high_water = Some(self.high_water.map_or(last, |h| h.max(last)));
        Ok(())
    }

    fn map_checked(&mut self, target: GfnRange, mfn: Mfn, kind: EntryType) -> Result<(), P2mError> {
        let (mut g, end, mut m) = (target.start.0, target.end.0, mfn.0);
        while g < end {
            let i1 = index_1g(g);
            if g % FRAMES_1G == 0 && end - g >= FRAMES_1G && m % FRAMES_1G == 0 {
                self.top
                    .insert(i1, Node1G::Leaf(Entry { mfn: Mfn(m), kind }));
                self.changes.record(range(g, g + FRAMES_1G));
                g += FRAMES_1G;
                m += FRAMES_1G;
                continue;
            }
            let node = self
                .top
                .entry(i1)
                .or_insert_with(|| Node1G::Table(Box::new(Table2M::empty())));
            let Node1G::Table(table) = node else {
                return Err(P2mError::Occupied);
            };
            let region_end = end.min((i1 + 1) << 18);
            while g < region_end {
                let i2 = index_2m(g);
                if g % FRAMES_2M == 0 && region_end - g >= FRAMES_2M && m % FRAMES_2M == 0 {
                    table.set(i2, Node2M::Leaf(Entry { mfn: Mfn(m), kind }));
                    self.changes.record(range(g, g + FRAMES_2M));
                    g += FRAMES_2M;
                    m += FRAMES_2M;
                    continue;
                }
                if table.slot(i2).is_some_and(Node2M::is_empty) {
                    table.set(i2, Node2M::Table(Box::new(Table4K::empty())));
                }
                let Some(t4) = table.table_4k_mut(i2) else {
                    return Err(P2mError::Occupied);
                };
                let slot_end = region_end.min(((g >> 9) + 1) << 9);
                self.changes.record(range(g, slot_end));
                while g < slot_end {
                    t4.set(index_4k(g), Some(Entry { mfn: Mfn(m), kind }));
                    g += 1;
                    m += 1;
                }
                merge_2m_slot(table, i2, g - 1, &mut self.changes);
            }
            merge_1g_slot(&mut self.top, i1, &mut self.changes);
        }
        Ok(())
    }

    /// Removes every mapping in `range`, calling `removed` with each piece removed
    /// (leaves partly inside the range are split first, so every piece is whole).
    pub fn unmap(
        &mut self,
        target: GfnRange,
        removed: &mut dyn FnMut(Mapping),
    ) -> Result<(), P2mError> {
        if target.end > self.limit || target.start > target.end {
            return Err(P2mError::OutOfRange);
        }
        if target.is_empty() {
            return Ok(());
        }
        let (first, last) = (index_1g(target.start.0), index_1g(target.end.0 - 1));
        let before = self.count_range(first, last);
        let frames = self.unmap_nonempty(target, removed);
        self.recount(first, last, before);
        self.mapped -= frames;
        Ok(())
    }

    /// `unmap` of a non-empty range inside the limit; returns the frames removed.
    fn unmap_nonempty(&mut self, target: GfnRange, removed: &mut dyn FnMut(Mapping)) -> u64 {
        let (start, end) = (target.start.0, target.end.0);
        let mut frames = 0u64;
        let mut count = |m: Mapping| {
            frames += m.size.frames();
            removed(m);
        };
        let touched: Vec<u64> = self
            .top
            .range(index_1g(start)..=index_1g(end - 1))
            .map(|(&i1, _)| i1)
            .collect();
        for i1 in touched {
            let base = i1 << 18;
            let (lo, hi) = (start.max(base), end.min(base + FRAMES_1G));
            let Some(node) = self.top.get_mut(&i1) else {
                continue;
            };
            if let Node1G::Leaf(e) = *node {
                self.changes.record(range(base, base + FRAMES_1G));
                if lo == base && hi == base + FRAMES_1G {
                    count(leaf(base, e, PageSize::Size1G));
                    self.top.remove(&i1);
                    continue;
                }
                *node = Node1G::Table(Box::new(Table2M::from_leaf(e)));
            }
            let Node1G::Table(table) = node else { continue };
            for i2 in index_2m(lo)..=index_2m(hi - 1) {
                let slot_base = base + i2 as u64 * FRAMES_2M;
                let (slo, shi) = (lo.max(slot_base), hi.min(slot_base + FRAMES_2M));
                match table.slot(i2) {
                    Some(Node2M::Leaf(e)) => {
                        let e = *e;
                        self.changes.record(range(slot_base, slot_base + FRAMES_2M));
                        if slo == slot_base && shi == slot_base + FRAMES_2M {
                            count(leaf(slot_base, e, PageSize::Size2M));
                            table.set(i2, Node2M::Empty);
                            continue;
                        }
                        table.set(i2, Node2M::Table(Box::new(Table4K::from_leaf(e))));
                    }
                    Some(Node2M::Table(_)) => self.changes.record(range(slo, shi)),
                    _ => continue,
                }
                let Some(t4) = table.table_4k_mut(i2) else {
                    continue;
                };
                for g in slo..shi {
                    if let Some(e) = t4.get(index_4k(g)) {
                        count(leaf(g, e, PageSize::Size4K));
                        t4.set(index_4k(g), None);
                    }
                }
                if t4.is_empty() {
                    table.set(i2, Node2M::Empty);
                }
            }
            if table.is_empty() {
                self.top.remove(&i1);
            }
        }
        frames
    }

    /// Changes every frame of `range` mapped with type `from` to type `to`, splitting
    /// leaves that the range covers only in part. Returns the frames changed.
    pub fn retype(&mut self, target: GfnRange, from: EntryType, to: EntryType) -> u64 {
        let (start, end) = (target.start.0, target.end.0.min(self.limit.0));
        if start >= end {
            return 0;
        }
        let (first, last) = (index_1g(start), index_1g(end - 1));
        let before = self.count_range(first, last);
        let changed = self.retype_nonempty(start, end, from, to);
        self.recount(first, last, before);
        changed
    }

    fn retype_nonempty(&mut self, start: u64, end: u64, from: EntryType, to: EntryType) -> u64 {
        let mut changed = 0u64;
        let touched: Vec<u64> = self
            .top
            .range(index_1g(start)..=index_1g(end - 1))
            .map(|(&i1, _)| i1)
            .collect();
        for i1 in touched {
            let base = i1 << 18;
            let (lo, hi) = (start.max(base), end.min(base + FRAMES_1G));
            let Some(node) = self.top.get_mut(&i1) else {
                continue;
            };
            if let Node1G::Leaf(e) = node {
                if e.kind != from {
                    continue;
                }
                self.changes.record(range(base, base + FRAMES_1G));
                if lo == base && hi == base + FRAMES_1G {
                    e.kind = to;
                    changed += FRAMES_1G;
                    continue;
                }
                let split = Table2M::from_leaf(*e);
                *node = Node1G::Table(Box::new(split));
            }
            let Node1G::Table(table) = node else { continue };
            for i2 in index_2m(lo)..=index_2m(hi - 1) {
                let slot_base = base + i2 as u64 * FRAMES_2M;
                let (slo, shi) = (lo.max(slot_base), hi.min(slot_base + FRAMES_2M));
                if let Some(e) = table.leaf_mut(i2) {
                    if e.kind != from {
                        continue;
                    }
                    self.changes.record(range(slot_base, slot_base + FRAMES_2M));
                    if slo == slot_base && shi == slot_base + FRAMES_2M {
                        e.kind = to;
                        changed += FRAMES_2M;
                        continue;
                    }
                    let split = Table4K::from_leaf(*e);
                    table.set(i2, Node2M::Table(Box::new(split)));
                }
                let Some(t4) = table.table_4k_mut(i2) else {
                    continue;
                };
                for g in slo..shi {
                    match t4.get(index_4k(g)) {
                        Some(e) if e.kind == from => {
                            t4.set(
                                index_4k(g),
                                Some(Entry {
                                    mfn: e.mfn,
                                    kind: to,
                                }),
                            );
                            self.changes.record(range(g, g + 1));
                            changed += 1;
                        }
                        _ => {}
                    }
                }
                merge_2m_slot(table, i2, slot_base, &mut self.changes);
            }
            merge_1g_slot(&mut self.top, i1, &mut self.changes);
        }
        changed
    }

    /// Makes the one guest frame `gfn` map `mfn` instead (same type), splitting any
    /// superpage around it. Used to swap in the copy of a frame going offline.
    pub fn remap_frame(&mut self, gfn: Gfn, mfn: Mfn) -> Result<(), P2mError> {
        let old = self.entry(gfn).ok_or(P2mError::NotMapped)?;
        let high_water = self.high_water;
        self.unmap(GfnRange::new(gfn, gfn.plus(1)), &mut |_| {})?;
        let remapped = self.map(gfn, mfn, Order::ORDER_4K, old.kind);
        // Remapping never raises the high-water mark: the frame was mapped before.
        self.high_water = high_water;
        remapped
    }

    /// Takes the ranges changed since the last call, sorted and coalesced.
    pub fn take_changes(&mut self) -> Vec<GfnRange> {
        self.changes.take()
    }

    fn checked_range(&self, gfn: Gfn, frames: u64) -> Result<GfnRange, P2mError> {
        let end = gfn.checked_add(frames).ok_or(P2mError::OutOfRange)?;
        if end > self.limit {
            return Err(P2mError::OutOfRange);
        }
        Ok(GfnRange::new(gfn, end))
    }
}

fn leaf(gfn: u64, entry: Entry, size: PageSize) -> Mapping {
    Mapping {
        gfn: Gfn(gfn),
        mfn: entry.mfn,
        size,
        kind: entry.kind,
    }
}

/// Replaces the 4 KiB table in slot `i2` by a 2 MiB leaf if it has become one.
/// `any_gfn` is a guest frame inside the slot, to record the change.
fn merge_2m_slot(table: &mut Table2M, i2: usize, any_gfn: u64, changes: &mut ChangeLog) {
    let merged = match table.slot(i2) {
        Some(Node2M::Table(t4)) => t4.merged(),
        _ => None,
    };
    if let Some(entry) = merged {
        let base = any_gfn & !(FRAMES_2M - 1);
        changes.record(range(base, base + FRAMES_2M));
        table.set(i2, Node2M::Leaf(entry));
    }
}

/// Replaces the 2 MiB table in top slot `i1` by a 1 GiB leaf if it has become one.
fn merge_1g_slot(top: &mut BTreeMap<u64, Node1G>, i1: u64, changes: &mut ChangeLog) {
    let merged = match top.get(&i1) {
        Some(Node1G::Table(t)) => t.merged(),
        _ => None,
    };
    if let Some(entry) = merged {
        let base = i1 << 18;
        changes.record(range(base, base + FRAMES_1G));
        top.insert(i1, Node1G::Leaf(entry));
    }
}
