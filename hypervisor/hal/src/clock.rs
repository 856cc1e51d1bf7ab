//! The machine's clocks: the TSC rate, calibrated against the PIT, and the wall
//! clock from the CMOS RTC. Both are read once at boot; the guest's pvclock and
//! wall clock are derived from them.
//!
//! Under QEMU's TCG the TSC runs at the host's rate and no CPUID leaf gives it, so
//! ebbhv counts TSC ticks across a 50 ms one-shot of PIT channel 2 (gated through
//! port 0x61, whose bit 5 shows the channel's output).

use ebbhv_x86::time::{from_bcd, RtcTime};

use crate::port::{inb, outb};

const PIT_HZ: u64 = 1_193_182;
const PIT_CALIBRATION_COUNT: u16 = 59_659; // 50 ms

/// Reads the TSC.
pub fn rdtsc() -> u64 {
    // SAFETY: RDTSC is unprivileged, available on every x86-64 CPU and has no side
    // effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Measures the TSC frequency in Hz against PIT channel 2.
pub fn calibrate_tsc() -> u64 {
    // SAFETY: the PIT (ports 0x42, 0x43) and the port-0x61 gate belong to ebbhv (the
    // guest never reaches them); channel 2 drives only the PC speaker, which stays
    // off (bit 1 of port 0x61 cleared).
    let ticks = unsafe {
        let gate = inb(0x61);
        outb(0x61, (gate & !0x02) | 0x01);
        outb(0x43, 0xb0); // channel 2, lobyte/hibyte, mode 0, binary
        outb(0x42, PIT_CALIBRATION_COUNT as u8);
        outb(0x42, (PIT_CALIBRATION_COUNT >> 8) as u8);
        let t0 = rdtsc();
        while inb(0x61) & 0x20 == 0 {
            core::hint::spin_loop();
        }
        let t1 = rdtsc();
        outb(0x61, gate);
        t1 - t0
    };
    ticks * PIT_HZ / u64::from(PIT_CALIBRATION_COUNT)
}

fn cmos(reg: u8) -> u8 {
    // SAFETY: the CMOS index/data ports belong to ebbhv; selecting a register and
    // reading it has no other effect (bit 7 of the index, NMI disable, stays clear).
    unsafe {
        outb(0x70, reg);
        inb(0x71)
    }
}

/// Reads the CMOS RTC (taken to run in UTC) as seconds since the epoch.
pub fn rtc_unix_seconds() -> u64 {
    while cmos(0x0a) & 0x80 != 0 {
        core::hint::spin_loop();
    }
    let status_b = cmos(0x0b);
    let binary = status_b & 0x04 != 0;
    let conv = |v: u8| if binary { u32::from(v) } else { from_bcd(v) };
    let raw_hour = cmos(0x04);
    let pm = status_b & 0x02 == 0 && raw_hour & 0x80 != 0;
    let mut hour = conv(raw_hour & 0x7f);
    if status_b & 0x02 == 0 {
        hour %= 12;
        if pm {
            hour += 12;
        }
    }
    let century = match conv(cmos(0x32)) {
        c @ 19..=21 => c,
        _ => 20,
    };
    RtcTime {
        year: century * 100 + conv(cmos(0x09)),
        month: conv(cmos(0x08)),
        day: conv(cmos(0x07)),
        hour,
        minute: conv(cmos(0x02)),
        second: conv(cmos(0x00)),
    }
    .unix_seconds()
}
