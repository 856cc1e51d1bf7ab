//! sysctl page offline, domctl log-dirty, privilege, write faults and domain life.

mod common;

use common::*;
use ebbhv_core::abi::codec::AbiRecord;
use ebbhv_core::abi::domctl::*;
use ebbhv_core::abi::hypercall::{DOMCTL, SYSCTL};
use ebbhv_core::abi::sysctl::page_offline::*;
use ebbhv_core::abi::sysctl::*;
use ebbhv_core::addr::{DomId, Gfn, GfnRange, Mfn};
use ebbhv_core::control::exec::{execute, Context, Effect, RunState};
use ebbhv_core::domain::DomainConfig;
use ebbhv_core::error::Fatal;
use ebbhv_core::heap::FrameState;
use ebbhv_core::hv::WriteFault;
use ebbhv_core::hv::{default_limit, Config};
use ebbhv_core::hypercall::Caller;
use ebbhv_core::p2m::{EntryType, PageSize};
use ebbhv_core::xenstore::{DomainKeys, Limits, Xenstore};

const STATUS: u64 = BUF;

fn page_offline_op(bed: &mut Bed, caller: Caller, cmd: u32, start: u64, end: u64) -> i64 {
    let op = XenSysctlPageOfflineOp {
        cmd,
        start: start as u32,
        end: end as u32,
        pad: 0,
        status: STATUS,
    };
    let mut u = [0u8; SYSCTL_UNION_BYTES];
    op.encode(&mut u);
    let request = XenSysctl {
        cmd: XEN_SYSCTL_PAGE_OFFLINE_OP,
        interface_version: XEN_SYSCTL_INTERFACE_VERSION,
        u,
    };
    bed.mem.put(ARG, &request);
    bed.call(caller, SYSCTL, [ARG, 0, 0, 0, 0])
}

fn status(bed: &mut Bed, index: u64) -> u32 {
    bed.mem.get(STATUS + 4 * index)
}

#[test]
fn sysctl_and_domctl_are_control_plane_only() {
    let mut bed = Bed::new();
    assert_eq!(
        page_offline_op(
            &mut bed,
            Caller::Guest(DOM),
            SYSCTL_PAGE_OFFLINE,
            HEAP_START,
            HEAP_START
        ),
        -1
    );
    assert_eq!(
        bed.hv.heap().state(Mfn(HEAP_START + 1)),
        Some(FrameState::Free { needs_scrub: true })
    );
    assert_eq!(bed.call(Caller::Guest(DOM), DOMCTL, [ARG, 0, 0, 0, 0]), -1);
}

#[test]
fn sysctl_checks_version_command_and_pointers() {
    let mut bed = Bed::new();
    let request = XenSysctl {
        cmd: XEN_SYSCTL_PAGE_OFFLINE_OP,
        interface_version: 0x15,
        u: [0; 128],
    };
    bed.mem.put(ARG, &request);
    assert_eq!(
        bed.call(Caller::ControlPlane, SYSCTL, [ARG, 0, 0, 0, 0]),
        -13
    );
    let request = XenSysctl {
        cmd: 1,
        interface_version: XEN_SYSCTL_INTERFACE_VERSION,
        u: [0; 128],
    };
    bed.mem.put(ARG, &request);
    assert_eq!(
        bed.call(Caller::ControlPlane, SYSCTL, [ARG, 0, 0, 0, 0]),
        -38
    );
    assert_eq!(
        bed.call(Caller::ControlPlane, SYSCTL, [0x10, 0, 0, 0, 0]),
        -14
    );
    assert_eq!(
        page_offline_op(&mut bed, Caller::ControlPlane, 9, HEAP_START, HEAP_START),
        -22
    );
    assert_eq!(
        page_offline_op(
            &mut bed,
            Caller::ControlPlane,
            SYSCTL_PAGE_OFFLINE,
            HEAP_START + 1,
            HEAP_START
        ),
        -22
    );
    let op = XenSysctlPageOfflineOp {
        cmd: SYSCTL_PAGE_OFFLINE,
        start: HEAP_START as u32,
        end: HEAP_START as u32,
        pad: 0,
        status: 0x10,
    };
    let mut u = [0u8; 128];
    op.encode(&mut u);
    bed.mem.put(
        ARG,
        &XenSysctl {
            cmd: XEN_SYSCTL_PAGE_OFFLINE_OP,
            interface_version: XEN_SYSCTL_INTERFACE_VERSION,
            u,
        },
    );
    assert_eq!(
        bed.call(Caller::ControlPlane, SYSCTL, [ARG, 0, 0, 0, 0]),
        -14
    );
}

