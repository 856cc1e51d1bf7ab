//! Log-dirty mode: which guest frames were written since the log was last cleaned.
//!
//! While it is on, every RAM entry of the p2m is `RamLogDirty` (present, read-only).
//! The first write to a frame faults; [`Hypervisor::write_fault`] sets the frame's
//! bit and makes that one 4 KiB entry writable (splitting a superpage). Cleaning the
//! log write-protects everything again, after which the p2m merges superpages back,
//! which Xen does not do.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec;

use super::Hypervisor;
use crate::addr::{DomId, Gfn, GfnRange};
use crate::error::{Errno, Fatal};
use crate::p2m::EntryType;

/// Bits per chunk of the dirty bitmap (one chunk covers 16 MiB of guest memory).
const CHUNK_BITS: u64 = 4096;

/// The dirty bitmap of one domain, one bit per guest frame. It is sparse (chunks of
/// 4096 bits, allocated on first use) so that a guest writing to a frame near the
/// top of its guest-physical space does not make the hypervisor allocate a bitmap for
/// all of it.
#[derive(Default, Debug)]
pub struct DirtyLog {
    chunks: BTreeMap<u64, Box<[u64]>>,
    /// Write faults taken since the last clean (`stats.fault_count`).
    pub fault_count: u32,
    /// Frames newly marked dirty since the last clean (`stats.dirty_count`).
    pub dirty_count: u32,
}

impl DirtyLog {
    /// Whether `gfn` is marked.
    pub fn is_dirty(&self, gfn: Gfn) -> bool {
        let (chunk, word, bit) = position(gfn.0);
        self.chunks
            .get(&chunk)
            .and_then(|words| words.get(word))
            .is_some_and(|w| w & (1 << bit) != 0)
    }

    /// Byte `index` of the bitmap (bit `i` of byte `b` is frame `8 * b + i`).
    pub fn byte(&self, index: u64) -> u8 {
        let (chunk, word, bit) = position(index * 8);
        self.chunks
            .get(&chunk)
            .and_then(|words| words.get(word))
            .map_or(0, |w| (w >> bit) as u8)
    }

    pub(super) fn mark(&mut self, gfn: Gfn) {
        let (chunk, word, bit) = position(gfn.0);
        let words = self
            .chunks
            .entry(chunk)
            .or_insert_with(|| vec![0; (CHUNK_BITS / 64) as usize].into_boxed_slice());
        // `position` keeps `word` inside the chunk.
        if let Some(w) = words.get_mut(word).filter(|w| **w & (1 << bit) == 0) {
            *w |= 1 << bit;
            self.dirty_count = self.dirty_count.saturating_add(1);
        }
    }

    pub(super) fn mark_range(&mut self, range: GfnRange) {
        for gfn in range.numbers() {
            self.mark(Gfn(gfn));
        }
    }

    fn clear(&mut self) {
        self.chunks.clear();
        self.fault_count = 0;
        self.dirty_count = 0;
    }
}

/// Chunk, word in the chunk and bit in the word of bit number `bit`.
fn position(bit: u64) -> (u64, usize, u64) {
    (
        bit / CHUNK_BITS,
        ((bit % CHUNK_BITS) / 64) as usize,
        bit % 64,
    )
}

/// What a write fault on a present entry turned out to be.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WriteFault {
    /// A first write under log-dirty: logged, the entry is writable now.
    Logged,
    /// The entry is already writable (the guest's TLB was stale): just retry.
    Spurious,
}

impl Hypervisor {
    /// Turns log-dirty mode on (`EINVAL` if it is on already).
    pub fn log_dirty_enable(&mut self, id: DomId) -> Result<(), Errno> {
        let dom = self.domain_mut(id)?;
        if dom.log_dirty.is_some() {
            return Err(Errno::EINVAL);
        }
        dom.log_dirty = Some(DirtyLog::default());
        let all = GfnRange::new(Gfn(0), dom.p2m.limit());
        dom.p2m
            .retype(all, EntryType::RamRw, EntryType::RamLogDirty);
        Ok(())
    }

    /// Turns log-dirty mode off and drops the log (doing nothing if it is off).
    pub fn log_dirty_disable(&mut self, id: DomId) -> Result<(), Errno> {
        let dom = self.domain_mut(id)?;
        if dom.log_dirty.take().is_some() {
            let all = GfnRange::new(Gfn(0), dom.p2m.limit());
            dom.p2m
                .retype(all, EntryType::RamLogDirty, EntryType::RamRw);
        }
        Ok(())
    }

    /// Empties the log and write-protects the guest's RAM again (`EINVAL` if off).
    pub fn log_dirty_clean(&mut self, id: DomId) -> Result<(), Errno> {
        let dom = self.domain_mut(id)?;
        let log = dom.log_dirty.as_mut().ok_or(Errno::EINVAL)?;
        log.clear();
        let all = GfnRange::new(Gfn(0), dom.p2m.limit());
        dom.p2m
            .retype(all, EntryType::RamRw, EntryType::RamLogDirty);
        Ok(())
    }

    /// The nested page fault entry point for a write to a present, read-only guest
    /// frame. Anything the core cannot explain is fatal for the guest: the platform
    /// handles its own emulated ranges (MMIO) before calling this.
    pub fn write_fault(&mut self, id: DomId, gfn: Gfn) -> Result<WriteFault, Fatal> {
        let unhandled = Fatal::UnhandledAccess { domain: id, gfn };
        let dom = self.domains.get_mut(&id).ok_or(unhandled)?;
        let entry = dom.p2m.entry(gfn).ok_or(unhandled)?;
        match entry.kind {
            EntryType::RamLogDirty => {
                let log = dom
                    .log_dirty
                    .as_mut()
                    .ok_or(Fatal::Inconsistent("log-dirty entry without a dirty log"))?;
                log.mark(gfn);
                log.fault_count = log.fault_count.saturating_add(1);
                let page = gfn.single().ok_or(unhandled)?;
                dom.p2m
                    .retype(page, EntryType::RamLogDirty, EntryType::RamRw);
                Ok(WriteFault::Logged)
            }
            EntryType::RamRw | EntryType::HypervisorShared => Ok(WriteFault::Spurious),
            EntryType::Broken => Err(unhandled),
        }
    }
}
