//! Executing control requests against the hypervisor and its xenstore, as the
//! privileged control plane (domain 0), for one domain.
//!
//! Execution never fails: every outcome, including a refused line, is a reply
//! line. What the platform must do besides sending the reply is the returned
//! [`Effect`]: serve the guest's xenstore ring (watch events may be queued for it)
//! or end the domain.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use super::frames;
use super::protocol::{self, encode, error_reply, ok_reply, Command};
use crate::addr::DomId;
use crate::error::Errno;
use crate::hv::{FaultOp, Hypervisor};
use crate::platform::FrameOps;
use crate::xenstore::Xenstore;

/// KiB in a frame.
const FRAME_KIB: u64 = 4;

/// What the control plane acts on.
pub struct Context<'a> {
    /// The hypervisor (domain sizes, heap).
    pub hv: &'a mut Hypervisor,
    /// The store.
    pub store: &'a mut Xenstore,
    /// The domain the requests are about.
    pub domain: DomId,
    /// The platform's counters for `info` (name, value); names are single tokens.
    pub counters: &'a [(&'a str, u64)],
    /// Whether the domain runs or crashed, for `info`.
    pub state: RunState<'a>,
    /// Copies and zeroes frames (page offline and exchange move guest frames).
    pub frames: &'a mut dyn FrameOps,
}

/// Whether the domain's vCPU still runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RunState<'a> {
    /// It runs (or waits for an event).
    Running,
    /// The platform crashed it (a guest fault the hypervisor cannot continue it
    /// from), for the reason given; its memory and xenstore are still there.
    Crashed(&'a str),
}

/// What the platform does after sending the reply.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Effect {
    /// Nothing more.
    None,
    /// xenstore changed: serve the guest's ring and notify it if anything moved.
    Xenstore,
    /// End the domain now.
    Destroy,
    /// The domain's p2m may have changed: sync the nested tables (and flush the
    /// guest TLB if they changed) before the guest runs again, then serve the
    /// guest's xenstore ring if the change was reported there.
    P2m,
    /// Crash the domain for the reason given: it cannot go on safely (it lost
    /// memory it was not told about).
    Crash(String),
}

/// Parses and runs one request line; returns the reply line (with its newline).
pub fn execute(line: &[u8], cx: &mut Context<'_>) -> (String, Effect) {
    match protocol::parse(line) {
        Ok(cmd) => run(cmd, cx),
        Err(r) => (error_reply(r.code, r.message), Effect::None),
    }
}

fn run(cmd: Command, cx: &mut Context<'_>) -> (String, Effect) {
    let dom = cx.domain;
    let xs_error = |e: crate::abi::xenstore::XsError| {
        (error_reply(e.name(), "xenstore refused"), Effect::None)
    };
    match cmd {
        Command::Ping => (ok_reply(["pong"]), Effect::None),
        Command::Info => (info(cx), Effect::None),
        Command::XsRead(path) => match cx.store.control_read(dom, &path) {
            Ok(v) => (ok_reply([encode(&v).as_str()]), Effect::None),
            Err(e) => xs_error(e),
        },
        Command::XsLs(path) => match cx.store.control_list(dom, &path) {
            Ok(names) => {
                let names: Vec<String> = names.iter().map(|n| encode(n.as_bytes())).collect();
                (ok_reply(names.iter().map(String::as_str)), Effect::None)
            }
            Err(e) => xs_error(e),
        },
        Command::XsWrite(path, value) => match cx.store.control_write(dom, &path, &value) {
            Ok(()) => (ok_reply([]), Effect::Xenstore),
            Err(e) => xs_error(e),
        },
        Command::XsRm(path) => match cx.store.control_rm(dom, &path) {
            Ok(()) => (ok_reply([]), Effect::Xenstore),
            Err(e) => xs_error(e),
        },
        Command::MemSet(kib) => mem_set(cx, kib),
        Command::MemMax(kib) => mem_max(cx, kib),
        Command::MemPool(kib) => (mem_pool(cx, kib), Effect::None),
        Command::Shutdown(how) => {
            match cx
                .store
                .control_write(dom, "control/shutdown", how.as_bytes())
            {
                Ok(()) => (ok_reply([]), Effect::Xenstore),
                Err(e) => xs_error(e),
            }
        }
        Command::Destroy => (ok_reply([]), Effect::Destroy),
        Command::FailNext(op, fault) => match cx.hv.add_fault(dom, op, fault) {
            Ok(()) => {
                let pending = cx.hv.domain(dom).map(|d| d.faults().pending(op));
                let token = protocol::fault_token(op, pending.into_iter().flatten());
                (ok_reply([token.as_str()]), Effect::None)
            }
            Err(Errno::ENOSPC) => (
                error_reply("ENOSPC", "too many faults pending for this op"),
                Effect::None,
            ),
            Err(e) => (error_reply(e.name(), "cannot inject"), Effect::None),
        },
        Command::FailOff => match cx.hv.clear_faults(dom) {
            Ok(()) => (ok_reply([]), Effect::None),
            Err(_) => (error_reply("ESRCH", "no such domain"), Effect::None),
        },
        Command::MemOffline(range, broken) => frames::offline(cx, range, broken),
        Command::MemOnline(range) => frames::online(cx, range),
        Command::MemQuery(range) => (frames::query(cx.hv, range), Effect::None),
        Command::P2m(range) => (frames::p2m(cx, range), Effect::None),
        Command::MemExchange(range) => frames::exchange(cx, range),
    }
}