#[test]
fn offline_range_stops_at_the_first_refusal() {
    let mut bed = Bed::new();
    let first = HEAP_START + HEAP_FREE - 2;
    assert_eq!(
        page_offline_op(
            &mut bed,
            Caller::ControlPlane,
            SYSCTL_PAGE_OFFLINE,
            first,
            first + 5
        ),
        -1
    );
    assert_eq!(status(&mut bed, 0), PG_OFFLINE_OFFLINED);
    assert_eq!(status(&mut bed, 1), PG_OFFLINE_OFFLINED);
    assert_eq!(
        status(&mut bed, 2),
        PG_OFFLINE_XENPAGE | PG_OFFLINE_FAILED | 0x7ff2 << 16
    );
    assert_eq!(status(&mut bed, 3), 0, "not processed");
    assert_eq!(
        page_offline_op(
            &mut bed,
            Caller::ControlPlane,
            SYSCTL_QUERY_PAGE_OFFLINE,
            first,
            first + 1
        ),
        0
    );
    assert_eq!(status(&mut bed, 1), PG_OFFLINE_STATUS_OFFLINED);
    assert_eq!(
        page_offline_op(
            &mut bed,
            Caller::ControlPlane,
            SYSCTL_PAGE_ONLINE,
            first,
            first + 1
        ),
        0
    );
    assert_eq!(status(&mut bed, 0), PG_ONLINE_ONLINED);
    assert_eq!(
        page_offline_op(
            &mut bed,
            Caller::ControlPlane,
            SYSCTL_QUERY_PAGE_OFFLINE,
            0,
            0
        ),
        -22
    );
    bed.check();
}

#[test]
fn offlining_a_guest_frame_moves_the_guest_onto_a_copy() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(9, &[0x200]), 1);
    let old = bed.mfn_of(0x234).unwrap();
    bed.frames.fill(old, 0xfeed);
    bed.check();
    assert_eq!(
        page_offline_op(
            &mut bed,
            Caller::ControlPlane,
            SYSCTL_PAGE_OFFLINE,
            old.0,
            old.0
        ),
        0
    );
    assert_eq!(
        status(&mut bed, 0),
        PG_OFFLINE_OWNED | PG_OFFLINE_PENDING | 1 << 16
    );
    let new = bed.mfn_of(0x234).unwrap();
    assert_ne!(new, old);
    assert_eq!(bed.frames.content(new), 0xfeed, "the guest sees its data");
    assert_eq!(bed.hv.heap().state(old), Some(FrameState::Offlined));
    assert_eq!(bed.tot_pages(), 512);
    let p2m = bed.hv.domain(DOM).unwrap().p2m();
    assert_eq!(p2m.lookup(Gfn(0x234)).unwrap().size, PageSize::Size4K);
    assert_eq!(p2m.entry(Gfn(0x235)).unwrap().mfn, old.plus(1));
    bed.check();
    assert_eq!(
        page_offline_op(
            &mut bed,
            Caller::ControlPlane,
            SYSCTL_QUERY_PAGE_OFFLINE,
            old.0,
            old.0
        ),
        0
    );
    assert_eq!(status(&mut bed, 0), PG_OFFLINE_STATUS_OFFLINED);
}

#[test]
fn a_guest_frame_stays_pending_when_no_copy_can_be_made() {
    let mut bed = Bed::with(Default::default(), 1024, 0x2000);
    assert_eq!(bed.populate(9, &[0, 0x200]), 1);
    let gfns: Vec<u64> = (0x400..0x5ff).collect();
    assert_eq!(bed.populate(0, &gfns), 511);
    assert_eq!(bed.hv.heap().free_frames(), 0);
    let frame = bed.mfn_of(0x10).unwrap();
    assert_eq!(
        page_offline_op(
            &mut bed,
            Caller::ControlPlane,
            SYSCTL_PAGE_OFFLINE,
            frame.0,
            frame.0
        ),
        0
    );
    assert!(matches!(
        bed.hv.heap().state(frame),
        Some(FrameState::OfflinePending { .. })
    ));
    bed.check();
    // When the guest balloons it out, it goes offline.
    assert_eq!(bed.decrease(0, &[0x10]), 1);
    assert_eq!(bed.hv.heap().state(frame), Some(FrameState::Offlined));
    bed.check();
}

fn shadow_op(
    bed: &mut Bed,
    op: u32,
    mode: u32,
    bitmap: u64,
    pages: u64,
    domain: u16,
) -> (i64, XenDomctlShadowOp) {
    let shadow = XenDomctlShadowOp {
        op,
        mode,
        dirty_bitmap: bitmap,
        pages,
        ..Default::default()
    };
    let mut u = [0u8; DOMCTL_UNION_BYTES];
    shadow.encode(&mut u);
    let request = XenDomctl {
        cmd: XEN_DOMCTL_SHADOW_OP,
        interface_version: XEN_DOMCTL_INTERFACE_VERSION,
        domain,
        pad: [0; 6],
        u,
    };
    bed.mem.put(ARG, &request);
    let result = bed.call(Caller::ControlPlane, DOMCTL, [ARG, 0, 0, 0, 0]);
    let back: XenDomctl = bed.mem.get(ARG);
    (result, XenDomctlShadowOp::decode(&back.u))
}

