// SPDX-License-Identifier: GPL-2.0

//! Guest pages whose frames the hypervisor reports broken (a machine check on the
//! host, `ebbctl mem-offline --broken`): their contents are lost, and the hypervisor
//! has unmapped them rather than hand the guest a page of wrong data.
//!
//! ebbhv names each such guest frame in xenstore, `control/broken-frames/<gfn>`
//! (decimal), once the guest has said it handles them (`control/feature-broken-frames`
//! = 1); without that it crashes the domain, which would have no way to learn that
//! the page is gone. For each node ebb hands the page to Linux's memory-failure
//! handling (the processes that map it get SIGBUS, a clean page-cache page is dropped,
//! a free page leaves the allocator), gives the gfn back to the hypervisor, which then
//! offlines the frame, and removes the node. The balloon counts the page as lost
//! (`ebb/lost_pages`) and brings the domain back to its target with a fresh frame.
//!
//! A page the kernel cannot take out of use (its own data) stays mapped nowhere: the
//! domain crashes if it touches it, as a machine would on an unrecoverable error. A
//! page of a block ebb hot-added stays the guest's, poisoned, until the block is
//! removed and its extent given back whole. Only a translated guest (PVH, HVM) is told,
//! as its gfn is its pfn.

use core::sync::atomic::AtomicBool;
use core::sync::atomic::Ordering;

use kernel::page::PAGE_SIZE;
use kernel::prelude::*;
use kernel::str::CString;
use kernel::sync::Arc;

use crate::balloon::Balloon;
use crate::rust::memory;
use crate::rust::xen_reservation;
use crate::rust::xen_reservation::ExtentOrder;
use crate::rust::xenstore;
use crate::rust::xenstore::WatchHandler;

/// Where the hypervisor names the guest frames that lost their contents.
pub(crate) const BROKEN_FRAMES_NODE: &CStr = c"control/broken-frames";

/// The longest xenstore reply: the most a directory listing can hold.
const LISTING_BYTES: usize = 4096;

/// The handler of [`BROKEN_FRAMES_NODE`].
pub(crate) struct LostFrames {
    balloon: Arc<Balloon>,
    /// `control/feature-broken-frames` says 1.
    announced: AtomicBool,
}

impl LostFrames {
    /// A handler that tells `balloon` of each page lost.
    pub(crate) fn new(balloon: Arc<Balloon>) -> Result<Arc<Self>> {
        Ok(Arc::new(
            Self {
                balloon,
                announced: AtomicBool::new(false),
            },
            GFP_KERNEL,
        )?)
    }

    /// Says the guest handles lost frames, once xenstore is up.
    fn announce(&self) {
        if self.announced.load(Ordering::Acquire) {
            return;
        }
        if !memory::memory_failure_supported() {
            pr_info!(
                "the kernel has no CONFIG_MEMORY_FAILURE: not offering to handle broken frames\n"
            );
            return;
        }
        match xenstore::write(c"control", c"feature-broken-frames", c"1") {
            Ok(()) => self.announced.store(true, Ordering::Release),
            // Under libxl the toolstack owns these nodes; a real Xen tells a guest of
            // a broken page with a virtual machine check instead.
            Err(err) => pr_info!(
                "cannot write control/feature-broken-frames ({:?}): not offering to handle broken frames\n",
                err
            ),
        }
    }

    /// Says the guest no longer handles lost frames (unload): from now on the
    /// hypervisor crashes the domain instead of naming a lost frame nobody reads.
    pub(crate) fn withdraw(&self) {
        if self.announced.swap(false, Ordering::AcqRel) {
            if let Err(err) = xenstore::write(c"control", c"feature-broken-frames", c"0") {
                pr_warn!("cannot write control/feature-broken-frames: {:?}\n", err);
            }
        }
    }

    /// Handles every frame the hypervisor names now.
    fn handle_all(&self) {
        let Ok(mut listing) = KVec::from_elem(0u8, LISTING_BYTES, GFP_KERNEL) else {
            pr_err!(
                "no memory to list control/broken-frames: lost frames wait for the next change\n"
            );
            return;
        };
        let names = match xenstore::directory(c"control", c"broken-frames", &mut listing) {
            Ok(names) => names,
            // Nothing lost yet.
            Err(err) if err == ENOENT => return,
            Err(err) => {
                pr_err!("cannot list control/broken-frames: {:?}\n", err);
                return;
            }
        };
        for name in names {
            self.handle(name);
        }
    }

    /// Takes the page named `name` out of use and gives its frame back, then
    /// removes the node.
    fn handle(&self, name: &CStr) {
        // xenstore allows only ASCII letters, digits and `-/_@` in a path.
        let Ok(text) = name.to_str() else {
            pr_err!(
                "control/broken-frames/{:?}: not a node name xenstore allows\n",
                name
            );
            return;
        };
        match text.parse::<usize>() {
            Ok(pfn) if is_ram(pfn) => self.take_out_of_use(pfn),
            _ => pr_err!(
                "control/broken-frames/{} names no guest RAM page: ignored\n",
                text
            ),
        }
        let removed = CString::try_from_fmt(fmt!("broken-frames/{}", text))
            .map_err(|_| ENOMEM)
            .and_then(|node| xenstore::rm(c"control", &node));
        if let Err(err) = removed {
            pr_warn!("cannot remove control/broken-frames/{}: {:?}\n", text, err);
        }
    }

    fn take_out_of_use(&self, pfn: usize) {
        match memory::memory_failure(pfn) {
            Ok(()) => {}
            Err(err) if err == EHWPOISON => {
                pr_info!("pfn {:#x} was already out of use (poisoned)\n", pfn);
                return;
            }
            Err(err) => {
                pr_err!(
                    "pfn {:#x} lost its contents and the kernel cannot take it out of use ({:?}): \
                     it stays unmapped, and the domain crashes if it touches it\n",
                    pfn,
                    err
                );
                return;
            }
        }
        if self
            .balloon
            .hotplug
            .as_ref()
            .is_some_and(|hotplug| hotplug.contains(pfn))
        {
            pr_info!(
                "pfn {:#x} lost its contents: out of use; its frame goes back with its hot-added block\n",
                pfn
            );
            return;
        }
        let mut frames = [pfn];
        match xen_reservation::decrease_reservation(&mut frames, ExtentOrder::Page) {
            Ok(1) => {
                self.balloon.pages_lost(1);
                pr_info!(
                    "pfn {:#x} lost its contents: out of use and given back to the hypervisor\n",
                    pfn
                );
            }
            Ok(_) | Err(_) => pr_err!(
                "pfn {:#x} is out of use but the hypervisor did not take its frame back\n",
                pfn
            ),
        }
    }
}

/// Whether `pfn` is a page of the guest's System RAM.
fn is_ram(pfn: usize) -> bool {
    pfn.checked_mul(PAGE_SIZE)
        .is_some_and(|start| memory::ram_present(start as u64, PAGE_SIZE as u64))
}

impl WatchHandler for LostFrames {
    fn node_changed(&self, _node: &'static CStr) {
        self.announce();
        if self.announced.load(Ordering::Acquire) {
            self.handle_all();
        }
    }
}
