//! What the core needs the platform to do: frame contents, clocks and logging.
//!
//! The core decides which frames to scrub or copy, and what the guest's Xen
//! platform hypercalls ([`xen`]) write where, but cannot touch memory (it has no
//! `unsafe` and no mapping of machine memory) or read a clock. The platform
//! implements these traits over its direct map, its TSC and its serial log; host
//! tests use the fakes in `crate::testing`.

pub mod xen;

use core::fmt;

use crate::abi::platform::{VcpuTimeInfo, WallClock};
use crate::addr::Mfn;

/// Operations on the contents of whole machine frames.
pub trait FrameOps {
    /// Fills the frame with zeroes (scrubbing before the frame changes hands).
    fn zero(&mut self, frame: Mfn);

    /// Copies the 4 KiB contents of `from` into `to` (replacing a guest frame that is
    /// being offlined). The platform calls this with the owning domain paused.
    fn copy(&mut self, from: Mfn, to: Mfn);
}

/// Byte access inside one machine frame, by copy: the guest's shared_info page and
/// vcpu_info, where the platform state publishes clocks and event bits.
///
/// The core only asks for ranges inside one frame (`offset + len <= 4096`) of the
/// guest's own memory; the platform may treat anything else as a hypervisor bug.
pub trait FrameBytes {
    /// Fills `buf` from `frame` at `offset`.
    fn read(&mut self, frame: Mfn, offset: usize, buf: &mut [u8]);

    /// Writes `data` into `frame` at `offset`.
    fn write(&mut self, frame: Mfn, offset: usize, data: &[u8]);

    /// The little-endian `u64` at `offset` of `frame`.
    fn read_u64(&mut self, frame: Mfn, offset: usize) -> u64 {
        let mut b = [0u8; 8];
        self.read(frame, offset, &mut b);
        u64::from_le_bytes(b)
    }

    /// Writes `value` little-endian at `offset` of `frame`.
    fn write_u64(&mut self, frame: Mfn, offset: usize, value: u64) {
        self.write(frame, offset, &value.to_le_bytes());
    }
}

/// The guest's clocks, as the platform keeps them (the core cannot read a TSC).
pub trait Clock {
    /// Guest system time now, in nanoseconds since boot (the pvclock's time base,
    /// in which the guest sets its timer deadlines).
    fn system_time_ns(&self) -> u64;

    /// The pvclock record for the guest's vCPU.
    fn time_info(&self) -> VcpuTimeInfo;

    /// The wall clock fields of shared_info.
    fn wall_clock(&self) -> WallClock;
}

/// The hypervisor's log, for the events worth a line (a guest registering where
/// its vcpu_info lives, setting an HVM parameter).
pub trait Log {
    /// Logs one line.
    fn log(&mut self, line: fmt::Arguments<'_>);
}
