//! The real nested page tables (`ebbhv_x86::npt::NestedTables`, driven through the
//! image's own adapter `ebbhv_x86::npt_mirror::NptMirror`) against the p2m they
//! mirror. Each 8-byte step of the input is one change a guest or the control tool
//! can make to the p2m: populate, decrease and increase at several orders, exchange
//! (the guest's chunks and the control plane's in place), add_to_physmap (shared
//! info, grant frames, moving a RAM frame) and remove_from_physmap, log-dirty
//! enable, disable and clean with the guest's write faults, page offline (plain and
//! broken) and online, the superpage re-merge (a pass over the split regions and a
//! single region), and at last the domain's destruction. After each step the change
//! log is replayed into the tables exactly as ebbhv does before the guest runs, and:
//!
//! - the tree's leaves are the p2m's accessible leaves, with the same frames,
//!   sizes and writability (log-dirty RAM read-only); nothing else is mapped, so
//!   broken frames and holes translate to nothing (the step's frames are also
//!   translated one by one, as the CPU walks);
//! - the tree holds exactly the table pages its leaves need (no page left behind
//!   by an unmap), and the domain's pool is charged what the tree holds;
//! - the xenstore ring (a special page lent at gfn 0xfe) stays mapped where the
//!   platform put it: nothing a guest or the control tool does takes it away;
//! - no guest step takes the domain's pool over its limit, and the core's
//!   invariants hold; after the domain is destroyed every frame it had is back.
//!
//! The guest-frame space is small (the first 16 MiB and two 4 MiB windows at 1 GiB
//! and 512 GiB, where a leaf needs its own upper tables) so that steps meet.
#![no_main]
#![forbid(unsafe_code)]

use std::collections::BTreeSet;

use ebbhv_core::addr::{DomId, Gfn, GfnRange, Mfn, MfnRange, Order};
use ebbhv_core::domain::DomainConfig;
use ebbhv_core::error::{Error, Fatal};
use ebbhv_core::heap::FrameHeap;
use ebbhv_core::hv::{Config, Hypervisor, MapSpace};
use ebbhv_core::p2m::PageSize;
use ebbhv_core::testing::FakeFrames;
use ebbhv_x86::npt_mirror::{leaf_size, NptMirror, NptTree};
use ebbhv_x86::testing::{HostNpt, Leaf};
use libfuzzer_sys::fuzz_target;

const GUEST: DomId = DomId(1);
/// The xenstore ring's gfn in ebbhv (`ebbhv::store::STORE_GFN`).
const STORE_GFN: Gfn = Gfn(0xfe);
const HEAP_START: u64 = 0x1000;
const HEAP_FREE: u64 = 0x1400;
/// Guest frames below this are all looked at.
const LOW: u64 = 0x1000;
/// Two windows high up: at 1 GiB (its own 1 GiB slot) and at 512 GiB (its own
/// top-level entry).
const HIGH: [u64; 2] = [1 << 18, 1 << 27];
const HIGH_LEN: u64 = 0x400;
const STEP_BYTES: usize = 8;
/// Steps of one input at most: the checks after each step walk the heap and both
/// trees, and a long script mostly repeats what a short one reaches.
const MAX_STEPS: usize = 96;
/// Orders a step may use, the small ones more often.
const ORDERS: [u8; 6] = [0, 0, 0, 1, 4, 9];

/// The hypervisor with its guest, the frame contents, the ring's frame and the
/// frames the hypervisor used before the guest was created.
fn bed() -> (Hypervisor, FakeFrames, Mfn, u64) {
    let start = Mfn(HEAP_START);
    let mut heap = FrameHeap::new(MfnRange::new(start, start.plus(HEAP_FREE + 32))).unwrap();
    heap.add_free_ram(MfnRange::new(start, start.plus(HEAP_FREE)))
        .unwrap();
    heap.add_hypervisor_ram(MfnRange::new(
        start.plus(HEAP_FREE),
        start.plus(HEAP_FREE + 16),
    ))
    .unwrap();
    let config = Config {
        preempt_frames: 1024,
        ..Config::default()
    };
    let mut hv = Hypervisor::new(heap, config);
    let own = hv.heap().census().hypervisor;
    let mut frames = FakeFrames::default();
    let domain = DomainConfig {
        id: GUEST,
        max_pages: 0xe00,
        memory_map: Vec::new(),
    };
    hv.create_domain(domain, &mut frames).unwrap();
    // As ebbhv's loader: RAM from gfn 0 (2 MiB leaves), then the ring lent over it.
    hv.populate_boot_memory(GUEST, GfnRange::new(Gfn(0), Gfn(0x600)), &mut frames)
        .unwrap();
    let ring = hv.map_special_page(GUEST, STORE_GFN, &mut frames).unwrap();
    (hv, frames, ring, own)
}

