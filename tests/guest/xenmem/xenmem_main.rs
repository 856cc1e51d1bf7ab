// SPDX-License-Identifier: GPL-2.0

//! ebb_xenmem: the guest's own memory exchange and a page given back while its frame
//! is offline pending, for the `exchange.sh` kselftest (issue 15). A test artefact,
//! not part of ebb.
//!
//! Each run has two halves, loading and unloading, so that the host can look at the
//! p2m in between (`ebbctl p2m` through the host agent). Results are XTF style, one
//! line per check in the kernel log, numbered across both halves after a `plan N`
//! line printed at load: `ebb_xenmem: ok N NAME` or `ebb_xenmem: not ok N NAME:
//! DETAIL`.
//!
//! By default (exchange): loading allocates an order-9 block (2 MiB, aligned), logs
//! `block gfn G`, gives one of its pages a new frame (an exchange of one 4 KiB extent,
//! which leaves the block on 4 KiB leaves), exchanges its 512 4 KiB extents for one
//! 2 MiB extent at the same gfns, and tries exchanges that ebbhv must refuse with
//! Xen's errors. Unloading exchanges the 2 MiB extent back for 512 4 KiB ones, makes
//! an exchange that fails half-way (progress in `nr_exchanged`), and frees the block.
//! Xen's exchange gives new frames and keeps no contents, so what is checked is that
//! every new frame reads zero (nothing of an earlier owner leaks) and takes writes,
//! and that a refused exchange changes nothing.
//!
//! With `pending=1`: loading allocates one page, fills it and logs `page gfn G`; the
//! host then offlines its frame with no frame free for the copy (`ebbctl fail-next
//! offline-copy`), so that it stays offline pending. Unloading checks the page kept
//! its contents, gives the gfn back (`XENMEM_decrease_reservation`, as a balloon
//! would: the frame goes offline), populates it again (`XENMEM_populate_physmap`) and
//! frees the page to Linux.
//!
//! It runs only under ebbhv (on anything else it logs `ebb_xenmem: skip: REASON`
//! and refuses to load with `-ENODEV`): Xen refuses exchange for translated guests.

use core::ffi::c_void;
use core::ops::Range;
use core::ptr;
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
    type: Xenmem,
    name: "ebb_xenmem",
    authors: ["The ebb developers"],
    description: "The guest's own XENMEM_exchange and a pending page offline under ebbhv (issue 15); a test artefact",
    license: "GPL",
    params: {
        ram_end: u64 {
            default: 0,
            description: "The end of the guest's highest System RAM range (from /proc/iomem): \
                          the gfn there is no RAM, for an exchange that must be refused",
        },
        pending: bool {
            default: false,
            description: "Instead of the exchanges, hold one page whose frame the host \
                          offlines, and give it back at unload",
        },
    },
}

unsafe extern "C" {
    fn ebb_xenmem_xen_pvh_domain() -> bool;
    fn ebb_xenmem_extraversion(version: *mut u8) -> c_int;
    fn ebb_xenmem_memory_op(cmd: u32, arg: *mut c_void) -> i64;
    fn ebb_xenmem_store_pfn(pfn: *mut u64) -> c_int;
    fn ebb_xenmem_alloc(order: u32, pfn: *mut u64) -> c_int;
    fn ebb_xenmem_free(pfn: u64, order: u32);
    fn ebb_xenmem_pfn_to_virt(pfn: u64) -> u64;
}

const WORDS_PER_PAGE: u64 = PAGE_SIZE / 8;
/// A 2 MiB extent, the largest a domU may ask for.
const ORDER_2M: u32 = 9;
const PAGES_2M: u64 = 1 << ORDER_2M;
/// Checks made at load and at unload, for the plan.
const EXCHANGE_CHECKS: u32 = 15 + 5;
const PENDING_CHECKS: u32 = 5;

/// Makes memory op `cmd` with argument `arg`; returns what the hypercall returned.
fn memory_op<T>(cmd: u32, arg: &mut T) -> i64 {
    // SAFETY: `arg` is a live, exclusively borrowed argument structure of the layout
    // `cmd` takes; the gfn lists it points at are live for the call (the callers
    // keep them in local vectors).
    unsafe { ebb_xenmem_memory_op(cmd, ptr::from_mut(arg).cast()) }
}

