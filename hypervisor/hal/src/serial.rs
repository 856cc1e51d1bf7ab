//! The 16550 UARTs: COM1 for the hypervisor log and the guest console, one line
//! at a time, and COM2 for the control channel ([`Uart::com2`]).
//!
//! Every line starts with a prefix naming its source (`[hv]` for ebbhv, `[guest]`
//! for the guest's console_io and `[e9]` for the guest's port-0xE9 early console),
//! so a reader of the interleaved stream can tell them apart. Output and input are
//! polled: the UART is QEMU's 16550 and its interrupts stay off.
//!
//! Locking: the UART sits inside [`COM1`]'s spin lock; the panic and exception paths
//! use [`emergency_writer`], which bypasses it, because they may interrupt a holder.

use core::fmt::{self, Write};

use crate::port::{inb, outb};
use crate::sync::SpinLock;

const COM1_BASE: u16 = 0x3f8;
const COM2_BASE: u16 = 0x2f8;

/// The 16550 UART at a base port.
pub struct Uart {
    base: u16,
    /// The prefix of the line printed without its end yet, if any.
    open_line: Option<&'static str>,
}

impl Uart {
    /// The UART at `base`, which must be one of ebbhv's (COM1 or COM2).
    const fn new(base: u16) -> Uart {
        Uart {
            base,
            open_line: None,
        }
    }

    /// COM2, programmed: the control channel (COM1 is [`COM1`]).
    pub fn com2() -> Uart {
        let mut uart = Uart::new(COM2_BASE);
        uart.init();
        uart
    }

    /// Programs the UART for 115200 8N1, FIFOs on, interrupts off.
    fn init(&mut self) {
        let b = self.base;
        // SAFETY: the UART's registers (COM1 or COM2) are owned by ebbhv (never passed
        // to the guest) and this is the 16550's documented initialisation sequence.
        unsafe {
            outb(b + 1, 0x00);
            outb(b + 3, 0x80);
            outb(b, 0x01);
            outb(b + 1, 0x00);
            outb(b + 3, 0x03);
            outb(b + 2, 0xc7);
            outb(b + 4, 0x03);
        }
    }

    /// A received byte, if the UART holds one.
    pub fn get(&mut self) -> Option<u8> {
        // SAFETY: reading the line status register, and the receive buffer when it
        // has data, only takes the byte out of ebbhv's own UART.
        unsafe { (inb(self.base + 5) & 0x01 != 0).then(|| inb(self.base)) }
    }

    /// Sends one byte, waiting for room in the transmitter.
    pub fn put(&mut self, c: u8) {
        // SAFETY: reading the line status and writing the transmit holding register of
        // ebbhv's own UART have no effect beyond sending the byte.
        unsafe {
            while inb(self.base + 5) & 0x20 == 0 {}
            outb(self.base, c);
        }
    }
}

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.bytes() {
            if c == b'\n' {
                self.put(b'\r');
            }
            self.put(c);
        }
        Ok(())
    }
}

/// The log and console UART.
static COM1: SpinLock<Uart> = SpinLock::new(Uart::new(COM1_BASE));

/// Programs COM1; called once at boot before the first log line.
pub(crate) fn init() {
    COM1.lock().init();
}

/// A writer for the panic and exception paths, which must print even if they
/// interrupted a holder of [`COM1`]'s lock.
pub(crate) fn emergency_writer() -> Uart {
    Uart::new(COM1_BASE)
}

/// The next byte typed on COM1, if any (polled; the UART's interrupts stay off).
pub fn read_byte() -> Option<u8> {
    COM1.lock().get()
}

/// Prints one line with `prefix` (the implementation of [`crate::log!`]), after
/// ending any unfinished line of another stream.
pub fn print_line(prefix: &'static str, args: fmt::Arguments<'_>) {
    let mut u = COM1.lock();
    if u.open_line.take().is_some() {
        let _ = u.write_str("\n");
    }
    // Writing to the UART cannot fail.
    let _ = writeln!(u, "{prefix} {args}");
}

/// Prints a piece of a stream's output: `text` continues the stream's unfinished
/// line, or starts a new line with `prefix` (ending another stream's line first),
/// and `ends_line` finishes it. Carriage returns in `text` are dropped.
pub fn print_stream(prefix: &'static str, text: &[u8], ends_line: bool) {
    let mut u = COM1.lock();
    if u.open_line != Some(prefix) {
        if u.open_line.is_some() {
            let _ = u.write_str("\n");
        }
        let _ = write!(u, "{prefix} ");
    }
    for &c in text.iter().filter(|&&c| c != b'\r') {
        u.put(c);
    }
    if ends_line {
        let _ = u.write_str("\n");
        u.open_line = None;
    } else {
        u.open_line = Some(prefix);
    }
}

/// Ends the unfinished line of the stream with `prefix`, if it has one.
pub fn end_open_line(prefix: &'static str) {
    let mut u = COM1.lock();
    if u.open_line == Some(prefix) {
        let _ = u.write_str("\n");
        u.open_line = None;
    }
}

/// Logs one line of the hypervisor's own output (`[hv]`).
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::serial::print_line("[hv]", format_args!($($arg)*))
    };
}