#[test]
fn log_dirty_tracks_writes_and_cleans() {
    let mut bed = Bed::new();
    assert_eq!(bed.populate(9, &[0x200]), 1);
    assert_eq!(bed.populate(0, &[0x10]), 1);
    assert_eq!(
        shadow_op(&mut bed, SHADOW_OP_CLEAN, 0, BUF, 1024, DOM.0).0,
        -22,
        "not enabled"
    );
    assert_eq!(
        shadow_op(&mut bed, SHADOW_OP_ENABLE_LOGDIRTY, 0, 0, 0, DOM.0).0,
        0
    );
    assert_eq!(
        shadow_op(&mut bed, SHADOW_OP_ENABLE_LOGDIRTY, 0, 0, 0, DOM.0).0,
        -22,
        "already on"
    );
    let p2m = bed.hv.domain(DOM).unwrap().p2m();
    assert_eq!(p2m.entry(Gfn(0x2ab)).unwrap().kind, EntryType::RamLogDirty);
    assert_eq!(p2m.lookup(Gfn(0x2ab)).unwrap().size, PageSize::Size2M);
    bed.check();

    assert_eq!(bed.hv.write_fault(DOM, Gfn(0x2ab)), Ok(WriteFault::Logged));
    assert_eq!(
        bed.hv.write_fault(DOM, Gfn(0x2ab)),
        Ok(WriteFault::Spurious)
    );
    assert_eq!(bed.hv.write_fault(DOM, Gfn(0x10)), Ok(WriteFault::Logged));
    assert_eq!(
        bed.hv.write_fault(DOM, Gfn(0x9999)),
        Err(Fatal::UnhandledAccess {
            domain: DOM,
            gfn: Gfn(0x9999)
        })
    );
    assert_eq!(
        bed.hv
            .domain(DOM)
            .unwrap()
            .p2m()
            .entry(Gfn(0x2ab))
            .unwrap()
            .kind,
        EntryType::RamRw
    );
    bed.check();

    let (result, op) = shadow_op(&mut bed, SHADOW_OP_PEEK, 0, BUF, 1 << 20, DOM.0);
    assert_eq!(result, 0);
    assert_eq!(op.pages, 0x400, "bits up to the high-water mark");
    assert_eq!((op.fault_count, op.dirty_count), (2, 2));
    assert_eq!(bed.mem.get::<u8>(BUF + 0x2ab / 8), 1 << (0x2ab % 8));
    assert_eq!(bed.mem.get::<u8>(BUF + 2), 1 << 0);
    assert_eq!(
        shadow_op(&mut bed, SHADOW_OP_PEEK, 2, BUF, 64, DOM.0).0,
        -22,
        "bad mode"
    );

    let (result, op) = shadow_op(
        &mut bed,
        SHADOW_OP_CLEAN,
        SHADOW_LOGDIRTY_FINAL,
        BUF,
        0x2b0,
        DOM.0,
    );
    assert_eq!((result, op.pages), (0, 0x2b0));
    let (_, op) = shadow_op(&mut bed, SHADOW_OP_PEEK, 0, BUF, 1 << 20, DOM.0);
    assert_eq!((op.fault_count, op.dirty_count), (0, 0));
    assert_eq!(bed.mem.get::<u8>(BUF + 0x2ab / 8), 0);
    let p2m = bed.hv.domain(DOM).unwrap().p2m();
    assert_eq!(
        p2m.lookup(Gfn(0x2ab)).unwrap().size,
        PageSize::Size2M,
        "merged back"
    );
    assert_eq!(p2m.entry(Gfn(0x2ab)).unwrap().kind, EntryType::RamLogDirty);
    bed.check();

    // New memory is dirty by definition.
    assert_eq!(bed.populate(0, &[0x11]), 1);
    assert!(bed
        .hv
        .domain(DOM)
        .unwrap()
        .log_dirty()
        .unwrap()
        .is_dirty(Gfn(0x11)));

    assert_eq!(shadow_op(&mut bed, SHADOW_OP_OFF, 0, 0, 0, DOM.0).0, 0);
    assert_eq!(
        bed.hv
            .domain(DOM)
            .unwrap()
            .p2m()
            .entry(Gfn(0x2ab))
            .unwrap()
            .kind,
        EntryType::RamRw
    );
    assert_eq!(
        bed.hv.write_fault(DOM, Gfn(0x2ab)),
        Ok(WriteFault::Spurious)
    );
    bed.check();
}

#[test]
fn domctl_checks_version_command_and_domain() {
    let mut bed = Bed::new();
    assert_eq!(
        shadow_op(&mut bed, SHADOW_OP_ENABLE_LOGDIRTY, 0, 0, 0, 5).0,
        -3
    );
    assert_eq!(
        shadow_op(&mut bed, SHADOW_OP_ENABLE_TEST, 0, 0, 0, DOM.0).0,
        -22
    );
    assert_eq!(shadow_op(&mut bed, SHADOW_OP_ENABLE, 0, 0, 0, DOM.0).0, -22);
    assert_eq!(
        shadow_op(
            &mut bed,
            SHADOW_OP_ENABLE,
            SHADOW_ENABLE_LOG_DIRTY,
            0,
            0,
            DOM.0
        )
        .0,
        0
    );
    let (result, op) = shadow_op(&mut bed, SHADOW_OP_GET_ALLOCATION, 0, 0, 0, DOM.0);
    assert_eq!((result, op.mb), (0, 0));
    assert_eq!(
        shadow_op(&mut bed, SHADOW_OP_SET_ALLOCATION, 0, 0, 0, DOM.0).0,
        0
    );
    assert_eq!(
        shadow_op(&mut bed, SHADOW_OP_PEEK, 0, 0x10, 64, DOM.0).0,
        0,
        "empty log copies nothing"
    );
    assert_eq!(bed.populate(0, &[0x100]), 1);
    assert_eq!(
        shadow_op(&mut bed, SHADOW_OP_PEEK, 0, 0x10, 1 << 20, DOM.0).0,
        -14
    );
    let mut request: XenDomctl = bed.mem.get(ARG);
    request.interface_version = 0x17;
    bed.mem.put(ARG, &request);
    assert_eq!(
        bed.call(Caller::ControlPlane, DOMCTL, [ARG, 0, 0, 0, 0]),
        -13
    );
    request.interface_version = XEN_DOMCTL_INTERFACE_VERSION;
    request.cmd = 1;
    bed.mem.put(ARG, &request);
    assert_eq!(
        bed.call(Caller::ControlPlane, DOMCTL, [ARG, 0, 0, 0, 0]),
        -38
    );
}

