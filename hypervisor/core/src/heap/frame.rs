//! The record the heap keeps for each machine frame, and its public view.
//!
//! A frame is in exactly one state, and the record is an enum, so "exactly one" holds
//! by construction. The record is at most 16 bytes (Xen's `struct page_info` is 32):
//! free-list links are 32-bit frame indices, so one heap spans at most 2^32 frames
//! (16 TiB), and the guest frame number of a domain's frame is kept in full.

use crate::addr::{DomId, Gfn, Order};

/// Bytes of heap metadata per frame, checked at compile time.
pub const FRAME_RECORD_BYTES: usize = core::mem::size_of::<FrameRecord>();
const _: () = assert!(FRAME_RECORD_BYTES <= 16);

/// "No frame" in a free-list link.
pub(super) const NO_LINK: u32 = u32::MAX;

/// A guest frame number or "not mapped", in 8 bytes (an `Option<Gfn>` takes 16).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct PackedGfn(u64);

impl PackedGfn {
    pub(super) const NONE: PackedGfn = PackedGfn(u64::MAX);

    pub(super) fn new(gfn: Option<Gfn>) -> PackedGfn {
        // Gfn u64::MAX cannot be mapped: the p2m refuses gfns beyond its limit.
        gfn.map_or(PackedGfn::NONE, |gfn| PackedGfn(gfn.0))
    }

    pub(super) fn get(self) -> Option<Gfn> {
        (self != PackedGfn::NONE).then_some(Gfn(self.0))
    }
}

/// Whether an owned frame has been asked to go offline.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum OfflineRequest {
    None,
    /// Offline when the owner lets go of it.
    Pending,
    /// As `Pending`, and the frame was reported broken (it never comes back).
    PendingBroken,
}

/// One frame's state as the heap stores it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum FrameRecord {
    /// A hole in the heap's span: not conventional RAM.
    NotRam,
    /// First frame of a free block of `2^order` frames, linked into that order's list.
    FreeHead {
        order: Order,
        dirty: bool,
        prev: u32,
        next: u32,
    },
    /// Any other frame of a free block.
    FreeTail { dirty: bool },
    /// Used by the hypervisor; `lent_to` a domain that may map it (shared info, grant
    /// table frames), at `gfn` when it does.
    Hypervisor {
        lent_to: Option<DomId>,
        gfn: PackedGfn,
    },
    /// Owned by a domain, mapped at `gfn` in its p2m or not mapped at all.
    Domain {
        owner: DomId,
        gfn: PackedGfn,
        offline: OfflineRequest,
    },
    /// Taken out of use by page offline; may be onlined again.
    Offlined,
    /// Taken out of use for good.
    Broken,
}

impl FrameRecord {
    /// Whether a free frame still holds a previous owner's data.
    pub(super) fn is_dirty(&self) -> bool {
        matches!(
            self,
            FrameRecord::FreeHead { dirty: true, .. } | FrameRecord::FreeTail { dirty: true }
        )
    }

    pub(super) fn is_free(&self) -> bool {
        matches!(
            self,
            FrameRecord::FreeHead { .. } | FrameRecord::FreeTail { .. }
        )
    }

    pub(super) fn view(&self) -> FrameState {
        match *self {
            FrameRecord::NotRam => FrameState::NotRam,
            FrameRecord::FreeHead { dirty, .. } | FrameRecord::FreeTail { dirty } => {
                FrameState::Free { needs_scrub: dirty }
            }
            FrameRecord::Hypervisor { lent_to, gfn } => FrameState::Hypervisor {
                lent_to,
                gfn: gfn.get(),
            },
            FrameRecord::Domain {
                owner,
                gfn,
                offline: OfflineRequest::None,
            } => FrameState::Domain {
                owner,
                gfn: gfn.get(),
            },
            FrameRecord::Domain {
                owner,
                gfn,
                offline,
            } => FrameState::OfflinePending {
                owner,
                gfn: gfn.get(),
                broken: offline == OfflineRequest::PendingBroken,
            },
            FrameRecord::Offlined => FrameState::Offlined,
            FrameRecord::Broken => FrameState::Broken,
        }
    }
}

/// The state of one machine frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FrameState {
    /// Inside the heap's span but not RAM the heap manages.
    NotRam,
    /// In the free lists.
    Free {
        /// It must be zeroed before it is handed out.
        needs_scrub: bool,
    },
    /// Used by the hypervisor itself.
    Hypervisor {
        /// The domain allowed to map it, if any.
        lent_to: Option<DomId>,
        /// Where that domain has mapped it.
        gfn: Option<Gfn>,
    },
    /// Owned by a domain.
    Domain {
        /// The owner.
        owner: DomId,
        /// Where the owner's p2m maps it (`None`: allocated but unmapped).
        gfn: Option<Gfn>,
    },
    /// Owned by a domain and to be offlined as soon as the domain lets go of it.
    OfflinePending {
        /// The owner.
        owner: DomId,
        /// Where the owner's p2m maps it.
        gfn: Option<Gfn>,
        /// Reported broken: it cannot be onlined again.
        broken: bool,
    },
    /// Offline; can be onlined.
    Offlined,
    /// Offline for good.
    Broken,
}
