//! `HYPERVISOR_console_io`: the guest's console, a byte stream each way. The
//! platform keeps the streams ([`Console`]: output lines on its serial port,
//! queued input); this file moves at most [`CONSOLE_CHUNK`] bytes per call between
//! them and the caller's buffer.

use crate::abi::platform::consoleio;
use crate::addr::CallerAddr;
use crate::error::Errno;
use crate::guest::GuestMemory;

/// Most bytes one console_io call moves (Linux writes in smaller chunks): the
/// bound on what one call copies, whatever length the guest passes.
pub const CONSOLE_CHUNK: usize = 4096;

/// The console's two streams, as the platform keeps them.
pub trait Console {
    /// Takes console output the guest wrote.
    fn write(&mut self, bytes: &[u8]);

    /// Fills `buf` with queued console input; returns how many bytes it took.
    fn read(&mut self, buf: &mut [u8]) -> usize;
}

/// `HYPERVISOR_console_io(cmd, count, buffer)`: a write passes the caller's
/// bytes to `console`, a read returns how many bytes of input it copied.
pub fn console_io(
    mem: &mut dyn GuestMemory,
    console: &mut dyn Console,
    args: [u64; 5],
) -> Result<i64, Errno> {
    let len = usize::try_from(args[1]).map_or(CONSOLE_CHUNK, |n| n.min(CONSOLE_CHUNK));
    let mut whole = [0u8; CONSOLE_CHUNK];
    // `len` is at most the chunk, so never the empty default.
    let buf = whole.get_mut(..len).unwrap_or_default();
    match args[0] {
        consoleio::WRITE => {
            mem.read(CallerAddr(args[2]), buf)
                .map_err(|_| Errno::EFAULT)?;
            console.write(buf);
            Ok(0)
        }
        consoleio::READ => {
            // A console that claims more than it was given is clamped, not trusted.
            let n = console.read(buf);
            let input = buf.get(..n).unwrap_or(&*buf);
            mem.write(CallerAddr(args[2]), input)
                .map_err(|_| Errno::EFAULT)?;
            Ok(input.len() as i64)
        }
        _ => Err(Errno::ENOSYS),
    }
}
