//! The control channel on COM2: bytes in, one request line at a time, through the
//! core's [`ebbhv_core::control`] protocol, and the reply line back out.
//!
//! `scripts/run-hv.sh` connects COM2 to a Unix socket (`--control-socket`) that
//! `ebbctl` talks to. COM2 is polled like COM1's console input: before every guest
//! entry and every few milliseconds while the guest idles
//! ([`crate::vtimer::poll_devices`]). QEMU only hands the UART a byte when its
//! receive FIFO has room, so polling late loses nothing. A line longer than the
//! protocol allows is discarded up to its newline and answered with an error.
//!
//! Locking: the channel is only used from the exit loop, which owns the
//! [`Machine`].

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use ebbhv_core::control::exec::{execute, Context, Effect};
use ebbhv_core::control::protocol::{error_reply, MAX_LINE};
use ebbhv_x86::vmcb::ExitCode;

use crate::guest::Machine;
use crate::loader::DOMID;
use crate::power::{self, SHUTDOWN_POWEROFF};
use crate::serial::Uart;
use crate::{stats, xenstore};

const COM2_BASE: u16 = 0x2f8;
/// Most bytes taken from the UART in one poll, so a flood cannot hold up the guest.
const POLL_BUDGET: usize = 4096;

/// COM2 and the request line being received.
pub struct ControlChannel {
    uart: Uart,
    line: Vec<u8>,
    /// The current line outgrew [`MAX_LINE`]; it is dropped at its newline.
    overflow: bool,
}

impl ControlChannel {
    /// Programs COM2.
    pub fn new() -> ControlChannel {
        let mut uart = Uart::new(COM2_BASE);
        uart.init();
        ControlChannel {
            uart,
            line: Vec::new(),
            overflow: false,
        }
    }

    fn send(&mut self, reply: &str) {
        for b in reply.bytes() {
            self.uart.put(b);
        }
    }
}

/// Takes what COM2 received and executes every complete request line.
pub fn poll(m: &mut Machine) {
    for _ in 0..POLL_BUDGET {
        let Some(b) = m.control.uart.get() else {
            return;
        };
        let c = &mut m.control;
        match b {
            b'\n' if c.overflow => {
                c.overflow = false;
                c.line.clear();
                c.send(&error_reply("E2BIG", "line too long"));
            }
            b'\n' => {
                let line = core::mem::take(&mut c.line);
                handle(m, &line);
            }
            _ if c.line.len() > MAX_LINE => c.overflow = true,
            _ => c.line.push(b),
        }
    }
}

fn handle(m: &mut Machine, line: &[u8]) {
    let owned = counters(m);
    let counters: Vec<(&str, u64)> = owned.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let (reply, effect) = {
        let mut cx = Context {
            hv: &mut m.hv,
            store: &mut m.store,
            domain: DOMID,
            counters: &counters,
        };
        execute(line, &mut cx)
    };
    m.control.send(&reply);
    match effect {
        Effect::None => {}
        Effect::Xenstore if m.store.has_output(DOMID) => xenstore::serve(m),
        Effect::Xenstore => {}
        Effect::Destroy => {
            power::shutdown(m, SHUTDOWN_POWEROFF, "destroyed from the control channel")
        }
    }
}

/// The platform's counters for `info`: exits by kind, hypercalls by (name, sub-op),
/// timer events, idle and guest time.
fn counters(m: &Machine) -> Vec<(String, u64)> {
    let s = &m.stats;
    let mut out = Vec::new();
    out.push((String::from("exits"), s.total_exits()));
    for (code, &n) in s.exits.iter().enumerate().filter(|(_, &n)| n > 0) {
        let name = match ExitCode::decode(code as u64) {
            Ok(c) => format!("exit_{c:?}"),
            Err(raw) => format!("exit_{raw:#x}"),
        };
        out.push((name, n));
    }
    out.push((String::from("hypercalls"), s.total_hypercalls()));
    for (&(number, sub), &n) in &s.hypercalls {
        out.push((format!("hc_{}_{sub}", stats::hypercall_name(number)), n));
    }
    out.push((String::from("timer_events"), s.timer_events));
    let hz = m.clocks.tsc_hz.max(1);
    out.push((String::from("idle_ms"), s.idle_tsc * 1000 / hz));
    out.push((String::from("guest_ms"), m.system_time_ns() / 1_000_000));
    out
}
