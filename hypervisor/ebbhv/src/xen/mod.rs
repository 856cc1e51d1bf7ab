//! The Xen platform state ebbhv serves itself, next to the core's memory ABI: HVM
//! parameters, where vcpu_info and the runstate area live, the event channels and
//! their delivery into shared_info / vcpu_info, the one-shot timer and the clocks.
//!
//! [`XenPlatform`] owns all of it; its hypercall handlers live in the files of this
//! module (one per hypercall family) and take, besides the platform state, only
//! the guest's domain (for its p2m and shared_info frame) and the caller's memory.

pub mod events;
mod hvm_op;
pub mod time;
pub mod timer;
mod vcpu_op;
pub mod version;

use ebbhv_core::abi::platform::{self as xen, hvmop, VcpuTimeInfo, WallClock};
use ebbhv_core::addr::{DomId, Gfn, Mfn};
use ebbhv_core::domain::Domain;
use ebbhv_core::evtchn::{EventChannels, Port};
use ebbhv_hal::frame;

use self::events::GuestEventBits;
use self::time::Clocks;
use self::timer::OneShot;

/// Where the guest asked its vcpu_info to live.
///
/// # Invariants
///
/// `offset + VCPU_INFO_SIZE <= 4096` (checked at registration).
#[derive(Clone, Copy, Debug)]
struct VcpuInfoPlace {
    gfn: Gfn,
    offset: usize,
}

/// The guest's Xen platform state (one vCPU).
///
/// The xenstore port and ring gfn are HVM parameters, as on Xen: the guest reads
/// them there, and (as on Xen) a guest that overwrites them only confuses itself.
pub struct XenPlatform {
    domid: DomId,
    params: [u64; hvmop::NR_PARAMS],
    vcpu_info: Option<VcpuInfoPlace>,
    /// The runstate area's guest-virtual address, once registered.
    runstate: Option<u64>,
    evtchn: EventChannels,
    timer: OneShot,
    clocks: Clocks,
}

impl XenPlatform {
    /// Bytes of ebbhv's memory the guest's event channels take.
    pub fn event_channel_bytes(&self) -> u64 {
        self.evtchn.bytes() as u64
    }

    /// The state of a new guest `domid`: a fresh port table with the xenstore port
    /// allocated (its other end is the hypervisor) and published as
    /// `HVM_PARAM_STORE_EVTCHN`, and the ring's gfn as `HVM_PARAM_STORE_PFN`.
    pub fn new(domid: DomId, clocks: Clocks, store_gfn: Gfn) -> XenPlatform {
        let mut evtchn = EventChannels::new(domid);
        let port = evtchn
            .alloc_hypervisor_port()
            .expect("an empty table has free ports");
        let mut params = [0; hvmop::NR_PARAMS];
        params[hvmop::PARAM_STORE_EVTCHN as usize] = u64::from(port);
        params[hvmop::PARAM_STORE_PFN as usize] = store_gfn.0;
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

    /// The clocks.
    pub fn clocks(&self) -> &Clocks {
        &self.clocks
    }

    /// The one-shot timer.
    pub fn timer(&self) -> &OneShot {
        &self.timer
    }

    /// The one-shot timer, to set or clear.
    pub fn timer_mut(&mut self) -> &mut OneShot {
        &mut self.timer
    }

    /// Whether the timer's deadline has passed; clears it if so.
    pub fn take_due_timer(&mut self) -> bool {
        self.timer.take_due(&self.clocks)
    }

    /// The xenstore port.
    pub fn store_port(&self) -> Option<Port> {
        u32::try_from(self.params[hvmop::PARAM_STORE_EVTCHN as usize]).ok()
    }

    /// The vector the guest asked upcalls on, if it chose the vector callback type.
    pub fn callback_vector(&self) -> Option<u8> {
        let p = self.params[hvmop::PARAM_CALLBACK_IRQ as usize];
        (p >> 56 == xen::CALLBACK_TYPE_VECTOR).then_some(p as u8)
    }

    /// The machine frame and offset of vCPU 0's vcpu_info: where the guest
    /// registered it if that gfn is still mapped, else inside shared_info.
    fn vcpu_info_at(&self, dom: &Domain) -> (Mfn, usize) {
        self.vcpu_info
            .and_then(|place| Some((dom.p2m().entry(place.gfn)?.mfn, place.offset)))
            .unwrap_or((dom.shared_info(), xen::SHARED_INFO_VCPU0))
    }

    /// The guest's event bitmaps.
    fn event_bits(&self, dom: &Domain) -> GuestEventBits {
        GuestEventBits::new(dom.shared_info(), self.vcpu_info_at(dom))
    }

    /// Raises `port` toward the guest: sets it pending and, unless masked, flags
    /// the upcall, which the next VMRUN delivers. For hypervisor services
    /// (xenstore after writing its replies); a port that is not bound is ignored.
    pub fn notify(&mut self, dom: &Domain, port: Port) {
        let mut bits = self.event_bits(dom);
        self.evtchn.raise(port, &mut bits);
    }

    /// Raises the port bound to `virq`, if the guest bound one.
    pub fn raise_virq(&mut self, dom: &Domain, virq: u32) {
        if let Some(port) = self.evtchn.virq_port(virq) {
            self.notify(dom, port);
        }
    }

    /// The vector of a pending upcall, if the guest asked for upcalls on a vector
    /// and its `evtchn_upcall_pending` is set.
    pub fn pending_upcall(&self, dom: &Domain) -> Option<u8> {
        self.callback_vector()
            .filter(|_| self.event_bits(dom).upcall_pending())
    }

    /// Writes the pvclock and wall clock into the shared info page, and the pvclock
    /// into the registered vcpu_info if there is one.
    pub fn publish_time(&self, dom: &Domain) {
        let shared = dom.shared_info();
        let time = self.clocks.time_info().to_bytes();
        frame::write(shared, xen::SHARED_INFO_VCPU0 + xen::VCPU_INFO_TIME, &time);
        let mut wc = [0u8; WallClock::SIZE];
        self.clocks.wall_clock().write_to(&mut wc);
        frame::write(shared, xen::SHARED_INFO_WC_VERSION, &wc);
        if let Some(place) = self.vcpu_info {
            if let Some(e) = dom.p2m().entry(place.gfn) {
                // The offset was checked at registration to leave room for a whole
                // vcpu_info (type invariant of `VcpuInfoPlace`).
                frame::write(e.mfn, place.offset + xen::VCPU_INFO_TIME, &time);
            }
        }
    }

    /// The pvclock record, as bytes.
    fn time_info_bytes(&self) -> [u8; VcpuTimeInfo::SIZE] {
        self.clocks.time_info().to_bytes()
    }
}
