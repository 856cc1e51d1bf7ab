//! Benchmark of ebbhv-core: heap allocation rates, page offline in a fragmented
//! 64 GiB heap against Xen's free-list scan, populate + decrease of 1 GiB in 4 KiB
//! and 2 MiB extents through the hypercall dispatcher, and metadata per frame.
//!
//! Prints the figures and writes them as JSON to `$EBB_BENCH_JSON` (default
//! `results/bench-core.json` at the repository root). Absolute times are noisy on
//! shared machines: compare the ratios measured in one run.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use ebbhv_core::abi::hypercall::MEMORY_OP;
use ebbhv_core::abi::memory::*;
use ebbhv_core::addr::{DomId, Gfn, GfnRange, Mfn, MfnRange, Order};
use ebbhv_core::domain::DomainConfig;
use ebbhv_core::heap::{FrameHeap, FreeBlockSearch, Owner, FRAME_RECORD_BYTES};
use ebbhv_core::hv::{Config, Hypervisor};
use ebbhv_core::hypercall::{Caller, Hypercall, Outcome};
use ebbhv_core::platform::FrameOps;
use ebbhv_core::testing::FakeGuestMemory;

/// Frame contents are not part of what is measured.
struct NoFrames;

impl FrameOps for NoFrames {
    fn zero(&mut self, _: Mfn) {}
    fn copy(&mut self, _: Mfn, _: Mfn) {}
}

/// A small deterministic generator, so that runs are comparable.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn per_second(count: u64, time: Duration) -> f64 {
    count as f64 / time.as_secs_f64()
}

fn nanos_each(time: Duration, count: u64) -> f64 {
    time.as_nanos() as f64 / count as f64
}

fn free_heap(frames: u64) -> FrameHeap {
    let mut heap = FrameHeap::new(MfnRange::new(Mfn(0), Mfn(frames))).unwrap();
    heap.add_free_ram(MfnRange::new(Mfn(0), Mfn(frames)))
        .unwrap();
    heap.scrub_free(u64::MAX, &mut NoFrames);
    heap
}

/// Allocates `count` blocks of `order` and frees them: (allocs/s, frees/s).
fn alloc_free_rate(order: Order, count: u64) -> (f64, f64) {
    let mut heap = free_heap(1 << 20);
    let mut blocks = Vec::with_capacity(count as usize);
    let start = Instant::now();
    for _ in 0..count {
        blocks.push(heap.alloc(order, Owner::Hypervisor, &mut NoFrames).unwrap());
    }
    let alloc = start.elapsed();
    let start = Instant::now();
    for mfn in blocks {
        heap.free(mfn, order, Owner::Hypervisor).unwrap();
    }
    let free = start.elapsed();
    (per_second(count, alloc), per_second(count, free))
}

struct OfflineFigures {
    free_blocks: u64,
    walk_locate_ns: f64,
    scan_locate_ns: f64,
    offline_online_ns: f64,
    metadata_bytes_per_frame: f64,
}

