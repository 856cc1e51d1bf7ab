//! The real nested tables, driven through the image's mirror adapter, follow the
//! p2m through a fixed script of guest and control-plane changes (the property the
//! `npt` fuzz target checks on random scripts): leaf for leaf equal after every
//! sync, the xenstore ring never lost, and no table page kept for leaves that are
//! gone.

use std::collections::BTreeSet;

use ebbhv_core::abi::hypercall::MEMORY_OP;
use ebbhv_core::abi::memory::{
    XenMemoryExchange, XenMemoryReservation, XenRemoveFromPhysmap, XENMEMF_EXACT_NODE_REQUEST,
    XENMEM_DECREASE_RESERVATION, XENMEM_EXCHANGE, XENMEM_POPULATE_PHYSMAP,
    XENMEM_REMOVE_FROM_PHYSMAP,
};
use ebbhv_core::addr::{DomId, Gfn, GfnRange, GuestPhys, HostPhys, Mfn, MfnRange, Order};
use ebbhv_core::domain::DomainConfig;
use ebbhv_core::error::{Errno, Error};
use ebbhv_core::heap::FrameHeap;
use ebbhv_core::hv::{Config, Hypervisor, MapSpace};
use ebbhv_core::hypercall::{Caller, Hypercall, Outcome};
use ebbhv_core::p2m::PageSize;
use ebbhv_core::testing::{FakeFrames, FakeGuestMemory};
use ebbhv_x86::npt_mirror::{leaf_size, NptMirror, NptTree};
use ebbhv_x86::testing::{HostNpt, Leaf};

const GUEST: DomId = DomId(1);
const STORE_GFN: Gfn = Gfn(0xfe);
/// A guest frame in its own top-level entry (512 GiB).
const FAR: Gfn = Gfn(1 << 27);

struct Bed {
    hv: Hypervisor,
    frames: FakeFrames,
    npt: HostNpt,
    ring: Mfn,
}

impl Bed {
    /// A guest with 6 MiB of RAM from gfn 0 and the xenstore ring lent at 0xfe,
    /// as ebbhv's loader builds it, and its nested tables synced.
    fn new() -> Bed {
        let start = Mfn(0x1000);
        let mut heap = FrameHeap::new(MfnRange::new(start, start.plus(0x1410))).unwrap();
        heap.add_free_ram(MfnRange::new(start, start.plus(0x1400)))
            .unwrap();
        heap.add_hypervisor_ram(MfnRange::new(start.plus(0x1400), start.plus(0x1410)))
            .unwrap();
        let mut hv = Hypervisor::new(heap, Config::default());
        let mut frames = FakeFrames::default();
        let domain = DomainConfig {
            id: GUEST,
            max_pages: 0xe00,
            memory_map: Vec::new(),
        };
        hv.create_domain(domain, &mut frames).unwrap();
        hv.populate_boot_memory(GUEST, GfnRange::new(Gfn(0), Gfn(0x600)), &mut frames)
            .unwrap();
        let ring = hv.map_special_page(GUEST, STORE_GFN, &mut frames).unwrap();
        let mut bed = Bed {
            hv,
            frames,
            npt: HostNpt::default(),
            ring,
        };
        bed.sync();
        bed
    }

    /// Replays the p2m's changes as ebbhv does before the guest runs, then checks
    /// the tree against the p2m.
    fn sync(&mut self) {
        let mut mirror = NptMirror::new(&mut self.npt);
        self.hv.sync_p2m(GUEST, &mut mirror).unwrap();
        assert_eq!(mirror.failed(), None);
        self.assert_mirrors();
    }

    fn assert_mirrors(&self) {
        let p2m = self.hv.domain(GUEST).unwrap().p2m();
        let mut want = Vec::new();
        let mut tables = [BTreeSet::new(), BTreeSet::new(), BTreeSet::new()];
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
            tables[0].insert(m.gfn.0 >> 27);
            if m.size < PageSize::Size1G {
                tables[1].insert(m.gfn.0 >> 18);
            }
            if m.size == PageSize::Size4K {
                tables[2].insert(m.gfn.0 >> 9);
            }
        });
        assert_eq!(self.npt.leaves(), want);
        let need = 1 + tables.iter().map(BTreeSet::len).sum::<usize>();
        assert_eq!(self.npt.table_pages(), need, "table pages");
        let pool = self.hv.mem_pool(GUEST).unwrap();
        assert_eq!(pool.nested_tables, self.npt.table_bytes());
        assert_eq!(
            self.npt.translate(GuestPhys(STORE_GFN.addr().0 + 0x80c)),
            Some((HostPhys(self.ring.addr().0 + 0x80c), true)),
            "the xenstore ring is mapped"
        );
    }

    fn mfn_of(&self, gfn: Gfn) -> Mfn {
        self.hv.domain(GUEST).unwrap().p2m().entry(gfn).unwrap().mfn
    }
}

