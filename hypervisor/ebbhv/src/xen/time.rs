//! The guest's clocks: the pvclock record (one TSC scale for the whole run, since
//! the TSC is stable), guest system time, and the wall clock at boot, as Xen
//! publishes them in shared_info and vcpu_info. The core's Xen platform reads them
//! through [`Clock`].

use ebbhv_core::abi::platform::{VcpuTimeInfo, WallClock, PVCLOCK_TSC_STABLE};
use ebbhv_core::platform::Clock;
use ebbhv_hal::clock::rdtsc;

/// The guest's clocks, fixed at boot.
#[derive(Clone, Copy, Debug)]
pub struct Clocks {
    /// TSC frequency.
    tsc_hz: u64,
    /// TSC value at guest system time 0.
    tsc_at_boot: u64,
    /// Unix time at guest system time 0.
    wall_at_boot: u64,
    /// pvclock multiplier.
    mul: u32,
    /// pvclock shift.
    shift: i8,
}

impl Clocks {
    /// Clocks for a guest whose system time 0 is TSC value `tsc_at_boot`, Unix
    /// time `wall_at_boot`.
    pub fn new(tsc_hz: u64, tsc_at_boot: u64, wall_at_boot: u64) -> Clocks {
        let (mul, shift) = ebbhv_x86::time::pvclock_scale(tsc_hz);
        Clocks {
            tsc_hz,
            tsc_at_boot,
            wall_at_boot,
            mul,
            shift,
        }
    }

    /// TSC frequency in Hz (at least 1).
    pub fn tsc_hz(&self) -> u64 {
        self.tsc_hz.max(1)
    }

    /// The TSC value at guest system time `ns` (saturating, so that a deadline a
    /// guest sets far in the future stays in the future).
    pub fn tsc_at(&self, ns: u64) -> u64 {
        self.tsc_at_boot
            .saturating_add(ebbhv_x86::time::ns_to_ticks(ns, self.tsc_hz))
    }

    /// TSC ticks as milliseconds.
    pub fn ticks_to_ms(&self, ticks: u64) -> u64 {
        ticks * 1000 / self.tsc_hz()
    }
}

impl Clock for Clocks {
    /// Guest system time now, in nanoseconds since boot.
    fn system_time_ns(&self) -> u64 {
        ebbhv_x86::time::pvclock_ns(rdtsc().wrapping_sub(self.tsc_at_boot), self.mul, self.shift)
    }

    /// The pvclock record for the guest's vCPU.
    fn time_info(&self) -> VcpuTimeInfo {
        VcpuTimeInfo {
            version: 2,
            tsc_timestamp: self.tsc_at_boot,
            system_time: 0,
            tsc_to_system_mul: self.mul,
            tsc_shift: self.shift,
            flags: PVCLOCK_TSC_STABLE,
            ..Default::default()
        }
    }

    /// The wall clock fields of shared_info.
    fn wall_clock(&self) -> WallClock {
        let wall = self.wall_at_boot;
        WallClock {
            wc_version: 2,
            wc_sec: wall as u32,
            wc_nsec: 0,
            wc_sec_hi: (wall >> 32) as u32,
        }
    }
}
