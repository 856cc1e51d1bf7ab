//! Time arithmetic for the guest's clocks: the pvclock scale for a TSC frequency
//! and the CMOS RTC's calendar time as seconds since the epoch.

/// The pvclock multiplier and shift for a TSC running at `tsc_hz`, such that
/// `ns = ((delta << shift) * mul) >> 32` (with a negative shift meaning a right
/// shift), `mul` normalised to `[2^31, 2^32)` for precision.
pub fn pvclock_scale(tsc_hz: u64) -> (u32, i8) {
    let mut scale: u128 = (1_000_000_000u128 << 32) / u128::from(tsc_hz.max(1));
    let mut shift: i8 = 0;
    while scale >= 1 << 32 {
        scale >>= 1;
        shift += 1;
    }
    while scale < 1 << 31 {
        scale <<= 1;
        shift -= 1;
    }
    (scale as u32, shift)
}

/// Applies a pvclock scale to a TSC delta, as the guest does.
pub fn pvclock_ns(delta: u64, mul: u32, shift: i8) -> u64 {
    let d = if shift >= 0 {
        delta << shift
    } else {
        delta >> -shift
    };
    ((u128::from(d) * u128::from(mul)) >> 32) as u64
}

/// Ticks of a `hz` clock in `ns` nanoseconds (saturating at `u64::MAX`).
pub fn ns_to_ticks(ns: u64, hz: u64) -> u64 {
    let t = u128::from(ns) * u128::from(hz) / 1_000_000_000;
    t.min(u128::from(u64::MAX)) as u64
}

/// The ratio of two clocks measured over the same interval (`b_ticks` of clock b
/// while clock a counted `a_ticks`), as 32.32 fixed point: multiply a count of b
/// by it and shift right by 32 to get a count of a.
pub fn ratio_32_32(a_ticks: u64, b_ticks: u64) -> u64 {
    let r = (u128::from(a_ticks) << 32) / u128::from(b_ticks.max(1));
    r.min(u128::from(u64::MAX)) as u64
}

/// Applies a [`ratio_32_32`] to a count (saturating).
pub fn apply_ratio(count: u64, ratio: u64) -> u64 {
    ((u128::from(count) * u128::from(ratio)) >> 32).min(u128::from(u64::MAX)) as u64
}

/// A calendar time as the CMOS RTC gives it (already converted from BCD and 12-hour
/// form), full four-digit year.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtcTime {
    /// Year, e.g. 2026.
    pub year: u32,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=59.
    pub second: u32,
}

/// Decodes a BCD byte.
pub fn from_bcd(v: u8) -> u32 {
    u32::from(v >> 4) * 10 + u32::from(v & 0xf)
}

impl RtcTime {
    /// Seconds since 1970-01-01 00:00:00 UTC (the RTC is taken to run in UTC).
    pub fn unix_seconds(&self) -> u64 {
        // Days from civil (Howard Hinnant's algorithm).
        let (y, m) = if self.month <= 2 {
            (self.year as i64 - 1, self.month + 9)
        } else {
            (self.year as i64, self.month - 3)
        };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * i64::from(m) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        (days * 86_400 + i64::from(self.hour * 3600 + self.minute * 60 + self.second)).max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_converts_ticks_to_nanoseconds() {
        for hz in [
            1_000_000_000u64,
            2_994_000_000,
            3_600_000_000,
            100_000_000,
            25_000_000,
        ] {
            let (mul, shift) = pvclock_scale(hz);
            assert!(mul >= 1 << 31);
            let one_second = pvclock_ns(hz, mul, shift);
            assert!(
                (999_999_990..=1_000_000_000).contains(&one_second),
                "{hz}: {one_second}"
            );
        }
    }

    #[test]
    fn tick_conversions() {
        assert_eq!(ns_to_ticks(1_000_000_000, 2_450_000_000), 2_450_000_000);
        assert_eq!(ns_to_ticks(1_500, 1_000_000_000), 1_500);
        assert_eq!(ns_to_ticks(u64::MAX, u64::MAX), u64::MAX, "saturates");
        // An APIC timer at 1 GHz against a 2.45 GHz TSC, measured over 10 ms.
        let r = ratio_32_32(10_000_000, 24_500_000);
        let apic = apply_ratio(2_450_000_000, r);
        assert!((999_999_000..=1_000_000_000).contains(&apic), "{apic}");
        assert_eq!(
            ratio_32_32(5, 0),
            5 << 32,
            "a zero interval does not divide by 0"
        );
        assert_eq!(apply_ratio(u64::MAX, u64::MAX), u64::MAX, "saturates");
    }

    #[test]
    fn unix_time_from_calendar() {
        let t = |year, month, day, hour, minute, second| {
            RtcTime {
                year,
                month,
                day,
                hour,
                minute,
                second,
            }
            .unix_seconds()
        };
        assert_eq!(t(1970, 1, 1, 0, 0, 0), 0);
        assert_eq!(t(2000, 3, 1, 0, 0, 0), 951_868_800);
        assert_eq!(t(2026, 11, 23, 10, 30, 15), 1_795_429_815);
        assert_eq!(from_bcd(0x59), 59);
    }
}
