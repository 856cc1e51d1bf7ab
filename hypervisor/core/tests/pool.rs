//! Each domain's memory pool: what its requests cost the hypervisor is charged to
//! it, and a guest at its limit gets `-ENOMEM` instead of exhausting the
//! hypervisor.

mod common;

use common::*;
use ebbhv_core::abi::memory::*;
use ebbhv_core::addr::{DomId, Gfn, Order};
use ebbhv_core::error::{Errno, Error};
use ebbhv_core::hv::{default_limit, tables_cost, Config, PlatformCharge, MIN_DEFAULT_LIMIT};
use ebbhv_core::hypercall::Caller;
use ebbhv_core::p2m::TableCount;

/// What a 4 KiB mapping alone in its 1 GiB slot costs: the slot, a table of 2 MiB
/// slots and a table of 4 KiB entries, each with its mirror page.
fn scattered_cost() -> u64 {
    tables_cost(TableCount {
        top_slots: 1,
        tables_2m: 1,
        tables_4k: 1,
    })
}

fn used(bed: &Bed) -> u64 {
    bed.hv.mem_pool(DOM).unwrap().used
}

#[test]
fn scattered_populates_end_in_enomem_with_the_charge_at_the_limit() {
    let mut bed = Bed::new();
    assert_eq!(used(&bed), 0);
    let limit = 10 * scattered_cost();
    bed.hv.set_mem_pool_limit(DOM, limit).unwrap();
    for i in 1..=10u64 {
        assert_eq!(bed.populate(0, &[i << 18]), 1, "populate {i}");
    }
    let pool = bed.hv.mem_pool(DOM).unwrap();
    assert_eq!(pool.used, limit);
    assert_eq!(
        pool.p2m,
        10 * TableCount {
            top_slots: 1,
            tables_2m: 1,
            tables_4k: 1
        }
        .bytes()
    );
    assert_eq!(pool.nested_tables, 10 * 3 * 4096);
    // The eleventh needs new tables: refused, nothing allocated, the guest goes on.
    assert_eq!(bed.populate(0, &[11 << 18]), 0);
    assert_eq!(
        bed.hv
            .populate(DOM, Gfn(11 << 18), Order::ORDER_4K, &mut bed.frames),
        Err(Error::Request(Errno::ENOMEM))
    );
    assert_eq!(bed.tot_pages(), 10);
    assert_eq!(used(&bed), limit);
    // A populate that needs no new table still fits.
    assert_eq!(bed.populate(0, &[(1 << 18) + 1]), 1);
    assert_eq!(used(&bed), limit);
    bed.hv.check_invariants().unwrap();

    // Giving the frames back frees the tables; the nested tables are re-counted
    // at the next sync (the fake mirror holds no table pages).
    let gfns: Vec<u64> = (1..=10u64).map(|i| i << 18).collect();
    assert_eq!(bed.decrease(0, &gfns), 10);
    assert_eq!(bed.decrease(0, &[(1 << 18) + 1]), 1);
    assert_eq!(bed.hv.mem_pool(DOM).unwrap().p2m, 0);
    bed.check();
    assert_eq!(used(&bed), 0);
}

#[test]
fn one_hypercall_cannot_outrun_the_check() {
    let mut bed = Bed::new();
    let limit = 3 * scattered_cost();
    bed.hv.set_mem_pool_limit(DOM, limit).unwrap();
    let gfns: Vec<u64> = (1..=64u64).map(|i| i << 18).collect();
    assert_eq!(bed.populate(0, &gfns), 3);
    assert_eq!(used(&bed), limit);
    bed.check();
}

#[test]
fn splitting_a_superpage_to_give_back_a_frame_is_charged() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(9, &[0x200]), 1);
    let base = used(&bed);
    let split = tables_cost(TableCount {
        tables_4k: 1,
        ..TableCount::default()
    });
    bed.hv.set_mem_pool_limit(DOM, base + split - 1).unwrap();
    assert_eq!(bed.decrease(0, &[0x201]), 0);
    assert_eq!(bed.tot_pages(), 512);
    bed.hv.set_mem_pool_limit(DOM, base + split).unwrap();
    assert_eq!(bed.decrease(0, &[0x201]), 1);
    assert_eq!(used(&bed), base + split);
    bed.check();
}

fn add_gmfn(bed: &mut Bed, idx: u64, gpfn: u64) -> i64 {
    let request = XenAddToPhysmap {
        domid: DomId::SELF.0,
        size: 0,
        space: XENMAPSPACE_GMFN,
        idx,
        gpfn,
    };
    bed.mem.put(ARG, &request);
    bed.memory_op(Caller::Guest(DOM), XENMEM_ADD_TO_PHYSMAP, ARG)
}

#[test]
fn gmfn_moves_scattered_over_the_guest_space_end_in_enomem() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(9, &[0]), 1);
    let base = used(&bed);
    // The first move splits the 2 MiB leaf and opens a new 1 GiB slot; each later
    // one opens another slot.
    let split = tables_cost(TableCount {
        tables_4k: 1,
        ..TableCount::default()
    });
    let limit = base + split + 4 * scattered_cost();
    bed.hv.set_mem_pool_limit(DOM, limit).unwrap();
    for i in 1..=4u64 {
        assert_eq!(add_gmfn(&mut bed, i, i << 18), 0, "move {i}");
    }
    assert_eq!(used(&bed), limit);
    assert_eq!(add_gmfn(&mut bed, 5, 5 << 18), -12);
    assert_eq!(bed.mfn_of(5 << 18), None);
    assert!(bed.mfn_of(5).is_some());
    assert_eq!(used(&bed), limit);
    bed.check();
}

