//! The machine: the core's [`Hypervisor`] and the guest's parts, each owning its
//! state behind private fields, and the code that needs more than one of them.
//!
//! | part | owns |
//! |---|---|
//! | `hv` (`ebbhv-core`) | the frame heap, the domain, its p2m (the truth about memory) |
//! | [`Cpu`] | the SVM vCPU with its nested page tables (the p2m's mirror), the virtual LAPIC |
//! | [`XenPlatform`] (`ebbhv-core`) | HVM parameters, vcpu_info and runstate places, event channels, the one-shot timer, the clocks |
//! | [`StoreService`] | the xenstore and the guest's ring |
//! | [`Devices`] | console streams and input, the control channel |
//! | [`Diagnostics`] | counters and the things logged once |
//!
//! Only this module and its children, the exit dispatcher ([`exits`]) and the
//! hypercall table ([`hypercalls`]), see the whole machine; every handler they
//! call takes just the parts it uses. Every piece of VM state is reachable from
//! [`Machine`], which a later save/restore walks.
//!
//! Locking: there is one physical CPU and one vCPU, and the machine is owned by
//! the exit loop's stack frame, which is the only code that runs after boot; the
//! `&mut Machine` it holds is the lock the core asks for.

mod exits;
mod hypercalls;

use alloc::string::String;
use alloc::vec::Vec;

use ebbhv_core::addr::DomId;
use ebbhv_core::control::exec::{execute, Context, Effect, RunState};
use ebbhv_core::domain::Domain;
use ebbhv_core::evtchn::abi::{VIRQ_CONSOLE, VIRQ_TIMER};
use ebbhv_core::hv::{Hypervisor, PlatformCharge};
use ebbhv_hal::npt::Npt;
use ebbhv_hal::qemu_exit::{exit_qemu, ExitCode};
use ebbhv_hal::svm::Vcpu;
use ebbhv_hal::{clock, log, timer};
use ebbhv_x86::npt_mirror::NptMirror;

use crate::devices::control::POLL_BUDGET;
use ebbhv_core::abi::platform::shutdown;

use crate::devices::power;
use crate::devices::Devices;
use crate::diagnostics::{self, Diagnostics};
use crate::guest_memory::{GuestVirtMemory, HostFrames, Translate};
use crate::loader::EntryState;
use crate::store::{StoreService, STORE_GFN};
use crate::vcpu::{msr, Cpu};
use crate::xen::time::Clocks;
use crate::xen::{timer::idle_wake_tsc, XenPlatform};

/// The hypervisor and its one guest.
pub struct Machine {
    hv: Hypervisor,
    domid: DomId,
    cpu: Cpu,
    xen: XenPlatform,
    store: StoreService,
    devices: Devices,
    diag: Diagnostics,
    /// Why the domain crashed, once it has: its vCPU never runs again.
    crashed: Option<String>,
    /// TSC before which the control channel is not read: after a request that
    /// paused the guest, the guest runs at least as long before the next one.
    control_resume_tsc: u64,
}

/// How long a crashed domain stays for the control channel (`info` tells why it
/// crashed) before ebbhv ends the run by itself, for a host that never sends
/// `destroy`.
const CRASH_LINGER_S: u64 = 30;
/// How often the control channel is polled while the domain is crashed.
const CRASH_POLL_HZ: u64 = 100;

/// The guest's domain in `hv`. It exists for as long as the machine runs: nothing
/// destroys it (a `destroy` request ends the run instead).
#[expect(
    clippy::expect_used,
    reason = "the domain is created before the machine and never destroyed while it runs"
)]
fn domain(hv: &Hypervisor, domid: DomId) -> &Domain {
    hv.domain(domid)
        .expect("the guest's domain exists while it runs")
}

/// The caller's memory for a platform hypercall: guest-virtual addresses through
/// the guest's page tables (as `cpu` has them) and the p2m.
fn caller_memory<'a>(hv: &'a Hypervisor, domid: DomId, cpu: &Cpu) -> GuestVirtMemory<'a> {
    GuestVirtMemory {
        translate: Translate::P2m(domain(hv, domid)),
        mode: cpu.paging_mode(),
    }
}

