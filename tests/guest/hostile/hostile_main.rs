// SPDX-License-Identifier: GPL-2.0

//! ebb_hostile: a hostile guest kernel, for the `hostile-kernel.sh` kselftest (issue
//! 13). A test artefact, not part of ebb.
//!
//! Loading the module makes raw hypercalls (VMMCALL, Xen's ABI: number in RAX,
//! arguments in RDI RSI RDX R10 R8) and MSR writes a hostile kernel could make, and
//! checks each result against the exact error ebbhv must give, XTF style: one line
//! per check in the kernel log, after a `plan N` line, as
//! `ebb_hostile: ok N NAME` or `ebb_hostile: not ok N NAME: got X, expected Y`.
//! The module then stays loaded doing nothing; the test removes it. Besides bad
//! buffers, ports, params and MSR values ([`attacks`]), the checks include the
//! XSA-231 analogue (reservations whose `mem_flags` name an exact node, a node
//! past any that exists, or an address limit below the hypervisor's memory: 0
//! extents done; a node hint and undefined bits: ignored), the XSA-277 analogue
//! (decrease_reservation and remove_from_physmap of the xenstore ring, a frame the
//! hypervisor lends: refused, so it stays mapped) and a timer and vcpu_op storm
//! with distinct arguments ([`storm`]).
//!
//! `fuzz_secs=N` skips the checks and makes random hypercalls for N seconds (see
//! [`fuzz`] for which, and why only those), then logs `fuzz: done ...`.
//!
//! `flood=1` skips the checks and populates single 4 KiB frames scattered over the
//! guest-physical space until ebbhv refuses one (the guest's pool of hypervisor
//! memory is full), logs `flood: populated N ...`, and gives them back at unload
//! (`flood: gave back M of N frames`), for `hostile-flood.sh`.
//!
//! `storm_only=1` skips the checks and runs only the timer and vcpu_op storm, with
//! arguments none of the checks' storm used (see [`storm`]), reporting it as the
//! checks are reported; `hostile-kernel.sh` compares ebbhv's statistics keys
//! before and after it.
//!
//! `halt_for_good=1` skips the checks and halts the vCPU with interrupts off, for a
//! manual look at how ebbhv crashes a domain (`[hv] domain 1 crashed: ...`,
//! `ebbctl info` showing `state crashed`); it ends the run.
//!
//! It runs only under ebbhv: on anything but a Xen PVH domain (where VMMCALL may
//! raise #UD) and under a real Xen (whose answers differ where ebbhv is stricter)
//! it makes no attack, logs `ebb_hostile: skip: REASON` and refuses to load with
//! `-ENODEV`.

use core::arch::asm;
use core::ptr::addr_of_mut;
use kernel::prelude::*;

#[path = "../common/xen_abi.rs"]
mod xen_abi;

use xen_abi::Exchange;
use xen_abi::Reservation;
use xen_abi::DOMID_SELF;
use xen_abi::EBBHV_EXTRAVERSION;
use xen_abi::PAGE_SIZE;
use xen_abi::XENMEM_DECREASE_RESERVATION;
use xen_abi::XENMEM_EXCHANGE;
use xen_abi::XENMEM_POPULATE_PHYSMAP;
use xen_abi::XEN_EINVAL;
use xen_abi::XEN_EPERM;

module! {
    type: Hostile,
    name: "ebb_hostile",
    authors: ["The ebb developers"],
    description: "Hostile-guest checks of ebbhv (issue 13): raw hypercalls and MSR writes; a test artefact",
    license: "GPL",
    params: {
        ram_end: u64 {
            default: 0,
            description: "The end of the guest's highest System RAM range (from /proc/iomem): \
                          the page there is in no RAM range and not in the direct map",
        },
        fuzz_secs: u32 {
            default: 0,
            description: "Instead of the checks, make random hypercalls for this many \
                          seconds (the ones that cannot legitimately end the guest)",
        },
        flood: bool {
            default: false,
            description: "Instead of the checks, populate single 4 KiB frames scattered \
                          one per GiB above 1 TiB until ebbhv refuses one (the guest's pool \
                          of hypervisor memory is full); unloading gives them all back",
        },
        storm_only: bool {
            default: false,
            description: "Instead of the checks, run only the timer and vcpu_op storm, \
                          with arguments the checks' storm did not use",
        },
        halt_for_good: bool {
            default: false,
            description: "Instead of the checks, execute HLT with interrupts off, which \
                          ebbhv answers by crashing the domain (a manual check of the crash \
                          path: it ends the run, so no kselftest uses it)",
        },
    },
}

unsafe extern "C" {
    fn ebb_hostile_xen_pvh_domain() -> bool;
    fn ebb_hostile_rdmsr_safe(msr: u32, value: *mut u64) -> c_int;
    fn ebb_hostile_wrmsr_safe(msr: u32, value: u64) -> c_int;
    fn ebb_hostile_phys_to_virt(phys: u64) -> u64;
    fn ebb_hostile_ioremap(phys: u64, size: u64) -> u64;
    fn ebb_hostile_iounmap(virt: u64);
    fn ebb_hostile_random() -> u64;
    fn ebb_hostile_now_ms() -> u64;
    fn ebb_hostile_cond_resched();
    fn ebb_hostile_chain_map(phys: u64) -> u64;
    fn ebb_hostile_chain_pml4_bits(bits: u64);
    fn ebb_hostile_chain_unmap();
    fn ebb_hostile_virt_to_phys(virt: u64) -> u64;
}

