//! The guest's devices, all on ebbhv's serial lines: the console (console_io
//! output and input, and the port-0xE9 early console) on COM1, the control
//! channel on COM2, and the power requests that end the run.

pub mod console;
pub mod control;
pub mod power;

use ebbhv_core::abi::platform::consoleio;
use ebbhv_core::addr::CallerAddr;
use ebbhv_core::error::Errno;
use ebbhv_core::guest::GuestMemory;

use self::console::{ConsoleInput, ConsoleStream};
use self::control::ControlChannel;
use crate::guest_memory::GuestVirtMemory;

/// Most bytes one console_io call moves (Linux writes in smaller chunks).
const CONSOLE_CHUNK: usize = 4096;

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

    /// `HYPERVISOR_console_io`: a write goes to COM1 with the `[guest]` prefix (the
    /// caller looks at [`ConsoleStream::take_seen`] for the line that ends the
    /// boot), a read takes queued console input.
    pub fn console_io(
        &mut self,
        mem: &mut GuestVirtMemory<'_>,
        args: [u64; 5],
    ) -> Result<i64, Errno> {
        let len = (args[1] as usize).min(CONSOLE_CHUNK);
        let mut buf = [0u8; CONSOLE_CHUNK];
        match args[0] {
            consoleio::WRITE => {
                mem.read(CallerAddr(args[2]), &mut buf[..len])
                    .map_err(|_| Errno::EFAULT)?;
                self.console.write(&buf[..len]);
                Ok(0)
            }
            consoleio::READ => {
                let n = self.console_in.read(&mut buf[..len]);
                mem.write(CallerAddr(args[2]), &buf[..n])
                    .map_err(|_| Errno::EFAULT)?;
                Ok(n as i64)
            }
            _ => Err(Errno::ENOSYS),
        }
    }

    /// Ends both console streams' unfinished lines (before a report).
    pub fn flush(&mut self) {
        self.console.flush();
        self.e9.flush();
    }
}
