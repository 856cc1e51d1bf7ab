//! Event channel delivery to the guest: the 2-level bitmaps in its shared info page
//! and vcpu_info ([`GuestEventBits`], what the core's [`EventChannels`] works on),
//! and `HYPERVISOR_event_channel_op`.
//!
//! The upcall itself is offered to the vCPU before every VMRUN while the guest's
//! `evtchn_upcall_pending` is set (see [`crate::vcpu`]).
//!
//! [`EventChannels`]: ebbhv_core::evtchn::EventChannels

use ebbhv_core::abi::platform as xen;
use ebbhv_core::addr::{CallerAddr, Mfn};
use ebbhv_core::domain::Domain;
use ebbhv_core::error::Errno;
use ebbhv_core::evtchn::{Action, Bitmap, EventBits, Port};
use ebbhv_hal::frame;

use super::XenPlatform;
use crate::guest_memory::GuestVirtMemory;

/// The 2-level event bitmaps of the guest, by machine frame.
///
/// # Invariants
///
/// `shared` is the domain's shared info frame and `vcpu_info` the frame and offset
/// of vCPU 0's 64-byte vcpu_info (inside the shared info page, or a guest RAM frame
/// the p2m maps with room for a whole vcpu_info after the offset).
pub struct GuestEventBits {
    shared: Mfn,
    vcpu_info: (Mfn, usize),
}

impl GuestEventBits {
    /// The bitmaps at `shared` and `vcpu_info`.
    pub(super) fn new(shared: Mfn, vcpu_info: (Mfn, usize)) -> GuestEventBits {
        GuestEventBits { shared, vcpu_info }
    }

    /// The frame, byte offset and bit mask of `bit` in `map`.
    fn word_at(&self, map: Bitmap, bit: u32) -> (Mfn, usize, u64) {
        // 64 words of pending and mask bits: ports beyond 4095 wrap inside the
        // arrays rather than leave them (the core never asks for them).
        let word = (bit / 64 % 64) as usize * 8;
        let (frame, offset) = match map {
            Bitmap::Pending => (self.shared, xen::SHARED_INFO_EVTCHN_PENDING + word),
            Bitmap::Mask => (self.shared, xen::SHARED_INFO_EVTCHN_MASK + word),
            Bitmap::Selector => (
                self.vcpu_info.0,
                self.vcpu_info.1 + xen::VCPU_INFO_PENDING_SEL,
            ),
        };
        (frame, offset, 1 << (bit % 64))
    }

    /// The guest's `evtchn_upcall_pending`.
    pub fn upcall_pending(&self) -> bool {
        let mut b = [0u8];
        let (f, off) = self.vcpu_info;
        frame::read(f, off + xen::VCPU_INFO_UPCALL_PENDING, &mut b);
        b[0] != 0
    }
}

impl EventBits for GuestEventBits {
    fn test(&mut self, map: Bitmap, bit: u32) -> bool {
        let (f, off, mask) = self.word_at(map, bit);
        frame::read_u64(f, off) & mask != 0
    }

    fn test_and_set(&mut self, map: Bitmap, bit: u32) -> bool {
        let (f, off, mask) = self.word_at(map, bit);
        let old = frame::read_u64(f, off);
        frame::write_u64(f, off, old | mask);
        old & mask != 0
    }

    fn clear(&mut self, map: Bitmap, bit: u32) {
        let (f, off, mask) = self.word_at(map, bit);
        frame::write_u64(f, off, frame::read_u64(f, off) & !mask);
    }

    fn set_upcall_pending(&mut self) {
        let (f, off) = self.vcpu_info;
        frame::write(f, off + xen::VCPU_INFO_UPCALL_PENDING, &[1]);
    }
}

impl XenPlatform {
    /// `HYPERVISOR_event_channel_op`; returns the port the guest sent on, if it is
    /// the xenstore port (whose service the caller runs next).
    pub fn event_channel_op(
        &mut self,
        dom: &Domain,
        mem: &mut GuestVirtMemory<'_>,
        cmd: u64,
        arg: CallerAddr,
    ) -> Result<Option<Port>, Errno> {
        let mut bits = self.event_bits(dom);
        let action = self.evtchn.hypercall(cmd, arg, mem, &mut bits)?;
        Ok(match action {
            Action::Kick(port) if Some(port) == self.store_port() => Some(port),
            _ => None,
        })
    }
}