/// Hypercall numbers (xen/include/public/xen.h).
const HYPERVISOR_SET_TIMER_OP: u64 = 15;
const HYPERVISOR_MEMORY_OP: u64 = 12;
const HYPERVISOR_XEN_VERSION: u64 = 17;
const HYPERVISOR_CONSOLE_IO: u64 = 18;
const HYPERVISOR_EVENT_CHANNEL_OP: u64 = 32;
const HYPERVISOR_HVM_OP: u64 = 34;
const HYPERVISOR_VCPU_OP: u64 = 24;
const HYPERVISOR_SCHED_OP: u64 = 29;
/// Sub-ops.
const XENVER_EXTRAVERSION: u64 = 1;
const CONSOLEIO_WRITE: u64 = 0;
const EVTCHNOP_CLOSE: u64 = 3;
const EVTCHNOP_SEND: u64 = 4;
const EVTCHNOP_UNMASK: u64 = 9;
const EVTCHNOP_STATUS: u64 = 5;
const HVMOP_SET_PARAM: u64 = 0;
const HVMOP_GET_PARAM: u64 = 1;
const XENMEM_INCREASE_RESERVATION: u32 = 0;
const XENMEM_REMOVE_FROM_PHYSMAP: u32 = 15;
const VCPUOP_IS_UP: u64 = 3;
const VCPUOP_SET_SINGLESHOT_TIMER: u64 = 8;
/// `VCPU_SSHOTTMR_future`: refuse a deadline already past.
const VCPU_SSHOTTMR_FUTURE: u32 = 1;
/// `mem_flags`: `XENMEMF_node(n)` is `(n + 1) << 8`; the exact-node flag.
const XENMEMF_NODE_SHIFT: u32 = 8;
const XENMEMF_EXACT_NODE_REQUEST: u32 = 1 << 17;
/// Bits no `XENMEMF_*` flag defines (Xen ignores them).
const XENMEMF_UNDEFINED: u32 = 0xfff8_0000;
const HVM_PARAM_STORE_PFN: u32 = 1;
const HVM_PARAM_STORE_EVTCHN: u32 = 2;
const HVM_PARAM_CONSOLE_PFN: u32 = 17;
const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;
/// The first port past the 2-level ABI's 4096.
const PORT_PAST_2L: u32 = 4096;
/// Xen's errnos, as the hypercall returns them.
const XEN_ENOENT: i64 = -2;
const XEN_ENOSYS: i64 = -38;
const XEN_ETIME: i64 = -62;
const XEN_EFAULT: i64 = -14;
/// What `wrmsrq_safe` returns when the write raised #GP.
const MSR_FAULTED: i64 = -5;
/// MSRs.
const MSR_EFER: u32 = 0xc000_0080;
const MSR_PAT: u32 = 0x277;
/// EFER bit 1 (reserved) and SVME (the guest sees no SVM).
const EFER_RESERVED_BIT1: u64 = 1 << 1;
const EFER_SVME: u64 = 1 << 12;
/// A canonical-looking address just past the lower half: bit 47 set, 48..63 clear.
const NON_CANONICAL: u64 = 0x0000_8000_0000_0000;
/// The last 8 bytes of the address space: the next array element wraps to 0.
const LAST_QWORD: u64 = 0xffff_ffff_ffff_fff8;

/// `xen_hvm_param`.
#[repr(C)]
#[derive(Default)]
struct HvmParam {
    domid: u16,
    pad: u16,
    index: u32,
    value: u64,
}

/// `xen_remove_from_physmap`.
#[repr(C)]
struct RemoveFromPhysmap {
    domid: u16,
    pad: [u8; 6],
    gpfn: u64,
}

/// `vcpu_set_singleshot_timer`.
#[repr(C)]
struct SingleshotTimer {
    timeout_abs_ns: u64,
    flags: u32,
    pad: u32,
}

/// Where the flood's frames go: one per GiB from 1 TiB up, each 2 MiB further into
/// its GiB than the one before, so that every frame needs its own p2m and nested
/// tables (the most hypervisor memory a 4 KiB frame can cost).
const FLOOD_BASE_GFN: u64 = 1 << 28;
const FLOOD_STEP_GFNS: u64 = (1 << 18) + (1 << 9);
/// The most frames the flood tries: far more than the default pool of the 1.5 GiB
/// test guest holds tables for, far fewer than its maximum leaves room for.
const FLOOD_MAX_FRAMES: u64 = 16384;

fn flood_gfn(i: u64) -> u64 {
    FLOOD_BASE_GFN + i * FLOOD_STEP_GFNS
}

