//! The guest's console on COM1: output printed as it comes, each line starting
//! with a prefix per source (`[guest]` for console_io writes, `[e9]` for bytes
//! written to port 0xE9, Linux's `earlyprintk=xen` fallback), and input queued for
//! console_io reads.
//!
//! Output is not held back until the end of a line, so a shell prompt shows up at
//! once and typed characters echo; `ebbhv_hal::serial` keeps the prefixes right when
//! a hypervisor line interrupts an unfinished guest line.
//!
//! Input is whatever arrives on COM1: ebbhv drains the UART into a bounded queue
//! when it polls ([`ConsoleInput::poll`]) and the guest takes bytes with
//! `CONSOLEIO_read`. When the queue is full ebbhv stops draining, the UART's FIFO
//! fills and QEMU stops reading its backend, so no byte is lost.

use alloc::collections::VecDeque;

use ebbhv_hal::serial::{end_open_line, print_stream, read_byte};

/// Most input bytes queued for the guest.
const MAX_INPUT: usize = 4096;

/// Console input waiting for the guest.
#[derive(Default)]
pub struct ConsoleInput {
    queue: VecDeque<u8>,
}

impl ConsoleInput {
    /// Moves received bytes from COM1 into the queue; returns whether any arrived.
    pub fn poll(&mut self) -> bool {
        let mut any = false;
        while self.queue.len() < MAX_INPUT {
            let Some(b) = read_byte() else { break };
            self.queue.push_back(b);
            any = true;
        }
        any
    }

    /// Takes up to `buf.len()` queued bytes; returns how many.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.queue.len());
        for (dst, src) in buf.iter_mut().zip(self.queue.drain(..n)) {
            *dst = src;
        }
        n
    }
}

/// One output stream with its prefix, and a phrase to watch for in its lines.
pub struct ConsoleStream {
    prefix: &'static str,
    watch: &'static [u8],
    /// How many bytes of `watch` the current line has matched so far.
    matched: usize,
    /// The current line contains `watch`.
    hit: bool,
    /// A finished line contained `watch`.
    seen: bool,
}

impl ConsoleStream {
    /// A stream printing with `prefix` that reports lines containing `watch`.
    pub const fn new(prefix: &'static str, watch: &'static [u8]) -> ConsoleStream {
        ConsoleStream {
            prefix,
            watch,
            matched: 0,
            hit: false,
            seen: false,
        }
    }

    /// Prints bytes (carriage returns dropped; each line gets the prefix).
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.track(*b);
        }
        for piece in bytes.split_inclusive(|&b| b == b'\n') {
            match piece.strip_suffix(b"\n") {
                Some(line) => print_stream(self.prefix, line, true),
                None => print_stream(self.prefix, piece, false),
            }
        }
    }

    /// Ends the stream's unfinished line, if it has one.
    pub fn flush(&mut self) {
        end_open_line(self.prefix);
    }

    /// Whether a finished line contained the watched phrase since the last call.
    pub fn take_seen(&mut self) -> bool {
        core::mem::take(&mut self.seen)
    }

    fn track(&mut self, b: u8) {
        if self.watch.is_empty() || self.seen {
            return;
        }
        if b == b'\n' {
            self.seen = self.hit;
            self.hit = false;
            self.matched = 0;
        } else if self.watch.get(self.matched) == Some(&b) {
            self.matched += 1;
            if self.matched == self.watch.len() {
                self.hit = true;
                self.matched = 0;
            }
        } else {
            self.matched = usize::from(self.watch.first() == Some(&b));
        }
    }
}
