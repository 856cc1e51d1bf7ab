//! The guest's xenstore: the ring page it shares with the core's
//! [`Xenstore`](ebbhv_core::xenstore::Xenstore), and serving it.
//!
//! At domain build the core lends a zeroed hypervisor frame to the guest at
//! [`STORE_GFN`], inside the e820-reserved hole below 1 MiB (so Linux maps it with
//! `memremap` and never uses it as RAM), and ebbhv publishes it as
//! `HVM_PARAM_STORE_PFN`; the store port is the one [`crate::events::init`]
//! allocated. The guest's domain is introduced to the store with the keys a
//! toolstack writes (`memory/target` and `memory/static-max` in KiB, `name`,
//! `domid`, ...). Requests are served synchronously inside the guest's
//! `EVTCHNOP_send` on the store port ([`crate::events::xenstore_kick`] calls
//! [`serve`]); the control channel calls [`serve`] too after it changed the store,
//! so that watch events reach the guest. The guest is notified on the store port
//! whenever a pass moved bytes.
//!
//! Locking: the guest is stopped while ebbhv runs, and the ring page is only
//! reached through [`HostRing`] during a pass (see [`crate::guest`]).

use ebbhv_core::addr::{Gfn, Mfn};
use ebbhv_core::hv::Hypervisor;
use ebbhv_core::xenstore::{DomainKeys, Limits, RingPage, Xenstore};
use ebbhv_x86::addr::HostPhys;
use ebbhv_x86::xen::hvmop;

use crate::events::notify_guest;
use crate::guest::Machine;
use crate::loader::DOMID;
use crate::phys;
use crate::platform::HostFrames;

/// Where the ring page sits in the guest: 0xFE000, in the reserved hole.
pub const STORE_GFN: Gfn = Gfn(0xfe);

/// A ring page: one hypervisor frame lent to the guest.
///
/// # Invariants
///
/// `frame` is a hypervisor frame the core lent to the guest for its xenstore ring;
/// it stays allocated while the domain exists, and only the guest (stopped while
/// this value is used) and this type touch it.
struct HostRing {
    frame: Mfn,
}

impl HostRing {
    fn page(&self) -> HostPhys {
        HostPhys(self.frame.0 << 12)
    }
}

impl RingPage for HostRing {
    fn read(&self, offset: usize, buf: &mut [u8]) {
        let n = buf.len().min(4096usize.saturating_sub(offset));
        // SAFETY: the frame is the guest's ring page (type invariant), inside the
        // identity map; the guest is stopped, so nothing writes it while the slice
        // lives; the range is clipped to the page.
        let src = unsafe { phys::slice(HostPhys(self.page().0 + offset as u64), n) };
        buf[..n].copy_from_slice(src);
    }

    fn write(&mut self, offset: usize, data: &[u8]) {
        let n = data.len().min(4096usize.saturating_sub(offset));
        // SAFETY: as for `read`; ebbhv holds no other reference to the frame.
        let dst = unsafe { phys::slice_mut(HostPhys(self.page().0 + offset as u64), n) };
        dst.copy_from_slice(&data[..n]);
    }
}

/// A store with the guest's domain introduced, and its ring page mapped at
/// [`STORE_GFN`]. `memory` and `maxmem` are bytes.
pub fn build(
    hv: &mut Hypervisor,
    memory: u64,
    maxmem: u64,
) -> Result<(Xenstore, Mfn), &'static str> {
    let frame = hv
        .map_special_page(DOMID, STORE_GFN, &mut HostFrames)
        .map_err(|_| "cannot map the xenstore ring page")?;
    let mut store = Xenstore::new(Limits::default());
    let keys = DomainKeys {
        name: "ebb-guest",
        target_kib: memory >> 10,
        static_max_kib: maxmem >> 10,
    };
    store
        .introduce_domain(DOMID, &keys)
        .map_err(|_| "cannot introduce the guest to xenstore")?;
    Ok((store, frame))
}

/// Publishes the ring page as `HVM_PARAM_STORE_PFN`.
pub fn init(m: &mut Machine) {
    m.params[hvmop::PARAM_STORE_PFN as usize] = STORE_GFN.0;
}

/// Serves the guest's ring and notifies it on the store port if anything moved.
pub fn serve(m: &mut Machine) {
    let mut ring = HostRing {
        frame: m.store_ring,
    };
    let Ok(done) = m.store.serve(DOMID, &mut ring) else {
        return;
    };
    if done.notify() {
        let port = m.params[hvmop::PARAM_STORE_EVTCHN as usize];
        if let Ok(port) = u32::try_from(port) {
            notify_guest(m, port);
        }
    }
}
