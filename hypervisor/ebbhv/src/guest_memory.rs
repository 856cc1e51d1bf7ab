//! The guest's memory as the core's traits see it: frame contents ([`HostFrames`],
//! whole frames for the core's memory decisions and bytes of shared_info and
//! vcpu_info for its Xen platform state), the
//! NPT as the p2m's mirror ([`NptMirror`]) and the hypercall caller's memory
//! ([`GuestVirtMemory`]: guest-virtual addresses through the guest's page tables,
//! then guest-physical through the p2m).
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
use ebbhv_core::p2m::{Mapping, P2mMirror, PageSize};
use ebbhv_core::platform::{FrameBytes, FrameOps};
use ebbhv_hal::frame;
use ebbhv_hal::npt::Npt;
use ebbhv_x86::paging::LeafSize;
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

/// The NPT as the p2m's mirror. A leaf that cannot be installed for want of a
/// table page is remembered: the caller must not run the guest on it.
pub struct NptMirror<'a> {
    npt: &'a mut Npt,
    out_of_memory: bool,
}

impl<'a> NptMirror<'a> {
    /// The mirror over `npt`.
    pub fn new(npt: &'a mut Npt) -> NptMirror<'a> {
        NptMirror {
            npt,
            out_of_memory: false,
        }
    }

    /// Whether a leaf could not be installed since this mirror was made.
    pub fn out_of_memory(&self) -> bool {
        self.out_of_memory
    }
}

fn leaf_size(size: PageSize) -> LeafSize {
    match size {
        PageSize::Size4K => LeafSize::Size4K,
        PageSize::Size2M => LeafSize::Size2M,
        PageSize::Size1G => LeafSize::Size1G,
    }
}

impl P2mMirror for NptMirror<'_> {
    fn unmap(&mut self, range: ebbhv_core::addr::GfnRange) {
        self.npt.unmap(range.start.addr(), range.end.addr());
    }

    fn map(&mut self, m: Mapping) {
        let r = self.npt.map(
            m.gfn.addr(),
            m.mfn.addr(),
            leaf_size(m.size),
            m.kind.writable(),
        );
        // The p2m hands out aligned leaves of its own frames after unmapping their
        // range; the only failure left is running out of hypervisor memory for
        // tables.
        self.out_of_memory |= r.is_err();
    }

    fn table_bytes(&self) -> u64 {
        self.npt.table_bytes()
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
        // The walk splits at page boundaries, so each chunk lies inside one frame.
        self.copy(addr, len, false, &mut |mfn, at, off, n| {
            frame::read(mfn, at, &mut buf[off..off + n]);
        })
    }

    fn write(&mut self, addr: CallerAddr, data: &[u8]) -> Result<(), BadAddress> {
        self.copy(addr, data.len(), true, &mut |mfn, at, off, n| {
            frame::write(mfn, at, &data[off..off + n]);
        })
    }
}

/// Copies `data` into guest-physical memory (used by the loader before the guest
/// runs). Fails at the first frame the p2m does not map.
pub fn write_guest_phys(t: &Translate<'_>, gpa: GuestPhys, data: &[u8]) -> Result<(), GuestPhys> {
    let mut done = 0usize;
    while done < data.len() {
        let at = GuestPhys(gpa.0 + done as u64);
        let n = ((PAGE_SIZE - at.page_offset()) as usize).min(data.len() - done);
        let (hpa, _) = t.hpa(at).ok_or(at)?;
        frame::write(hpa.mfn(), hpa.page_offset() as usize, &data[done..done + n]);
        done += n;
    }
    Ok(())
}
