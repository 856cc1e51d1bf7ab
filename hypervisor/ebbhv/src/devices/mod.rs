//! The guest's devices, all on ebbhv's serial lines: the console (console_io
//! output and input, and the port-0xE9 early console) on COM1, the control
//! channel on COM2, and the power requests that end the run.

pub mod console;
pub mod control;
pub mod power;

use ebbhv_core::platform::xen::console_io::Console;

use self::console::{ConsoleInput, ConsoleStream};
use self::control::ControlChannel;

/// The devices.
pub struct Devices {
    /// console_io output.
    console: ConsoleStream,
    /// Port 0xE9 output.
    e9: ConsoleStream,
    /// Console input for console_io reads.
    console_in: ConsoleInput,
    /// The control channel (COM2).
    control: ControlChannel,
}

impl Devices {
    /// The devices of a new guest (programs COM2).
    pub fn new() -> Devices {
        Devices {
            console: ConsoleStream::new("[guest]", b"Run /init"),
            e9: ConsoleStream::new("[e9]", b""),
            console_in: ConsoleInput::default(),
            control: ControlChannel::new(),
        }
    }

    /// console_io output.
    pub fn console(&mut self) -> &mut ConsoleStream {
        &mut self.console
    }

    /// Port 0xE9 output.
    pub fn e9(&mut self) -> &mut ConsoleStream {
        &mut self.e9
    }

    /// Console input.
    pub fn console_in(&mut self) -> &mut ConsoleInput {
        &mut self.console_in
    }

    /// The control channel.
    pub fn control(&mut self) -> &mut ControlChannel {
        &mut self.control
    }

    /// Ends both console streams' unfinished lines (before a report).
    pub fn flush(&mut self) {
        self.console.flush();
        self.e9.flush();
    }
}

/// The streams `HYPERVISOR_console_io` moves bytes between (the core's
/// [`console_io`](ebbhv_core::platform::xen::console_io::console_io)): a write
/// goes to COM1 with the `[guest]` prefix (the caller looks at
/// [`ConsoleStream::take_seen`] for the line that ends the boot), a read takes
/// queued console input.
impl Console for Devices {
    fn write(&mut self, bytes: &[u8]) {
        self.console.write(bytes);
    }

    fn read(&mut self, buf: &mut [u8]) -> usize {
        self.console_in.read(buf)
    }
}
