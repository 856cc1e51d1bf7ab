// SPDX-License-Identifier: GPL-2.0

//! Every file of the balloon's sysfs device, declared once: [`FILES`] gives each its
//! name, directory, value, whether and how it is written, and whether the xenstore
//! status line (`data/ebb-state`) carries it. The C shim creates the attributes from
//! this table (`rust/sysfs.rs`), reads and writes reach it by index, and the status
//! line is the table's `status_line` files in its order.
//!
//! The C driver's files keep their names, directories, modes and units; ebb's own go
//! under `ebb/`.
//!
//! Pure logic: this file uses nothing but `core`, so that `tests/unit` runs its tests
//! on the host.

use core::ffi::CStr;
use core::fmt;

use super::target::kib_to_pages;
use super::target::pages_to_kib;
use super::target::parse_bool;
use super::target::parse_bytes;
use super::target::parse_number;
use super::target::parse_u32;
use super::target::Invalid;
use super::target::Parsed;
use super::target::PAGE_BYTES;

/// A directory of the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dir {
    /// `xen_memory0/` itself.
    Device,
    /// `info/`, the C driver's read-only figures.
    Info,
    /// `ebb/`, ebb's status.
    Ebb,
}

impl Dir {
    /// The subdirectory's name, or `None` for the device's own.
    pub(crate) const fn name(self) -> Option<&'static CStr> {
        match self {
            Self::Device => None,
            Self::Info => Some(c"info"),
            Self::Ebb => Some(c"ebb"),
        }
    }
}

/// What the files show, read at once under the balloon's lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Status {
    /// `ebb/state`.
    pub(crate) state: &'static str,
    /// `ebb/reason`.
    pub(crate) reason: &'static str,
    /// The pages the domain holds.
    pub(crate) current_pages: usize,
    /// The (clamped) target.
    pub(crate) target_pages: usize,
    /// The target as last requested, before clamping.
    pub(crate) requested_pages: usize,
    /// Pages in the balloon (all low memory on x86-64).
    pub(crate) ballooned_pages: usize,
    /// The lowest target ebb accepts now.
    pub(crate) floor_pages: usize,
    /// The highest target ebb can reach now.
    pub(crate) max_pages: usize,
    /// Seconds until the next retry.
    pub(crate) schedule_delay_s: u32,
    /// The longest retry delay.
    pub(crate) max_schedule_delay_s: u32,
    /// Consecutive attempts without progress.
    pub(crate) retry_count: u32,
    /// Attempts before giving up (0: never).
    pub(crate) max_retry_count: u32,
    /// Pages are zeroed before the hypervisor gets them.
    pub(crate) scrub_pages: bool,
    /// Reservation hypercalls made.
    pub(crate) hypercalls: u64,
    /// Pages given to the hypervisor.
    pub(crate) pages_out: u64,
    /// Pages taken back from the hypervisor.
    pub(crate) pages_in: u64,
    /// Attempts that made no progress.
    pub(crate) failures: u64,
    /// Pages given back to the guest on OOM.
    pub(crate) oom_deflated_pages: u64,
    /// Malformed `memory/target` values the host wrote (each refused).
    pub(crate) rejected_targets: u64,
    /// Pages lost to frames the hypervisor reported broken.
    pub(crate) lost_pages: u64,
    /// Memory blocks ebb added.
    pub(crate) hotplug_blocks: usize,
    /// Added blocks that are onlined.
    pub(crate) hotplug_onlined: usize,
    /// Added blocks that could not be offlined for removal since the target changed.
    pub(crate) hotplug_unremovable: usize,
    /// Pages of ebb's blocks that hotplug had the hypervisor back.
    pub(crate) hotplug_backed_pages: usize,
    /// Pages of onlined blocks kept offline, unbacked.
    pub(crate) hotplug_ballooned_pages: usize,
    /// How long a block's removal may take before it is given up, in ms.
    pub(crate) remove_timeout_ms: u32,
}