/// A list of gfns for a reservation's `extent_start`.
fn gfn_list(gfns: impl Iterator<Item = u64>) -> Result<KVec<u64>> {
    let mut list = KVec::new();
    for gfn in gfns {
        list.push(gfn, GFP_KERNEL)?;
    }
    Ok(list)
}

fn reservation(list: &mut KVec<u64>, order: u32) -> Reservation {
    Reservation {
        extent_start: list.as_mut_ptr() as u64,
        nr_extents: list.len() as u64,
        extent_order: order,
        domid: DOMID_SELF,
        ..Reservation::default()
    }
}

/// The outcome of one exchange: what it returned, and `nr_exchanged` after it.
struct Exchanged {
    rc: i64,
    done: u64,
}

/// Exchanges the `input` extents (of `in_order`) for the `output` extents (of
/// `out_order`), starting at extent `start`; `adjust` may spoil the request first.
fn exchange(
    input: &[u64],
    in_order: u32,
    output: &[u64],
    out_order: u32,
    start: u64,
    adjust: impl FnOnce(&mut Exchange),
) -> Result<Exchanged> {
    let mut inputs = gfn_list(input.iter().copied())?;
    let mut outputs = gfn_list(output.iter().copied())?;
    let mut request = Exchange {
        input: reservation(&mut inputs, in_order),
        output: reservation(&mut outputs, out_order),
        nr_exchanged: start,
    };
    adjust(&mut request);
    let rc = memory_op(XENMEM_EXCHANGE, &mut request);
    // A translated guest names its output frames by gfn: nothing comes back in the
    // list (a PV guest would get machine frames there).
    if outputs.iter().ne(output.iter()) {
        pr_err!("the exchange wrote into its output list\n");
        return Err(EINVAL);
    }
    Ok(Exchanged {
        rc,
        done: request.nr_exchanged,
    })
}

/// Populates (`XENMEM_populate_physmap`) or gives back
/// (`XENMEM_decrease_reservation`) the 4 KiB extents at the gfns of `list`; returns
/// the extents done.
fn reserve(cmd: u32, list: &mut KVec<u64>) -> i64 {
    let mut request = reservation(list, 0);
    memory_op(cmd, &mut request)
}

/// A naturally aligned block of `2^order` pages the module holds, seen through the
/// kernel's direct map. In a translated guest its pfns are its gfns.
///
/// # Invariants
///
/// `pfn..pfn + 2^order` was allocated by `ebb_xenmem_alloc(order)` and is freed only
/// by `drop`; `virt` is its address in the direct map.
struct Block {
    pfn: u64,
    order: u32,
    virt: u64,
}

impl Block {
    fn alloc(order: u32) -> Result<Block> {
        let mut pfn = 0;
        // SAFETY: `pfn` is a valid u64 for the helper to write.
        let r = unsafe { ebb_xenmem_alloc(order, &mut pfn) };
        if r != 0 {
            pr_err!("no free block of order {order}\n");
            return Err(ENOMEM);
        }
        // SAFETY: a plain address computation for a page the kernel maps.
        let virt = unsafe { ebb_xenmem_pfn_to_virt(pfn) };
        // INVARIANT: allocated just above, its address from the direct map.
        Ok(Block { pfn, order, virt })
    }

    fn pages(&self) -> Range<u64> {
        self.pfn..self.pfn + (1 << self.order)
    }

    /// The word at `index` of the block.
    fn word(&self, index: u64) -> *mut u64 {
        (self.virt + index * 8) as *mut u64
    }

    /// Fills `pages` (gfns) with the pattern of `seed`.
    fn fill(&self, pages: Range<u64>, seed: u64) {
        for i in self.words(pages) {
            // SAFETY: `i` is inside the block (`words`), which this module owns and
            // the direct map maps (type invariant). Volatile: the hypervisor changes
            // what backs these addresses behind the compiler's back.
            unsafe { ptr::write_volatile(self.word(i), pattern(seed, i)) };
        }
    }

