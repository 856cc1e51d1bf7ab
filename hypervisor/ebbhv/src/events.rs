//! Event channel delivery to the guest: the 2-level bitmaps in its shared info page
//! and vcpu_info ([`GuestEventBits`], what the core's [`EventChannels`] works on),
//! the upcall through the callback vector, and the hooks other hypervisor services
//! use ([`notify_guest`], [`xenstore_kick`]).
//!
//! The upcall is level-triggered: before every VMRUN, while the guest's
//! `evtchn_upcall_pending` is set and it asked for a callback vector
//! (`HVM_PARAM_CALLBACK_IRQ` = 2 << 56 | vector), the vector is offered through
//! V_IRQ with V_IGN_TPR; the CPU delivers it as soon as the guest's RFLAGS.IF and
//! interrupt shadow allow (that is the interrupt window, with no exit needed) and
//! clears V_IRQ when it does. The callback vector needs no EOI. V_IRQ also carries
//! the virtual LAPIC's self-IPIs: the higher of the two vectors is offered, and a
//! LAPIC vector moves from IRR to ISR once the CPU has taken it (V_IRQ found clear
//! at the next exit, before that exit's own work such as an EOI write).

use ebbhv_core::addr::CallerAddr;
use ebbhv_core::error::Errno;
use ebbhv_core::evtchn::{Action, Bitmap, EventBits, EventChannels, Port};
use ebbhv_x86::addr::HostPhys;
use ebbhv_x86::vintr::{self, Offered};
use ebbhv_x86::xen::{self, hvmop};

use crate::guest::Machine;
use crate::loader::DOMID;
use crate::phys;
use crate::platform::{GuestVirtMemory, Translate};

/// `HVM_PARAM_CALLBACK_IRQ` type 2: deliver upcalls on a vector.
const CALLBACK_TYPE_VECTOR: u64 = 2;
/// `exit_int_info` / `event_inj`: valid.
const EVENT_VALID: u64 = 1 << 31;

/// The 2-level event bitmaps of the running guest, by machine address.
///
/// # Invariants
///
/// `shared` is the domain's shared info frame and `vcpu_info` the machine address
/// of vCPU 0's 64-byte vcpu_info (inside the shared info page or a guest RAM frame
/// the p2m maps); both stay valid while the guest is stopped, which it is whenever
/// this value exists.
pub struct GuestEventBits {
    shared: HostPhys,
    vcpu_info: HostPhys,
}

/// Offsets inside vcpu_info (`public/xen.h`).
const VCPU_INFO_UPCALL_PENDING: u64 = 0;
const VCPU_INFO_PENDING_SEL: u64 = 8;

impl GuestEventBits {
    /// The bitmaps of `m`'s guest.
    pub fn of(m: &Machine) -> GuestEventBits {
        let dom =
            m.hv.domain(DOMID)
                .expect("the guest's domain exists while it runs");
        let shared = HostPhys(dom.shared_info().0 << 12);
        let vcpu_info = m
            .vcpu_info
            .and_then(|place| {
                let e = dom.p2m().entry(place.gfn)?;
                Some(HostPhys((e.mfn.0 << 12) + place.offset as u64))
            })
            .unwrap_or(HostPhys(shared.0 + xen::SHARED_INFO_VCPU0 as u64));
        // INVARIANT: the shared info frame and a p2m-mapped vcpu_info (registration
        // checked that it fits in its frame).
        GuestEventBits { shared, vcpu_info }
    }

    fn word_at(&self, map: Bitmap, bit: u32) -> (HostPhys, u64) {
        let (base, word) = match map {
            Bitmap::Pending => (
                self.shared.0 + xen::SHARED_INFO_EVTCHN_PENDING as u64,
                bit / 64,
            ),
            Bitmap::Mask => (
                self.shared.0 + xen::SHARED_INFO_EVTCHN_MASK as u64,
                bit / 64,
            ),
            Bitmap::Selector => (self.vcpu_info.0 + VCPU_INFO_PENDING_SEL, 0),
        };
        // 64 words of pending and mask bits: ports beyond 4095 wrap inside the
        // arrays rather than leave them (the core never asks for them).
        (HostPhys(base + u64::from(word % 64) * 8), 1 << (bit % 64))
    }

    fn read(pa: HostPhys) -> u64 {
        // SAFETY: by the type invariant `pa` is inside the shared info page or the
        // vcpu_info, 8-byte aligned, and the guest is stopped; the slice is dropped
        // before anything else touches the page.
        let b = unsafe { phys::slice(pa, 8) };
        u64::from_le_bytes(b.try_into().expect("8 bytes"))
    }

    fn write(pa: HostPhys, v: u64) {
        // SAFETY: as in `read`; no other reference to those 8 bytes exists.
        unsafe { phys::slice_mut(pa, 8) }.copy_from_slice(&v.to_le_bytes());
    }

    /// The guest's `evtchn_upcall_pending`.
    pub fn upcall_pending(&self) -> bool {
        // SAFETY: by the type invariant the byte is inside vcpu_info; the guest is
        // stopped.
        let b = unsafe { phys::slice(HostPhys(self.vcpu_info.0 + VCPU_INFO_UPCALL_PENDING), 1) };
        b[0] != 0
    }
}

