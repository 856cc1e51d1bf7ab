//! Page offline, online and query with `XEN_SYSCTL_page_offline_op` semantics.
//!
//! Offlining a free frame takes it out of the heap at once, even from the middle of a
//! buddy block (the block is found by walking up the frame's alignments, O(MAX_ORDER),
//! where Xen scans its free lists). An owned frame is only marked: it goes offline
//! when its owner lets go of it, which [`crate::hv`] arranges at once for translated
//! guests by giving the guest a copy. Hypervisor frames are refused.
//!
//! Statuses are Xen's bit encoding (`PG_OFFLINE_*` in `public/sysctl.h`), byte for byte,
//! including its corner cases: offlining an offlined frame reports OFFLINED again;
//! onlining a frame that was never offline reports 0; a broken frame cannot be onlined.

use super::allocator::FrameHeap;
use super::frame::{FrameRecord, OfflineRequest};
use crate::abi::sysctl::page_offline::*;
use crate::addr::{DomId, Mfn};
use crate::error::Errno;

/// What one frame's offline/online/query produced: the hypercall's result for this
/// frame and the status word written to the caller's array.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OfflineReply {
    /// `Ok` to go on with the next frame, `Err` to stop with `-errno`.
    pub result: Result<(), Errno>,
    /// The `PG_OFFLINE_*` / `PG_ONLINE_*` status bits.
    pub status: u32,
}

impl OfflineReply {
    fn ok(status: u32) -> OfflineReply {
        OfflineReply {
            result: Ok(()),
            status,
        }
    }

    fn err(errno: Errno, status: u32) -> OfflineReply {
        OfflineReply {
            result: Err(errno),
            status,
        }
    }
}

fn owner_bits(domain: DomId) -> u32 {
    u32::from(domain.0) << PG_OFFLINE_OWNER_SHIFT
}

impl FrameHeap {
    /// Takes `mfn` offline (`broken`: for good, as after a machine check).
    pub fn offline(&mut self, mfn: Mfn, broken: bool) -> OfflineReply {
        let Some(&record) = self.record(mfn) else {
            return OfflineReply::err(Errno::EINVAL, PG_OFFLINE_INVALID);
        };
        let broken_bit = if broken { PG_OFFLINE_BROKEN } else { 0 };
        let retired = if broken {
            FrameRecord::Broken
        } else {
            FrameRecord::Offlined
        };
        match record {
            FrameRecord::NotRam => {
                OfflineReply::err(Errno::EINVAL, PG_OFFLINE_FAILED | PG_OFFLINE_NOT_CONV_RAM)
            }
            FrameRecord::Hypervisor { .. } => OfflineReply::err(
                Errno::EPERM,
                PG_OFFLINE_XENPAGE | PG_OFFLINE_FAILED | owner_bits(DomId::XEN),
            ),
            FrameRecord::FreeHead { .. } | FrameRecord::FreeTail { .. } => {
                match self.carve_free_frame(mfn, retired) {
                    Some(()) => OfflineReply::ok(PG_OFFLINE_OFFLINED | broken_bit),
                    // A free frame outside every free block: the lists are corrupt.
                    None => OfflineReply::err(Errno::EINVAL, PG_OFFLINE_FAILED),
                }
            }
            FrameRecord::Offlined | FrameRecord::Broken => {
                if broken {
                    self.set_record(mfn, FrameRecord::Broken);
                }
                OfflineReply::ok(PG_OFFLINE_OFFLINED | broken_bit)
            }
            FrameRecord::Domain {
                offline: OfflineRequest::PendingBroken,
                ..
            } => OfflineReply::ok(PG_OFFLINE_AGAIN),
            FrameRecord::Domain {
                owner,
                gfn,
                offline: _,
            } => {
                self.set_record(
                    mfn,
                    FrameRecord::Domain {
                        owner,
                        gfn,
                        offline: if broken {
                            OfflineRequest::PendingBroken
                        } else {
                            OfflineRequest::Pending
                        },
                    },
                );
                OfflineReply::ok(
                    PG_OFFLINE_OWNED | PG_OFFLINE_PENDING | owner_bits(owner) | broken_bit,
                )
            }
        }
    }

    /// Brings `mfn` back: an offlined frame returns to the free lists, a pending
    /// request is cancelled; a broken frame stays out.
    pub fn online(&mut self, mfn: Mfn) -> OfflineReply {
        let Some(&record) = self.record(mfn) else {
            return OfflineReply::err(Errno::EINVAL, PG_OFFLINE_INVALID);
        };
        match record {
            FrameRecord::Broken
            | FrameRecord::Domain {
                offline: OfflineRequest::PendingBroken,
                ..
            } => OfflineReply::err(Errno::EINVAL, PG_ONLINE_FAILED | PG_ONLINE_BROKEN),
            FrameRecord::Offlined => match self.return_to_free(mfn) {
                Some(()) => OfflineReply::ok(PG_ONLINE_ONLINED),
                None => OfflineReply::err(Errno::EINVAL, PG_ONLINE_FAILED),
            },
            FrameRecord::Domain {
                owner,
                gfn,
                offline: OfflineRequest::Pending,
            } => {
                self.set_record(
                    mfn,
                    FrameRecord::Domain {
                        owner,
                        gfn,
                        offline: OfflineRequest::None,
                    },
                );
                OfflineReply::ok(PG_ONLINE_ONLINED)
            }
            // Online already (or a hole, which Xen also leaves alone): nothing to do.
            _ => OfflineReply::ok(0),
        }
    }

    /// Reports `mfn`'s offline state (`PG_OFFLINE_STATUS_*`); an online frame reads 0,
    /// as in Xen.
    pub fn query(&self, mfn: Mfn) -> OfflineReply {
        let Some(record) = self.record(mfn) else {
            return OfflineReply::err(Errno::EINVAL, PG_OFFLINE_INVALID);
        };
        match record {
            FrameRecord::NotRam => OfflineReply::err(Errno::EINVAL, PG_OFFLINE_INVALID),
            FrameRecord::Domain {
                offline: OfflineRequest::Pending,
                ..
            } => OfflineReply::ok(PG_OFFLINE_STATUS_OFFLINE_PENDING),
            FrameRecord::Domain {
                offline: OfflineRequest::PendingBroken,
                ..
            } => OfflineReply::ok(PG_OFFLINE_STATUS_OFFLINE_PENDING | PG_OFFLINE_STATUS_BROKEN),
            FrameRecord::Offlined => OfflineReply::ok(PG_OFFLINE_STATUS_OFFLINED),
            FrameRecord::Broken => {
                OfflineReply::ok(PG_OFFLINE_STATUS_OFFLINED | PG_OFFLINE_STATUS_BROKEN)
            }
            _ => OfflineReply::ok(0),
        }
    }
}