#[test]
fn domains_are_created_with_superpages_and_destroyed_cleanly() {
    let mut bed = Bed::with(Default::default(), 0x80000, 0x80000);
    let census = bed.hv.heap().census();
    let two = DomId(2);
    let config = DomainConfig {
        id: two,
        max_pages: 0x90000,
        memory_map: Vec::new(),
    };
    bed.hv
        .create_domain(config.clone(), &mut bed.frames)
        .unwrap();
    assert_eq!(
        bed.hv.create_domain(config, &mut bed.frames),
        Err(ebbhv_core::error::Errno::EEXIST)
    );
    let ram = GfnRange::new(Gfn(0x3ff), Gfn(0x80001));
    bed.hv
        .populate_boot_memory(two, ram, &mut bed.frames)
        .unwrap();
    let dom = bed.hv.domain(two).unwrap();
    assert_eq!(dom.tot_pages(), ram.len());
    let mut sizes = [0u64; 3];
    dom.p2m()
        .for_each_mapping(ram, &mut |m| sizes[m.size as usize] += 1);
    assert_eq!(sizes, [2, 510, 1], "4K edges, 2M runs, one 1G");
    bed.hv.check_invariants().unwrap();
    assert!(bed
        .hv
        .populate_boot_memory(
            two,
            GfnRange::new(Gfn(0x90000), Gfn(0xa0000)),
            &mut bed.frames
        )
        .is_err());
    bed.hv.destroy_domain(two).unwrap();
    assert_eq!(bed.hv.heap().census().free, census.free);
    assert!(bed.hv.domain(two).is_none());
    bed.hv.set_max_pages(DOM, 5).unwrap();
    assert_eq!(bed.populate(0, &[1, 2, 3, 4, 5, 6]), 5);
    bed.hv.check_invariants().unwrap();
}

#[test]
fn a_write_near_the_top_of_guest_space_keeps_the_log_sparse() {
    let mut bed = Bed::new();
    let top = (1u64 << 36) - 1;
    assert_eq!(bed.populate(0, &[top, 3]), 2);
    assert_eq!(
        shadow_op(&mut bed, SHADOW_OP_ENABLE_LOGDIRTY, 0, 0, 0, DOM.0).0,
        0
    );
    assert_eq!(bed.hv.write_fault(DOM, Gfn(top)), Ok(WriteFault::Logged));
    let log = bed.hv.domain(DOM).unwrap().log_dirty().unwrap();
    assert!(log.is_dirty(Gfn(top)) && !log.is_dirty(Gfn(top - 1)) && !log.is_dirty(Gfn(3)));
    let (result, op) = shadow_op(&mut bed, SHADOW_OP_PEEK, 0, BUF, 64, DOM.0);
    assert_eq!((result, op.pages, op.dirty_count), (0, 64, 1));
    assert_eq!(bed.mem.get::<u64>(BUF), 0);
    bed.check();
}

/// Runs one control-protocol line against the bed's domain and a store that
/// knows it.
fn control_line(bed: &mut Bed, store: &mut Xenstore, line: &str) -> String {
    control(bed, store, line).0
}

#[test]
fn mem_pool_shows_and_sets_the_limit_and_refuses_one_below_use() {
    let mut bed = Bed::new();
    let mut store = Xenstore::new(Limits::default());
    let limit = bed.hv.mem_pool(DOM).unwrap().limit;
    assert_eq!(limit, default_limit(0x2000, Config::default().mem_pool_max));
    assert_eq!(
        control_line(&mut bed, &mut store, "mem-pool"),
        format!("ok limit_kib={} used_kib=0\n", limit / 1024)
    );
    assert_eq!(bed.populate(0, &[1 << 18]), 1);
    let used = bed.hv.mem_pool(DOM).unwrap().used;
    let used_kib = used.div_ceil(1024);
    assert_eq!(
        control_line(&mut bed, &mut store, "mem-pool 1"),
        "error EBUSY limit below what the domain uses now (mem-pool shows used_kib)\n"
    );
    assert_eq!(bed.hv.mem_pool(DOM).unwrap().limit, limit);
    assert_eq!(
        control_line(&mut bed, &mut store, "mem-pool 1073741825"),
        "error EINVAL limit above what ebbhv can give one domain\n"
    );
    assert_eq!(
        control_line(&mut bed, &mut store, &format!("mem-pool {used_kib}")),
        format!("ok limit_kib={used_kib} used_kib={used_kib}\n")
    );
    // At the limit, a populate that needs new tables is refused.
    assert_eq!(bed.populate(0, &[2 << 18]), 0);
    let info = control_line(&mut bed, &mut store, "info");
    assert!(
        info.contains(&format!(" mem_pool_limit={} ", used_kib * 1024)),
        "{info}"
    );
    assert!(info.contains(&format!(" mem_pool_used={used} ")), "{info}");
    assert!(info.contains(" mem_pool_xenstore=0 "), "{info}");
    assert_eq!(
        control_line(&mut bed, &mut store, "mem-pool 1 2"),
        "error EINVAL wrong number of arguments\n"
    );
}

