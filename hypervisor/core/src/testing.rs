//! Fakes of the platform's side, for the tests, the fuzzer and the benchmark: guest
//! memory as a byte buffer, frame contents as one tag per frame, and nested page
//! tables as a map of leaves.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

use crate::abi::codec::AbiRecord;
use crate::addr::{CallerAddr, Gfn, GfnRange, Mfn};
use crate::guest::{BadAddress, GuestMemory};
use crate::p2m::{Mapping, P2mMirror};
use crate::platform::FrameOps;

/// The caller's memory: `bytes.len()` bytes at `base`; anything else faults.
pub struct FakeGuestMemory {
    /// First valid address.
    pub base: u64,
    /// The contents.
    pub bytes: Vec<u8>,
}

impl FakeGuestMemory {
    /// `size` zero bytes at `base`.
    pub fn new(base: u64, size: usize) -> FakeGuestMemory {
        FakeGuestMemory {
            base,
            bytes: vec![0; size],
        }
    }

    fn offset(&self, addr: CallerAddr, len: usize) -> Result<usize, BadAddress> {
        let start = addr.0.checked_sub(self.base).ok_or(BadAddress)?;
        let start = usize::try_from(start).map_err(|_| BadAddress)?;
        let end = start.checked_add(len).ok_or(BadAddress)?;
        if end > self.bytes.len() {
            return Err(BadAddress);
        }
        Ok(start)
    }

    /// Stores an ABI value at `addr` (which must be inside).
    pub fn put<T: AbiRecord>(&mut self, addr: u64, value: &T) {
        let mut buf = vec![0; T::SIZE];
        value.encode(&mut buf);
        self.write(CallerAddr(addr), &buf)
            .expect("test put outside the fake guest memory");
    }

    /// Loads an ABI value from `addr` (which must be inside).
    pub fn get<T: AbiRecord>(&mut self, addr: u64) -> T {
        let mut buf = vec![0; T::SIZE];
        self.read(CallerAddr(addr), &mut buf)
            .expect("test get outside the fake guest memory");
        T::decode(&buf)
    }
}

impl GuestMemory for FakeGuestMemory {
    fn read(&mut self, addr: CallerAddr, buf: &mut [u8]) -> Result<(), BadAddress> {
        let start = self.offset(addr, buf.len())?;
        buf.copy_from_slice(&self.bytes[start..start + buf.len()]);
        Ok(())
    }

    fn write(&mut self, addr: CallerAddr, data: &[u8]) -> Result<(), BadAddress> {
        let start = self.offset(addr, data.len())?;
        self.bytes[start..start + data.len()].copy_from_slice(data);
        Ok(())
    }
}

/// Frame contents reduced to one number per frame (absent: all zeroes).
#[derive(Default)]
pub struct FakeFrames {
    contents: BTreeMap<Mfn, u64>,
    /// Frames zeroed so far.
    pub zeroed: u64,
    /// Frames copied so far.
    pub copied: u64,
}

impl FakeFrames {
    /// Gives `frame` the contents `tag` (as if someone wrote to it).
    pub fn fill(&mut self, frame: Mfn, tag: u64) {
        self.contents.insert(frame, tag);
    }

    /// The contents of `frame` (0: zeroes).
    pub fn content(&self, frame: Mfn) -> u64 {
        self.contents.get(&frame).copied().unwrap_or(0)
    }
}

impl FrameOps for FakeFrames {
    fn zero(&mut self, frame: Mfn) {
        self.zeroed += 1;
        self.contents.remove(&frame);
    }

    fn copy(&mut self, from: Mfn, to: Mfn) {
        self.copied += 1;
        match self.contents.get(&from).copied() {
            Some(tag) => self.contents.insert(to, tag),
            None => self.contents.remove(&to),
        };
    }
}

/// Nested page tables reduced to their leaves, checking the mirror contract: an
/// unmap never cuts a leaf, a map never overlaps one.
#[derive(Default)]
pub struct FakeNpt {
    /// Leaves by first guest frame.
    pub leaves: BTreeMap<Gfn, Mapping>,
    /// The first contract violation seen.
    pub violation: Option<&'static str>,
}

impl P2mMirror for FakeNpt {
    fn unmap(&mut self, range: GfnRange) {
        let inside: Vec<Gfn> = self
            .leaves
            .values()
            .filter(|m| {
                let leaf = GfnRange::new(m.gfn, m.gfn.plus(m.size.frames()));
                leaf.overlaps(&range)
            })
            .map(|m| m.gfn)
            .collect();
        for gfn in inside {
            if let Some(m) = self.leaves.remove(&gfn) {
                let end = m.gfn.plus(m.size.frames());
                if m.gfn < range.start || end > range.end {
                    self.violation.get_or_insert("unmap cut a leaf");
                }
            }
        }
    }

    fn map(&mut self, mapping: Mapping) {
        let new = GfnRange::new(mapping.gfn, mapping.gfn.plus(mapping.size.frames()));
        let overlap = self
            .leaves
            .values()
            .any(|m| GfnRange::new(m.gfn, m.gfn.plus(m.size.frames())).overlaps(&new));
        if overlap {
            self.violation.get_or_insert("map over an existing leaf");
        }
        self.leaves.insert(mapping.gfn, mapping);
    }
}