/// One 4 KiB extent at `gfn` through `XENMEM_populate_physmap` or
/// `XENMEM_decrease_reservation`; returns the extents done (or -errno).
fn reserve_one(cmd: u32, gfn: u64) -> i64 {
    reserve_with_flags(cmd, gfn, 0)
}

/// [`reserve_one`] with `mem_flags`.
fn reserve_with_flags(cmd: u32, gfn: u64, mem_flags: u32) -> i64 {
    let mut frame = gfn;
    let mut reservation = Reservation {
        extent_start: addr(&mut frame),
        nr_extents: 1,
        mem_flags,
        domid: DOMID_SELF,
        ..Reservation::default()
    };
    hypercall(
        HYPERVISOR_MEMORY_OP,
        [u64::from(cmd), addr(&mut reservation), 0, 0, 0],
    )
}

/// Populates flood frames until ebbhv refuses one; returns how many it took.
fn flood() -> u64 {
    let mut populated = 0;
    while populated < FLOOD_MAX_FRAMES {
        if reserve_one(XENMEM_POPULATE_PHYSMAP, flood_gfn(populated)) != 1 {
            break;
        }
        populated += 1;
        if populated % 64 == 0 {
            // SAFETY: a plain scheduling point; the loop holds no lock.
            unsafe { ebb_hostile_cond_resched() };
        }
    }
    populated
}

/// The buffers the hypercalls read and write, in kernel memory (one allocation).
#[repr(C)]
struct Scratch {
    version: [u8; 16],
    param: HvmParam,
    port: u32,
    exchange: Exchange,
    in_gfns: [u64; 2],
    console: [u8; 4096],
}

/// One check's outcome.
struct Check {
    name: &'static str,
    got: i64,
    expected: i64,
}

/// Makes hypercall `nr` with `args`; returns RAX.
fn hypercall(nr: u64, args: [u64; 5]) -> i64 {
    let ret: u64;
    // SAFETY: VMMCALL traps to the hypervisor (the module runs only on a Xen PVH
    // domain of ebbhv, checked before any call). The hypercall may read and write
    // the memory its arguments name, all of it this module's own scratch buffer or
    // addresses chosen to be refused, so the asm is not `nomem`; it may change the
    // argument registers, which are declared clobbered.
    unsafe {
        asm!(
            "vmmcall",
            inlateout("rax") nr => ret,
            inlateout("rdi") args[0] => _,
            inlateout("rsi") args[1] => _,
            inlateout("rdx") args[2] => _,
            inlateout("r10") args[3] => _,
            inlateout("r8") args[4] => _,
            options(nostack),
        );
    }
    ret as i64
}

fn rdmsr(msr: u32) -> Option<u64> {
    let mut value = 0u64;
    // SAFETY: rdmsrq_safe catches the #GP of a missing MSR; `value` is a valid u64.
    let r = unsafe { ebb_hostile_rdmsr_safe(msr, &mut value) };
    (r == 0).then_some(value)
}

fn wrmsr(msr: u32, value: u64) -> i64 {
    // SAFETY: wrmsrq_safe catches the #GP of a refused write; the values written are
    // ones the CPU refuses (the checks expect that), or the register's own value.
    i64::from(unsafe { ebb_hostile_wrmsr_safe(msr, value) })
}

fn addr<T>(p: *mut T) -> u64 {
    p as u64
}

/// The loaded module: the flood frames it holds, given back when it is unloaded.
struct Hostile {
    flooded: u64,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        if self.flooded == 0 {
            return;
        }
        let given_back = (0..self.flooded)
            .filter(|&i| reserve_one(XENMEM_DECREASE_RESERVATION, flood_gfn(i)) == 1)
            .count();
        pr_info!("flood: gave back {given_back} of {} frames\n", self.flooded);
    }
}

