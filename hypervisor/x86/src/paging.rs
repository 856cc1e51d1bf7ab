//! x86-64 page-table entries (AMD APM vol. 2, 5.3 and 5.4), shared by the nested
//! page tables ebbhv builds and the guest page tables it walks.

/// Present.
pub const PTE_P: u64 = 1 << 0;
/// Writable.
pub const PTE_RW: u64 = 1 << 1;
/// User-accessible (nested entries need it: the NPT walk is a user access).
pub const PTE_US: u64 = 1 << 2;
/// Accessed.
pub const PTE_A: u64 = 1 << 5;
/// Dirty (leaves only).
pub const PTE_D: u64 = 1 << 6;
/// Page size: a 2 MiB (level 2) or 1 GiB (level 3) leaf.
pub const PTE_PS: u64 = 1 << 7;
/// No-execute.
pub const PTE_NX: u64 = 1 << 63;
/// The physical address bits of an entry (bits 12..51).
pub const PTE_ADDR: u64 = 0x000f_ffff_ffff_f000;

/// Entries per table.
pub const ENTRIES: usize = 512;

/// The leaf sizes of 4-level paging.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LeafSize {
    /// 4 KiB (a level-1 entry).
    Size4K,
    /// 2 MiB (a level-2 entry with PS).
    Size2M,
    /// 1 GiB (a level-3 entry with PS).
    Size1G,
}

impl LeafSize {
    /// Bytes covered.
    pub fn bytes(self) -> u64 {
        1 << self.shift()
    }

    /// log2 of the bytes covered.
    pub fn shift(self) -> u32 {
        match self {
            LeafSize::Size4K => 12,
            LeafSize::Size2M => 21,
            LeafSize::Size1G => 30,
        }
    }

    /// The table level (1..3) whose entries are leaves of this size.
    pub fn level(self) -> u32 {
        match self {
            LeafSize::Size4K => 1,
            LeafSize::Size2M => 2,
            LeafSize::Size1G => 3,
        }
    }
}

/// log2 of the bytes one entry of a level-`level` table covers (level 1..4).
pub fn level_shift(level: u32) -> u32 {
    12 + 9 * (level - 1)
}

/// The index into a level-`level` table for `addr`.
pub fn index(addr: u64, level: u32) -> usize {
    ((addr >> level_shift(level)) & 0x1ff) as usize
}