impl EventBits for GuestEventBits {
    fn test(&mut self, map: Bitmap, bit: u32) -> bool {
        let (pa, mask) = self.word_at(map, bit);
        Self::read(pa) & mask != 0
    }

    fn test_and_set(&mut self, map: Bitmap, bit: u32) -> bool {
        let (pa, mask) = self.word_at(map, bit);
        let old = Self::read(pa);
        Self::write(pa, old | mask);
        old & mask != 0
    }

    fn clear(&mut self, map: Bitmap, bit: u32) {
        let (pa, mask) = self.word_at(map, bit);
        Self::write(pa, Self::read(pa) & !mask);
    }

    fn set_upcall_pending(&mut self) {
        // SAFETY: as in `upcall_pending`; no other reference to the byte exists.
        let b =
            unsafe { phys::slice_mut(HostPhys(self.vcpu_info.0 + VCPU_INFO_UPCALL_PENDING), 1) };
        b[0] = 1;
    }
}

/// Raises `port` toward the guest: sets it pending and, unless masked, flags the
/// upcall, which the next VMRUN delivers. For hypervisor services (xenstore after
/// writing its replies); a port that is not bound is ignored.
pub fn notify_guest(m: &mut Machine, port: Port) {
    let mut bits = GuestEventBits::of(m);
    m.evtchn.raise(port, &mut bits);
}

/// Raises the port bound to `virq`, if the guest bound one.
pub fn raise_virq(m: &mut Machine, virq: u32) {
    if let Some(port) = m.evtchn.virq_port(virq) {
        notify_guest(m, port);
    }
}

/// Called when the guest sends on the xenstore port (`HVM_PARAM_STORE_EVTCHN`):
/// the xenstore service reads the requests from the ring, writes the replies and
/// calls [`notify_guest`] with the port. It serves synchronously, inside the
/// guest's EVTCHNOP_send.
pub fn xenstore_kick(m: &mut Machine) {
    crate::xenstore::serve(m);
}

/// `HYPERVISOR_event_channel_op`.
pub fn event_channel_op(m: &mut Machine, cmd: u64, arg: CallerAddr) -> Result<i64, Errno> {
    let mut bits = GuestEventBits::of(m);
    let dom = m.hv.domain(DOMID).ok_or(Errno::ESRCH)?;
    let s = &m.vcpu.vmcb.save;
    let mut mem = GuestVirtMemory {
        translate: Translate::P2m(dom),
        mode: ebbhv_x86::walk::PagingMode {
            cr0: s.cr0,
            cr3: s.cr3,
            cr4: s.cr4,
            efer: s.efer,
        },
    };
    let action = m.evtchn.hypercall(cmd, arg, &mut mem, &mut bits)?;
    if let Action::Kick(port) = action {
        if u64::from(port) == m.params[hvmop::PARAM_STORE_EVTCHN as usize] {
            xenstore_kick(m);
        }
    }
    Ok(0)
}

/// The vector the guest asked upcalls on, if it chose the vector callback type.
fn callback_vector(m: &Machine) -> Option<u8> {
    let p = m.params[hvmop::PARAM_CALLBACK_IRQ as usize];
    (p >> 56 == CALLBACK_TYPE_VECTOR).then_some(p as u8)
}

/// Whether an interrupt waits for the guest (a HLT must not sleep).
pub fn guest_has_work(m: &Machine) -> bool {
    m.lapic.deliverable().is_some()
        || (callback_vector(m).is_some() && GuestEventBits::of(m).upcall_pending())
}

/// Offers the highest pending vector through V_IRQ for the next guest run (or
/// withdraws the offer).
pub fn prepare_entry(m: &mut Machine) {
    let upcall = callback_vector(m).filter(|_| GuestEventBits::of(m).upcall_pending());
    let offer = vintr::choose(upcall, m.lapic.deliverable());
    m.offered = offer;
    let c = &mut m.vcpu.vmcb.control;
    c.vintr = vintr::encode(c.vintr, offer);
}

/// Settles what happened to the offered vector during the run that just ended,
/// and re-injects an event whose delivery the exit interrupted.
pub fn after_exit(m: &mut Machine) {
    let c = &mut m.vcpu.vmcb.control;
    if let (true, Some(Offered::Lapic(v))) = (vintr::taken(c.vintr), m.offered) {
        m.lapic.accept(v);
    }
    m.offered = None;
    if c.exit_int_info & EVENT_VALID != 0 {
        c.event_inj = c.exit_int_info;
    }
}

/// A fresh table for the guest, with the xenstore port allocated (its other end
/// is the hypervisor) and published as `HVM_PARAM_STORE_EVTCHN`.
pub fn init(m: &mut Machine) {
    let port = m
        .evtchn
        .alloc_hypervisor_port()
        .expect("an empty table has free ports");
    m.params[hvmop::PARAM_STORE_EVTCHN as usize] = u64::from(port);
}

/// The table a new guest starts with.
pub fn new_table() -> EventChannels {
    EventChannels::new(DOMID)
}