/// A guest frame of the space from two input bytes.
fn gfn_of(raw: u16) -> Gfn {
    let v = u64::from(raw) % (LOW + HIGH.len() as u64 * HIGH_LEN);
    if v < LOW {
        return Gfn(v);
    }
    let v = v - LOW;
    Gfn(HIGH[(v / HIGH_LEN) as usize] + v % HIGH_LEN)
}

/// Aligned down to `order`, unless the input asks for the frame as it is.
fn placed(gfn: Gfn, order: Order, exact: bool) -> Gfn {
    if exact {
        gfn
    } else {
        gfn.align_down(order)
    }
}

/// A request may be refused, never be fatal.
fn request<T>(what: &str, r: Result<T, Error>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(Error::Request(_)) => None,
        Err(Error::Fatal(f)) => panic!("{what} was fatal: {f:?}"),
    }
}

/// Replays the p2m's changes into `npt` as ebbhv's `Machine::sync_npt` does.
fn sync(hv: &mut Hypervisor, npt: &mut HostNpt) {
    let mut mirror = NptMirror::new(npt);
    hv.sync_p2m(GUEST, &mut mirror).unwrap();
    assert_eq!(mirror.failed(), None, "a leaf could not be installed");
}

/// The tree equals the p2m, leaf for leaf, and holds the tables its leaves need;
/// `probes` are translated one by one as well, as the CPU would.
fn assert_mirrors(hv: &Hypervisor, npt: &HostNpt, ring: Mfn, probes: &[Gfn], step: &[u8]) {
    let dom = hv.domain(GUEST).unwrap();
    let p2m = dom.p2m();
    // The tables a tree of these leaves needs: the root, one per 512 GiB with a
    // leaf, one per 1 GiB with a smaller leaf, one per 2 MiB with a 4 KiB leaf.
    let (mut top, mut gig, mut two_meg) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let mut want = Vec::new();
    p2m.for_each_mapping(GfnRange::new(Gfn(0), p2m.limit()), &mut |m| {
        if !m.kind.accessible() {
            return;
        }
        want.push(Leaf {
            gpa: m.gfn.addr(),
            hpa: m.mfn.addr(),
            size: leaf_size(m.size),
            writable: m.kind.writable(),
        });
        top.insert(m.gfn.0 >> 27);
        if m.size < PageSize::Size1G {
            gig.insert(m.gfn.0 >> 18);
        }
        if m.size == PageSize::Size4K {
            two_meg.insert(m.gfn.0 >> 9);
        }
    });
    assert_eq!(npt.leaves(), want, "leaves after step {step:?}");
    for &gfn in probes.iter().chain([&STORE_GFN]) {
        let want = p2m
            .entry(gfn)
            .filter(|e| e.kind.accessible())
            .map(|e| (e.mfn.addr(), e.kind.writable()));
        assert_eq!(npt.translate(gfn.addr()), want, "gfn {gfn:?} after step {step:?}");
    }
    let ring_entry = p2m.entry(STORE_GFN).map(|e| e.mfn);
    assert_eq!(ring_entry, Some(ring), "the xenstore ring left gfn 0xfe after {step:?}");

    let need = 1 + top.len() + gig.len() + two_meg.len();
    assert_eq!(npt.table_pages(), need, "table pages after step {step:?}");
    let pool = hv.mem_pool(GUEST).unwrap();
    assert_eq!(pool.nested_tables, npt.table_bytes(), "the pool charges the tree");
    assert!(
        npt.table_pages() as u64 <= 1 + p2m.tables().mirror_pages(),
        "more table pages than the pool's estimate"
    );
}

