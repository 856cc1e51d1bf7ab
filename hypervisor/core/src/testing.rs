//! Fakes of the platform's side, for the tests, the fuzzer and the benchmark: guest
//! memory as a byte buffer, frame contents as one tag per frame, nested page
//! tables as a map of leaves, a xenstore ring page with a client that speaks
//! the guest's side of the ring, and for the Xen platform state: frames byte by
//! byte, a clock that moves when told, a log and a console that count.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::Cell;
use core::fmt;

use crate::abi::codec::AbiRecord;
use crate::abi::platform::{VcpuTimeInfo, WallClock};
use crate::addr::PAGE_SIZE;
use crate::addr::{CallerAddr, Gfn, GfnRange, Mfn};
use crate::guest::{BadAddress, GuestMemory};
use crate::p2m::{Mapping, P2mMirror};
use crate::platform::xen::console_io::Console;
use crate::platform::{Clock, FrameBytes, FrameOps, Log};

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

    /// The fake keeps its leaves in a map of the test's memory, not in table pages
    /// of the hypervisor's: it charges nothing.
    fn table_bytes(&self) -> u64 {
        0
    }
}

/// A xenstore ring page in a byte array, with the guest's side of the protocol.
pub struct FakeRing {
    /// The page.
    pub page: [u8; 4096],
}

impl Default for FakeRing {
    fn default() -> FakeRing {
        FakeRing { page: [0; 4096] }
    }
}

impl crate::xenstore::RingPage for FakeRing {
    fn read(&self, offset: usize, buf: &mut [u8]) {
        let end = (offset + buf.len()).min(4096);
        let n = end.saturating_sub(offset);
        buf[..n].copy_from_slice(&self.page[offset.min(4096)..end]);
    }

    fn write(&mut self, offset: usize, data: &[u8]) {
        let end = (offset + data.len()).min(4096);
        let n = end.saturating_sub(offset);
        self.page[offset.min(4096)..end].copy_from_slice(&data[..n]);
    }
}

impl FakeRing {
    /// A 32-bit field of the interface.
    pub fn field(&self, offset: usize) -> u32 {
        u32::from_le_bytes(self.page[offset..offset + 4].try_into().expect("4 bytes"))
    }

    /// Sets a 32-bit field of the interface.
    pub fn set_field(&mut self, offset: usize, v: u32) {
        self.page[offset..offset + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// Produces as many of `bytes` as fit into the request ring; returns how many.
    pub fn push_request_bytes(&mut self, bytes: &[u8]) -> usize {
        use crate::abi::xenstore::ring;
        let cons = self.field(ring::REQ_CONS);
        let mut prod = self.field(ring::REQ_PROD);
        let free = 1024 - prod.wrapping_sub(cons).min(1024);
        let n = bytes.len().min(free as usize);
        for &b in &bytes[..n] {
            self.page[ring::REQ + (prod % 1024) as usize] = b;
            prod = prod.wrapping_add(1);
        }
        self.set_field(ring::REQ_PROD, prod);
        n
    }

    /// Consumes everything in the reply ring (nothing if the indices are broken:
    /// they are then resynchronised).
    pub fn pop_reply_bytes(&mut self) -> Vec<u8> {
        use crate::abi::xenstore::ring;
        let mut cons = self.field(ring::RSP_CONS);
        let prod = self.field(ring::RSP_PROD);
        let mut out = Vec::new();
        if prod.wrapping_sub(cons) > 1024 {
            cons = prod;
        }
        while cons != prod {
            out.push(self.page[ring::RSP + (cons % 1024) as usize]);
            cons = cons.wrapping_add(1);
        }
        self.set_field(ring::RSP_CONS, cons);
        out
    }
}

/// Encodes one message: header and payload.
pub fn xs_message(ty: u32, req_id: u32, tx_id: u32, payload: &[u8]) -> Vec<u8> {
    let header = crate::abi::xenstore::XsdSockmsg {
        ty,
        req_id,
        tx_id,
        len: payload.len() as u32,
    };
    let mut out = vec![0u8; 16];
    header.encode(&mut out);
    out.extend_from_slice(payload);
    out
}

/// Splits a byte stream of messages into (header, payload) pairs; a trailing
/// partial message is ignored.
pub fn xs_messages(mut bytes: &[u8]) -> Vec<(crate::abi::xenstore::XsdSockmsg, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= 16 {
        let h = crate::abi::xenstore::XsdSockmsg::decode(bytes);
        let end = 16 + h.len as usize;
        if bytes.len() < end {
            break;
        }
        out.push((h, bytes[16..end].to_vec()));
        bytes = &bytes[end..];
    }
    out
}

/// Frame contents byte by byte (absent: all zeroes), for the shared_info and
/// vcpu_info bytes the Xen platform state reads and writes. An access that leaves
/// its frame panics, as the image's frame access does: it is a hypervisor bug.
#[derive(Default)]
pub struct FakeFrameBytes {
    /// The frames written so far.
    pub frames: BTreeMap<Mfn, Vec<u8>>,
}

impl FakeFrameBytes {
    fn range(offset: usize, len: usize) -> core::ops::Range<usize> {
        let end = offset.checked_add(len).filter(|&e| e <= PAGE_SIZE as usize);
        match end {
            Some(end) => offset..end,
            None => panic!("frame access {offset:#x}+{len:#x} leaves the frame"),
        }
    }
}

impl FrameBytes for FakeFrameBytes {
    fn read(&mut self, frame: Mfn, offset: usize, buf: &mut [u8]) {
        let range = Self::range(offset, buf.len());
        match self.frames.get(&frame) {
            Some(bytes) => buf.copy_from_slice(&bytes[range]),
            None => buf.fill(0),
        }
    }

    fn write(&mut self, frame: Mfn, offset: usize, data: &[u8]) {
        let range = Self::range(offset, data.len());
        let bytes = self
            .frames
            .entry(frame)
            .or_insert_with(|| vec![0; PAGE_SIZE as usize]);
        bytes[range].copy_from_slice(data);
    }
}

/// A clock at whatever guest system time the test sets.
#[derive(Default)]
pub struct FakeClock {
    /// Guest system time, ns.
    pub now_ns: Cell<u64>,
}

impl Clock for FakeClock {
    fn system_time_ns(&self) -> u64 {
        self.now_ns.get()
    }

    fn time_info(&self) -> VcpuTimeInfo {
        VcpuTimeInfo {
            version: 2,
            tsc_timestamp: 0x1234,
            tsc_to_system_mul: 1 << 31,
            ..Default::default()
        }
    }

    fn wall_clock(&self) -> WallClock {
        WallClock {
            wc_version: 2,
            wc_sec: 1_700_000_000,
            ..Default::default()
        }
    }
}

/// A log that counts its lines.
#[derive(Default)]
pub struct FakeLog {
    /// Lines logged.
    pub lines: u64,
}

impl Log for FakeLog {
    fn log(&mut self, _line: fmt::Arguments<'_>) {
        self.lines += 1;
    }
}

/// A console: output collected, input handed out from a queue.
#[derive(Default)]
pub struct FakeConsole {
    /// Everything written.
    pub output: Vec<u8>,
    /// Input not yet read.
    pub input: Vec<u8>,
}

impl Console for FakeConsole {
    fn write(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }

    fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input.drain(..n);
        n
    }
}