impl kernel::Module for Hostile {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // SAFETY: a plain query of the kernel's boot-time domain type.
        if !unsafe { ebb_hostile_xen_pvh_domain() } {
            pr_info!("skip: not a Xen PVH domain\n");
            return Err(ENODEV);
        }
        if module_parameters::halt_for_good.value() {
            pr_info!("halting with interrupts off\n");
            // SAFETY: stops this CPU for good on purpose; under ebbhv the domain
            // crashes (nothing can wake a HLT with interrupts off).
            unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
            return Err(EIO);
        }
        let mut scratch = KBox::new(
            Scratch {
                version: [0; 16],
                param: HvmParam::default(),
                port: 0,
                exchange: Exchange::default(),
                in_gfns: [u64::MAX; 2],
                console: [b'.'; 4096],
            },
            GFP_KERNEL,
        )?;
        // The 2 GiB console write shows the first 4 KiB: one line of dots.
        scratch.console[4095] = b'\n';
        let s: *mut Scratch = &mut *scratch;
        // SAFETY: `s` points at the live, owned allocation above; hypercalls write
        // into it only between our own accesses (this holds for every raw-pointer
        // access below, which refer back here).
        let version = addr(unsafe { addr_of_mut!((*s).version) });
        let r = hypercall(
            HYPERVISOR_XEN_VERSION,
            [XENVER_EXTRAVERSION, version, 0, 0, 0],
        );
        // SAFETY: see above.
        let extra = unsafe { &(*s).version };
        if r != 0 || !extra.starts_with(EBBHV_EXTRAVERSION) {
            pr_info!("skip: not ebbhv (XENVER_extraversion returned {r})\n");
            return Err(ENODEV);
        }
        if module_parameters::flood.value() {
            let flooded = flood();
            pr_info!(
                "flood: populated {flooded} scattered frames, then ebbhv refused frame {flooded} (gfn {:#x})\n",
                flood_gfn(flooded)
            );
            return Ok(Hostile { flooded });
        }
        if module_parameters::storm_only.value() {
            report(&storm(1));
            return Ok(Hostile { flooded: 0 });
        }
        let fuzz_secs = module_parameters::fuzz_secs.value();
        if fuzz_secs > 0 {
            let (calls, errors) = fuzz(s, u64::from(fuzz_secs) * 1000);
            pr_info!("fuzz: done, {calls} calls in {fuzz_secs} s, {errors} refused\n");
            return Ok(Hostile { flooded: 0 });
        }
        let ram_end = module_parameters::ram_end.value();
        if ram_end == 0 || ram_end % PAGE_SIZE != 0 {
            pr_err!("ram_end={ram_end:#x}: give the end of System RAM, page-aligned\n");
            return Err(EINVAL);
        }
        let mut checks = KVec::new();
        for check in attacks(s, ram_end) {
            checks.push(check, GFP_KERNEL)?;
        }
        for check in storm(0) {
            checks.push(check, GFP_KERNEL)?;
        }
        report(&checks);
        Ok(Hostile { flooded: 0 })
    }
}

/// Logs the plan and one line per check.
fn report(checks: &[Check]) {
    pr_info!("plan {}\n", checks.len());
    for (i, c) in checks.iter().enumerate() {
        if c.got == c.expected {
            pr_info!("ok {} {}\n", i + 1, c.name);
        } else {
            pr_info!(
                "not ok {} {}: got {}, expected {}\n",
                i + 1,
                c.name,
                c.got,
                c.expected
            );
        }
    }
}

