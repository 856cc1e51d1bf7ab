// SPDX-License-Identifier: GPL-2.0

//! Targets: what the user and the host may ask for, parsed strictly, and the limits
//! that a requested target is clamped to.
//!
//! The C driver parses with `simple_strtoull` in base 0, which takes "12abc" as 12 and
//! "-1" as a huge number. ebb accepts what the C driver accepts when the input is
//! well formed (a number in base 0 as the kernel's `kstrtoull(s, 0)` reads it: decimal,
//! `0x` hex or `0` octal; `target` also with a K/M/G/T/P/E suffix as `memparse`
//! reads it; an optional trailing newline) and rejects everything else with `EINVAL`.
//!
//! Pure logic: this file uses nothing but `core`, so that `tests/unit` runs its tests
//! on the host.

/// Bytes per guest page (x86-64; `interfaces.rs` checks it against the kernel's).
pub(crate) const PAGE_SIZE: usize = 4096;
/// Bytes per guest page.
pub(crate) const PAGE_BYTES: u64 = PAGE_SIZE as u64;
/// KiB per guest page.
pub(crate) const PAGE_KIB: u64 = PAGE_BYTES / 1024;

/// A value that is not what the file or node takes; writers get `EINVAL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Invalid;

/// The result of parsing.
pub(crate) type Parsed<T> = core::result::Result<T, Invalid>;

/// Strips one trailing newline, as `echo` writes it.
fn trim_newline(input: &[u8]) -> &[u8] {
    input.strip_suffix(b"\n").unwrap_or(input)
}

/// Parses an unsigned number in base 0: `0x`/`0X` hex, a leading `0` octal, else
/// decimal; nothing else may follow the digits.
fn parse_base0(text: &[u8]) -> Parsed<u64> {
    let (digits, radix) = match text {
        [b'0', b'x' | b'X', hex @ ..] => (hex, 16),
        [b'0', octal @ ..] if !octal.is_empty() => (octal, 8),
        _ => (text, 10),
    };
    if digits.is_empty() {
        return Err(Invalid);
    }
    digits.iter().try_fold(0u64, |value, &digit| {
        let digit = char::from(digit).to_digit(radix).ok_or(Invalid)?;
        value
            .checked_mul(u64::from(radix))
            .and_then(|value| value.checked_add(u64::from(digit)))
            .ok_or(Invalid)
    })
}

/// Parses a number the host wrote to xenstore (`memory/target`, `memory/static-max`):
/// decimal digits only, as the toolstack writes them, that fit in a `u64`. Unlike the
/// C driver's `xenbus_scanf("%llu")`, which reads "12abc" as 12, anything else is
/// refused.
pub(crate) fn parse_xenstore_number(text: &[u8]) -> Parsed<u64> {
    if text.is_empty() {
        return Err(Invalid);
    }
    text.iter().try_fold(0u64, |value, &digit| {
        if !digit.is_ascii_digit() {
            return Err(Invalid);
        }
        value
            .checked_mul(10)
            .and_then(|value| value.checked_add(u64::from(digit - b'0')))
            .ok_or(Invalid)
    })
}

/// Parses an unsigned number (`target_kb`, `max_schedule_delay`, ...).
pub(crate) fn parse_number(input: &[u8]) -> Parsed<u64> {
    parse_base0(trim_newline(input))
}

/// Parses an unsigned decimal number that fits in a `u32`.
pub(crate) fn parse_u32(input: &[u8]) -> Parsed<u32> {
    u32::try_from(parse_number(input)?).map_err(|_| Invalid)
}

