//! The guest's xenstore service: the core's
//! [`Xenstore`](ebbhv_core::xenstore::Xenstore) and the ring page it shares with
//! the guest.
//!
//! At domain build the core lends a zeroed hypervisor frame to the guest at
//! [`STORE_GFN`], inside the e820-reserved hole below 1 MiB (so Linux maps it with
//! `memremap` and never uses it as RAM), which the Xen platform publishes as
//! `HVM_PARAM_STORE_PFN` next to the store port (`HVM_PARAM_STORE_EVTCHN`). The
//! guest's domain is introduced to the store with the keys a toolstack writes
//! (`memory/target` and `memory/static-max` in KiB, `name`, `domid`, ...).
//! Requests are served synchronously inside the guest's `EVTCHNOP_send` on the
//! store port; the control channel has them served too after it changed the
//! store, so that watch events reach the guest. [`StoreService::serve`] says
//! whether a pass moved bytes, and the caller then notifies the guest on the
//! store port.

use ebbhv_core::addr::{DomId, Gfn, Mfn};
use ebbhv_core::hv::Hypervisor;
use ebbhv_core::xenstore::{DomainKeys, Limits, RingPage, Xenstore};
use ebbhv_hal::frame;

use crate::guest_memory::HostFrames;

/// Where the ring page sits in the guest: 0xFE000, in the reserved hole.
pub const STORE_GFN: Gfn = Gfn(0xfe);

/// A ring page: one hypervisor frame lent to the guest, reached by copy through
/// `ebbhv_hal::frame`.
struct HostRing {
    frame: Mfn,
}

impl RingPage for HostRing {
    fn read(&self, offset: usize, buf: &mut [u8]) {
        // What lies past the frame's end is not read.
        let n = buf.len().min(frame::FRAME_BYTES.saturating_sub(offset));
        if let Some((inside, _)) = buf.split_at_mut_checked(n) {
            frame::read(self.frame, offset.min(frame::FRAME_BYTES), inside);
        }
    }

    fn write(&mut self, offset: usize, data: &[u8]) {
        let n = data.len().min(frame::FRAME_BYTES.saturating_sub(offset));
        if let Some((inside, _)) = data.split_at_checked(n) {
            frame::write(self.frame, offset.min(frame::FRAME_BYTES), inside);
        }
    }
}

/// The store and the guest's ring.
pub struct StoreService {
    store: Xenstore,
    domid: DomId,
    ring: HostRing,
}

impl StoreService {
    /// A store with domain `domid` introduced, and its ring page mapped at
    /// [`STORE_GFN`]. `memory` and `maxmem` are bytes.
    pub fn build(
        hv: &mut Hypervisor,
        domid: DomId,
        memory: u64,
        maxmem: u64,
    ) -> Result<StoreService, &'static str> {
        let frame = hv
            .map_special_page(domid, STORE_GFN, &mut HostFrames)
            .map_err(|_| "cannot map the xenstore ring page")?;
        let mut store = Xenstore::new(Limits::default());
        let keys = DomainKeys {
            name: "ebb-guest",
            target_kib: memory >> 10,
            static_max_kib: maxmem >> 10,
        };
        store
            .introduce_domain(domid, &keys)
            .map_err(|_| "cannot introduce the guest to xenstore")?;
        Ok(StoreService {
            store,
            domid,
            ring: HostRing { frame },
        })
    }

    /// The store, for the control channel.
    pub fn store_mut(&mut self) -> &mut Xenstore {
        &mut self.store
    }

    /// Whether the store holds output for the guest that a pass would deliver.
    pub fn has_output(&self) -> bool {
        self.store.has_output(self.domid)
    }

    /// Serves the guest's ring with at most `room` bytes held for it (what its
    /// memory pool has room for); returns whether the guest must be notified on
    /// the store port (a pass moved bytes).
    pub fn serve(&mut self, room: u64) -> bool {
        let room = usize::try_from(room).unwrap_or(usize::MAX);
        self.store.set_domain_quota(self.domid, room);
        self.store
            .serve(self.domid, &mut self.ring)
            .is_ok_and(|done| done.notify())
    }

    /// Bytes the store holds for the guest.
    pub fn guest_bytes(&self) -> u64 {
        self.store.domain_bytes(self.domid) as u64
    }
}
