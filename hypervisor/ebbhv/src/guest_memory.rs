//! The guest's memory as the core's traits see it: frame contents ([`HostFrames`],
//! whole frames for the core's memory decisions and bytes of shared_info and
//! vcpu_info for its Xen platform state) and the hypercall caller's memory
//! ([`GuestVirtMemory`]: guest-virtual addresses through the guest's page tables,
//! then guest-physical through the p2m). The NPT follows the p2m through
//! `ebbhv_x86::npt_mirror::NptMirror`.
//!
//! Guest-physical to machine translation has two sources that agree whenever the
//! guest can run: the core's p2m (the truth) and the NPT (its mirror, synced after
//! every operation that may change the p2m). Outside the core the platform reads the
//! p2m; while the core itself is serving a hypercall (and so is mutably borrowed)
//! the caller's memory is reached through the NPT, exactly as the guest's own
//! accesses are.

use ebbhv_core::addr::{CallerAddr, Mfn, PAGE_SIZE};
use ebbhv_core::addr::{GuestPhys, GuestVirt, HostPhys};
use ebbhv_core::domain::Domain;
use ebbhv_core::guest::{BadAddress, GuestMemory};
use ebbhv_core::platform::{FrameBytes, FrameOps};
use ebbhv_hal::frame;
use ebbhv_hal::npt::Npt;
use ebbhv_x86::walk::{self, GuestPhysMemory, PagingMode};

/// Frame contents, through `ebbhv_hal::frame`.
pub struct HostFrames;

impl FrameOps for HostFrames {
    fn zero(&mut self, mfn: Mfn) {
        frame::zero(mfn);
    }

    fn copy(&mut self, from: Mfn, to: Mfn) {
        frame::copy(from, to);
    }
}

impl FrameBytes for HostFrames {
    fn read(&mut self, mfn: Mfn, offset: usize, buf: &mut [u8]) {
        frame::read(mfn, offset, buf);
    }

    fn write(&mut self, mfn: Mfn, offset: usize, data: &[u8]) {
        frame::write(mfn, offset, data);
    }
}

/// Guest-physical → machine translation, from one of the two sources.
pub enum Translate<'a> {
    /// The domain's p2m.
    P2m(&'a Domain),
    /// The NPT (while the core is borrowed).
    Npt(&'a Npt),
}

impl Translate<'_> {
    /// The machine address of `gpa` and whether the guest may write it.
    pub fn hpa(&self, gpa: GuestPhys) -> Option<(HostPhys, bool)> {
        match self {
            Translate::P2m(d) => {
                let e = d.p2m().entry(gpa.gfn()).filter(|e| e.kind.accessible())?;
                Some((e.mfn.at(gpa.page_offset()), e.kind.writable()))
            }
            Translate::Npt(n) => n.translate(gpa),
        }
    }
}

impl GuestPhysMemory for Translate<'_> {
    fn read_u64(&self, gpa: GuestPhys) -> Option<u64> {
        if gpa.page_offset() > PAGE_SIZE - 8 {
            return None;
        }
        let (hpa, _) = self.hpa(gpa)?;
        Some(frame::read_u64(hpa.mfn(), hpa.page_offset() as usize))
    }
}

/// The memory of a guest that made a hypercall, by guest-virtual address.
pub struct GuestVirtMemory<'a> {
    /// Guest-physical translation.
    pub translate: Translate<'a>,
    /// The guest's paging registers at the hypercall.
    pub mode: PagingMode,
}

impl GuestVirtMemory<'_> {
    fn copy(
        &self,
        addr: CallerAddr,
        len: usize,
        write: bool,
        each: &mut dyn FnMut(Mfn, usize, usize, usize),
    ) -> Result<(), BadAddress> {
        walk::for_each_chunk(
            &self.translate,
            &self.mode,
            GuestVirt(addr.0),
            len,
            write,
            &mut |c| {
                let (hpa, writable) = self.translate.hpa(c.gpa).ok_or(walk::WalkError::BadTable)?;
                if write && !writable {
                    return Err(walk::WalkError::ReadOnly);
                }
                each(hpa.mfn(), hpa.page_offset() as usize, c.offset, c.len);
                Ok(())
            },
        )
        .map_err(|_| BadAddress)
    }
}

impl GuestMemory for GuestVirtMemory<'_> {
    fn read(&mut self, addr: CallerAddr, buf: &mut [u8]) -> Result<(), BadAddress> {
        let len = buf.len();
        // The walk splits `0..len` at page boundaries, so each chunk lies inside
        // the buffer and inside one frame.
        self.copy(addr, len, false, &mut |mfn, at, off, n| {
            if let Some(chunk) = buf.get_mut(off..off + n) {
                frame::read(mfn, at, chunk);
            }
        })
    }

    fn write(&mut self, addr: CallerAddr, data: &[u8]) -> Result<(), BadAddress> {
        self.copy(addr, data.len(), true, &mut |mfn, at, off, n| {
            if let Some(chunk) = data.get(off..off + n) {
                frame::write(mfn, at, chunk);
            }
        })
    }
}

/// Copies `data` into guest-physical memory (used by the loader before the guest
/// runs). Fails at the first frame the p2m does not map.
pub fn write_guest_phys(t: &Translate<'_>, gpa: GuestPhys, data: &[u8]) -> Result<(), GuestPhys> {
    let mut at = gpa;
    let mut rest = data;
    while !rest.is_empty() {
        // Up to the end of the page.
        let n = ((PAGE_SIZE - at.page_offset()) as usize).min(rest.len());
        let Some((chunk, tail)) = rest.split_at_checked(n) else {
            break;
        };
        let (hpa, _) = t.hpa(at).ok_or(at)?;
        frame::write(hpa.mfn(), hpa.page_offset() as usize, chunk);
        at = GuestPhys(at.0 + n as u64);
        rest = tail;
    }
    Ok(())
}