/// Parses a byte count with an optional binary suffix (`target`): "536870912",
/// "512M", "1g".
pub(crate) fn parse_bytes(input: &[u8]) -> Parsed<u64> {
    let input = trim_newline(input);
    let (digits, shift) = match input.split_last() {
        Some((suffix, digits)) if suffix.is_ascii_alphabetic() => {
            let shift = match suffix.to_ascii_uppercase() {
                b'K' => 10,
                b'M' => 20,
                b'G' => 30,
                b'T' => 40,
                b'P' => 50,
                b'E' => 60,
                _ => return Err(Invalid),
            };
            (digits, shift)
        }
        _ => (input, 0),
    };
    let value = parse_base0(digits)?;
    value.checked_mul(1u64 << shift).ok_or(Invalid)
}

/// Parses a boolean as `kstrtobool` does for the C driver's `scrub_pages`.
pub(crate) fn parse_bool(input: &[u8]) -> Parsed<bool> {
    match trim_newline(input) {
        b"1" | b"y" | b"Y" | b"yes" | b"on" | b"On" | b"ON" => Ok(true),
        b"0" | b"n" | b"N" | b"no" | b"off" | b"Off" | b"OFF" => Ok(false),
        _ => Err(Invalid),
    }
}

/// Converts KiB to whole pages, rounding down.
pub(crate) fn kib_to_pages(kib: u64) -> usize {
    usize::try_from(kib / PAGE_KIB).unwrap_or(usize::MAX)
}

/// Converts pages to KiB.
pub(crate) fn pages_to_kib(pages: usize) -> u64 {
    (pages as u64).saturating_mul(PAGE_KIB)
}

/// The range a target is clamped to, in pages of the domain's reservation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// The lowest target: the pages the guest cannot give (kernel image, firmware,
    /// memmap: the reservation minus the managed pages) plus a working reserve of an
    /// eighth of the managed pages, at least 64 MiB; never above the highest target.
    floor_pages: usize,
    /// Free pages that ballooning out never takes, so that the guest keeps room to
    /// work and the OOM killer is never the balloon's doing: a 32nd of the managed
    /// pages, at least 16 MiB.
    pub(crate) reserve_pages: usize,
    /// The most ebb can hold whatever the hypervisor allows: the reservation at load,
    /// or the end of the hotplug region when there is one.
    reachable_pages: usize,
}

/// Working reserve kept below any target: 64 MiB.
const MIN_RESERVE_PAGES: usize = (64 << 20) / PAGE_SIZE;
/// Free memory ballooning out leaves at least: 16 MiB.
const MIN_FREE_RESERVE_PAGES: usize = (16 << 20) / PAGE_SIZE;

impl Limits {
    /// Limits for a domain that holds `reservation` pages of which the kernel manages
    /// `managed`, and can grow to `reachable` pages (by memory hotplug; the
    /// reservation without it).
    pub(crate) fn new(reservation: usize, managed: usize, reachable: usize) -> Self {
        let unmanaged = reservation.saturating_sub(managed);
        let reserve = (managed / 8).max(MIN_RESERVE_PAGES);
        Self {
            floor_pages: unmanaged.saturating_add(reserve),
            reserve_pages: (managed / 32).max(MIN_FREE_RESERVE_PAGES),
            reachable_pages: reachable.max(reservation),
        }
    }

    /// The highest target while the hypervisor's maximum is `maximum` (`None`: it
    /// did not say, and ebb stays within what it held at load).
    pub(crate) fn max_pages(&self, maximum: Option<usize>) -> usize {
        maximum.map_or(self.reachable_pages, |maximum| {
            self.reachable_pages.min(maximum)
        })
    }

    /// The lowest target while the hypervisor's maximum is `maximum`.
    pub(crate) fn floor_pages(&self, maximum: Option<usize>) -> usize {
        self.floor_pages.min(self.max_pages(maximum))
    }

    /// The target ebb moves to for `requested` pages while the hypervisor's maximum
    /// is `maximum`, and whether it differs.
    pub(crate) fn clamp(&self, requested: usize, maximum: Option<usize>) -> (usize, bool) {
        let target = requested.clamp(self.floor_pages(maximum), self.max_pages(maximum));
        (target, target != requested)
    }
}
