//! Event channel delivery to the guest: the 2-level bitmaps in its shared info page
//! and vcpu_info ([`GuestEventBits`], what [`EventChannels`] works on), and
//! `HYPERVISOR_event_channel_op`.
//!
//! The upcall itself is offered to the vCPU before every VMRUN while the guest's
//! `evtchn_upcall_pending` is set (the platform asks
//! [`XenPlatform::pending_upcall`]).
//!
//! [`EventChannels`]: crate::evtchn::EventChannels

use crate::abi::platform as xen;
use crate::addr::{CallerAddr, Mfn};
use crate::domain::Domain;
use crate::error::Errno;
use crate::evtchn::{Action, Bitmap, EventBits, Port};
use crate::guest::GuestMemory;
use crate::platform::{Clock, FrameBytes};

use super::XenPlatform;

/// The 2-level event bitmaps of the guest, by machine frame.
///
/// # Invariants
///
/// `shared` is the domain's shared info frame and `vcpu_info` the frame and offset
/// of vCPU 0's 64-byte vcpu_info (inside the shared info page, or a guest RAM frame
/// the p2m maps with room for a whole vcpu_info after the offset).
pub struct GuestEventBits<'f> {
    shared: Mfn,
    vcpu_info: (Mfn, usize),
    frames: &'f mut dyn FrameBytes,
}

impl<'f> GuestEventBits<'f> {
    /// The bitmaps at `shared` and `vcpu_info`, reached through `frames`.
    pub(super) fn new(
        shared: Mfn,
        vcpu_info: (Mfn, usize),
        frames: &'f mut dyn FrameBytes,
    ) -> GuestEventBits<'f> {
        GuestEventBits {
            shared,
            vcpu_info,
            frames,
        }
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
    pub fn upcall_pending(&mut self) -> bool {
        let mut b = [0u8];
        let (f, off) = self.vcpu_info;
        self.frames
            .read(f, off + xen::VCPU_INFO_UPCALL_PENDING, &mut b);
        b[0] != 0
    }
}

impl EventBits for GuestEventBits<'_> {
    fn test(&mut self, map: Bitmap, bit: u32) -> bool {
        let (f, off, mask) = self.word_at(map, bit);
        self.frames.read_u64(f, off) & mask != 0
    }

    fn test_and_set(&mut self, map: Bitmap, bit: u32) -> bool {
        let (f, off, mask) = self.word_at(map, bit);
        let old = self.frames.read_u64(f, off);
        self.frames.write_u64(f, off, old | mask);
        old & mask != 0
    }

    fn clear(&mut self, map: Bitmap, bit: u32) {
        let (f, off, mask) = self.word_at(map, bit);
        let old = self.frames.read_u64(f, off);
        self.frames.write_u64(f, off, old & !mask);
    }

    fn set_upcall_pending(&mut self) {
        let (f, off) = self.vcpu_info;
        self.frames
            .write(f, off + xen::VCPU_INFO_UPCALL_PENDING, &[1]);
    }
}

impl<C: Clock> XenPlatform<C> {
    /// `HYPERVISOR_event_channel_op`; returns the port the guest sent on, if it is
    /// the xenstore port (whose service the caller runs next).
    pub fn event_channel_op(
        &mut self,
        dom: &Domain,
        mem: &mut dyn GuestMemory,
        frames: &mut dyn FrameBytes,
        cmd: u64,
        arg: CallerAddr,
    ) -> Result<Option<Port>, Errno> {
        let store = self.store_port();
        let mut bits = self.event_bits(dom, frames);
        let action = self.evtchn.hypercall(cmd, arg, mem, &mut bits)?;
        Ok(match action {
            Action::Kick(port) if Some(port) == store => Some(port),
            _ => None,
        })
    }
}
