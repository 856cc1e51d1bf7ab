// SPDX-License-Identifier: GPL-2.0

//! Memory hotplug: growing the guest past its boot size in whole memory blocks.

use crate::memory;

/// The granularity in which ebb adds and removes guest memory.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Granularity {
    /// Bytes per memory block.
    pub(crate) block_bytes: usize,
}

impl Granularity {
    /// Reads the running kernel's memory block size.
    pub(crate) fn of_running_kernel() -> Self {
        Self {
            block_bytes: memory::block_size_bytes(),
        }
    }
}
