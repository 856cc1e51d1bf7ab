// SPDX-License-Identifier: GPL-2.0

//! The module's lifetime: what loading sets up and unloading takes down.

use kernel::prelude::*;

use crate::hotplug::Granularity;
use crate::xen::DomainType;

/// The loaded driver.
pub(crate) struct Ebb {
    domain: DomainType,
}

impl kernel::Module for Ebb {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let Some(domain) = DomainType::current() else {
            pr_err!("not running on Xen: nothing to balloon, refusing to load\n");
            return Err(ENODEV);
        };
        let granularity = Granularity::of_running_kernel();
        pr_info!(
            "loaded on a Xen {} domain; memory blocks of {} MiB\n",
            domain.name(),
            granularity.block_bytes >> 20
        );
        Ok(Self { domain })
    }
}

impl Drop for Ebb {
    fn drop(&mut self) {
        pr_info!("unloaded from the Xen {} domain\n", self.domain.name());
    }
}