#[test]
fn exchange_at_the_limit_is_refused_whole() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(0, &[0x10, 0x11]), 2);
    let base = used(&bed);
    bed.hv.set_mem_pool_limit(DOM, base).unwrap();
    // Two frames out to a new 1 GiB slot: new tables, so refused.
    let r = bed.hv.exchange_chunk(
        DOM,
        &[Gfn(0x10), Gfn(0x11)],
        Order::ORDER_4K,
        &[Gfn(1 << 18), Gfn((1 << 18) + 1)],
        Order::ORDER_4K,
        &mut bed.frames,
    );
    assert_eq!(r, Err(Error::Request(Errno::ENOMEM)));
    assert!(bed.mfn_of(0x10).is_some());
    assert_eq!(bed.tot_pages(), 2);
    bed.check();
}

#[test]
fn the_limit_cannot_go_below_use_or_above_the_maximum() {
    let config = Config {
        mem_pool_max: 64 << 20,
        ..Config::default()
    };
    let mut bed = Bed::with(config, HEAP_FREE, 0x2000);
    assert_eq!(
        bed.hv.mem_pool(DOM).unwrap().limit,
        default_limit(0x2000, 64 << 20)
    );
    assert_eq!(bed.populate(0, &[1 << 18]), 1);
    let in_use = used(&bed);
    assert_eq!(
        bed.hv.set_mem_pool_limit(DOM, in_use - 1),
        Err(Errno::EBUSY)
    );
    assert_eq!(
        bed.hv.set_mem_pool_limit(DOM, (64 << 20) + 1),
        Err(Errno::EINVAL)
    );
    assert_eq!(bed.hv.set_mem_pool_limit(DOM, in_use), Ok(()));
    assert_eq!(bed.hv.mem_pool(DOM).unwrap().limit, in_use);
    assert_eq!(
        bed.hv.set_mem_pool_limit(DomId(9), 1 << 20),
        Err(Errno::ESRCH)
    );
}

#[test]
fn default_limit_covers_the_guest_mapped_in_4k_pages() {
    let per_2m = tables_cost(TableCount {
        tables_4k: 1,
        ..TableCount::default()
    });
    let per_1g = tables_cost(TableCount {
        top_slots: 1,
        tables_2m: 1,
        tables_4k: 0,
    });
    // 1 GiB: 512 2 MiB regions in one 1 GiB slot.
    assert_eq!(
        default_limit(1 << 18, u64::MAX),
        512 * per_2m + per_1g + MIN_DEFAULT_LIMIT
    );
    assert_eq!(default_limit(0, u64::MAX), MIN_DEFAULT_LIMIT);
    assert_eq!(default_limit(1 << 18, 4 << 20), 4 << 20);
}

#[test]
fn platform_charges_count_against_the_limit() {
    let mut bed = Bed::new();
    let limit = 2 * scattered_cost();
    bed.hv.set_mem_pool_limit(DOM, limit).unwrap();
    bed.hv
        .set_platform_charge(DOM, PlatformCharge::Xenstore, scattered_cost())
        .unwrap();
    bed.hv
        .set_platform_charge(DOM, PlatformCharge::EventChannels, 100)
        .unwrap();
    assert_eq!(
        bed.hv.platform_headroom(DOM, PlatformCharge::Xenstore),
        Ok(limit - 100)
    );
    // Room for no scattered populate: the store and the channels hold it.
    assert_eq!(bed.populate(0, &[1 << 18]), 0);
    bed.hv
        .set_platform_charge(DOM, PlatformCharge::EventChannels, 0)
        .unwrap();
    assert_eq!(bed.populate(0, &[1 << 18]), 1);
    let pool = bed.hv.mem_pool(DOM).unwrap();
    assert_eq!(pool.xenstore, scattered_cost());
    assert_eq!(pool.used, limit);
}

/// A mirror that holds a table page per leaf it maps, as a stand-in for the NPT.
#[derive(Default)]
struct PagePerLeaf {
    leaves: u64,
}

impl ebbhv_core::p2m::P2mMirror for PagePerLeaf {
    fn unmap(&mut self, _range: ebbhv_core::addr::GfnRange) {}

    fn map(&mut self, _mapping: ebbhv_core::p2m::Mapping) {
        self.leaves += 1;
    }

    fn table_bytes(&self) -> u64 {
        self.leaves * 4096
    }
}

#[test]
fn a_sync_replaces_the_estimate_with_what_the_mirror_holds() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(0, &[1 << 18, 2 << 18]), 2);
    assert_eq!(bed.hv.mem_pool(DOM).unwrap().nested_tables, 2 * 3 * 4096);
    let mut mirror = PagePerLeaf::default();
    assert_eq!(bed.hv.sync_p2m(DOM, &mut mirror), Ok(2));
    let pool = bed.hv.mem_pool(DOM).unwrap();
    assert_eq!(pool.nested_tables, 2 * 4096);
    assert_eq!(pool.used, pool.p2m + 2 * 4096);
}