// --- The control protocol's frame verbs (control/frames.rs) on the same bed.

fn store() -> Xenstore {
    let mut store = Xenstore::new(Limits::default());
    let keys = DomainKeys {
        name: "ebb-guest",
        target_kib: 0x2000 * 4,
        static_max_kib: 0x2000 * 4,
    };
    store.introduce_domain(DOM, &keys).unwrap();
    store
}

/// Runs one control request line against the bed as ebbhv does.
fn control(bed: &mut Bed, store: &mut Xenstore, line: &str) -> (String, Effect) {
    let mut cx = Context {
        hv: &mut bed.hv,
        store,
        domain: DOM,
        counters: &[],
        state: RunState::Running,
        frames: &mut bed.frames,
    };
    execute(line.as_bytes(), &mut cx)
}

/// One `info` field.
fn info_field(bed: &mut Bed, store: &mut Xenstore, name: &str) -> String {
    let (reply, _) = control(bed, store, "info");
    reply
        .trim_end()
        .split(' ')
        .find_map(|t| t.strip_prefix(&format!("{name}=")).map(String::from))
        .unwrap_or_else(|| panic!("no {name} in {reply}"))
}

#[test]
fn control_offlines_a_free_frame_and_onlines_it_again() {
    let mut bed = Bed::new();
    let mut xs = store();
    let free_before = bed.hv.heap().free_frames();
    let mfn = HEAP_START + 0x123;
    assert_eq!(
        control(&mut bed, &mut xs, &format!("mem-offline {mfn:#x} {mfn:#x}")),
        (
            "ok mfn=0x100123,state=offlined,owner=none\n".into(),
            Effect::P2m
        )
    );
    assert_eq!(bed.hv.heap().free_frames(), free_before - 1);
    assert_eq!(info_field(&mut bed, &mut xs, "heap_offlined"), "1");
    assert_eq!(
        control(&mut bed, &mut xs, &format!("mem-query {mfn} {}", mfn + 1)).0,
        "ok mfn=0x100123,state=offlined,owner=none mfn=0x100124,state=online,owner=free\n"
    );
    assert_eq!(
        control(&mut bed, &mut xs, &format!("mem-online {mfn:#x} {mfn:#x}")),
        (
            "ok mfn=0x100123,state=online,owner=free\n".into(),
            Effect::None
        )
    );
    assert_eq!(bed.hv.heap().free_frames(), free_before);
    assert_eq!(info_field(&mut bed, &mut xs, "heap_offlined"), "0");
    // Broken frames stay out.
    control(
        &mut bed,
        &mut xs,
        &format!("mem-offline {mfn} {mfn} broken"),
    );
    assert_eq!(
        control(&mut bed, &mut xs, &format!("mem-online {mfn} {mfn}")).0,
        "ok mfn=0x100123,state=offlined,broken=1,owner=none,error=EINVAL\n"
    );
    assert_eq!(info_field(&mut bed, &mut xs, "heap_broken"), "1");
    bed.check();
}

#[test]
fn control_offline_of_a_guest_frame_splits_its_superpage_and_keeps_its_data() {
    let mut bed = Bed::new();
    let mut xs = store();
    assert_eq!(bed.populate(9, &[0x200]), 1);
    assert_eq!(info_field(&mut bed, &mut xs, "ram_leaves_2m"), "1");
    assert_eq!(info_field(&mut bed, &mut xs, "ram_leaves_4k"), "0");
    let old = bed.mfn_of(0x234).unwrap();
    bed.frames.fill(old, 0xfeed);
    let (reply, effect) = control(
        &mut bed,
        &mut xs,
        &format!("mem-offline {old:#x} {old:#x}", old = old.0),
    );
    assert_eq!(effect, Effect::P2m);
    assert_eq!(
        reply,
        format!("ok mfn={:#x},state=offlined,owner=none\n", old.0)
    );
    let new = bed.mfn_of(0x234).unwrap();
    assert_ne!(new, old);
    assert_eq!(bed.frames.content(new), 0xfeed);
    assert_eq!(
        control(&mut bed, &mut xs, "p2m 0x233 0x235").0,
        format!(
            "ok gfn=0x233,frames=1,type=ram,mfn={:#x},leaf=4K gfn=0x234,frames=1,type=ram,mfn={:#x},leaf=4K \
             gfn=0x235,frames=1,type=ram,mfn={:#x},leaf=4K\n",
            old.0 - 1,
            new.0,
            old.0 + 1
        )
    );
    assert_eq!(
        control(
            &mut bed,
            &mut xs,
            &format!("mem-query {0:#x} {0:#x}", new.0)
        )
        .0,
        format!("ok mfn={:#x},state=online,owner=d1,gfn=0x234\n", new.0)
    );
    assert_eq!(info_field(&mut bed, &mut xs, "ram_leaves_2m"), "0");
    assert_eq!(info_field(&mut bed, &mut xs, "ram_leaves_4k"), "512");
    assert_eq!(info_field(&mut bed, &mut xs, "heap_offlined"), "1");
    assert_eq!(bed.tot_pages(), 512);
    bed.check();
}