/// Runs every attack (`ram_end`: the end of the guest's RAM); returns the checks in
/// order.
fn attacks(s: *mut Scratch, ram_end: u64) -> [Check; 29] {
    let check = |name, got, expected| Check {
        name,
        got,
        expected,
    };
    // SAFETY: `s` is the live scratch buffer (see `init`).
    let param = unsafe { addr_of_mut!((*s).param) };
    // SAFETY: as above.
    let port = unsafe { addr_of_mut!((*s).port) };
    // SAFETY: as above.
    let exchange = unsafe { addr_of_mut!((*s).exchange) };
    // SAFETY: as above.
    let console = addr(unsafe { addr_of_mut!((*s).console) });
    // SAFETY: as above.
    let in_gfns = addr(unsafe { addr_of_mut!((*s).in_gfns) });

    let get_param = |index: u32| -> (i64, u64) {
        // SAFETY: `param` points into the scratch buffer.
        unsafe {
            param.write(HvmParam {
                domid: DOMID_SELF,
                pad: 0,
                index,
                value: 0,
            })
        };
        let r = hypercall(HYPERVISOR_HVM_OP, [HVMOP_GET_PARAM, addr(param), 0, 0, 0]);
        // SAFETY: as above.
        (r, unsafe { (*param).value })
    };
    let set_param = |index: u32, value: u64| -> i64 {
        // SAFETY: `param` points into the scratch buffer.
        unsafe {
            param.write(HvmParam {
                domid: DOMID_SELF,
                pad: 0,
                index,
                value,
            })
        };
        hypercall(HYPERVISOR_HVM_OP, [HVMOP_SET_PARAM, addr(param), 0, 0, 0])
    };
    let evtchn = |cmd: u64, p: u32| -> i64 {
        // SAFETY: `port` points into the scratch buffer.
        unsafe { port.write(p) };
        hypercall(HYPERVISOR_EVENT_CHANNEL_OP, [cmd, addr(port), 0, 0, 0])
    };

    let non_canonical = hypercall(
        HYPERVISOR_XEN_VERSION,
        [XENVER_EXTRAVERSION, NON_CANONICAL, 0, 0, 0],
    );
    // The last 8 bytes of RAM in the direct map, and 8 more past its end.
    // SAFETY: a plain address computation; nothing is dereferenced here.
    let ram_tail = unsafe { ebb_hostile_phys_to_virt(ram_end - 8) };
    let past_ram = hypercall(HYPERVISOR_CONSOLE_IO, [CONSOLEIO_WRITE, 16, ram_tail, 0, 0]);
    // The guest-physical page past RAM, mapped by the guest's own page tables: the
    // walk succeeds, the gfn is in no p2m entry.
    // SAFETY: maps a page of no RAM range (the kernel refuses RAM); unmapped below.
    let io = unsafe { ebb_hostile_ioremap(ram_end, PAGE_SIZE) };
    let non_ram = if io == 0 {
        i64::MIN
    } else {
        let r = hypercall(HYPERVISOR_CONSOLE_IO, [CONSOLEIO_WRITE, 16, io, 0, 0]);
        // SAFETY: `io` is the mapping made above, used by nothing else.
        unsafe { ebb_hostile_iounmap(io) };
        r
    };
    let huge_console = hypercall(
        HYPERVISOR_CONSOLE_IO,
        [CONSOLEIO_WRITE, 1 << 31, console, 0, 0],
    );

    let (store_port_get, store_port) = get_param(HVM_PARAM_STORE_EVTCHN);
    let (store_pfn_get, store_pfn) = get_param(HVM_PARAM_STORE_PFN);
    let store_port = u32::try_from(store_port).unwrap_or(u32::MAX);
    let send_past = evtchn(EVTCHNOP_SEND, PORT_PAST_2L);
    let unmask_past = evtchn(EVTCHNOP_UNMASK, PORT_PAST_2L);
    let close_past = evtchn(EVTCHNOP_CLOSE, u32::MAX);
    let close_store = evtchn(EVTCHNOP_CLOSE, store_port);
    let set_store_pfn = set_param(HVM_PARAM_STORE_PFN, 0x1234);
    let set_store_port = set_param(HVM_PARAM_STORE_EVTCHN, 0x1234);
    let set_console_pfn = set_param(HVM_PARAM_CONSOLE_PFN, 0x1234);
    let set_console_port = set_param(HVM_PARAM_CONSOLE_EVTCHN, 0x1234);
    let (_, store_pfn_after) = get_param(HVM_PARAM_STORE_PFN);
    let (_, store_port_after) = get_param(HVM_PARAM_STORE_EVTCHN);
    let params_kept = store_pfn_after == store_pfn && store_port_after == u64::from(store_port);

    // XSA-231's class: mem_flags naming a node, an exact node or an address limit.
    // All at one gfn nothing maps: the last populate succeeding there shows that
    // the refused ones left it empty.
    let gfn = FLOOD_BASE_GFN;
    let node = |n: u32| (n + 1) << XENMEMF_NODE_SHIFT;
    let populate = |flags: u32| reserve_with_flags(XENMEM_POPULATE_PHYSMAP, gfn, flags);
    let below_page = populate(1);
    let below_1m = populate(20);
    let exact_200 = populate(node(200) | XENMEMF_EXACT_NODE_REQUEST);
    let exact_0 = populate(node(0) | XENMEMF_EXACT_NODE_REQUEST);
    let increase_exact = reserve_with_flags(
        XENMEM_INCREASE_RESERVATION,
        gfn,
        node(200) | XENMEMF_EXACT_NODE_REQUEST,
    );
    let hint_undefined = populate(node(200) | XENMEMF_UNDEFINED);
    let given_back = reserve_one(XENMEM_DECREASE_RESERVATION, gfn);

    // XSA-277's class: the xenstore ring is the hypervisor's frame, lent; the guest
    // cannot take it out of its p2m (hostile-kernel.sh then checks xenstore).
    // Without the param, gfn 0 would be attacked instead: the kernel's own page.
    let (decrease_store, remove_store) = if store_pfn_get != 0 {
        (i64::MIN, i64::MIN)
    } else {
        let mut remove = RemoveFromPhysmap {
            domid: DOMID_SELF,
            pad: [0; 6],
            gpfn: store_pfn,
        };
        (
            reserve_one(XENMEM_DECREASE_RESERVATION, store_pfn),
            hypercall(
                HYPERVISOR_MEMORY_OP,
                [
                    u64::from(XENMEM_REMOVE_FROM_PHYSMAP),
                    addr(&mut remove),
                    0,
                    0,
                    0,
                ],
            ),
        )
    };

    // XSA-212's shape: an exchange resumed at extent 1 whose output array starts in
    // the last 8 bytes of the address space, so that element 1 wraps to address 0.
    let reservation = |extent_start| Reservation {
        extent_start,
        nr_extents: 2,
        domid: DOMID_SELF,
        ..Reservation::default()
    };
    // SAFETY: `exchange` points into the scratch buffer.
    unsafe {
        exchange.write(Exchange {
            input: reservation(in_gfns),
            output: reservation(LAST_QWORD),
            nr_exchanged: 1,
        })
    };
    let wrapping_exchange = hypercall(
        HYPERVISOR_MEMORY_OP,
        [u64::from(XENMEM_EXCHANGE), addr(exchange), 0, 0, 0],
    );
    // SAFETY: as above.
    let exchanged = unsafe { (*exchange).nr_exchanged };

    // The scratch buffer's version field again, through a chain of page tables the
    // module builds: valid, then with bit 50 in its PML4 entry (an address bit above
    // MAXPHYADDR, or of a frame no RAM has), which must fail, not be folded away.
    // SAFETY: a plain address computation on the live scratch buffer.
    let version_phys = unsafe { ebb_hostile_virt_to_phys(addr(addr_of_mut!((*s).version))) };
    let (chain_ok, chain_bit50) = if version_phys % PAGE_SIZE + 16 > PAGE_SIZE {
        (i64::MIN, i64::MIN)
    } else {
        // SAFETY: maps the scratch buffer's page at an address nothing else uses,
        // with preemption off until the unmap below.
        let va = unsafe { ebb_hostile_chain_map(version_phys) };
        if va == 0 {
            (i64::MIN, i64::MIN)
        } else {
            let ok = hypercall(HYPERVISOR_XEN_VERSION, [XENVER_EXTRAVERSION, va, 0, 0, 0]);
            // SAFETY: changes only the entry `ebb_hostile_chain_map` installed.
            unsafe { ebb_hostile_chain_pml4_bits(1 << 50) };
            let bit50 = hypercall(HYPERVISOR_XEN_VERSION, [XENVER_EXTRAVERSION, va, 0, 0, 0]);
            // SAFETY: removes the chain installed above, on the same CPU.
            unsafe { ebb_hostile_chain_unmap() };
            (ok, bit50)
        }
    };

    let efer = rdmsr(MSR_EFER).unwrap_or(0);
    let efer_reserved = wrmsr(MSR_EFER, efer | EFER_RESERVED_BIT1);
    let efer_svme = wrmsr(MSR_EFER, efer | EFER_SVME);
    let efer_kept = rdmsr(MSR_EFER) == Some(efer);
    let pat = rdmsr(MSR_PAT).unwrap_or(0);
    // Memory type 2 is reserved.
    let pat_reserved = wrmsr(MSR_PAT, (pat & !0xff) | 2);
    let pat_kept = rdmsr(MSR_PAT) == Some(pat);

    [
        check(
            "xen_version into a non-canonical buffer: -EFAULT",
            non_canonical,
            XEN_EFAULT,
        ),
        check(
            "console_io from a buffer running past the end of RAM: -EFAULT",
            past_ram,
            XEN_EFAULT,
        ),
        check(
            "console_io from a non-RAM gfn the guest mapped: -EFAULT",
            non_ram,
            XEN_EFAULT,
        ),
        check(
            "console_io write of 2 GiB: bounded, returns 0",
            huge_console,
            0,
        ),
        check(
            "HVMOP_get_param of the store port and frame",
            store_port_get | store_pfn_get,
            0,
        ),
        check("EVTCHNOP_send on port 4096: -EINVAL", send_past, XEN_EINVAL),
        check(
            "EVTCHNOP_unmask of port 4096: -EINVAL",
            unmask_past,
            XEN_EINVAL,
        ),
        check(
            "EVTCHNOP_close of port 2^32-1: -EINVAL",
            close_past,
            XEN_EINVAL,
        ),
        check(
            "EVTCHNOP_close of the xenstore port: -EINVAL",
            close_store,
            XEN_EINVAL,
        ),
        check(
            "HVMOP_set_param STORE_PFN: -EPERM",
            set_store_pfn,
            XEN_EPERM,
        ),
        check(
            "HVMOP_set_param STORE_EVTCHN: -EPERM",
            set_store_port,
            XEN_EPERM,
        ),
        check(
            "HVMOP_set_param CONSOLE_PFN: -EPERM",
            set_console_pfn,
            XEN_EPERM,
        ),
        check(
            "HVMOP_set_param CONSOLE_EVTCHN: -EPERM",
            set_console_port,
            XEN_EPERM,
        ),
        check(
            "the store port and frame are unchanged",
            i64::from(params_kept),
            1,
        ),
        check(
            "populate with address_bits 1 (below a page): 0 done",
            below_page,
            0,
        ),
        check(
            "populate with address_bits 20 (below 1 MiB): 0 done",
            below_1m,
            0,
        ),
        check(
            "populate with an exact request for node 200: 0 done",
            exact_200,
            0,
        ),
        check(
            "populate with an exact request for node 0 (a guest may not ask): 0 done",
            exact_0,
            0,
        ),
        check(
            "increase_reservation with an exact request for node 200: 0 done",
            increase_exact,
            0,
        ),
        check(
            "populate with node 200 as a hint and undefined flag bits: ignored, 1 done",
            hint_undefined,
            1,
        ),
        check("decrease of that frame: 1 done", given_back, 1),
        check(
            "decrease_reservation of the xenstore ring: 0 done",
            decrease_store,
            0,
        ),
        check(
            "remove_from_physmap of the xenstore ring: -EPERM",
            remove_store,
            XEN_EPERM,
        ),
        check(
            "exchange with an output array wrapping past 2^64: -EFAULT",
            wrapping_exchange,
            XEN_EFAULT,
        ),
        check(
            "the refused exchange left nr_exchanged at 1",
            exchanged as i64,
            1,
        ),
        check(
            "xen_version into a buffer behind the module's own page tables: 0",
            chain_ok,
            0,
        ),
        check(
            "the same with bit 50 set in its PML4 entry: -EFAULT",
            chain_bit50,
            XEN_EFAULT,
        ),
        check(
            "wrmsr EFER with a reserved bit, then with SVME: #GP twice, EFER unchanged",
            i64::from(efer_reserved == MSR_FAULTED && efer_svme == MSR_FAULTED && efer_kept),
            1,
        ),
        check(
            "wrmsr PAT with a reserved memory type: #GP, PAT unchanged",
            i64::from(pat_reserved == MSR_FAULTED && pat_kept),
            1,
        ),
    ]
}

