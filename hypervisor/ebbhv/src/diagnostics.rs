//! Diagnostics: counters of what the guest made ebbhv do (VM exits by exit code,
//! with the longest time one took, hypercalls by (number, sub-op) and those refused
//! to user space, port I/O, timer events and time spent idle),
//! the `[hv]` summary printed when the guest reaches /init and when the run ends,
//! the counters `ebbctl info` shows, and the things logged once.
//!
//! Every table here has a fixed bound however the guest chooses its arguments:
//! hypercalls are keyed by [`CountKey`] (at most [`CountKey::COUNT`] keys), port
//! I/O by port for the first [`MAX_IO_PORTS`] ports seen and in one bucket after
//! that, and at most [`MAX_LOGGED_ONCE`] distinct things are logged once.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use ebbhv_core::abi::hypercall as nr;
use ebbhv_core::hypercall::count::CountKey;
use ebbhv_core::platform::Clock;
use ebbhv_hal::{heap, log};
use ebbhv_x86::vmcb::ExitCode;

use crate::xen::time::Clocks;

/// Something logged only the first time it happens.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Once {
    /// A hypercall (number, sub-op) answered `-ENOSYS`.
    Hypercall(u64, u64),
    /// RDMSR of an MSR that reads as 0.
    Rdmsr(u32),
    /// WRMSR of an MSR that ignores writes.
    Wrmsr(u32),
    /// String I/O on a port, skipped.
    StringIo(u16),
}

/// Distinct things logged once; later ones are not logged.
pub const MAX_LOGGED_ONCE: usize = 64;

/// Ports counted on their own.
pub const MAX_IO_PORTS: usize = 64;

/// The run's diagnostics.
///
/// # Invariants
///
/// `logged_once` holds at most [`MAX_LOGGED_ONCE`] keys.
#[derive(Default)]
pub struct Diagnostics {
    stats: Stats,
    logged_once: Vec<Once>,
}

impl Diagnostics {
    /// The counters, to count.
    pub fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }

    /// Logs `what` the first time `key` happens, for the first
    /// [`MAX_LOGGED_ONCE`] keys; says once that it stops there.
    pub fn log_once(&mut self, key: Once, what: core::fmt::Arguments<'_>) {
        if self.logged_once.contains(&key) {
            return;
        }
        if self.logged_once.len() < MAX_LOGGED_ONCE {
            // INVARIANT: pushed only below the bound.
            self.logged_once.push(key);
            log!("{what}");
        } else {
            self.stats.not_logged += 1;
            if self.stats.not_logged == 1 {
                log!("{MAX_LOGGED_ONCE} distinct things logged once: no more are logged");
            }
        }
    }

    /// The platform's counters for `ebbctl info`: exits by kind, hypercalls by
    /// (name, sub-op), timer events, idle and guest time.
    pub fn counters(&self, clocks: &Clocks) -> Vec<(String, u64)> {
        let s = &self.stats;
        let mut out = Vec::new();
        out.push((String::from("exits"), s.total_exits()));
        for (code, &n) in s.exits.iter().enumerate().filter(|(_, &n)| n > 0) {
            let name = match ExitCode::decode(code as u64) {
                Ok(c) => format!("exit_{c:?}"),
                Err(raw) => format!("exit_{raw:#x}"),
            };
            out.push((name, n));
        }
        for (code, &ticks) in s.exit_max_tsc.iter().enumerate().filter(|(_, &t)| t > 0) {
            let name = match ExitCode::decode(code as u64) {
                Ok(c) => format!("exit_max_us_{c:?}"),
                Err(raw) => format!("exit_max_us_{raw:#x}"),
            };
            out.push((name, ticks_to_us(ticks, clocks.tsc_hz())));
        }
        out.push((String::from("hypercalls"), s.total_hypercalls()));
        for (key, &n) in &s.hypercalls {
            out.push((format!("hc_{}", key_name(*key)), n));
        }
        out.push((String::from("hc_refused_user"), s.refused_hypercalls));
        out.push((String::from("hc_continuations"), s.continuations));
        out.push((String::from("timer_events"), s.timer_events));
        s.p2m_requests
            .counters("ctl_p2m_requests", clocks.tsc_hz(), &mut out);
        s.remerge_passes
            .counters("remerge_passes", clocks.tsc_hz(), &mut out);
        out.push((String::from("hv_pool_bytes"), heap::pool_bytes() as u64));
        out.push((
            String::from("hv_pool_free_bytes"),
            heap::free_bytes() as u64,
        ));
        out.push((String::from("idle_ms"), clocks.ticks_to_ms(s.idle_tsc)));
        out.push((
            String::from("guest_ms"),
            clocks.system_time_ns() / 1_000_000,
        ));
        out
    }
}

/// Number of exit-code slots: every code up to NPF (0x400) has its own.
const EXIT_SLOTS: usize = 0x401;