/// A file's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    /// A count, in the unit the file's name says.
    Number(u64),
    /// A state or reason.
    Name(&'static str),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(number) => write!(f, "{number}"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// What reading a file shows.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Show {
    /// One value and a newline.
    Value(fn(&Status) -> Value),
    /// One line per hot-added block (`hotplug_block_list`), written by hotplug.
    BlockList,
}

/// What a write to a writable file asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Setting {
    /// A new target, in pages.
    Target(usize),
    /// `max_schedule_delay`, in seconds (at least 1).
    MaxScheduleDelay(u32),
    /// `max_retry_count`.
    MaxRetryCount(u32),
    /// `scrub_pages`.
    ScrubPages(bool),
    /// `ebb/remove_timeout_ms`, in milliseconds (at least 1).
    RemoveTimeout(u32),
}

/// Parses a write to a file.
pub(crate) type Parse = fn(&[u8]) -> Parsed<Setting>;

/// One file of the device.
#[derive(Clone, Copy, Debug)]
pub(crate) struct File {
    /// The file's name.
    pub(crate) name: &'static CStr,
    /// Its directory.
    pub(crate) dir: Dir,
    /// What reading it shows.
    pub(crate) show: Show,
    /// How a write is parsed (the file is writable, mode 0644), or `None` (0444).
    pub(crate) store: Option<Parse>,
    /// The xenstore status line carries it, as `name=value`.
    pub(crate) status_line: bool,
}

impl File {
    const fn read_only(name: &'static CStr, dir: Dir, value: fn(&Status) -> Value) -> Self {
        Self {
            name,
            dir,
            show: Show::Value(value),
            store: None,
            status_line: false,
        }
    }

    const fn writable(name: &'static CStr, value: fn(&Status) -> Value, store: Parse) -> Self {
        Self::writable_in(name, Dir::Device, value, store)
    }

    const fn writable_in(
        name: &'static CStr,
        dir: Dir,
        value: fn(&Status) -> Value,
        store: Parse,
    ) -> Self {
        Self {
            store: Some(store),
            ..Self::read_only(name, dir, value)
        }
    }

    const fn in_status_line(self) -> Self {
        Self {
            status_line: true,
            ..self
        }
    }
}

/// `pages` shown in KiB.
fn kib(pages: usize) -> Value {
    Value::Number(pages_to_kib(pages))
}

/// A counter, delay or flag shown as it is (a flag as 0 or 1).
fn count(value: impl Into<u64>) -> Value {
    Value::Number(value.into())
}

/// A count of pages or blocks shown as it is.
fn number(value: usize) -> Value {
    Value::Number(value as u64)
}