/// Calls of each kind in a storm.
const STORM_CALLS: u64 = 20_000;
/// A deadline far in the future (about 146 years of guest system time).
const FAR_DEADLINE_NS: u64 = 1 << 62;

/// `VCPUOP_set_singleshot_timer` of vCPU 0.
fn singleshot(timeout_abs_ns: u64, flags: u32) -> i64 {
    let mut timer = SingleshotTimer {
        timeout_abs_ns,
        flags,
        pad: 0,
    };
    hypercall(
        HYPERVISOR_VCPU_OP,
        [VCPUOP_SET_SINGLESHOT_TIMER, 0, addr(&mut timer), 0, 0],
    )
}

/// Makes `STORM_CALLS` calls of `call(i)`, `i` counting up; returns how many
/// returned `expected`.
///
/// Every 256 calls a deadline already past lets the kernel's timer interrupt run
/// (and program the kernel's own next event), so that ticks, and with them RCU's
/// grace periods, never stop for the length of a storm.
fn storm_of(call: impl Fn(u64) -> i64, expected: i64) -> i64 {
    let mut matched = 0;
    for i in 0..STORM_CALLS {
        if call(i) == expected {
            matched += 1;
        }
        if i % 256 == 255 {
            singleshot(1, 0);
            // SAFETY: process context (module init), no lock held.
            unsafe { ebb_hostile_cond_resched() };
        }
    }
    matched
}