/// Microseconds in `ticks` of a TSC running at `hz`.
fn ticks_to_us(ticks: u64, hz: u64) -> u64 {
    (u128::from(ticks) * 1_000_000 / u128::from(hz.max(1))) as u64
}

/// The counters.
pub struct Stats {
    /// Exits taken, by exit code (codes above 0x400 share the last slot).
    exits: [u64; EXIT_SLOTS],
    /// The longest time ebbhv spent handling one exit, by exit code (TSC ticks,
    /// idling excluded): what the bounded work per exit comes to.
    exit_max_tsc: [u64; EXIT_SLOTS],
    /// Hypercalls made, by their bounded key.
    hypercalls: BTreeMap<CountKey, u64>,
    /// Hypercalls refused because the guest made them from user space.
    refused_hypercalls: u64,
    /// The call a continuation re-issues (the VMMCALL's RIP, number and rewritten
    /// arguments) until the guest makes it: that VMMCALL is the same call going on,
    /// counted in `continuations`, not a new one.
    continued: Option<(u64, u64, [u64; 5])>,
    /// VMMCALLs that went on with a call preempted at the per-exit budget.
    continuations: u64,
    /// Port I/O exits, by port, for the first [`MAX_IO_PORTS`] ports.
    io_ports: BTreeMap<u16, u64>,
    /// Port I/O exits on the other ports.
    io_other_ports: u64,
    /// Things not logged once because [`MAX_LOGGED_ONCE`] were.
    not_logged: u64,
    /// VIRQ_TIMER events raised.
    timer_events: u64,
    /// TSC ticks the vCPU spent idle (HLT, SCHEDOP_block).
    idle_tsc: u64,
    /// Control requests that changed the p2m (page offline, exchange), each a
    /// pause of the guest: the core's work and the nested table sync.
    p2m_requests: Pauses,
    /// Passes that merged split superpages again, each with its sync.
    remerge_passes: Pauses,
}

/// How often the guest was paused for one kind of work, and for how long.
#[derive(Clone, Copy, Default)]
pub struct Pauses {
    count: u64,
    total_tsc: u64,
    max_tsc: u64,
}

impl Pauses {
    fn record(&mut self, ticks: u64) {
        self.count += 1;
        self.total_tsc = self.total_tsc.saturating_add(ticks);
        self.max_tsc = self.max_tsc.max(ticks);
    }

    /// `NAME`, `NAME_us_total` and `NAME_us_max`.
    fn counters(&self, name: &str, hz: u64, out: &mut Vec<(String, u64)>) {
        out.push((String::from(name), self.count));
        out.push((format!("{name}_us_total"), ticks_to_us(self.total_tsc, hz)));
        out.push((format!("{name}_us_max"), ticks_to_us(self.max_tsc, hz)));
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            exits: [0; EXIT_SLOTS],
            exit_max_tsc: [0; EXIT_SLOTS],
            hypercalls: BTreeMap::new(),
            refused_hypercalls: 0,
            continued: None,
            continuations: 0,
            io_ports: BTreeMap::new(),
            io_other_ports: 0,
            not_logged: 0,
            timer_events: 0,
            idle_tsc: 0,
            p2m_requests: Pauses::default(),
            remerge_passes: Pauses::default(),
        }
    }
}

/// The slot that counts exits with `code`: the last one takes every code beyond.
fn exit_slot(code: u64) -> usize {
    usize::try_from(code).map_or(EXIT_SLOTS - 1, |c| c.min(EXIT_SLOTS - 1))
}

impl Stats {
    /// Counts one exit.
    pub fn exit(&mut self, code: u64) {
        if let Some(count) = self.exits.get_mut(exit_slot(code)) {
            *count += 1;
        }
    }

    /// Notes that handling one exit with `code` took `ticks` (idling excluded).
    pub fn exit_took(&mut self, code: u64, ticks: u64) {
        if let Some(slot) = self.exit_max_tsc.get_mut(exit_slot(code)) {
            *slot = (*slot).max(ticks);
        }
    }

    /// TSC ticks spent idle so far.
    pub fn idle_ticks(&self) -> u64 {
        self.idle_tsc
    }

    /// Counts one port I/O exit.
    pub fn io_port(&mut self, port: u16) {
        if let Some(n) = self.io_ports.get_mut(&port) {
            *n += 1;
        } else if self.io_ports.len() < MAX_IO_PORTS {
            self.io_ports.insert(port, 1);
        } else {
            self.io_other_ports += 1;
        }
    }

    /// Counts one VIRQ_TIMER.
    pub fn timer_event(&mut self) {
        self.timer_events += 1;
    }

    /// Adds TSC ticks spent idle.
    pub fn idle(&mut self, ticks: u64) {
        self.idle_tsc += ticks;
    }

    /// Notes a control request that changed the p2m and paused the guest `ticks`.
    pub fn p2m_request(&mut self, ticks: u64) {
        self.p2m_requests.record(ticks);
    }