/// The device's files: those of the status line first, in its order, then the rest.
pub(crate) static FILES: [File; 30] = [
    File::read_only(c"state", Dir::Ebb, |s| Value::Name(s.state)).in_status_line(),
    File::read_only(c"reason", Dir::Ebb, |s| Value::Name(s.reason)).in_status_line(),
    File::read_only(c"current_kb", Dir::Info, |s| kib(s.current_pages)).in_status_line(),
    File::writable(
        c"target_kb",
        |s| kib(s.target_pages),
        |input| Ok(Setting::Target(kib_to_pages(parse_number(input)?))),
    )
    .in_status_line(),
    File::read_only(c"requested_kb", Dir::Ebb, |s| kib(s.requested_pages)).in_status_line(),
    File::read_only(c"ballooned_pages", Dir::Ebb, |s| number(s.ballooned_pages)).in_status_line(),
    File::read_only(c"hypercalls", Dir::Ebb, |s| count(s.hypercalls)).in_status_line(),
    File::read_only(c"pages_out", Dir::Ebb, |s| count(s.pages_out)).in_status_line(),
    File::read_only(c"pages_in", Dir::Ebb, |s| count(s.pages_in)).in_status_line(),
    File::read_only(c"failures", Dir::Ebb, |s| count(s.failures)).in_status_line(),
    File::read_only(c"oom_deflated_pages", Dir::Ebb, |s| {
        count(s.oom_deflated_pages)
    })
    .in_status_line(),
    File::read_only(c"rejected_targets", Dir::Ebb, |s| count(s.rejected_targets)).in_status_line(),
    File::read_only(c"lost_pages", Dir::Ebb, |s| count(s.lost_pages)),
    File::read_only(c"hotplug_blocks", Dir::Ebb, |s| number(s.hotplug_blocks)).in_status_line(),
    File::read_only(c"hotplug_onlined", Dir::Ebb, |s| number(s.hotplug_onlined)).in_status_line(),
    File::read_only(c"hotplug_unremovable", Dir::Ebb, |s| {
        number(s.hotplug_unremovable)
    })
    .in_status_line(),
    File::read_only(c"hotplug_backed_pages", Dir::Ebb, |s| {
        number(s.hotplug_backed_pages)
    })
    .in_status_line(),
    File::read_only(c"hotplug_ballooned_pages", Dir::Ebb, |s| {
        number(s.hotplug_ballooned_pages)
    })
    .in_status_line(),
    // Bytes; a write takes a K/M/G/T/P/E suffix.
    File::writable(
        c"target",
        |s| Value::Number((s.target_pages as u64).saturating_mul(PAGE_BYTES)),
        |input| {
            let pages = parse_bytes(input)? / PAGE_BYTES;
            Ok(Setting::Target(
                usize::try_from(pages).map_err(|_| Invalid)?,
            ))
        },
    ),
    File::read_only(c"schedule_delay", Dir::Device, |s| {
        count(s.schedule_delay_s)
    }),
    File::writable(
        c"max_schedule_delay",
        |s| count(s.max_schedule_delay_s),
        |input| match parse_u32(input)? {
            0 => Err(Invalid),
            seconds => Ok(Setting::MaxScheduleDelay(seconds)),
        },
    ),
    File::read_only(c"retry_count", Dir::Device, |s| count(s.retry_count)),
    File::writable(
        c"max_retry_count",
        |s| count(s.max_retry_count),
        |input| Ok(Setting::MaxRetryCount(parse_u32(input)?)),
    ),
    File::writable(
        c"scrub_pages",
        |s| count(s.scrub_pages),
        |input| Ok(Setting::ScrubPages(parse_bool(input)?)),
    ),
    File::read_only(c"low_kb", Dir::Info, |s| kib(s.ballooned_pages)),
    // x86-64 has no highmem: every ballooned page is low memory.
    File::read_only(c"high_kb", Dir::Info, |_| Value::Number(0)),
    File::read_only(c"floor_kb", Dir::Ebb, |s| kib(s.floor_pages)),
    File::read_only(c"max_kb", Dir::Ebb, |s| kib(s.max_pages)),
    // A block's removal that takes longer is given up (the block stays, unremovable
    // until the target changes): an offline can retry a page that never moves forever.
    File::writable_in(
        c"remove_timeout_ms",
        Dir::Ebb,
        |s| count(s.remove_timeout_ms),
        |input| match parse_u32(input)? {
            0 => Err(Invalid),
            ms => Ok(Setting::RemoveTimeout(ms)),
        },
    ),
    File {
        name: c"hotplug_block_list",
        dir: Dir::Ebb,
        show: Show::BlockList,
        store: None,
        status_line: false,
    },
];

/// The status line: `name=value` for each file of [`FILES`] that it carries,
/// separated by spaces.
pub(crate) struct StatusLine<'a>(pub(crate) &'a Status);

impl fmt::Display for StatusLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut separator = "";
        for file in FILES.iter().filter(|file| file.status_line) {
            let Show::Value(value) = file.show else {
                continue;
            };
            let name = file.name.to_str().map_err(|_| fmt::Error)?;
            write!(f, "{separator}{name}={}", value(self.0))?;
            separator = " ";
        }
        Ok(())
    }
}