impl Machine {
    /// The machine for the guest `domid` that the loader built in `hv`, about to
    /// start at `entry`.
    pub fn new(
        hv: Hypervisor,
        domid: DomId,
        entry: EntryState,
        clocks: Clocks,
        store: StoreService,
    ) -> Machine {
        #[expect(
            clippy::expect_used,
            reason = "boot: no guest yet; a machine without a page for the NPT root stops here"
        )]
        let npt = Npt::new().expect("hypervisor memory for the NPT root");
        let vcpu = Vcpu::new_pvh(npt, entry.rip, entry.start_info, msr::PASS_THROUGH);
        let mut m = Machine {
            hv,
            domid,
            cpu: Cpu::new(vcpu),
            xen: XenPlatform::new(domid, clocks, STORE_GFN),
            store,
            devices: Devices::new(),
            diag: Diagnostics::default(),
            crashed: None,
            control_resume_tsc: 0,
        };
        m.sync_npt();
        m.publish_time();
        m
    }

    /// Replays p2m changes into the NPT and flushes the guest TLB if any. The
    /// guest's memory pool keeps its nested tables within what ebbhv's allocator
    /// holds; should a table page still be missing, the guest cannot run on a
    /// nested table that disagrees with its p2m and the domain is crashed.
    fn sync_npt(&mut self) {
        let vcpu = self.cpu.vcpu_mut();
        let mut mirror = NptMirror::new(vcpu.npt_mut());
        let Ok(changed) = self.hv.sync_p2m(self.domid, &mut mirror) else {
            // Cannot happen: nothing destroys the domain while the machine runs.
            self.crash(format_args!("the guest's domain is gone"));
        };
        let complete = mirror.failed().is_none();
        if changed > 0 {
            vcpu.flush_tlb();
        }
        if !complete {
            self.crash(format_args!(
                "ebbhv's allocator has no page left for the nested page tables"
            ));
        }
    }

    /// Merges superpages that an offline or exchange split (`core`'s
    /// `remerge_split`), at most one exit's budget of frames copied, and syncs the
    /// nested tables; regions beyond the budget wait for the next exit.
    fn remerge_split(&mut self) {
        if !self.hv.has_split_regions(self.domid) {
            return;
        }
        let started = clock::rdtsc();
        let budget = self.hv.config().preempt_frames;
        if let Err(fatal) = self.hv.remerge_split(self.domid, budget, &mut HostFrames) {
            self.crash(format_args!(
                "the core cannot continue the guest: {fatal:?}"
            ))
        }
        self.sync_npt();
        self.diag
            .stats_mut()
            .remerge_pass(clock::rdtsc().wrapping_sub(started));
    }

    /// Tells the core what the guest's event channels and xenstore state take,
    /// for its memory pool.
    fn charge_platform_state(&mut self) {
        let charges = [
            (
                PlatformCharge::EventChannels,
                self.xen.event_channel_bytes(),
            ),
            (PlatformCharge::Xenstore, self.store.guest_bytes()),
        ];
        for (what, bytes) in charges {
            // The guest's domain exists while it runs: nothing to refuse.
            let _ = self.hv.set_platform_charge(self.domid, what, bytes);
        }
    }

    /// Writes the clocks into shared_info and the registered vcpu_info.
    fn publish_time(&self) {
        self.xen
            .publish_time(domain(&self.hv, self.domid), &mut HostFrames);
    }

    /// Raises the port bound to `virq`, if the guest bound one.
    fn raise_virq(&mut self, virq: u32) {
        self.xen
            .raise_virq(domain(&self.hv, self.domid), &mut HostFrames, virq);
    }

    /// Serves the guest's xenstore ring and notifies it on the store port if
    /// anything moved.
    fn serve_store(&mut self) {
        let room = self
            .hv
            .platform_headroom(self.domid, PlatformCharge::Xenstore)
            .unwrap_or(0);
        let moved = self.store.serve(room);
        self.charge_platform_state();
        if moved {
            if let Some(port) = self.xen.store_port() {
                self.xen
                    .notify(domain(&self.hv, self.domid), &mut HostFrames, port);
            }
        }
    }

    /// Whether an interrupt waits for the guest (a HLT must not sleep).
    fn guest_has_work(&self) -> bool {
        self.cpu.lapic_pending()
            || self
                .xen
                .pending_upcall(domain(&self.hv, self.domid), &mut HostFrames)
                .is_some()
    }

    /// Before every guest entry: raises VIRQ_TIMER if the deadline has passed,
    /// polls the devices, and arms the host timer for the next deadline.
    fn service_timer(&mut self) {
        if self.xen.take_due_timer() {
            self.diag.stats_mut().timer_event();
            self.raise_virq(VIRQ_TIMER);
        }
        self.poll_devices();
        match self.xen.timer().deadline() {
            Some(d) => timer::arm_at(self.xen.clocks().tsc_at(d)),
            None => timer::disarm(),
        }
    }

    /// Looks at the devices the guest gets events from: console input on COM1
    /// (queued for console_io, announced with VIRQ_CONSOLE) and the control
    /// channel on COM2 (which may change xenstore and so notify the guest).
    ///
    /// One control request per poll, and after one that paused the guest (a page
    /// offline or exchange: its copies and a superpage merge) none until the guest
    /// has run as long: a client sending requests back to back (a thousand
    /// offlines) held the guest for all of them at once when a poll took every
    /// line the UART had, and still for seconds when the guest only took its
    /// timer interrupt between two.
    fn poll_devices(&mut self) {
        let mut budget = POLL_BUDGET;
        if clock::rdtsc() >= self.control_resume_tsc {
            if let Some(line) = self.devices.control().next_line(&mut budget) {
                self.control_request(&line);
            }
        }
        if self.devices.console_in().poll() {
            self.raise_virq(VIRQ_CONSOLE);
        }
    }

    /// Idles the vCPU (HLT with interrupts on, or `SCHEDOP_block`) until an event
    /// is pending for it: its timer, console input, or anything a device poll
    /// raises.
    fn block(&mut self) {
        let started = clock::rdtsc();
        loop {
            self.service_timer();
            if self.guest_has_work() {
                break;
            }
            timer::arm_at(idle_wake_tsc(self.xen.timer(), self.xen.clocks()));
            timer::wait_for_interrupt();
            timer::take_fired();
        }
        self.diag
            .stats_mut()
            .idle(clock::rdtsc().wrapping_sub(started));
    }

    /// Executes one control request line and sends the reply. Page offline and
    /// exchange copy guest frames and change the p2m here, between two guest runs.
    fn control_request(&mut self, line: &[u8]) {
        let started = clock::rdtsc();
        let owned: Vec<(String, u64)> = self.diag.counters(self.xen.clocks());
        let counters: Vec<(&str, u64)> = owned.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let (reply, effect) = {
            let mut cx = Context {
                hv: &mut self.hv,
                store: self.store.store_mut(),
                domain: self.domid,
                counters: &counters,
                state: match &self.crashed {
                    None => RunState::Running,
                    Some(reason) => RunState::Crashed(reason),
                },
                frames: &mut HostFrames,
            };
            execute(line, &mut cx)
        };
        self.devices.control().send(&reply);
        match effect {
            Effect::None => {}
            Effect::Xenstore if self.store.has_output() => self.serve_store(),
            Effect::Xenstore => {}
            Effect::Destroy if self.crashed.is_some() => {
                log!(
                    "crashed domain {} destroyed from the control channel",
                    self.domid.0
                );
                self.end_crashed()
            }
            // The guest is out of guest mode while a request runs (one CPU, the exit
            // loop polls the channel); its nested tables follow the p2m and its TLB
            // is flushed before it runs again.
            // Superpages the request split are merged in a pass of their own, timed
            // apart so that `info` tells the two pauses apart. A broken frame's
            // report to the guest waits in the store until the p2m is synced.
            Effect::P2m => {
                self.sync_npt();
                self.diag
                    .stats_mut()
                    .p2m_request(clock::rdtsc().wrapping_sub(started));
                self.remerge_split();
                let now = clock::rdtsc();
                self.control_resume_tsc = now.saturating_add(now.wrapping_sub(started));
                if self.store.has_output() {
                    self.serve_store();
                }
            }
            Effect::Crash(reason) => self.crash(format_args!("{reason}")),
            Effect::Destroy => {
                self.shutdown(shutdown::POWEROFF, "destroyed from the control channel")
            }
        }
    }

    /// Prints the `[hv]` summary under `title`.
    fn report(&self, title: &str) {
        diagnostics::report(&self.diag, self.xen.clocks(), title);
    }

    /// Ends the run for a guest shutdown with Xen's `SHUTDOWN_*` reason.
    fn shutdown(&mut self, reason: u32, how: &str) -> ! {
        self.devices.flush();
        let what = power::reason_name(reason);
        log!("guest shut down: {what} (reason {reason}, {how})");
        self.report(what);
        exit_qemu(power::exit_code(reason))
    }

    /// Crashes the domain for a guest fault ebbhv cannot continue it from: logs
    /// why with the guest's registers, then keeps serving the control channel
    /// (`ping`, `info` with `state=crashed reason=...`, `destroy`) with the vCPU
    /// stopped for good. The run ends as a guest crash (run-hv.sh status 2) on
    /// `destroy`, or after [`CRASH_LINGER_S`] seconds.
    fn crash(&mut self, why: core::fmt::Arguments<'_>) -> ! {
        self.devices.flush();
        let reason = alloc::format!("{why}");
        log!("domain {} crashed: {reason}", self.domid.0);
        self.log_guest_state();
        self.report("domain crashed");
        self.crashed = Some(reason);
        let tsc_hz = self.xen.clocks().tsc_hz();
        let give_up = clock::rdtsc().saturating_add(CRASH_LINGER_S.saturating_mul(tsc_hz));
        loop {
            let mut budget = POLL_BUDGET;
            while let Some(line) = self.devices.control().next_line(&mut budget) {
                self.control_request(&line);
            }
            let now = clock::rdtsc();
            if now >= give_up {
                log!(
                    "crashed domain {} not destroyed within {CRASH_LINGER_S} s",
                    self.domid.0
                );
                self.end_crashed()
            }
            timer::arm_at(now.saturating_add(tsc_hz / CRASH_POLL_HZ));
            timer::wait_for_interrupt();
            timer::take_fired();
        }
    }

    /// Ends the run of a crashed domain: QEMU exits with the guest-crash status.
    fn end_crashed(&mut self) -> ! {
        self.devices.flush();
        exit_qemu(ExitCode::GuestFatal)
    }

    /// Logs the guest's registers at the exit that crashed it.
    fn log_guest_state(&self) {
        let v = self.cpu.vcpu();
        let (c, s, r) = (v.control(), v.save(), v.regs());
        log!(
            "  exit {:#x} info1 {:#x} info2 {:#x} intinfo {:#x}",
            c.exit_code,
            c.exit_info1,
            c.exit_info2,
            c.exit_int_info
        );
        log!(
            "  rip {:#018x} rsp {:#018x} rflags {:#x} cs {:#x} cpl {}",
            s.rip,
            s.rsp,
            s.rflags,
            s.cs.selector,
            s.cpl
        );
        log!(
            "  rax {:#018x} rbx {:#018x} rcx {:#018x} rdx {:#018x}",
            s.rax,
            r.rbx,
            r.rcx,
            r.rdx
        );
        log!(
            "  rsi {:#018x} rdi {:#018x} rbp {:#018x} r8  {:#018x}",
            r.rsi,
            r.rdi,
            r.rbp,
            r.r8
        );
        log!(
            "  cr0 {:#x} cr2 {:#x} cr3 {:#x} cr4 {:#x} efer {:#x}",
            s.cr0,
            s.cr2,
            s.cr3,
            s.cr4,
            s.efer
        );
    }
}