    /// Notes a superpage merge pass that paused the guest `ticks`.
    pub fn remerge_pass(&mut self, ticks: u64) {
        self.remerge_passes.record(ticks);
    }

    /// Counts one hypercall by its number and first argument.
    /// Counts the VMMCALL at `rip` with `number` and `args`: one hypercall, unless it
    /// re-issues a call that a continuation preempted ([`Stats::continued`]), so that
    /// the counts are of calls the guest made, whatever the budget per exit.
    pub fn hypercall(&mut self, rip: u64, number: u64, args: [u64; 5]) {
        // An interrupt handler's call may come first: only the re-issue ends it.
        if self.continued == Some((rip, number, args)) {
            self.continued = None;
            self.continuations += 1;
            return;
        }
        *self
            .hypercalls
            .entry(CountKey::new(number, args[0]))
            .or_insert(0) += 1;
    }

    /// Notes that the call at `rip` was preempted and goes on as `number` with `args`.
    pub fn continued(&mut self, rip: u64, number: u64, args: [u64; 5]) {
        self.continued = Some((rip, number, args));
    }

    /// Counts one hypercall refused with `-EPERM` (made from user space).
    pub fn refused_hypercall(&mut self) {
        self.refused_hypercalls += 1;
    }

    /// Exits in total.
    pub fn total_exits(&self) -> u64 {
        self.exits.iter().sum()
    }

    /// Hypercalls in total, refused ones included.
    pub fn total_hypercalls(&self) -> u64 {
        self.hypercalls.values().sum::<u64>() + self.refused_hypercalls
    }
}

/// A key as `name_sub`, `name` for a call without sub-ops, with `other` for a
/// bucket.
fn key_name(key: CountKey) -> String {
    let name = hypercall_name(key.number);
    match key.sub {
        _ if !key.has_sub_op() => String::from(name),
        CountKey::OTHER => format!("{name}_other"),
        sub => format!("{name}_{sub}"),
    }
}

/// A hypercall's name.
fn hypercall_name(number: u64) -> &'static str {
    match number {
        nr::MEMORY_OP => "memory_op",
        nr::SET_TIMER_OP => "set_timer_op",
        nr::XEN_VERSION => "xen_version",
        nr::CONSOLE_IO => "console_io",
        nr::GRANT_TABLE_OP => "grant_table_op",
        nr::VM_ASSIST => "vm_assist",
        nr::VCPU_OP => "vcpu_op",
        nr::SCHED_OP => "sched_op",
        nr::EVENT_CHANNEL_OP => "event_channel_op",
        nr::PHYSDEV_OP => "physdev_op",
        nr::HVM_OP => "hvm_op",
        nr::SYSCTL => "sysctl",
        nr::DOMCTL => "domctl",
        _ => "other",
    }
}

/// Prints the counters as `[hv]` lines under `title`.
pub fn report(diag: &Diagnostics, clocks: &Clocks, title: &str) {
    let s = &diag.stats;
    let now = clocks.system_time_ns();
    let hz = clocks.tsc_hz();
    let idle_ms = clocks.ticks_to_ms(s.idle_tsc);
    // The TSC counts from the machine's reset, so this includes firmware and
    // ebbhv's own start.
    let machine_ms = ebbhv_hal::clock::rdtsc() / (hz / 1000).max(1);
    log!(
        "summary ({title}): machine time {machine_ms} ms, guest time {}.{:03} s, idle {idle_ms} ms, {} exits, {} hypercalls, {} timer events",
        now / 1_000_000_000,
        (now / 1_000_000) % 1000,
        s.total_exits(),
        s.total_hypercalls(),
        s.timer_events
    );
    let mut line = String::new();
    for (code, &n) in s.exits.iter().enumerate().filter(|(_, &n)| n > 0) {
        let name = match ExitCode::decode(code as u64) {
            Ok(c) => format!("{c:?}"),
            Err(raw) => format!("{raw:#x}"),
        };
        line.push_str(&format!(" {name}={n}"));
    }
    log!("  exits:{line}");
    line.clear();
    let mut ports: Vec<(u64, u16)> = s.io_ports.iter().map(|(&p, &n)| (n, p)).collect();
    ports.sort_unstable_by(|a, b| b.cmp(a));
    for (n, port) in ports.iter().take(8) {
        line.push_str(&format!(" {port:#x}={n}"));
    }
    if !line.is_empty() {
        log!("  busiest I/O ports:{line}");
        line.clear();
    }
    if s.io_other_ports > 0 {
        log!("  I/O on other ports: {}", s.io_other_ports);
    }
    for (key, &n) in &s.hypercalls {
        line.push_str(&format!(" {}={n}", key_name(*key)));
        if line.len() > 90 {
            log!("  hypercalls:{line}");
            line.clear();
        }
    }
    if s.refused_hypercalls > 0 {
        line.push_str(&format!(" refused_user={}", s.refused_hypercalls));
    }
    if !line.is_empty() {
        log!("  hypercalls:{line}");
    }
}