/// A 64 GiB heap in which every 2 MiB block has its first frame in use, so the free
/// lists hold nine blocks per 2 MiB (orders 0 to 8): 294912 free blocks.
fn offline_in_fragmented_heap() -> OfflineFigures {
    let frames = 64u64 << 18;
    let mut heap = FrameHeap::new(MfnRange::new(Mfn(0), Mfn(frames))).unwrap();
    for block in 0..frames / 512 {
        let start = Mfn(block * 512);
        heap.add_hypervisor_ram(MfnRange::new(start, start.plus(1)))
            .unwrap();
        heap.add_free_ram(MfnRange::new(start.plus(1), start.plus(512)))
            .unwrap();
    }
    let census = heap.census();
    let free_blocks = census.free / 511 * 9;
    let mut rng = Lcg(42);
    let mut sample = || loop {
        let mfn = Mfn(rng.next() % frames);
        if !mfn.0.is_multiple_of(512) {
            return mfn;
        }
    };
    let walks = 200_000u64;
    let probes: Vec<Mfn> = (0..walks).map(|_| sample()).collect();
    let start = Instant::now();
    for mfn in &probes {
        std::hint::black_box(heap.locate_free_block(*mfn, FreeBlockSearch::WalkAlignments));
    }
    let walk = start.elapsed();
    let scans = 300u64;
    let start = Instant::now();
    for mfn in probes.iter().take(scans as usize) {
        std::hint::black_box(heap.locate_free_block(*mfn, FreeBlockSearch::ScanFreeLists));
    }
    let scan = start.elapsed();
    let cycles = 100_000u64;
    let start = Instant::now();
    for mfn in probes.iter().take(cycles as usize) {
        heap.offline(*mfn, false).result.unwrap();
        heap.online(*mfn).result.unwrap();
    }
    let offline = start.elapsed();
    heap.check().unwrap();
    OfflineFigures {
        free_blocks,
        walk_locate_ns: nanos_each(walk, walks),
        scan_locate_ns: nanos_each(scan, scans),
        offline_online_ns: nanos_each(offline, cycles),
        metadata_bytes_per_frame: heap.metadata_bytes() as f64 / frames as f64,
    }
}

struct Balloon {
    populate_s: f64,
    decrease_s: f64,
    populate_calls: u64,
    decrease_calls: u64,
    leaves_after_populate: u64,
}

/// Populates then decreases 1 GiB of one guest in extents of `order`, 512 extents per
/// hypercall as Linux's balloon driver batches them.
fn balloon_gigabyte(order: Order) -> Balloon {
    const DOM: DomId = DomId(1);
    const ARG: u64 = 0x1000;
    const LIST: u64 = 0x2000;
    let mut hv = Hypervisor::new(free_heap(2 << 18), Config::default());
    let config = DomainConfig {
        id: DOM,
        max_pages: 1 << 19,
        memory_map: Vec::new(),
    };
    hv.create_domain(config, &mut NoFrames).unwrap();
    let mut memory = FakeGuestMemory::new(ARG, 0x2000);
    let extents = (1u64 << 18) / order.frames();
    let mut run = |op: u64, hv: &mut Hypervisor| {
        let mut calls = 0;
        for batch in (0..extents).collect::<Vec<_>>().chunks(512) {
            for (i, extent) in batch.iter().enumerate() {
                memory.put(LIST + 8 * i as u64, &(extent * order.frames()));
            }
            let request = XenMemoryReservation {
                extent_start: LIST,
                nr_extents: batch.len() as u64,
                extent_order: u32::from(order.get()),
                domid: DomId::SELF.0,
                ..Default::default()
            };
            memory.put(ARG, &request);
            let mut call = Hypercall {
                nr: MEMORY_OP,
                args: [op, ARG, 0, 0, 0],
            };
            loop {
                calls += 1;
                match hv
                    .hypercall(Caller::Guest(DOM), call, &mut memory, &mut NoFrames)
                    .unwrap()
                {
                    Outcome::Return(done) => {
                        assert_eq!(done, batch.len() as i64);
                        break;
                    }
                    Outcome::Continue(next) => call = next,
                }
            }
        }
        calls
    };
    let start = Instant::now();
    let populate_calls = run(XENMEM_POPULATE_PHYSMAP, &mut hv);
    let populate = start.elapsed();
    let mut leaves = 0;
    let all = GfnRange::new(Gfn(0), Gfn(1 << 18));
    hv.domain(DOM)
        .unwrap()
        .p2m()
        .for_each_mapping(all, &mut |_| leaves += 1);
    let start = Instant::now();
    let decrease_calls = run(XENMEM_DECREASE_RESERVATION, &mut hv);
    let decrease = start.elapsed();
    assert_eq!(hv.domain(DOM).unwrap().tot_pages(), 0);
    Balloon {
        populate_s: populate.as_secs_f64(),
        decrease_s: decrease.as_secs_f64(),
        populate_calls,
        decrease_calls,
        leaves_after_populate: leaves,
    }
}

