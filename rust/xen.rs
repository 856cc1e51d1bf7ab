// SPDX-License-Identifier: GPL-2.0

//! The Xen guest environment: whether the kernel runs as a Xen domain, and which kind.

use crate::rust::bindings;

/// The kind of Xen domain the kernel runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DomainType {
    /// Paravirtualised: the guest keeps its own physical-to-machine map.
    Pv,
    /// PVH: an HVM container with nested paging; the hypervisor keeps the p2m.
    Pvh,
    /// Fully virtualised HVM with PV drivers.
    Hvm,
}

impl DomainType {
    /// Returns the domain type of the running kernel, or `None` when not on Xen.
    pub(crate) fn current() -> Option<Self> {
        // SAFETY: the helpers only read `xen_domain_type` and `xen_pvh`, which are set
        // once during early boot and never written afterwards.
        let (on_xen, pv, pvh) = unsafe {
            (
                bindings::ebb_helper_xen_domain(),
                bindings::ebb_helper_xen_pv_domain(),
                bindings::ebb_helper_xen_pvh_domain(),
            )
        };
        match (on_xen, pv, pvh) {
            (false, _, _) => None,
            (true, true, _) => Some(Self::Pv),
            (true, false, true) => Some(Self::Pvh),
            (true, false, false) => Some(Self::Hvm),
        }
    }

    /// Whether reservation hypercalls may use 2 MiB extents. Not on PV: the guest's
    /// own p2m maps each 4 KiB page to a machine frame of its own, so a 2 MiB guest
    /// range has no single machine extent to release, and every page's p2m entry and
    /// kernel mapping must be updated one by one.
    pub(crate) fn superpage_extents(self) -> bool {
        self != Self::Pv
    }

    /// The name Xen's tools use for this domain type.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Pv => "PV",
            Self::Pvh => "PVH",
            Self::Hvm => "HVM",
        }
    }
}