/// Timer and vcpu_op storms with distinct arguments (issue 13: ebbhv's statistics
/// once grew a key per distinct deadline, its logged-once list one per unknown
/// sub-op). Round `round` uses arguments no other round uses, so that a second
/// round adds no statistics key if the keys are bounded. Each check counts the
/// calls that gave the exact answer.
///
/// The far deadlines replace the kernel's own next timer event (its clockevent is
/// the same one-shot timer); a deadline already past fires at once, and the
/// kernel's timer interrupt programs its next event again (see [`storm_of`]).
fn storm(round: u64) -> [Check; 6] {
    let base = round * STORM_CALLS;
    let set_timer = storm_of(
        |i| {
            hypercall(
                HYPERVISOR_SET_TIMER_OP,
                [FAR_DEADLINE_NS + base + i, 0, 0, 0, 0],
            )
        },
        0,
    );
    let singleshot_far = storm_of(|i| singleshot(FAR_DEADLINE_NS + base + i, 0), 0);
    let fire_now = singleshot(1, 0);
    // Deadlines of the first nanoseconds of the guest's life: long past.
    let singleshot_past = storm_of(
        |i| singleshot(1 + base + i, VCPU_SSHOTTMR_FUTURE),
        XEN_ETIME,
    );
    let bad_vcpu = storm_of(
        |i| hypercall(HYPERVISOR_VCPU_OP, [VCPUOP_IS_UP, 1 + base + i, 0, 0, 0]),
        XEN_ENOENT,
    );
    // Commands from 64 up: none is a VCPUOP_*.
    let bad_cmd = storm_of(
        |i| hypercall(HYPERVISOR_VCPU_OP, [64 + base + i, 0, 0, 0, 0]),
        XEN_ENOSYS,
    );
    let n = STORM_CALLS as i64;
    let check = |name, got, expected| Check {
        name,
        got,
        expected,
    };
    [
        check(
            "set_timer_op with 20000 distinct far deadlines: 0 each",
            set_timer,
            n,
        ),
        check(
            "VCPUOP_set_singleshot_timer with 20000 distinct far deadlines: 0 each",
            singleshot_far,
            n,
        ),
        check(
            "VCPUOP_set_singleshot_timer with a past deadline: 0 (fires at once)",
            fire_now,
            0,
        ),
        check(
            "VCPUOP_set_singleshot_timer, 20000 distinct past deadlines with VCPU_SSHOTTMR_future: -ETIME each",
            singleshot_past,
            n,
        ),
        check(
            "vcpu_op on 20000 distinct vCPUs that do not exist: -ENOENT each",
            bad_vcpu,
            n,
        ),
        check(
            "vcpu_op with 20000 distinct unknown commands: -ENOSYS each",
            bad_cmd,
            n,
        ),
    ]
}

/// Hypercall numbers ebbhv does not serve, for the fuzzer (each answers `-ENOSYS`,
/// `-EPERM` for sysctl and domctl).
const UNSERVED: [u64; 8] = [0, 1, 6, 13, 26, 33, 35, 36];