fuzz_target!(|data: &[u8]| {
    let (mut hv, mut frames, ring, own) = bed();
    let mut npt = HostNpt::default();
    sync(&mut hv, &mut npt);
    let used = hv.mem_pool(GUEST).unwrap().used;
    hv.set_mem_pool_limit(GUEST, used + 128 * 1024).unwrap();

    for step in data.chunks(STEP_BYTES).take(MAX_STEPS) {
        let byte = |i: usize| step.get(i).copied().unwrap_or(0);
        let half = |i: usize| u16::from_le_bytes([byte(i), byte(i + 1)]);
        let order = Order::new(u64::from(ORDERS[usize::from(byte(1) % 6)])).unwrap();
        let exact = byte(1) & 0x80 != 0;
        let a = placed(gfn_of(half(2)), order, exact);
        let b = gfn_of(half(4));
        let extra = half(6);
        let pool_before = hv.mem_pool(GUEST).unwrap();
        let mut by_guest = true;
        match byte(0) % 16 {
            0 | 1 => {
                request("populate", hv.populate(GUEST, a, order, &mut frames));
            }
            2 | 3 => {
                request("decrease", hv.decrease(GUEST, a, order));
            }
            4 => {
                request("increase", hv.increase(GUEST, order, &mut frames));
            }
            5 => {
                // One chunk: one extent of the larger order against the extents
                // of the smaller that cover as much, consecutive from a and b.
                let out_order = Order::new(u64::from(ORDERS[usize::from(extra % 6)])).unwrap();
                let (in_frames, out_frames) = (order.frames(), out_order.frames());
                let chunk = in_frames.max(out_frames);
                let b = placed(b, out_order, exact);
                let input: Vec<Gfn> = (0..chunk / in_frames)
                    .map(|i| a.plus(i * in_frames))
                    .collect();
                let output: Vec<Gfn> = (0..chunk / out_frames)
                    .map(|i| b.plus(i * out_frames))
                    .collect();
                request(
                    "exchange",
                    hv.exchange_chunk(GUEST, &input, order, &output, out_order, &mut frames),
                );
            }
            6 => {
                let space = match extra % 3 {
                    0 => MapSpace::SharedInfo,
                    1 => MapSpace::GrantTable(u64::from(extra >> 2) % 4),
                    _ => MapSpace::Gmfn(b),
                };
                request(
                    "add_to_physmap",
                    hv.add_to_physmap(GUEST, space, a, &mut frames),
                );
            }
            7 => {
                request("remove_from_physmap", hv.remove_from_physmap(GUEST, a));
            }
            8 => {
                by_guest = false;
                let _ = match extra % 3 {
                    0 => hv.log_dirty_enable(GUEST),
                    1 => hv.log_dirty_disable(GUEST),
                    _ => hv.log_dirty_clean(GUEST),
                };
            }
            9 => match hv.write_fault(GUEST, a) {
                Ok(_) | Err(Fatal::UnhandledAccess { .. }) => {}
                Err(fatal) => panic!("write fault was fatal: {fatal:?}"),
            },
            10 | 11 => {
                by_guest = false;
                // A frame behind a guest frame, or any frame of the heap (free,
                // lent, the ring's).
                let mfn = match hv.domain(GUEST).unwrap().p2m().entry(a) {
                    Some(e) if extra & 1 == 0 => e.mfn,
                    _ => Mfn(HEAP_START + u64::from(extra >> 1) % (HEAP_FREE + 16)),
                };
                if byte(0) % 16 == 10 {
                    request(
                        "page offline",
                        hv.page_offline(mfn, extra & 2 != 0, &mut frames),
                    );
                } else {
                    hv.page_online(mfn);
                }
            }
            12 => {
                by_guest = false;
                let range = GfnRange::new(a, a.plus(u64::from(extra % 64) + 1));
                request(
                    "exchange in place",
                    hv.exchange_in_place(GUEST, range, &mut frames),
                );
            }
            13 | 14 => {
                // The platform's passes between two guest runs.
                by_guest = false;
                if extra & 1 == 0 {
                    let budget = u64::from(extra >> 1) * 64;
                    request("remerge pass", hv.remerge_split(GUEST, budget, &mut frames));
                } else {
                    request("remerge", hv.remerge_2m(GUEST, a, &mut frames));
                }
            }
            _ => {
                // Destroyed from the control channel: everything comes back. (The
                // image ends the run then, so the tables are not synced again.)
                if extra == 0xdead {
                    request("destroy", hv.destroy_domain(GUEST));
                    hv.check_invariants().unwrap();
                    let after = hv.heap().census();
                    assert_eq!(after.domain, 0, "frames still owned: {after:?}");
                    assert!(after.hypervisor <= own, "lent frames kept: {after:?}");
                    return;
                }
            }
        }
        sync(&mut hv, &mut npt);
        if let Err(broken) = hv.check_invariants() {
            panic!("invariant broken after step {step:?}: {broken}");
        }
        let pool = hv.mem_pool(GUEST).unwrap();
        if by_guest {
            assert!(
                pool.used <= pool_before.used.max(pool.limit),
                "step {step:?} took the pool from {pool_before:?} to {pool:?}"
            );
        }
        assert_mirrors(&hv, &npt, ring, &[a, b], step);
    }
});