fn main() {
    let (alloc0, free0) = alloc_free_rate(Order::ORDER_4K, 500_000);
    let (alloc9, free9) = alloc_free_rate(Order::ORDER_2M, 2_000);
    println!("heap order-0: {alloc0:.0} allocs/s, {free0:.0} frees/s");
    println!("heap order-9: {alloc9:.0} allocs/s, {free9:.0} frees/s");

    let offline = offline_in_fragmented_heap();
    println!(
        "offline in a fragmented 64 GiB heap ({} free blocks): find block by walking alignments {:.0} ns, by scanning free lists (Xen) {:.0} ns ({:.0}x); offline+online {:.0} ns",
        offline.free_blocks,
        offline.walk_locate_ns,
        offline.scan_locate_ns,
        offline.scan_locate_ns / offline.walk_locate_ns,
        offline.offline_online_ns
    );
    println!(
        "metadata: {FRAME_RECORD_BYTES} bytes per frame record, {:.3} bytes per frame measured (Xen: 32)",
        offline.metadata_bytes_per_frame
    );

    let small = balloon_gigabyte(Order::ORDER_4K);
    let large = balloon_gigabyte(Order::ORDER_2M);
    for (name, b) in [("4 KiB", &small), ("2 MiB", &large)] {
        println!(
            "1 GiB in {name} extents: populate {:.1} ms ({} hypercalls, {} p2m leaves), decrease {:.1} ms ({} hypercalls), {:.0} pages/s populate",
            b.populate_s * 1e3,
            b.populate_calls,
            b.leaves_after_populate,
            b.decrease_s * 1e3,
            b.decrease_calls,
            (1u64 << 18) as f64 / b.populate_s
        );
    }

    let mut json = String::new();
    let _ = write!(
        json,
        concat!(
            "{{\n  \"heap\": {{\"order0_allocs_per_s\": {:.0}, \"order0_frees_per_s\": {:.0}, ",
            "\"order9_allocs_per_s\": {:.0}, \"order9_frees_per_s\": {:.0}}},\n",
            "  \"offline_64gib_fragmented\": {{\"free_blocks\": {}, \"walk_locate_ns\": {:.1}, ",
            "\"scan_locate_ns\": {:.1}, \"speedup\": {:.1}, \"offline_online_ns\": {:.1}}},\n",
            "  \"metadata\": {{\"record_bytes\": {}, \"bytes_per_frame\": {:.3}}},\n",
            "  \"balloon_1gib\": {{\n",
            "    \"4k\": {{\"populate_s\": {:.4}, \"decrease_s\": {:.4}, \"populate_hypercalls\": {}, \"decrease_hypercalls\": {}, \"p2m_leaves\": {}}},\n",
            "    \"2m\": {{\"populate_s\": {:.4}, \"decrease_s\": {:.4}, \"populate_hypercalls\": {}, \"decrease_hypercalls\": {}, \"p2m_leaves\": {}}}\n",
            "  }}\n}}\n"
        ),
        alloc0, free0, alloc9, free9,
        offline.free_blocks, offline.walk_locate_ns, offline.scan_locate_ns,
        offline.scan_locate_ns / offline.walk_locate_ns, offline.offline_online_ns,
        FRAME_RECORD_BYTES, offline.metadata_bytes_per_frame,
        small.populate_s, small.decrease_s, small.populate_calls, small.decrease_calls, small.leaves_after_populate,
        large.populate_s, large.decrease_s, large.populate_calls, large.decrease_calls, large.leaves_after_populate,
    );
    let path = std::env::var("EBB_BENCH_JSON").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../results/bench-core.json").to_string()
    });
    let path = std::path::PathBuf::from(path);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("cannot create the results directory");
    }
    std::fs::write(&path, json).expect("cannot write the results");
    println!("wrote {}", path.display());
}