#[test]
fn a_broken_guest_frame_is_never_copied_and_the_guest_is_told_which_gfn_it_lost() {
    let mut bed = Bed::new();
    let mut xs = store();
    xs.control_write(DOM, "control/feature-broken-frames", b"1")
        .unwrap();
    assert_eq!(bed.populate(9, &[0x200]), 1);
    let old = bed.mfn_of(0x234).unwrap();
    let (reply, effect) = control(
        &mut bed,
        &mut xs,
        &format!("mem-offline {0:#x} {0:#x} broken", old.0),
    );
    assert_eq!(effect, Effect::P2m);
    assert_eq!(
        reply,
        format!(
            "ok mfn={:#x},state=pending,broken=1,owner=d1,gfn=0x234\n",
            old.0
        )
    );
    // The gfn keeps its (lost) frame in the p2m and tot_pages, but the guest can no
    // longer reach it, and no copy was made.
    assert_eq!(
        control(&mut bed, &mut xs, "p2m 0x234 0x234").0,
        format!(
            "ok gfn=0x234,frames=1,type=broken,mfn={:#x},leaf=4K\n",
            old.0
        )
    );
    assert_eq!(bed.tot_pages(), 512);
    bed.check();
    let reachable: u64 = bed.npt.leaves.values().map(|m| m.size.frames()).sum();
    assert_eq!(reachable, 511);
    assert!(!bed.npt.leaves.contains_key(&Gfn(0x234)));
    assert_eq!(bed.npt.leaves[&Gfn(0x235)].mfn, Mfn(old.0 + 1));
    assert_eq!(
        xs.control_list(DOM, "control/broken-frames").unwrap(),
        vec!["564"]
    );
    // Offlining it again reports it again and changes nothing.
    control(
        &mut bed,
        &mut xs,
        &format!("mem-offline {0:#x} {0:#x} broken", old.0),
    );
    assert_eq!(bed.tot_pages(), 512);
    // The guest gives the gfn back: the frame is offline for good, no copy is made.
    assert_eq!(bed.decrease(0, &[0x234]), 1);
    assert_eq!(bed.tot_pages(), 511);
    assert_eq!(
        control(&mut bed, &mut xs, &format!("mem-query {0} {0}", old.0)).0,
        format!("ok mfn={:#x},state=offlined,broken=1,owner=none\n", old.0)
    );
    assert_eq!(info_field(&mut bed, &mut xs, "heap_broken"), "1");
    assert_eq!(
        control(&mut bed, &mut xs, &format!("mem-online {0} {0}", old.0)).0,
        format!(
            "ok mfn={:#x},state=offlined,broken=1,owner=none,error=EINVAL\n",
            old.0
        )
    );
    bed.check();
}

#[test]
fn a_broken_guest_frame_cannot_be_exchanged_or_moved() {
    let mut bed = Bed::new();
    let mut xs = store();
    xs.control_write(DOM, "control/feature-broken-frames", b"1")
        .unwrap();
    assert_eq!(bed.populate(9, &[0x200]), 1);
    let old = bed.mfn_of(0x234).unwrap();
    control(
        &mut bed,
        &mut xs,
        &format!("mem-offline {0:#x} {0:#x} broken", old.0),
    );
    assert_eq!(
        control(&mut bed, &mut xs, "mem-exchange 0x233 0x235").0,
        "error EINVAL every guest frame of the range must be the domain's RAM\n"
    );
    assert_eq!(bed.mfn_of(0x233), Some(Mfn(old.0 - 1)));
    bed.check();
}

#[test]
fn a_broken_guest_frame_crashes_a_guest_that_cannot_be_told() {
    let mut bed = Bed::new();
    let mut xs = store();
    assert_eq!(bed.populate(9, &[0x200]), 1);
    let old = bed.mfn_of(0x234).unwrap();
    let (reply, effect) = control(
        &mut bed,
        &mut xs,
        &format!("mem-offline {0:#x} {0:#x} broken", old.0),
    );
    assert!(reply.starts_with("ok "), "{reply}");
    let Effect::Crash(why) = effect else {
        panic!("{effect:?}")
    };
    assert!(
        why.starts_with("gfn 0x234 lost its contents (broken frame) and the guest has no driver"),
        "{why}"
    );
    assert!(xs.control_list(DOM, "control/broken-frames").is_err());
    bed.check();
}

#[test]
fn control_offline_split_comes_back_after_a_merge_pass() {
    let mut bed = Bed::new();
    let mut xs = store();
    assert_eq!(bed.populate(9, &[0x200, 0x400]), 2);
    let leaves = |bed: &mut Bed, xs: &mut Xenstore| {
        [
            "ram_leaves_4k",
            "ram_leaves_2m",
            "ram_remerged_2m",
            "ram_split_waiting",
        ]
        .map(|name| info_field(bed, xs, name))
    };
    assert_eq!(leaves(&mut bed, &mut xs), ["0", "2", "0", "0"]);
    let old = bed.mfn_of(0x234).unwrap();
    bed.frames.fill(old, 0xfeed);
    control(&mut bed, &mut xs, &format!("mem-offline {0} {0}", old.0));
    assert_eq!(leaves(&mut bed, &mut xs), ["512", "1", "0", "1"]);
    // What the platform runs after a request that changed the p2m.
    let pass = bed.hv.remerge_split(DOM, 8192, &mut bed.frames).unwrap();
    assert_eq!(pass.merged, 1);
    assert_eq!(leaves(&mut bed, &mut xs), ["0", "2", "1", "0"]);
    assert_eq!(bed.frames.content(bed.mfn_of(0x234).unwrap()), 0xfeed);
    assert_eq!(
        control(&mut bed, &mut xs, "p2m 0x234 0x234").0,
        format!(
            "ok gfn=0x234,frames=1,type=ram,mfn={:#x},leaf=2M\n",
            bed.mfn_of(0x234).unwrap().0
        )
    );
    assert_eq!(info_field(&mut bed, &mut xs, "heap_offlined"), "1");
    bed.check();
}