    /// The first word of `pages` (gfns) that differs from the pattern of `seed`, or
    /// from zero when `seed` is `None`; as (gfn, what it read).
    fn first_difference(&self, pages: Range<u64>, seed: Option<u64>) -> Option<(u64, u64)> {
        self.words(pages).find_map(|i| {
            // SAFETY: as in `fill`.
            let got = unsafe { ptr::read_volatile(self.word(i)) };
            let want = seed.map_or(0, |s| pattern(s, i));
            (got != want).then_some((self.pfn + i / WORDS_PER_PAGE, got))
        })
    }

    /// The word indices of `pages`, clamped to the block.
    fn words(&self, pages: Range<u64>) -> Range<u64> {
        let first = pages.start.max(self.pfn) - self.pfn;
        let end = pages.end.min(self.pages().end).max(self.pfn) - self.pfn;
        first * WORDS_PER_PAGE..end.max(first) * WORDS_PER_PAGE
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: the block is this module's (type invariant) and nothing uses it
        // after this.
        unsafe { ebb_xenmem_free(self.pfn, self.order) };
    }
}

/// The word of pattern `seed` at `index`: never zero, different on every word.
fn pattern(seed: u64, index: u64) -> u64 {
    (seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1
}

const SEED_A: u64 = 0x5eed_0000_0000_00a0;
const SEED_B: u64 = 0x5eed_0000_0000_00b0;
const SEED_C: u64 = 0x5eed_0000_0000_00c0;

/// The numbered result lines, across load and unload.
struct Report {
    done: u32,
}

impl Report {
    fn check(&mut self, name: &str, ok: bool, detail: core::fmt::Arguments<'_>) {
        self.done += 1;
        if ok {
            pr_info!("ok {} {}\n", self.done, name);
        } else {
            pr_info!("not ok {} {}: {}\n", self.done, name, detail);
        }
    }

    /// An exchange's return value and `nr_exchanged` against what Xen gives.
    fn exchanged(&mut self, name: &str, got: &Exchanged, rc: i64, done: u64) {
        self.check(
            name,
            got.rc == rc && got.done == done,
            format_args!(
                "returned {}, nr_exchanged {}; expected {rc}, {done}",
                got.rc, got.done
            ),
        );
    }

    /// That `pages` of `block` read the pattern of `seed` (zero for `None`).
    fn holds(&mut self, name: &str, block: &Block, pages: Range<u64>, seed: Option<u64>) {
        let diff = block.first_difference(pages, seed);
        let (gfn, got) = diff.unwrap_or_default();
        self.check(
            name,
            diff.is_none(),
            format_args!("gfn {gfn:#x} reads {got:#x}"),
        );
    }
}

/// What the module holds between load and unload.
enum Held {
    /// The exchanged 2 MiB block, and the gfn past the end of RAM.
    Exchange { block: Block, hole: u64 },
    /// The page whose frame the host offlines.
    Pending { page: Block },
}

struct Xenmem {
    /// Taken at unload.
    held: Option<Held>,
    report: Report,
}

impl kernel::Module for Xenmem {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        // SAFETY: a plain query of the kernel's boot-time domain type.
        if !unsafe { ebb_xenmem_xen_pvh_domain() } {
            pr_info!("skip: not a Xen PVH domain\n");
            return Err(ENODEV);
        }
        let mut version = [0u8; 16];
        // SAFETY: `version` has room for a xen_extraversion_t.
        let r = unsafe { ebb_xenmem_extraversion(version.as_mut_ptr()) };
        if r != 0 || !version.starts_with(EBBHV_EXTRAVERSION) {
            pr_info!("skip: not ebbhv (XENVER_extraversion returned {r})\n");
            return Err(ENODEV);
        }
        let mut report = Report { done: 0 };
        if module_parameters::pending.value() {
            let page = Block::alloc(0)?;
            page.fill(page.pages(), SEED_C);
            pr_info!("plan {PENDING_CHECKS}\n");
            pr_info!("page gfn {:#x}\n", page.pfn);
            return Ok(Xenmem {
                held: Some(Held::Pending { page }),
                report,
            });
        }
        let ram_end = module_parameters::ram_end.value();
        if ram_end == 0 || ram_end % PAGE_SIZE != 0 {
            pr_err!("ram_end={ram_end:#x}: give the end of System RAM, page-aligned\n");
            return Err(EINVAL);
        }
        let mut store = 0;
        // SAFETY: `store` is a valid u64 for the helper to write.
        if unsafe { ebb_xenmem_store_pfn(&mut store) } != 0 {
            pr_err!("no HVM_PARAM_STORE_PFN\n");
            return Err(EINVAL);
        }
        let block = Block::alloc(ORDER_2M)?;
        pr_info!("plan {EXCHANGE_CHECKS}\n");
        pr_info!("block gfn {:#x}\n", block.pfn);
        let hole = ram_end / PAGE_SIZE;
        exchange_up(&block, store, hole, &mut report)?;
        Ok(Xenmem {
            held: Some(Held::Exchange { block, hole }),
            report,
        })
    }
}