/// A number the control plane wrote to xenstore.
fn read_kib(store: &Xenstore, dom: DomId, key: &str) -> Option<u64> {
    let v = store.control_read(dom, key).ok()?;
    core::str::from_utf8(&v).ok()?.trim().parse().ok()
}

fn mem_set(cx: &mut Context<'_>, kib: u64) -> (String, Effect) {
    let dom = cx.domain;
    if cx.hv.domain(dom).is_none() {
        return (error_reply("ESRCH", "no such domain"), Effect::None);
    }
    let max = read_kib(cx.store, dom, "memory/static-max").unwrap_or(u64::MAX);
    if kib == 0 || !kib.is_multiple_of(FRAME_KIB) {
        return (
            error_reply("EINVAL", "target must be a non-zero multiple of 4 KiB"),
            Effect::None,
        );
    }
    if kib > max {
        return (
            error_reply("EINVAL", "target above memory/static-max (see mem-max)"),
            Effect::None,
        );
    }
    let value = format!("{kib}");
    match cx
        .store
        .control_write(dom, "memory/target", value.as_bytes())
    {
        Ok(()) => (
            ok_reply([format!("target_kib={kib}").as_str()]),
            Effect::Xenstore,
        ),
        Err(e) => (error_reply(e.name(), "xenstore refused"), Effect::None),
    }
}

fn mem_max(cx: &mut Context<'_>, kib: u64) -> (String, Effect) {
    let dom = cx.domain;
    if kib == 0 || !kib.is_multiple_of(FRAME_KIB) {
        return (
            error_reply("EINVAL", "maximum must be a non-zero multiple of 4 KiB"),
            Effect::None,
        );
    }
    if cx.hv.set_max_pages(dom, kib / FRAME_KIB).is_err() {
        return (error_reply("ESRCH", "no such domain"), Effect::None);
    }
    let value = format!("{kib}");
    match cx
        .store
        .control_write(dom, "memory/static-max", value.as_bytes())
    {
        Ok(()) => (
            ok_reply([format!("max_kib={kib}").as_str()]),
            Effect::Xenstore,
        ),
        Err(e) => (error_reply(e.name(), "xenstore refused"), Effect::None),
    }
}

/// Shows the domain's memory pool, after setting its limit to `kib` if given.
fn mem_pool(cx: &mut Context<'_>, kib: Option<u64>) -> String {
    let dom = cx.domain;
    if let Some(kib) = kib {
        let Some(bytes) = kib.checked_mul(1024) else {
            return error_reply("EINVAL", "limit too large");
        };
        match cx.hv.set_mem_pool_limit(dom, bytes) {
            Ok(()) => {}
            Err(Errno::EBUSY) => {
                return error_reply(
                    "EBUSY",
                    "limit below what the domain uses now (mem-pool shows used_kib)",
                )
            }
            Err(Errno::EINVAL) => {
                return error_reply("EINVAL", "limit above what ebbhv can give one domain")
            }
            Err(e) => return error_reply(e.name(), "no such domain"),
        }
    }
    match cx.hv.mem_pool(dom) {
        Ok(pool) => ok_reply([
            format!("limit_kib={}", pool.limit / 1024).as_str(),
            format!("used_kib={}", pool.used.div_ceil(1024)).as_str(),
        ]),
        Err(e) => error_reply(e.name(), "no such domain"),
    }
}

