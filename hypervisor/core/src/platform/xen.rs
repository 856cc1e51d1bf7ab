//! The Xen platform state the hypervisor serves itself, next to the core's memory
//! ABI: HVM parameters, where vcpu_info and the runstate area live, the event
//! channels and their delivery into shared_info / vcpu_info, the one-shot timer
//! and the clocks.
//!
//! [`XenPlatform`] owns all of it; its hypercall handlers live in the files of this
//! module (one per hypercall family) and take, besides the platform state, only
//! the guest's domain (for its p2m and shared_info frame), the caller's memory
//! ([`GuestMemory`]) and the frames' contents ([`FrameBytes`]). The clocks come
//! from the platform ([`Clock`]); nothing here touches hardware, so the same code
//! runs in the image and under `cargo test` and the `platform` fuzz target.
//!
//! [`GuestMemory`]: crate::guest::GuestMemory

pub mod console_io;
pub mod events;
mod hvm_op;
pub mod sched_op;
#[cfg(test)]
mod tests;
pub mod timer;
mod vcpu_op;
pub mod version;

use crate::abi::platform::{self as xen, hvmop, WallClock};
use crate::addr::{DomId, Gfn, Mfn};
use crate::domain::Domain;
use crate::evtchn::{EventChannels, Port};

use self::events::GuestEventBits;
use self::timer::OneShot;
use super::{Clock, FrameBytes};

/// Where the guest asked its vcpu_info to live.
///
/// # Invariants
///
/// `offset + VCPU_INFO_SIZE <= 4096` (checked at registration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuInfoPlace {
    /// The guest frame.
    pub gfn: Gfn,
    /// The byte offset of the vcpu_info in it.
    pub offset: usize,
}

/// The guest's Xen platform state (one vCPU), with its clocks `C`.
///
/// The xenstore port and ring gfn are HVM parameters, as on Xen: the guest reads
/// them there, and (as on Xen) a guest may not overwrite them.
pub struct XenPlatform<C> {
    domid: DomId,
    params: [u64; hvmop::NR_PARAMS],
    vcpu_info: Option<VcpuInfoPlace>,
    /// The runstate area's guest-virtual address, once registered.
    runstate: Option<u64>,
    evtchn: EventChannels,
    timer: OneShot,
    clocks: C,
}

// The parameters ebbhv itself reads and sets, as indices of `params` (constants,
// which the compiler checks against its length).
const CALLBACK_IRQ: usize = hvmop::PARAM_CALLBACK_IRQ as usize;
const STORE_PFN: usize = hvmop::PARAM_STORE_PFN as usize;
const STORE_EVTCHN: usize = hvmop::PARAM_STORE_EVTCHN as usize;

impl<C: Clock> XenPlatform<C> {
    /// The state of a new guest `domid`: a fresh port table with the xenstore port
    /// allocated (its other end is the hypervisor) and published as
    /// `HVM_PARAM_STORE_EVTCHN`, and the ring's gfn as `HVM_PARAM_STORE_PFN`.
    pub fn new(domid: DomId, clocks: C, store_gfn: Gfn) -> XenPlatform<C> {
        let mut evtchn = EventChannels::new(domid);
        // An empty table has every port but 0 free; should that ever change, the
        // guest finds no store port (param 0) rather than the hypervisor stopping.
        let port = evtchn.alloc_hypervisor_port().unwrap_or(0);
        let mut params = [0; hvmop::NR_PARAMS];
        params[STORE_EVTCHN] = u64::from(port);
        params[STORE_PFN] = store_gfn.0;
        XenPlatform {
            domid,
            params,
            vcpu_info: None,
            runstate: None,
            evtchn,
            timer: OneShot::default(),
            clocks,
        }
    }

    /// Bytes of hypervisor memory the guest's event channels take.
    pub fn event_channel_bytes(&self) -> u64 {
        self.evtchn.bytes() as u64
    }

    /// The event channels (for inspection: tests, the fuzzer, diagnostics).
    pub fn event_channels(&self) -> &EventChannels {
        &self.evtchn
    }

