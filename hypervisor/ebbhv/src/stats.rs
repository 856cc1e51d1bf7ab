//! Counters of what the guest made ebbhv do: VM exits by exit code, hypercalls by
//! (number, sub-op), timer events and time spent idle; and the `[hv]` summary
//! printed when the guest reaches /init and when the run ends.

use alloc::collections::BTreeMap;

use ebbhv_x86::vmcb::ExitCode;
use ebbhv_x86::xen::hypercall as nr;

use crate::guest::Machine;
use crate::log;

/// Number of exit-code slots: every code up to NPF (0x400) has its own.
pub const EXIT_SLOTS: usize = 0x401;

/// The counters.
pub struct Stats {
    /// Exits taken, by exit code (codes above 0x400 share the last slot).
    pub exits: [u64; EXIT_SLOTS],
    /// Hypercalls made, by (number, sub-op).
    pub hypercalls: BTreeMap<(u64, u64), u64>,
    /// Port I/O exits, by port.
    pub io_ports: BTreeMap<u16, u64>,
    /// VIRQ_TIMER events raised.
    pub timer_events: u64,
    /// TSC ticks the vCPU spent idle (HLT, SCHEDOP_block).
    pub idle_tsc: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            exits: [0; EXIT_SLOTS],
            hypercalls: BTreeMap::new(),
            io_ports: BTreeMap::new(),
            timer_events: 0,
            idle_tsc: 0,
        }
    }
}

impl Stats {
    /// Counts one exit.
    pub fn exit(&mut self, code: u64) {
        self.exits[(code as usize).min(EXIT_SLOTS - 1)] += 1;
    }

    /// Counts one hypercall.
    pub fn hypercall(&mut self, number: u64, sub: u64) {
        *self.hypercalls.entry((number, sub)).or_insert(0) += 1;
    }

    /// Exits in total.
    pub fn total_exits(&self) -> u64 {
        self.exits.iter().sum()
    }

    /// Hypercalls in total.
    pub fn total_hypercalls(&self) -> u64 {
        self.hypercalls.values().sum()
    }
}

/// A hypercall's name.
pub fn hypercall_name(number: u64) -> &'static str {
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
        _ => "?",
    }
}

/// Prints the counters as `[hv]` lines under `title`.
pub fn report(m: &Machine, title: &str) {
    let s = &m.stats;
    let now = m.system_time_ns();
    let hz = m.clocks.tsc_hz.max(1);
    let idle_ms = s.idle_tsc * 1000 / hz;
    // The TSC counts from the machine's reset, so this includes firmware and
    // ebbhv's own start.
    let machine_ms = crate::clock::rdtsc() / (hz / 1000).max(1);
    log!(
        "summary ({title}): machine time {machine_ms} ms, guest time {}.{:03} s, idle {idle_ms} ms, {} exits, {} hypercalls, {} timer events",
        now / 1_000_000_000,
        (now / 1_000_000) % 1000,
        s.total_exits(),
        s.total_hypercalls(),
        s.timer_events
    );
    let mut line = alloc::string::String::new();
    for (code, &n) in s.exits.iter().enumerate().filter(|(_, &n)| n > 0) {
        let name = match ExitCode::decode(code as u64) {
            Ok(c) => alloc::format!("{c:?}"),
            Err(raw) => alloc::format!("{raw:#x}"),
        };
        line.push_str(&alloc::format!(" {name}={n}"));
    }
    log!("  exits:{line}");
    line.clear();
    let mut ports: alloc::vec::Vec<(u64, u16)> = s.io_ports.iter().map(|(&p, &n)| (n, p)).collect();
    ports.sort_unstable_by(|a, b| b.cmp(a));
    for (n, port) in ports.iter().take(8) {
        line.push_str(&alloc::format!(" {port:#x}={n}"));
    }
    if !line.is_empty() {
        log!("  busiest I/O ports:{line}");
        line.clear();
    }
    for (&(number, sub), &n) in &s.hypercalls {
        line.push_str(&alloc::format!(" {}/{sub}={n}", hypercall_name(number)));
        if line.len() > 90 {
            log!("  hypercalls:{line}");
            line.clear();
        }
    }
    if !line.is_empty() {
        log!("  hypercalls:{line}");
    }
}
