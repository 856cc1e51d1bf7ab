// SPDX-License-Identifier: GPL-2.0

//! Where the balloon stands and why, as users and the host read it (`ebb/state`,
//! `ebb/reason`, the xenstore status line).
//!
//! Pure logic: this file uses nothing but `core`, so that `tests/unit` runs its tests
//! on the host.

/// Why a batch or a growth step stopped short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stall {
    /// The guest had no free page to give without reclaim storms.
    EnomemGuest,
    /// The hypervisor had no frame to back a page (a populate handled nothing).
    EnomemHypervisor,
    /// The hypervisor refused the call or part of it.
    HypervisorRefused,
    /// The kernel refused to add a memory block.
    AddMemoryFailed,
}

impl Stall {
    /// The name shown in sysfs and xenstore.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::EnomemGuest => "enomem_guest",
            Self::EnomemHypervisor => "enomem_hypervisor",
            Self::HypervisorRefused => "hypervisor_refused",
            Self::AddMemoryFailed => "add_memory_failed",
        }
    }
}

/// Where the balloon stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// The domain holds the (clamped) target.
    Reached,
    /// Moving towards it.
    Working,
    /// The last attempt made no progress; retrying after `schedule_delay`.
    Stalled(Stall),
    /// `max_retry_count` attempts made no progress; waiting for a new target.
    GaveUp(Stall),
    /// A memory block ebb added is not onlined (`auto_online_blocks` is `offline`);
    /// waiting for a user to online it or for a new target.
    NotOnlined,
}

impl Progress {
    /// The name shown in `ebb/state` and the status line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Reached => "reached",
            Self::Working => "working",
            Self::Stalled(_) => "stalled",
            Self::GaveUp(_) => "gave_up",
            Self::NotOnlined => "not_onlined",
        }
    }

    /// Why the target is not (exactly) what was asked: a stall, an OOM deflate since
    /// the target was set (`oom_deflated`), a clamp (`clamped`), or `none`.
    pub(crate) fn reason(self, oom_deflated: bool, clamped: bool) -> &'static str {
        match self {
            Self::Stalled(stall) | Self::GaveUp(stall) => stall.name(),
            _ if oom_deflated => "oom_deflate",
            _ if clamped => "clamped",
            _ => "none",
        }
    }
}