fn info(cx: &Context<'_>) -> String {
    let dom = cx.domain;
    let mut fields: Vec<String> = Vec::new();
    fields.push(format!("domid={}", dom.0));
    match cx.state {
        RunState::Running => fields.push(String::from("state=running")),
        RunState::Crashed(reason) => {
            fields.push(String::from("state=crashed"));
            fields.push(format!("reason={}", encode(reason.as_bytes())));
        }
    }
    if let Some(d) = cx.hv.domain(dom) {
        fields.push(format!("tot_pages={}", d.tot_pages()));
        fields.push(format!("max_pages={}", d.max_pages()));
        for op in FaultOp::ALL {
            if d.faults().pending(op).next().is_some() {
                fields.push(protocol::fault_token(op, d.faults().pending(op)));
            }
        }
    }
    for (key, name) in [
        ("memory/target", "target_kib"),
        ("memory/static-max", "static_max_kib"),
    ] {
        if let Some(v) = read_kib(cx.store, dom, key) {
            fields.push(format!("{name}={v}"));
        }
    }
    if let Ok(pool) = cx.hv.mem_pool(dom) {
        fields.push(format!("mem_pool_limit={}", pool.limit));
        fields.push(format!("mem_pool_used={}", pool.used));
        fields.push(format!("mem_pool_p2m={}", pool.p2m));
        fields.push(format!("mem_pool_nested_tables={}", pool.nested_tables));
        fields.push(format!("mem_pool_event_channels={}", pool.event_channels));
        fields.push(format!("mem_pool_xenstore={}", pool.xenstore));
    }
    let census = cx.hv.heap().census();
    fields.push(format!("heap_ram={}", census.ram));
    fields.push(format!("heap_free={}", census.free));
    fields.push(format!("heap_used={}", census.hypervisor + census.domain));
    fields.push(format!("heap_hypervisor={}", census.hypervisor));
    fields.push(format!("heap_domain={}", census.domain));
    fields.push(format!("heap_offlined={}", census.offlined + census.broken));
    fields.push(format!("heap_broken={}", census.broken));
    fields.push(format!("heap_offline_pending={}", census.offline_pending));
    let [leaves_4k, leaves_2m, leaves_1g] = frames::ram_leaves(cx.hv, dom);
    fields.push(format!("ram_leaves_4k={leaves_4k}"));
    fields.push(format!("ram_leaves_2m={leaves_2m}"));
    fields.push(format!("ram_leaves_1g={leaves_1g}"));
    if let Some(d) = cx.hv.domain(dom) {
        fields.push(format!("ram_remerged_2m={}", d.remerged_2m()));
        fields.push(format!("ram_split_waiting={}", d.split_regions()));
    }
    let xs = cx.store.stats();
    fields.push(format!("xs_requests={}", xs.requests));
    fields.push(format!("xs_errors={}", xs.errors));
    fields.push(format!("xs_events={}", xs.events));
    fields.push(format!("xs_events_dropped={}", xs.events_dropped));
    fields.push(format!("xs_ring_resets={}", xs.ring_resets));
    for (name, value) in cx.counters {
        fields.push(format!("{}={value}", encode(name.as_bytes())));
    }
    ok_reply(fields.iter().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::memory::E820Entry;
    use crate::addr::{Gfn, GfnRange, Mfn, MfnRange};
    use crate::domain::DomainConfig;
    use crate::heap::FrameHeap;
    use crate::hv::Config;
    use crate::testing::FakeFrames;
    use crate::xenstore::{DomainKeys, Limits};

    const DOM: DomId = DomId(1);

    fn setup() -> (Hypervisor, Xenstore) {
        let mut heap = FrameHeap::new(MfnRange::new(Mfn(0x100), Mfn(0x2100))).unwrap();
        heap.add_free_ram(MfnRange::new(Mfn(0x100), Mfn(0x2100)))
            .unwrap();
        let mut hv = Hypervisor::new(heap, Config::default());
        let mut frames = FakeFrames::default();
        let config = DomainConfig {
            id: DOM,
            max_pages: 0x1000,
            memory_map: Vec::<E820Entry>::new(),
        };
        hv.create_domain(config, &mut frames).unwrap();
        hv.populate_boot_memory(DOM, GfnRange::new(Gfn(0), Gfn(0x800)), &mut frames)
            .unwrap();
        let mut store = Xenstore::new(Limits::default());
        let keys = DomainKeys {
            name: "t",
            target_kib: 0x800 * 4,
            static_max_kib: 0x1000 * 4,
        };
        store.introduce_domain(DOM, &keys).unwrap();
        (hv, store)
    }

    fn exec(hv: &mut Hypervisor, store: &mut Xenstore, line: &str) -> (String, Effect) {
        exec_in(hv, store, line, RunState::Running)
    }

    fn exec_in(
        hv: &mut Hypervisor,
        store: &mut Xenstore,
        line: &str,
        state: RunState<'_>,
    ) -> (String, Effect) {
        let counters = [("exits_total", 5u64), ("hc_memory_op", 2)];
        let mut frames = FakeFrames::default();
        let mut cx = Context {
            hv,
            store,
            domain: DOM,
            counters: &counters,
            state,
            frames: &mut frames,
        };
        execute(line.as_bytes(), &mut cx)
    }

    #[test]
    fn info_says_why_a_crashed_domain_crashed() {
        let (mut hv, mut store) = setup();
        let crashed = RunState::Crashed("triple fault\x1b[2J");
        let (reply, effect) = exec_in(&mut hv, &mut store, "info", crashed);
        assert_eq!(effect, Effect::None);
        assert!(
            reply.starts_with(
                "ok domid=1 state=crashed reason=triple%20fault%1B[2J tot_pages=2048 "
            ),
            "{reply}"
        );
        let (reply, _) = exec_in(&mut hv, &mut store, "ping", crashed);
        assert_eq!(reply, "ok pong\n");
        let (_, effect) = exec_in(&mut hv, &mut store, "destroy", crashed);
        assert_eq!(effect, Effect::Destroy);
    }

    #[test]
    fn info_reports_real_figures() {
        let (mut hv, mut store) = setup();
        let (reply, effect) = exec(&mut hv, &mut store, "info");
        assert_eq!(effect, Effect::None);
        assert!(
            reply.starts_with(
                "ok domid=1 state=running tot_pages=2048 max_pages=4096 target_kib=8192 static_max_kib=16384 "
            ),
            "{reply}"
        );
        assert!(reply.contains(" heap_free=6143 "), "{reply}");
        assert!(reply.contains(" heap_domain=2048 "), "{reply}");
        assert!(
            reply.ends_with(" exits_total=5 hc_memory_op=2\n"),
            "{reply}"
        );
    }

    #[test]
    fn xenstore_verbs() {
        let (mut hv, mut store) = setup();
        assert_eq!(
            exec(&mut hv, &mut store, "xs-read memory/target").0,
            "ok 8192\n"
        );
        assert_eq!(
            exec(&mut hv, &mut store, "xs-read control/shutdown").0,
            "ok \"\"\n"
        );
        assert_eq!(
            exec(&mut hv, &mut store, "xs-write data/k a%20b"),
            ("ok\n".into(), Effect::Xenstore)
        );
        assert_eq!(
            exec(&mut hv, &mut store, "xs-read /local/domain/1/data/k").0,
            "ok a%20b\n"
        );
        assert_eq!(
            exec(&mut hv, &mut store, "xs-ls memory").0,
            "ok static-max target\n"
        );
        assert_eq!(exec(&mut hv, &mut store, "xs-rm data/k").0, "ok\n");
        assert_eq!(
            exec(&mut hv, &mut store, "xs-read data/k").0,
            "error ENOENT xenstore refused\n"
        );
        assert_eq!(
            exec(&mut hv, &mut store, "xs-read a//b").0,
            "error EINVAL xenstore refused\n"
        );
        assert_eq!(
            exec(&mut hv, &mut store, "shutdown poweroff"),
            ("ok\n".into(), Effect::Xenstore)
        );
        assert_eq!(
            exec(&mut hv, &mut store, "xs-read control/shutdown").0,
            "ok poweroff\n"
        );
    }

    #[test]
    fn memory_verbs_validate() {
        let (mut hv, mut store) = setup();
        assert_eq!(
            exec(&mut hv, &mut store, "mem-set 4096"),
            ("ok target_kib=4096\n".into(), Effect::Xenstore)
        );
        assert_eq!(store.control_read(DOM, "memory/target").unwrap(), b"4096");
        assert!(exec(&mut hv, &mut store, "mem-set 0")
            .0
            .starts_with("error EINVAL"));
        assert!(exec(&mut hv, &mut store, "mem-set 4097")
            .0
            .starts_with("error EINVAL"));
        assert!(exec(&mut hv, &mut store, "mem-set 32768")
            .0
            .starts_with("error EINVAL"));
        assert_eq!(
            exec(&mut hv, &mut store, "mem-max 32768").0,
            "ok max_kib=32768\n"
        );
        assert_eq!(hv.domain(DOM).unwrap().max_pages(), 8192);
        assert_eq!(
            exec(&mut hv, &mut store, "mem-set 32768").0,
            "ok target_kib=32768\n"
        );
        assert!(exec(&mut hv, &mut store, "mem-max 0")
            .0
            .starts_with("error EINVAL"));
        assert_eq!(store.control_read(DOM, "memory/target").unwrap(), b"32768");
    }

    #[test]
    fn fail_next_is_shown_by_info_and_cleared_by_off() {
        let (mut hv, mut store) = setup();
        let info = |hv: &mut Hypervisor, store: &mut Xenstore| exec(hv, store, "info").0;
        assert!(!info(&mut hv, &mut store).contains("fail_"));
        assert_eq!(
            exec(&mut hv, &mut store, "fail-next populate 3 100"),
            ("ok fail_populate=3:100\n".into(), Effect::None)
        );
        assert_eq!(
            exec(&mut hv, &mut store, "fail-next decrease 1 -EBUSY").0,
            "ok fail_decrease=1:-EBUSY\n"
        );
        assert!(info(&mut hv, &mut store).starts_with(
            "ok domid=1 state=running tot_pages=2048 max_pages=4096 fail_populate=3:100 fail_decrease=1:-EBUSY target_kib="
        ));
        // Bad arguments change nothing.
        for line in [
            "fail-next populate 0 1",
            "fail-next populate 2 -ENOPE",
            "fail-next decrease 1",
        ] {
            assert!(
                exec(&mut hv, &mut store, line)
                    .0
                    .starts_with("error EINVAL "),
                "{line}"
            );
        }
        assert!(info(&mut hv, &mut store).contains(" fail_populate=3:100 fail_decrease=1:-EBUSY "));
        // Faults for an op queue up, up to a limit.
        assert_eq!(
            exec(&mut hv, &mut store, "fail-next populate 2 -EINVAL").0,
            "ok fail_populate=3:100,2:-EINVAL\n"
        );
        assert!(info(&mut hv, &mut store)
            .contains(" fail_populate=3:100,2:-EINVAL fail_decrease=1:-EBUSY "));
        for _ in 0..6 {
            exec(&mut hv, &mut store, "fail-next populate 1 0");
        }
        assert!(exec(&mut hv, &mut store, "fail-next populate 1 0")
            .0
            .starts_with("error ENOSPC "));
        assert_eq!(
            hv.domain(DOM)
                .unwrap()
                .faults()
                .pending(FaultOp::Populate)
                .count(),
            crate::hv::MAX_PENDING
        );
        assert_eq!(exec(&mut hv, &mut store, "fail-next off").0, "ok\n");
        assert!(!info(&mut hv, &mut store).contains("fail_"));
        assert_eq!(
            hv.domain(DOM)
                .unwrap()
                .faults()
                .pending(FaultOp::Decrease)
                .count(),
            0
        );
    }

    #[test]
    fn bad_lines_get_error_replies() {
        let (mut hv, mut store) = setup();
        for (line, code) in [
            ("", "EPROTO"),
            ("nope", "ENOSYS"),
            ("xs-read", "EINVAL"),
            ("mem-set lots", "EINVAL"),
            ("xs-write a\u{1}b c", "EPROTO"),
        ] {
            let (reply, effect) = exec(&mut hv, &mut store, line);
            assert!(
                reply.starts_with(&format!("error {code} ")),
                "{line:?}: {reply}"
            );
            assert!(reply.ends_with('\n'));
            assert_eq!(effect, Effect::None);
        }
        assert_eq!(
            exec(&mut hv, &mut store, "destroy"),
            ("ok\n".into(), Effect::Destroy)
        );
        assert_eq!(exec(&mut hv, &mut store, "ping").0, "ok pong\n");
    }
}