#[test]
fn control_offline_waits_for_the_guest_when_no_frame_is_free() {
    let mut bed = Bed::with(Default::default(), 1024, 0x2000);
    let mut xs = store();
    assert_eq!(bed.populate(9, &[0, 0x200]), 1);
    let gfns: Vec<u64> = (0x400..0x5ff).collect();
    assert_eq!(bed.populate(0, &gfns), 511);
    let frame = bed.mfn_of(0x10).unwrap();
    assert_eq!(
        control(&mut bed, &mut xs, &format!("mem-offline {0} {0}", frame.0)).0,
        format!("ok mfn={:#x},state=pending,owner=d1,gfn=0x10\n", frame.0)
    );
    assert_eq!(info_field(&mut bed, &mut xs, "heap_offline_pending"), "1");
    assert_eq!(bed.decrease(0, &[0x10]), 1);
    assert_eq!(
        control(&mut bed, &mut xs, &format!("mem-query {0} {0}", frame.0)).0,
        format!("ok mfn={:#x},state=offlined,owner=none\n", frame.0)
    );
    assert_eq!(info_field(&mut bed, &mut xs, "heap_offline_pending"), "0");
    assert_eq!(info_field(&mut bed, &mut xs, "heap_offlined"), "1");
    bed.check();
}

#[test]
fn an_offline_copy_fault_leaves_frames_pending_until_the_guest_frees_them() {
    let mut bed = Bed::new();
    let mut xs = store();
    assert_eq!(bed.populate(9, &[0x200]), 1);
    let (a, b, c) = (
        bed.mfn_of(0x210).unwrap(),
        bed.mfn_of(0x211).unwrap(),
        bed.mfn_of(0x212).unwrap(),
    );
    let free = bed.hv.heap().free_frames();
    // Only -ENOMEM (no frame for the copy) is a fault the copy can have.
    for line in [
        "fail-next offline-copy 1 0",
        "fail-next offline-copy 1 -EBUSY",
        "fail-next offline-copy 0 -ENOMEM",
    ] {
        assert!(
            control(&mut bed, &mut xs, line)
                .0
                .starts_with("error EINVAL "),
            "{line}"
        );
    }
    assert_eq!(
        control(&mut bed, &mut xs, "fail-next offline-copy 2 -ENOMEM").0,
        "ok fail_offline_copy=2:-ENOMEM\n"
    );
    assert_eq!(
        info_field(&mut bed, &mut xs, "fail_offline_copy"),
        "2:-ENOMEM"
    );
    // Three frames in use: the first two find no frame for their copy, the third is
    // copied as usual.
    assert_eq!(
        control(&mut bed, &mut xs, &format!("mem-offline {} {}", a.0, c.0)).0,
        format!(
            "ok mfn={:#x},state=pending,owner=d1,gfn=0x210 mfn={:#x},state=pending,owner=d1,gfn=0x211 \
             mfn={:#x},state=offlined,owner=none\n",
            a.0, b.0, c.0
        )
    );
    assert!(!control(&mut bed, &mut xs, "info").0.contains("fail_"));
    assert_eq!(bed.mfn_of(0x210), Some(a), "a pending frame stays mapped");
    assert_ne!(bed.mfn_of(0x212), Some(c));
    assert_eq!(info_field(&mut bed, &mut xs, "heap_offline_pending"), "2");
    assert_eq!(info_field(&mut bed, &mut xs, "heap_offlined"), "1");
    assert_eq!(bed.hv.heap().free_frames(), free - 1, "one copy made");
    // The guest gives one back, as a balloon would: it goes offline, the other stays
    // pending; repopulating the gfn gives it a fresh frame, never the offlined one.
    assert_eq!(bed.decrease(0, &[0x210]), 1);
    assert_eq!(
        control(&mut bed, &mut xs, &format!("mem-query {0} {0}", a.0)).0,
        format!("ok mfn={:#x},state=offlined,owner=none\n", a.0)
    );
    assert_eq!(info_field(&mut bed, &mut xs, "heap_offline_pending"), "1");
    assert_eq!(info_field(&mut bed, &mut xs, "heap_offlined"), "2");
    assert_eq!(bed.populate(0, &[0x210]), 1);
    assert!(bed.mfn_of(0x210).is_some_and(|m| m != a));
    assert_eq!(bed.tot_pages(), 512);
    // Online again: the offlined frame returns, the pending request is cancelled.
    assert_eq!(
        control(&mut bed, &mut xs, &format!("mem-online {0} {0}", a.0)).0,
        format!("ok mfn={:#x},state=online,owner=free\n", a.0)
    );
    assert_eq!(
        control(&mut bed, &mut xs, &format!("mem-online {0} {0}", b.0)).0,
        format!("ok mfn={:#x},state=online,owner=d1,gfn=0x211\n", b.0)
    );
    assert_eq!(info_field(&mut bed, &mut xs, "heap_offline_pending"), "0");
    bed.check();
}

