// SPDX-License-Identifier: GPL-2.0

//! Host tests of ebb.ko's pure logic.
//!
//! The module's pure files use nothing but `core`, so the same files compile here as
//! in the module, under the same module paths (`crate::balloon::target`, ...): the
//! module's root reaches them by plain `mod`, this crate with `#[path]` on the two
//! inline modules that stand for the module's `balloon` and `hotplug` folders. Only the
//! tests are this crate's own, one file per pure file.

// The module's build checks for unused code; here only the tests use the files.
#![allow(dead_code)]

#[path = "../../../xen-balloon/balloon"]
mod balloon {
    pub(crate) mod files;
    pub(crate) mod policy;
    pub(crate) mod status;
    pub(crate) mod target;
}

#[path = "../../../hotplug"]
mod hotplug {
    pub(crate) mod block;
    pub(crate) mod extents;
    pub(crate) mod region;
}

#[cfg(test)]
mod block_tests;
#[cfg(test)]
mod extents_tests;
#[cfg(test)]
mod files_tests;
#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod region_tests;
#[cfg(test)]
mod status_tests;
#[cfg(test)]
mod target_tests;
