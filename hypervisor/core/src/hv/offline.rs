//! Page offline at the level of domains: a frame a translated guest owns is replaced
//! by a copy at once, so it goes offline without the guest's help.
//!
//! Xen can only mark such a frame pending and wait for the guest to free it (its tool
//! gives up on HVM guests). Because the core owns the p2m, it can: allocate a new
//! frame, have the platform copy the contents, point the guest frame at the copy,
//! and free the old frame, which — being pending — becomes offline. The platform runs
//! control-plane calls with the owner's vCPUs out of guest mode and syncs the p2m
//! (flushing the guest TLB) before they run again, so no write can hit the old frame
//! after the copy.
//!
//! A frame reported broken has no contents worth copying: handing the guest a copy
//! would feed it wrong data. Its guest frame is retyped [`EntryType::Broken`] instead
//! (unmapped from the nested tables, still owned), and the caller tells the guest
//! which gfn it lost ([`Hypervisor::broken_gfn`]); the frame goes offline when the
//! guest gives that gfn back.

use super::{inconsistent_heap, inconsistent_p2m, Hypervisor};
use crate::addr::{DomId, Gfn, Mfn, Order};
use crate::error::{Errno, Error, Fatal};
use crate::heap::{FrameState, OfflineReply, Owner};
use crate::p2m::EntryType;
use crate::platform::FrameOps;

impl Hypervisor {
    /// `XEN_SYSCTL_page_offline_op` offline for one frame (`broken`: never to return,
    /// as for a machine check). A guest-owned frame is replaced by a copy right away
    /// when a free frame is available; the reply still says OWNED|PENDING as Xen's
    /// does, and a later query reports it offlined. A broken guest-owned frame is
    /// never copied: its guest frame becomes [`EntryType::Broken`].
    pub fn page_offline(
        &mut self,
        mfn: Mfn,
        broken: bool,
        frames: &mut dyn FrameOps,
    ) -> Result<OfflineReply, Error> {
        let reply = self.heap.offline(mfn, broken);
        match self.heap.state(mfn) {
            Some(FrameState::OfflinePending { broken: true, .. }) => {
                self.retype_broken_frame(mfn)?
            }
            Some(FrameState::OfflinePending { .. }) => self.replace_pending_frame(mfn, frames)?,
            _ => {}
        }
        Ok(reply)
    }

    /// The domain and guest frame that lost their contents with broken frame `mfn`,
    /// while the domain still holds it (until it gives the gfn back).
    pub fn broken_gfn(&self, mfn: Mfn) -> Option<(DomId, Gfn)> {
        let Some(FrameState::OfflinePending {
            owner,
            gfn: Some(gfn),
            broken: true,
        }) = self.heap.state(mfn)
        else {
            return None;
        };
        let entry = self.domains.get(&owner)?.p2m.entry(gfn)?;
        (entry.kind == EntryType::Broken && entry.mfn == mfn).then_some((owner, gfn))
    }

    /// `XEN_SYSCTL_page_offline_op` online for one frame.
    pub fn page_online(&mut self, mfn: Mfn) -> OfflineReply {
        self.heap.online(mfn)
    }

    /// `XEN_SYSCTL_page_offline_op` query for one frame.
    pub fn page_query(&self, mfn: Mfn) -> OfflineReply {
        self.heap.query(mfn)
    }

    /// Takes the broken frame `mfn` out of its owner's reach: its guest frame keeps
    /// the frame (and `tot_pages`) but is mapped nowhere.
    fn retype_broken_frame(&mut self, mfn: Mfn) -> Result<(), Error> {
        let Some(FrameState::OfflinePending {
            owner,
            gfn: Some(gfn),
            ..
        }) = self.heap.state(mfn)
        else {
            return Ok(());
        };
        let Some(dom) = self.domains.get_mut(&owner) else {
            return Ok(());
        };
        let page = gfn.single().ok_or(Errno::EINVAL)?;
        for kind in [EntryType::RamRw, EntryType::RamLogDirty] {
            dom.p2m.retype(page, kind, EntryType::Broken);
        }
        match dom.p2m.entry(gfn) {
            Some(e) if e.kind == EntryType::Broken && e.mfn == mfn => Ok(()),
            _ => Err(Error::Fatal(Fatal::Inconsistent(
                "the guest frame of a broken frame does not map it",
            ))),
        }
    }

    /// Moves the owner of the offline-pending frame `old` onto a copy. Leaves it
    /// pending (to be offlined when the owner frees it) if no frame is free, or an
    /// `offline-copy` fault says none is.
    fn replace_pending_frame(&mut self, old: Mfn, frames: &mut dyn FrameOps) -> Result<(), Error> {
        let Some(FrameState::OfflinePending { owner, gfn, .. }) = self.heap.state(old) else {
            return Ok(());
        };
        if !self.domains.contains_key(&owner) {
            return Ok(());
        }
        self.move_to_copy(owner, gfn, old, frames).map(|_| ())
    }

    /// Gives domain `owner`'s frame `old` (mapped at `gfn`, or unmapped) a copy in a
    /// new frame, maps the copy at `gfn` (splitting a superpage around it) and frees
    /// `old`. Returns the new frame, or `None` (nothing changed) when no frame is
    /// free. The platform syncs the p2m into its nested tables before the guest runs
    /// again.
    fn move_to_copy(
        &mut self,
        owner: DomId,
        gfn: Option<Gfn>,
        old: Mfn,
        frames: &mut dyn FrameOps,
    ) -> Result<Option<Mfn>, Error> {
        if self.offline_copy_fails(owner) {
            return Ok(None);
        }
        let Some(new) = self
            .heap
            .alloc(Order::ORDER_4K, Owner::Domain(owner), frames)
        else {
            return Ok(None);
        };
        self.swap_in_copy(owner, gfn, old, new, frames)?;
        Ok(Some(new))
    }

    /// Copies `old` into `new` (a frame `owner` already holds, unmapped), maps `new`
    /// at `gfn` in its place and frees `old`.
    pub(super) fn swap_in_copy(
        &mut self,
        owner: DomId,
        gfn: Option<Gfn>,
        old: Mfn,
        new: Mfn,
        frames: &mut dyn FrameOps,
    ) -> Result<(), Error> {
        let Hypervisor { heap, domains, .. } = self;
        let dom = domains.get_mut(&owner).ok_or(Errno::ESRCH)?;
        frames.copy(old, new);
        if let Some(gfn) = gfn {
            dom.p2m.remap_frame(gfn, new).map_err(inconsistent_p2m)?;
            heap.set_gfn(new, owner, Some(gfn))
                .map_err(inconsistent_heap)?;
        }
        heap.free(old, Order::ORDER_4K, Owner::Domain(owner))
            .map_err(inconsistent_heap)?;
        if let Some(gfn) = gfn {
            self.note_split(owner, gfn);
        }
        Ok(())
    }
}