    /// The HVM parameters.
    pub fn params(&self) -> &[u64; hvmop::NR_PARAMS] {
        &self.params
    }

    /// Where the guest registered its vcpu_info, if it did.
    pub fn vcpu_info_place(&self) -> Option<VcpuInfoPlace> {
        self.vcpu_info
    }

    /// The runstate area's guest-virtual address, if registered.
    pub fn runstate_area(&self) -> Option<u64> {
        self.runstate
    }

    /// The clocks.
    pub fn clocks(&self) -> &C {
        &self.clocks
    }

    /// The one-shot timer.
    pub fn timer(&self) -> &OneShot {
        &self.timer
    }

    /// Whether the timer's deadline has passed; clears it if so.
    pub fn take_due_timer(&mut self) -> bool {
        self.timer.take_due(self.clocks.system_time_ns())
    }

    /// The xenstore port.
    pub fn store_port(&self) -> Option<Port> {
        u32::try_from(self.params[STORE_EVTCHN]).ok()
    }

    /// The vector the guest asked upcalls on, if it chose the vector callback type.
    pub fn callback_vector(&self) -> Option<u8> {
        let p = self.params[CALLBACK_IRQ];
        (p >> 56 == xen::CALLBACK_TYPE_VECTOR).then_some(p as u8)
    }

    /// The machine frame and offset of vCPU 0's vcpu_info: where the guest
    /// registered it if that gfn is still mapped, else inside shared_info.
    fn vcpu_info_at(&self, dom: &Domain) -> (Mfn, usize) {
        self.vcpu_info
            .and_then(|place| Some((dom.p2m().entry(place.gfn)?.mfn, place.offset)))
            .unwrap_or((dom.shared_info(), xen::SHARED_INFO_VCPU0))
    }

    /// The guest's event bitmaps, reached through `frames`.
    fn event_bits<'f>(&self, dom: &Domain, frames: &'f mut dyn FrameBytes) -> GuestEventBits<'f> {
        GuestEventBits::new(dom.shared_info(), self.vcpu_info_at(dom), frames)
    }

    /// Raises `port` toward the guest: sets it pending and, unless masked, flags
    /// the upcall, which the next VMRUN delivers. For hypervisor services
    /// (xenstore after writing its replies); a port that is not bound is ignored.
    pub fn notify(&mut self, dom: &Domain, frames: &mut dyn FrameBytes, port: Port) {
        let mut bits = self.event_bits(dom, frames);
        self.evtchn.raise(port, &mut bits);
    }

    /// Raises the port bound to `virq`, if the guest bound one.
    pub fn raise_virq(&mut self, dom: &Domain, frames: &mut dyn FrameBytes, virq: u32) {
        if let Some(port) = self.evtchn.virq_port(virq) {
            self.notify(dom, frames, port);
        }
    }

    /// The vector of a pending upcall, if the guest asked for upcalls on a vector
    /// and its `evtchn_upcall_pending` is set.
    pub fn pending_upcall(&self, dom: &Domain, frames: &mut dyn FrameBytes) -> Option<u8> {
        let vector = self.callback_vector()?;
        self.event_bits(dom, frames)
            .upcall_pending()
            .then_some(vector)
    }

    /// Writes the pvclock and wall clock into the shared info page, and the pvclock
    /// into the registered vcpu_info if there is one.
    pub fn publish_time(&self, dom: &Domain, frames: &mut dyn FrameBytes) {
        let shared = dom.shared_info();
        let time = self.clocks.time_info().to_bytes();
        frames.write(shared, xen::SHARED_INFO_VCPU0 + xen::VCPU_INFO_TIME, &time);
        let mut wc = [0u8; WallClock::SIZE];
        self.clocks.wall_clock().write_to(&mut wc);
        frames.write(shared, xen::SHARED_INFO_WC_VERSION, &wc);
        if let Some(place) = self.vcpu_info {
            if let Some(e) = dom.p2m().entry(place.gfn) {
                // The offset was checked at registration to leave room for a whole
                // vcpu_info (type invariant of `VcpuInfoPlace`).
                frames.write(e.mfn, place.offset + xen::VCPU_INFO_TIME, &time);
            }
        }
    }
}
