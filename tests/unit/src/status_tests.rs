// SPDX-License-Identifier: GPL-2.0

//! The state and reason names users and the host read.

use crate::balloon::status::Progress;
use crate::balloon::status::Stall;

#[test]
fn state_names() {
    assert_eq!(Progress::Reached.name(), "reached");
    assert_eq!(Progress::Working.name(), "working");
    assert_eq!(Progress::Stalled(Stall::EnomemGuest).name(), "stalled");
    assert_eq!(Progress::GaveUp(Stall::EnomemGuest).name(), "gave_up");
    assert_eq!(Progress::NotOnlined.name(), "not_onlined");
}

#[test]
fn a_stall_is_the_reason_before_an_oom_deflate_or_a_clamp() {
    for (stall, name) in [
        (Stall::EnomemGuest, "enomem_guest"),
        (Stall::EnomemHypervisor, "enomem_hypervisor"),
        (Stall::HypervisorRefused, "hypervisor_refused"),
        (Stall::AddMemoryFailed, "add_memory_failed"),
    ] {
        assert_eq!(Progress::Stalled(stall).reason(true, true), name);
        assert_eq!(Progress::GaveUp(stall).reason(false, false), name);
    }
}

#[test]
fn an_oom_deflate_is_the_reason_before_a_clamp() {
    assert_eq!(Progress::Reached.reason(true, true), "oom_deflate");
    assert_eq!(Progress::Working.reason(true, false), "oom_deflate");
    assert_eq!(Progress::Reached.reason(false, true), "clamped");
    assert_eq!(Progress::NotOnlined.reason(false, true), "clamped");
    assert_eq!(Progress::Reached.reason(false, false), "none");
}