#[test]
fn fail_next_off_drops_offline_copy_faults() {
    let mut bed = Bed::new();
    let mut xs = store();
    assert_eq!(bed.populate(9, &[0x200]), 1);
    let a = bed.mfn_of(0x210).unwrap();
    control(&mut bed, &mut xs, "fail-next offline-copy 1 -ENOMEM");
    assert_eq!(control(&mut bed, &mut xs, "fail-next off").0, "ok\n");
    assert_eq!(
        control(&mut bed, &mut xs, &format!("mem-offline {0} {0}", a.0)).0,
        format!("ok mfn={:#x},state=offlined,owner=none\n", a.0)
    );
    bed.check();
}

#[test]
fn control_refuses_hypervisor_frames_and_changes_nothing() {
    let mut bed = Bed::new();
    let mut xs = store();
    let hv_frame = HEAP_START + HEAP_FREE;
    let last_free = hv_frame - 1;
    assert_eq!(
        control(
            &mut bed,
            &mut xs,
            &format!("mem-offline {last_free:#x} {hv_frame:#x}")
        ),
        (
            "error EPERM mfn 0x104000 belongs to the hypervisor (its code, heap or tables)\n"
                .into(),
            Effect::None
        )
    );
    assert_eq!(
        bed.hv.heap().state(Mfn(last_free)),
        Some(FrameState::Free { needs_scrub: true }),
        "the free frame before it stays free"
    );
    let shared = bed.hv.domain(DOM).unwrap().shared_info();
    assert_eq!(
        control(
            &mut bed,
            &mut xs,
            &format!("mem-offline {0} {0} broken", shared.0)
        )
        .0,
        format!(
            "error EPERM mfn {:#x} belongs to the hypervisor, lent to d1 at no gfn \
             (shared_info, grant table or xenstore ring)\n",
            shared.0
        )
    );
    assert_eq!(
        control(&mut bed, &mut xs, &format!("mem-query {0} {0}", shared.0)).0,
        format!(
            "ok mfn={:#x},state=online,owner=hypervisor,lent=d1\n",
            shared.0
        )
    );
    let hole = HEAP_START + HEAP_FREE + HEAP_HYPERVISOR;
    assert_eq!(
        control(&mut bed, &mut xs, &format!("mem-offline {hole} {hole}")).0,
        "error EINVAL mfn 0x104010 is not RAM the hypervisor manages\n"
    );
    assert_eq!(
        control(&mut bed, &mut xs, "mem-query 0x10 0x10").0,
        "ok mfn=0x10,state=invalid\n"
    );
    assert_eq!(info_field(&mut bed, &mut xs, "heap_offlined"), "0");
    bed.check();
}

#[test]
fn control_exchange_gives_guest_frames_copies() {
    let mut bed = Bed::new();
    let mut xs = store();
    assert_eq!(bed.populate(9, &[0x200]), 1);
    let before: Vec<Mfn> = (0x3fe..0x400).map(|g| bed.mfn_of(g).unwrap()).collect();
    bed.frames.fill(before[0], 11);
    bed.frames.fill(before[1], 22);
    let free = bed.hv.heap().free_frames();
    let (reply, effect) = control(&mut bed, &mut xs, "mem-exchange 0x3fe 0x3ff");
    assert_eq!(effect, Effect::P2m);
    let after: Vec<Mfn> = (0x3fe..0x400).map(|g| bed.mfn_of(g).unwrap()).collect();
    assert_eq!(
        reply,
        format!(
            "ok gfn=0x3fe,old={:#x},new={:#x} gfn=0x3ff,old={:#x},new={:#x}\n",
            before[0].0, after[0].0, before[1].0, after[1].0
        )
    );
    assert!(after.iter().all(|m| !before.contains(m)));
    assert_eq!(bed.frames.content(after[0]), 11);
    assert_eq!(bed.frames.content(after[1]), 22);
    assert_eq!(
        bed.hv.heap().free_frames(),
        free,
        "the old frames are free again"
    );
    assert_eq!(bed.tot_pages(), 512);
    bed.check();
    // Holes and frames that are not the guest's RAM change nothing.
    assert_eq!(
        control(&mut bed, &mut xs, "mem-exchange 0x3ff 0x400"),
        (
            "error EINVAL every guest frame of the range must be the domain's RAM\n".into(),
            Effect::None
        )
    );
    assert_eq!(bed.mfn_of(0x3ff), Some(after[1]));
    assert_eq!(
        control(&mut bed, &mut xs, "p2m 0x3ff 0x401").0,
        format!(
            "ok gfn=0x3ff,frames=1,type=ram,mfn={:#x},leaf=4K gfn=0x400,frames=2,type=none\n",
            after[1].0
        )
    );
}

#[test]
fn control_exchange_without_enough_free_frames_changes_nothing() {
    let mut bed = Bed::with(Default::default(), 1024, 0x2000);
    let mut xs = store();
    assert_eq!(bed.populate(9, &[0, 0x200]), 1);
    let free = bed.hv.heap().free_frames();
    assert!(free > 0 && free < 512, "{free}");
    let mapped = bed.mfn_of(0x10);
    assert_eq!(
        control(&mut bed, &mut xs, &format!("mem-exchange 0 {free:#x}")).0,
        "error ENOMEM not enough free frames for the copies\n"
    );
    assert_eq!(bed.mfn_of(0x10), mapped);
    assert_eq!(bed.hv.heap().free_frames(), free);
    bed.check();
}