fn refused(r: Result<(), Error>) -> Errno {
    match r {
        Err(Error::Request(errno)) => errno,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn nested_tables_follow_the_p2m_and_keep_the_ring() {
    let mut b = Bed::new();
    let order_2m = Order::ORDER_2M;
    let order_4k = Order::ORDER_4K;

    // The guest: populate, decrease, and the two refusals around the ring.
    b.hv.populate(GUEST, Gfn(0x700), order_4k, &mut b.frames)
        .unwrap();
    b.hv.populate(GUEST, Gfn(0x800), order_2m, &mut b.frames)
        .unwrap();
    b.hv.populate(GUEST, FAR, Order::new(4).unwrap(), &mut b.frames)
        .unwrap();
    b.sync();
    b.hv.decrease(GUEST, Gfn(0x700), order_4k).unwrap();
    b.sync();
    assert_eq!(
        refused(b.hv.decrease(GUEST, STORE_GFN, order_4k)),
        Errno::EINVAL
    );
    assert_eq!(
        refused(b.hv.remove_from_physmap(GUEST, STORE_GFN)),
        Errno::EPERM
    );
    b.sync();

    // Exchanges: a 2 MiB leaf's frames for 4 KiB ones in place, back again, and
    // the control plane's copy of a few frames beside the ring.
    let small: Vec<Gfn> = (0x200..0x400).map(Gfn).collect();
    b.hv.exchange_chunk(
        GUEST,
        &[Gfn(0x200)],
        order_2m,
        &small,
        order_4k,
        &mut b.frames,
    )
    .unwrap();
    b.sync();
    b.hv.exchange_chunk(
        GUEST,
        &small,
        order_4k,
        &[Gfn(0x200)],
        order_2m,
        &mut b.frames,
    )
    .unwrap();
    b.sync();
    b.hv.exchange_in_place(GUEST, GfnRange::new(Gfn(0xf0), Gfn(0xfe)), &mut b.frames)
        .unwrap();
    b.sync();

    // Log-dirty: all RAM read-only, one frame written, cleaned, off again.
    b.hv.log_dirty_enable(GUEST).unwrap();
    b.sync();
    b.hv.write_fault(GUEST, Gfn(0x300)).unwrap();
    b.sync();
    b.hv.log_dirty_clean(GUEST).unwrap();
    b.sync();
    b.hv.log_dirty_disable(GUEST).unwrap();
    b.sync();

    // Page offline: a broken frame leaves the tables, a plain one is replaced by
    // its copy and the split region merged again.
    let broken = b.mfn_of(Gfn(0x5));
    b.hv.page_offline(broken, true, &mut b.frames).unwrap();
    b.sync();
    assert_eq!(b.npt.translate(Gfn(0x5).addr()), None);
    let plain = b.mfn_of(Gfn(0x406));
    b.hv.page_offline(plain, false, &mut b.frames).unwrap();
    b.sync();
    b.hv.remerge_split(GUEST, 1 << 13, &mut b.frames).unwrap();
    b.sync();

    // Physmap: shared info, a grant frame, a RAM frame moved and removed.
    let mut frames = FakeFrames::default();
    b.hv.add_to_physmap(GUEST, MapSpace::SharedInfo, Gfn(0x900), &mut frames)
        .unwrap();
    b.hv.add_to_physmap(GUEST, MapSpace::GrantTable(0), Gfn(0x901), &mut frames)
        .unwrap();
    b.hv.add_to_physmap(GUEST, MapSpace::Gmfn(Gfn(0x7)), Gfn(0x902), &mut frames)
        .unwrap();
    b.sync();
    b.hv.remove_from_physmap(GUEST, Gfn(0x902)).unwrap();
    b.sync();

    // Everything the guest can give back, given back, one frame at a time: the
    // tables shrink to the ring's path (root, 512 GiB, 1 GiB and 2 MiB tables).
    let p2m = b.hv.domain(GUEST).unwrap().p2m();
    let mut mapped = Vec::new();
    p2m.for_each_mapping(GfnRange::new(Gfn(0), p2m.limit()), &mut |m| {
        mapped.extend((0..m.size.frames()).map(|i| m.gfn.plus(i)));
    });
    for gfn in mapped {
        if gfn != STORE_GFN {
            b.hv.remove_from_physmap(GUEST, gfn).unwrap();
        }
    }
    b.sync();
    assert_eq!(b.npt.leaves().len(), 1);
    assert_eq!(b.npt.table_pages(), 4);
}

/// Where the guest's hypercall arguments and extent lists sit.
const ARG: u64 = 0x10_0000;
const LIST: u64 = 0x10_1000;
const LIST2: u64 = 0x10_3000;

/// One `XENMEM_*` call of the guest's on itself, continuations followed, then the
/// sync ebbhv does after every hypercall; returns rax.
fn memory_op(b: &mut Bed, mem: &mut FakeGuestMemory, cmd: u64) -> i64 {
    let mut call = Hypercall {
        nr: MEMORY_OP,
        args: [cmd, ARG, 0, 0, 0],
    };
    let rax = loop {
        match b
            .hv
            .hypercall(Caller::Guest(GUEST), call, mem, &mut b.frames)
        {
            Ok(Outcome::Return(rax)) => break rax,
            Ok(Outcome::Continue(next)) => call = next,
            Err(fatal) => panic!("{call:?} was fatal: {fatal:?}"),
        }
    };
    b.sync();
    rax
}

fn reservation(list: u64, gfns: &[u64], order: u32, mem_flags: u32) -> XenMemoryReservation {
    XenMemoryReservation {
        extent_start: list,
        nr_extents: gfns.len() as u64,
        extent_order: order,
        mem_flags,
        domid: DomId::SELF.0,
        ..Default::default()
    }
}

fn put_list(mem: &mut FakeGuestMemory, list: u64, gfns: &[u64]) {
    for (i, gfn) in gfns.iter().enumerate() {
        mem.put(list + 8 * i as u64, gfn);
    }
}

/// The sequence of a guest that later faulted on its xenstore ring (gpa 0xfe80c):
/// populates with odd `mem_flags`, a decrease, a decrease and a
/// remove_from_physmap of the ring (both refused) and exchanges around it, each
/// through the dispatcher and followed by the sync. The p2m and the tables keep
/// the ring mapped throughout.
#[test]
fn the_ring_survives_the_guests_refused_requests() {
    let mut b = Bed::new();
    let mut mem = FakeGuestMemory::new(ARG, 0x8000);
    let populate = |mem: &mut FakeGuestMemory, gfns: &[u64], flags: u32| {
        put_list(mem, LIST, gfns);
        mem.put(ARG, &reservation(LIST, gfns, 0, flags));
    };
    // Address bits 32 and a node that is not ours, then nothing special.
    for flags in [32, 0x0121, XENMEMF_EXACT_NODE_REQUEST | 0x0300, 0] {
        populate(&mut mem, &[0x700], flags);
        memory_op(&mut b, &mut mem, XENMEM_POPULATE_PHYSMAP);
    }
    populate(&mut mem, &[0x700, STORE_GFN.0], 0);
    assert_eq!(memory_op(&mut b, &mut mem, XENMEM_POPULATE_PHYSMAP), 0);
    populate(&mut mem, &[0x700], 0);
    assert_eq!(memory_op(&mut b, &mut mem, XENMEM_DECREASE_RESERVATION), 1);
    populate(&mut mem, &[STORE_GFN.0], 0);
    assert_eq!(memory_op(&mut b, &mut mem, XENMEM_DECREASE_RESERVATION), 0);
    let remove = XenRemoveFromPhysmap {
        domid: DomId::SELF.0,
        pad: [0; 6],
        gpfn: STORE_GFN.0,
    };
    mem.put(ARG, &remove);
    assert_eq!(
        memory_op(&mut b, &mut mem, XENMEM_REMOVE_FROM_PHYSMAP),
        Errno::EPERM.as_return()
    );

    // Exchanges: the frames beside the ring in place, one across it (refused),
    // and a 2 MiB leaf's frames into 4 KiB ones and back.
    let exchange = |mem: &mut FakeGuestMemory, ins: &[u64], io: u32, outs: &[u64], oo: u32| {
        put_list(mem, LIST, ins);
        put_list(mem, LIST2, outs);
        let x = XenMemoryExchange {
            input: reservation(LIST, ins, io, 0),
            output: reservation(LIST2, outs, oo, 0),
            nr_exchanged: 0,
        };
        mem.put(ARG, &x);
    };
    let beside: Vec<u64> = (0xf0..0xfe).chain(0xff..0x110).collect();
    exchange(&mut mem, &beside, 0, &beside, 0);
    assert_eq!(memory_op(&mut b, &mut mem, XENMEM_EXCHANGE), 0);
    let across: Vec<u64> = (0xfd..0xff).collect();
    exchange(&mut mem, &across, 0, &across, 0);
    assert_ne!(memory_op(&mut b, &mut mem, XENMEM_EXCHANGE), 0);
    let small: Vec<u64> = (0x400..0x600).collect();
    exchange(&mut mem, &[0x400], 9, &small, 0);
    assert_eq!(memory_op(&mut b, &mut mem, XENMEM_EXCHANGE), 0);
    exchange(&mut mem, &small, 0, &[0x400], 9);
    assert_eq!(memory_op(&mut b, &mut mem, XENMEM_EXCHANGE), 0);
    b.hv.remerge_split(GUEST, 1 << 13, &mut b.frames).unwrap();
    b.sync();
}