/// Load's half of the exchange run (15 checks).
fn exchange_up(block: &Block, store: u64, hole: u64, report: &mut Report) -> Result {
    let g = block.pfn;
    let small: KVec<u64> = gfn_list(block.pages())?;
    block.fill(block.pages(), SEED_A);

    let one = exchange(&[g + 1], 0, &[g + 1], 0, 0, |_| {})?;
    report.exchanged(
        "exchange of one 4 KiB extent at the same gfn: 0, nr_exchanged 1",
        &one,
        0,
        1,
    );
    let kept = block.first_difference(g..g + 1, Some(SEED_A)).is_none()
        && block
            .first_difference(g + 2..g + PAGES_2M, Some(SEED_A))
            .is_none();
    let fresh = block.first_difference(g + 1..g + 2, None).is_none();
    report.check(
        "the exchanged page reads zero (a scrubbed frame), its 511 neighbours keep their contents",
        kept && fresh,
        format_args!("neighbours kept: {kept}, exchanged page zero: {fresh}"),
    );

    let up = exchange(&small, 0, &[g], ORDER_2M, 0, |_| {})?;
    report.exchanged(
        "exchange of 512 4 KiB extents for one 2 MiB extent at the same gfns: 0, nr_exchanged 512",
        &up,
        0,
        PAGES_2M,
    );
    report.holds(
        "the 2 MiB reads zero: new, scrubbed frames, nothing of their earlier owner",
        block,
        block.pages(),
        None,
    );
    block.fill(block.pages(), SEED_B);
    report.holds(
        "the 2 MiB takes writes and reads them back",
        block,
        block.pages(),
        Some(SEED_B),
    );

    // Refused exchanges, each of which must leave the block as it is.
    let refused = exchange(&small, 0, &[g, g + PAGES_2M], ORDER_2M, 0, |_| {})?;
    report.exchanged(
        "512 4 KiB extents for two 2 MiB ones (the sides differ in size): -EINVAL",
        &refused,
        XEN_EINVAL,
        0,
    );
    let refused = exchange(&[g], 0, &[g], 0, 2, |_| {})?;
    report.exchanged(
        "nr_exchanged 2 of 1 extent at the start: -EINVAL",
        &refused,
        XEN_EINVAL,
        2,
    );
    let refused = exchange(&[g], 0, &[g], 0, 0, |x| x.output.domid = 0)?;
    report.exchanged(
        "input for DOMID_SELF, output for domain 0: -EINVAL",
        &refused,
        XEN_EINVAL,
        0,
    );
    let refused = exchange(&[g], ORDER_2M + 1, &[g, g + PAGES_2M], ORDER_2M, 0, |_| {})?;
    report.exchanged(
        "an input extent of order 10, above a domU's 9: -EPERM",
        &refused,
        XEN_EPERM,
        0,
    );
    let refused = exchange(&[g + 2, g + 2], 0, &[g + 2], 1, 0, |_| {})?;
    report.exchanged(
        "the same 4 KiB input extent twice in one chunk: -EINVAL",
        &refused,
        XEN_EINVAL,
        0,
    );
    let refused = exchange(&[store], 0, &[store], 0, 0, |_| {})?;
    report.exchanged(
        "an input the guest does not own (the xenstore ring, the hypervisor's): -EINVAL",
        &refused,
        XEN_EINVAL,
        0,
    );
    let refused = exchange(&[hole], 0, &[hole], 0, 0, |_| {})?;
    report.exchanged(
        "an input gfn that is no RAM (past the end of RAM): -EINVAL",
        &refused,
        XEN_EINVAL,
        0,
    );
    let refused = exchange(&[g + 3], 0, &[g + 4], 0, 0, |_| {})?;
    report.exchanged(
        "an output gfn over RAM that the input does not give up: -EINVAL",
        &refused,
        XEN_EINVAL,
        0,
    );
    let refused = exchange(&small, 0, &[g + 1], ORDER_2M, 0, |_| {})?;
    report.exchanged(
        "a 2 MiB output extent at a gfn not 2 MiB-aligned: -EINVAL",
        &refused,
        XEN_EINVAL,
        0,
    );
    report.holds(
        "after the refused exchanges the 2 MiB still reads what was written",
        block,
        block.pages(),
        Some(SEED_B),
    );
    Ok(())
}