/// A random argument: mostly addresses that must be refused (never canonical, the
/// top page of the address space, page 0 of user space), sometimes the scratch
/// buffer's page (whose contents are arguments of these kinds too), sometimes a
/// small number.
fn fuzz_arg(s: *mut Scratch) -> u64 {
    // SAFETY: a plain call into the kernel's RNG.
    let r = unsafe { ebb_hostile_random() };
    match r % 6 {
        // Bit 47 set, 48..63 clear.
        0 => (r & (NON_CANONICAL - 1)) | NON_CANONICAL,
        1 => LAST_QWORD - (r % PAGE_SIZE),
        2 => r % PAGE_SIZE,
        // SAFETY: `s` is the live scratch buffer; only its address is taken.
        3 => addr(unsafe { addr_of_mut!((*s).console) }),
        4 => r % 64,
        // Bit 62 set, 61 clear.
        _ => (r | 1 << 62) & !(1 << 61),
    }
}

/// Makes random hypercalls for `ms` milliseconds; returns (calls, calls that
/// returned an error).
///
/// Only calls that cannot legitimately end or break the guest: any `xen_version`
/// sub-op, `console_io` writes from refused addresses (never bytes to the console),
/// the memory ops that only read (current and maximum reservation, maximum gpfn,
/// memory map), `vcpu_op` queries (is_up, runstate, physid), `HVMOP_get_param`,
/// `HVMOP_set_param` of the read-only params, `SCHEDOP_yield`, `EVTCHNOP_status`
/// and the numbers ebbhv does not serve. Left out, because the guest may lose
/// its own state by them: shutdown and poweroff, populate, decrease, exchange and
/// physmap moves of the kernel's own memory, timers (the kernel's tick), moving
/// vcpu_info or the runstate area, binding and closing ports, setting the
/// callback. Sub-op numbers stay below 16, so that the hypervisor's per-sub-op
/// statistics and logged-once lists do not grow without bound (issue 13 bounds
/// those separately).
fn fuzz(s: *mut Scratch, ms: u64) -> (u64, u64) {
    // SAFETY: a plain clock read.
    let end = unsafe { ebb_hostile_now_ms() } + ms;
    let (mut calls, mut errors) = (0u64, 0u64);
    loop {
        if calls % 256 == 0 {
            // SAFETY: a plain clock read; the reschedule point keeps the soft-lockup
            // watchdog quiet.
            if unsafe { ebb_hostile_now_ms() } >= end {
                return (calls, errors);
            }
            // SAFETY: process context (module init), no lock held.
            unsafe { ebb_hostile_cond_resched() };
        }
        // SAFETY: `s` is the live scratch buffer; random bytes in it are fine.
        unsafe {
            let words = addr_of_mut!((*s).console).cast::<u64>();
            for i in 0..64 {
                words.add(i).write_unaligned(fuzz_arg(s));
            }
        }
        // SAFETY: a plain call into the kernel's RNG.
        let r = unsafe { ebb_hostile_random() };
        let sub = (r >> 8) % 16;
        // SAFETY: `s` is the live scratch buffer; only its address is taken.
        let buf = addr(unsafe { addr_of_mut!((*s).console) });
        let (nr, args) = match r % 10 {
            0 => (HYPERVISOR_XEN_VERSION, [sub, fuzz_arg(s), 0, 0, 0]),
            1 => (
                HYPERVISOR_CONSOLE_IO,
                // Never canonical: bit 47 set, 48..63 clear.
                [
                    CONSOLEIO_WRITE,
                    r >> 32,
                    (r & (NON_CANONICAL - 1)) | NON_CANONICAL,
                    0,
                    0,
                ],
            ),
            2 => (
                HYPERVISOR_MEMORY_OP,
                [[3, 4, 14, 9][(sub % 4) as usize], fuzz_arg(s), 0, 0, 0],
            ),
            3 => (
                HYPERVISOR_VCPU_OP,
                [[3, 4, 12][(sub % 3) as usize], r % 3, fuzz_arg(s), 0, 0],
            ),
            4 => (HYPERVISOR_HVM_OP, [HVMOP_GET_PARAM, fuzz_arg(s), 0, 0, 0]),
            5 => {
                // SAFETY: `s` is the live scratch buffer.
                unsafe {
                    addr_of_mut!((*s).param).write(HvmParam {
                        domid: DOMID_SELF,
                        pad: 0,
                        index: [1, 2, 17, 18][(sub % 4) as usize],
                        value: r,
                    })
                };
                // SAFETY: as above; only the address is taken.
                let param = addr(unsafe { addr_of_mut!((*s).param) });
                (HYPERVISOR_HVM_OP, [HVMOP_SET_PARAM, param, 0, 0, 0])
            }
            6 => (HYPERVISOR_SCHED_OP, [0, fuzz_arg(s), 0, 0, 0]),
            7 => (HYPERVISOR_EVENT_CHANNEL_OP, [EVTCHNOP_STATUS, buf, 0, 0, 0]),
            _ => (
                UNSERVED[(r >> 16) as usize % UNSERVED.len()],
                [sub % 4, fuzz_arg(s), fuzz_arg(s), fuzz_arg(s), fuzz_arg(s)],
            ),
        };
        calls += 1;
        if hypercall(nr, args) < 0 {
            errors += 1;
        }
    }
}
