//! The control channel on COM2: bytes in, one request line at a time, for the
//! core's [`ebbhv_core::control`] protocol, and the reply line back out.
//!
//! `scripts/run-hv.sh` connects COM2 to a Unix socket (`--control-socket`) that
//! `ebbctl` talks to. COM2 is polled like COM1's console input: before every guest
//! entry and every few milliseconds while the guest idles. QEMU only hands the
//! UART a byte when its receive FIFO has room, so polling late loses nothing. A
//! line longer than the protocol allows is discarded up to its newline and
//! answered with an error. Executing a request needs the whole machine (the core,
//! the store, the counters), so the machine does it with each line
//! [`ControlChannel::next_line`] returns.

use alloc::vec::Vec;

use ebbhv_core::control::protocol::{error_reply, MAX_LINE};
use ebbhv_hal::serial::Uart;

/// Most bytes taken from the UART in one poll, so a flood cannot hold up the guest.
pub const POLL_BUDGET: usize = 4096;

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
        ControlChannel {
            uart: Uart::com2(),
            line: Vec::new(),
            overflow: false,
        }
    }

    /// The next complete request line COM2 received, taking at most `budget`
    /// bytes (counted down) from the UART.
    pub fn next_line(&mut self, budget: &mut usize) -> Option<Vec<u8>> {
        while *budget > 0 {
            *budget -= 1;
            let b = self.uart.get()?;
            match b {
                b'\n' if self.overflow => {
                    self.overflow = false;
                    self.line.clear();
                    self.send(&error_reply("E2BIG", "line too long"));
                }
                b'\n' => return Some(core::mem::take(&mut self.line)),
                _ if self.line.len() > MAX_LINE => self.overflow = true,
                _ => self.line.push(b),
            }
        }
        None
    }

    /// Sends a reply line.
    pub fn send(&mut self, reply: &str) {
        for b in reply.bytes() {
            self.uart.put(b);
        }
    }
}