/// Unload's half of the exchange run (5 checks).
fn exchange_down(block: &Block, hole: u64, report: &mut Report) -> Result {
    let g = block.pfn;
    let small: KVec<u64> = gfn_list(block.pages())?;
    let down = exchange(&[g], ORDER_2M, &small, 0, 0, |_| {})?;
    report.exchanged(
        "exchange of the 2 MiB extent for 512 4 KiB extents at the same gfns: 0, nr_exchanged 1",
        &down,
        0,
        1,
    );
    report.holds(
        "the 512 pages read zero: new, scrubbed frames",
        block,
        block.pages(),
        None,
    );
    block.fill(block.pages(), SEED_A);
    report.holds(
        "the 512 pages take writes and read them back",
        block,
        block.pages(),
        Some(SEED_A),
    );
    // Two chunks of one page each; the second's input is no RAM.
    let half = exchange(&[g, hole], 0, &[g, g + 1], 0, 0, |_| {})?;
    report.exchanged(
        "an exchange whose second chunk is refused: -EINVAL, nr_exchanged 1 (the first done)",
        &half,
        XEN_EINVAL,
        1,
    );
    let fresh = block.first_difference(g..g + 1, None).is_none();
    let kept = block
        .first_difference(g + 1..g + PAGES_2M, Some(SEED_A))
        .is_none();
    report.check(
        "its first page reads zero (exchanged), the others keep their contents",
        fresh && kept,
        format_args!("first page zero: {fresh}, others kept: {kept}"),
    );
    Ok(())
}

/// Unload's half of the pending run (5 checks): the host has offlined the page's
/// frame, left pending. Frees the page, unless its gfn was left without a frame
/// (then Linux must never have it back).
fn give_back(page: Block, report: &mut Report) -> Result {
    let g = page.pfn;
    report.holds(
        "the page kept its contents on the frame offline pending",
        &page,
        page.pages(),
        Some(SEED_C),
    );
    let mut list = gfn_list(core::iter::once(g))?;
    // Between these two calls nothing may touch the page: its gfn has no frame.
    let decreased = reserve(XENMEM_DECREASE_RESERVATION, &mut list);
    let populated = if decreased == 1 {
        reserve(XENMEM_POPULATE_PHYSMAP, &mut list)
    } else {
        0
    };
    report.check(
        "XENMEM_decrease_reservation gives the page's gfn back: 1 extent",
        decreased == 1,
        format_args!("returned {decreased}"),
    );
    report.check(
        "XENMEM_populate_physmap backs the gfn again: 1 extent",
        populated == 1,
        format_args!("returned {populated}"),
    );
    if decreased == 1 && populated != 1 {
        pr_err!("gfn {g:#x} left without a frame: the page is not freed\n");
        core::mem::forget(page);
        return Err(EIO);
    }
    report.holds(
        "the repopulated page reads zero (a new, scrubbed frame)",
        &page,
        page.pages(),
        None,
    );
    page.fill(page.pages(), SEED_A);
    report.holds(
        "the repopulated page takes writes and reads them back",
        &page,
        page.pages(),
        Some(SEED_A),
    );
    Ok(())
}

impl Drop for Xenmem {
    fn drop(&mut self) {
        let done = match self.held.take() {
            Some(Held::Exchange { block, hole }) => exchange_down(&block, hole, &mut self.report),
            Some(Held::Pending { page }) => give_back(page, &mut self.report),
            None => Ok(()),
        };
        match done {
            Ok(()) => pr_info!("done\n"),
            Err(e) => pr_err!("unload's checks stopped: {e:?}\n"),
        }
    }
}
