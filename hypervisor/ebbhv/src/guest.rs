//! The running guest: its vCPU and nested page tables, the virtual local APIC, and
//! the Xen state the platform serves itself (HVM parameters, where vcpu_info and
//! the runstate area live, the clocks), next to the core's [`Hypervisor`].
//!
//! Locking: there is one physical CPU and one vCPU, and [`Machine`] is owned by the
//! exit loop's stack frame, which is the only code that runs after boot; the
//! `&mut Machine` handed to each exit handler is the lock the core asks for.

use alloc::vec::Vec;

use ebbhv_core::addr::{Gfn, Mfn};
use ebbhv_core::hv::Hypervisor;
use ebbhv_core::xenstore::Xenstore;
use ebbhv_x86::addr::HostPhys;
use ebbhv_x86::lapic::VLapic;
use ebbhv_x86::vintr::Offered;
use ebbhv_x86::walk::PagingMode;
use ebbhv_x86::xen::{self, hvmop, VcpuTimeInfo, WallClock, PVCLOCK_TSC_STABLE};

use ebbhv_core::evtchn::EventChannels;

use crate::console::{ConsoleInput, ConsoleStream};
use crate::control::ControlChannel;
use crate::loader::DOMID;
use crate::npt::Npt;
use crate::phys;
use crate::platform::{GuestVirtMemory, NptMirror, Translate};
use crate::stats::Stats;
use crate::svm::Vcpu;

/// The guest's clocks, fixed at boot.
#[derive(Clone, Copy, Debug)]
pub struct Clocks {
    /// TSC frequency.
    pub tsc_hz: u64,
    /// TSC value at guest system time 0.
    pub tsc_at_boot: u64,
    /// Unix time at guest system time 0.
    pub wall_at_boot: u64,
    /// pvclock multiplier.
    pub mul: u32,
    /// pvclock shift.
    pub shift: i8,
}

/// Where the guest asked its vcpu_info to live.
#[derive(Clone, Copy, Debug)]
pub struct VcpuInfoPlace {
    /// Guest frame.
    pub gfn: Gfn,
    /// Offset inside it.
    pub offset: usize,
}

/// The hypervisor and its one guest.
pub struct Machine {
    /// The core: heap, domains, p2m.
    pub hv: Hypervisor,
    /// The guest's vCPU.
    pub vcpu: Vcpu,
    /// The guest's nested page tables (mirror of its p2m).
    pub npt: Npt,
    /// The guest's local APIC.
    pub lapic: VLapic,
    /// HVM parameters (`HVM_PARAM_*`).
    pub params: [u64; hvmop::NR_PARAMS],
    /// vcpu_info placement, once registered.
    pub vcpu_info: Option<VcpuInfoPlace>,
    /// The runstate area's guest-virtual address, once registered.
    pub runstate: Option<u64>,
    /// The clocks.
    pub clocks: Clocks,
    /// console_io output.
    pub console: ConsoleStream,
    /// Port 0xE9 output.
    pub e9: ConsoleStream,
    /// Console input for console_io reads.
    pub console_in: ConsoleInput,
    /// (hypercall, sub-op) pairs already logged as unsupported.
    pub logged_once: Vec<(u64, u64)>,
    /// The guest's event channels.
    pub evtchn: EventChannels,
    /// The vector V_IRQ offers to the current guest run.
    pub offered: Option<Offered>,
    /// The guest's one-shot timer: guest system time (ns) it is due at.
    pub timer_deadline: Option<u64>,
    /// Exit and hypercall counters.
    pub stats: Stats,
    /// The xenstore the guest and the control channel share.
    pub store: Xenstore,
    /// The machine frame of the guest's xenstore ring page (lent to the guest).
    pub store_ring: Mfn,
    /// The control channel (COM2).
    pub control: ControlChannel,
}

impl Machine {
    /// The guest's paging registers.
    pub fn paging_mode(&self) -> PagingMode {
        let s = &self.vcpu.vmcb.save;
        PagingMode {
            cr0: s.cr0,
            cr3: s.cr3,
            cr4: s.cr4,
            efer: s.efer,
        }
    }

    /// The guest's memory by virtual address, through its p2m.
    pub fn guest_memory(&self) -> GuestVirtMemory<'_> {
        let dom = self
            .hv
            .domain(DOMID)
            .expect("the guest's domain exists while it runs");
        GuestVirtMemory {
            translate: Translate::P2m(dom),
            mode: self.paging_mode(),
        }
    }

    /// Replays p2m changes into the NPT and flushes the guest TLB if any.
    pub fn sync_npt(&mut self) {
        let changed = self
            .hv
            .sync_p2m(DOMID, &mut NptMirror(&mut self.npt))
            .expect("the guest's domain exists while it runs");
        if changed > 0 {
            self.vcpu.flush_tlb();
        }
    }

    /// Logs `what` the first time a (hypercall, sub-op) pair is seen unsupported.
    pub fn log_once(&mut self, nr: u64, sub: u64, what: core::fmt::Arguments<'_>) {
        if !self.logged_once.contains(&(nr, sub)) {
            self.logged_once.push((nr, sub));
            crate::log!("{what}");
        }
    }

    /// Guest system time now, in nanoseconds since boot.
    pub fn system_time_ns(&self) -> u64 {
        let c = &self.clocks;
        ebbhv_x86::time::pvclock_ns(
            crate::clock::rdtsc().wrapping_sub(c.tsc_at_boot),
            c.mul,
            c.shift,
        )
    }

    /// The pvclock record for the guest's vCPU.
    pub fn time_info(&self) -> VcpuTimeInfo {
        VcpuTimeInfo {
            version: 2,
            tsc_timestamp: self.clocks.tsc_at_boot,
            system_time: 0,
            tsc_to_system_mul: self.clocks.mul,
            tsc_shift: self.clocks.shift,
            flags: PVCLOCK_TSC_STABLE,
            ..Default::default()
        }
    }

    /// Writes the pvclock and wall clock into the shared info page, and the pvclock
    /// into the registered vcpu_info if there is one.
    pub fn publish_time(&mut self) {
        let dom = self
            .hv
            .domain(DOMID)
            .expect("the guest's domain exists while it runs");
        let shared: Mfn = dom.shared_info();
        let time = self.time_info().to_bytes();
        let wall = self.clocks.wall_at_boot;
        let wc = WallClock {
            wc_version: 2,
            wc_sec: wall as u32,
            wc_nsec: 0,
            wc_sec_hi: (wall >> 32) as u32,
        };
        // SAFETY: the shared info frame is a hypervisor frame lent to the guest; the
        // guest is stopped while the hypervisor writes it and no reference to it
        // exists in the hypervisor.
        let page = unsafe { phys::slice_mut(HostPhys(shared.0 << 12), 4096) };
        let t = xen::SHARED_INFO_VCPU0 + xen::VCPU_INFO_TIME;
        page[t..t + VcpuTimeInfo::SIZE].copy_from_slice(&time);
        wc.write_to(&mut page[xen::SHARED_INFO_WC_VERSION..]);
        if let Some(place) = self.vcpu_info {
            if let Some(e) = dom.p2m().entry(place.gfn) {
                // SAFETY: a guest RAM frame the p2m maps for this domain; the guest is
                // stopped; the offset was checked at registration to leave room for a
                // whole vcpu_info.
                let p = unsafe { phys::slice_mut(HostPhys(e.mfn.0 << 12), 4096) };
                let t = place.offset + xen::VCPU_INFO_TIME;
                p[t..t + VcpuTimeInfo::SIZE].copy_from_slice(&time);
            }
        }
    }
}
