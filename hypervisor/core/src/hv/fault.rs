//! Fault injection for the reservation hypercalls: the host (`ebbctl fail-next`) makes
//! a domain's next populate_physmap or decrease_reservation calls stop short or fail,
//! so that a guest's handling of what a real hypervisor may answer can be tested.
//!
//! And for page offline: the next offlines of frames the domain uses find no free
//! frame for the copy (`offline-copy`), so that they stay offline pending until the
//! guest gives the frame back, as Xen's do. With a heap of free frames this is the
//! only deterministic way a test reaches that state on a running guest.
//!
//! A cut call is a real partial success: it does its first `done` extents completely
//! (through the same [`Hypervisor::populate`] / [`Hypervisor::decrease`] as any call)
//! and returns their count, touching nothing after them. A failed call returns the
//! errno before doing anything, as Xen does when XSM denies a reservation.
//!
//! Faults for an op queue up (at most [`MAX_PENDING`]): a test can cut one call and
//! then fail the next ones, to see the guest's state between them. Only the domain's
//! own calls count (the control plane's go through untouched), and only those that
//! start at extent 0: a continuation belongs to the call it continues, which is cut at
//! the same extent.

use alloc::collections::VecDeque;

use super::Hypervisor;
use crate::addr::DomId;
use crate::error::Errno;

/// The operations that can be made to fail.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FaultOp {
    /// `XENMEM_populate_physmap`.
    Populate,
    /// `XENMEM_decrease_reservation`.
    Decrease,
    /// The copy that page offline makes of a frame the domain uses: the only effect
    /// is `Fail(ENOMEM)`, no frame free for it, which leaves the frame pending.
    OfflineCopy,
}

impl FaultOp {
    /// Every op, in the order `info` lists them.
    pub const ALL: [FaultOp; 3] = [FaultOp::Populate, FaultOp::Decrease, FaultOp::OfflineCopy];

    /// Its name in the control protocol.
    pub fn name(self) -> &'static str {
        match self {
            FaultOp::Populate => "populate",
            FaultOp::Decrease => "decrease",
            FaultOp::OfflineCopy => "offline-copy",
        }
    }

    /// Its name in `info`'s `fail_KEY=` field (one word, as every key there).
    pub fn key(self) -> &'static str {
        match self {
            FaultOp::Populate => "populate",
            FaultOp::Decrease => "decrease",
            FaultOp::OfflineCopy => "offline_copy",
        }
    }
}

/// Most faults queued per op.
pub const MAX_PENDING: usize = 8;

/// What an affected call does instead.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FaultEffect {
    /// Stops after this many extents and returns that count.
    Stop(u64),
    /// Returns `-errno` having done nothing.
    Fail(Errno),
}

/// The next `calls` calls of an op do `effect`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Fault {
    /// Calls still to affect (at least 1 while pending).
    pub calls: u64,
    /// What they do.
    pub effect: FaultEffect,
}

/// A domain's pending faults, in order per op, and the cut of the call in progress.
///
/// # Invariants
///
/// Each queue holds at most [`MAX_PENDING`] faults, each with `calls >= 1`.
#[derive(Clone, Default, Debug)]
pub struct Faults {
    populate: VecDeque<Fault>,
    decrease: VecDeque<Fault>,
    offline_copy: VecDeque<Fault>,
    /// The op and extent count at which the call being continued stops.
    cutting: Option<(FaultOp, u64)>,
}

impl Faults {
    /// The faults pending for `op`, the next one first.
    pub fn pending(&self, op: FaultOp) -> impl Iterator<Item = &Fault> {
        self.queue(op).iter()
    }

    fn queue(&self, op: FaultOp) -> &VecDeque<Fault> {
        match op {
            FaultOp::Populate => &self.populate,
            FaultOp::Decrease => &self.decrease,
            FaultOp::OfflineCopy => &self.offline_copy,
        }
    }

    fn queue_mut(&mut self, op: FaultOp) -> &mut VecDeque<Fault> {
        match op {
            FaultOp::Populate => &mut self.populate,
            FaultOp::Decrease => &mut self.decrease,
            FaultOp::OfflineCopy => &mut self.offline_copy,
        }
    }
}

/// How a reservation call proceeds once faults are applied.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Applied {
    /// Do the extents below this count (the request's own count when not cut).
    Upto(u64),
    /// Return this error at once.
    Fail(Errno),
}

impl Hypervisor {
    /// Makes the domain's next `fault.calls` calls of `op`, after those of the faults
    /// already pending for it, do `fault.effect`. `EINVAL` for zero calls or an
    /// effect the op cannot have, `ENOSPC` when [`MAX_PENDING`] faults are pending
    /// for `op`.
    pub fn add_fault(&mut self, id: DomId, op: FaultOp, fault: Fault) -> Result<(), Errno> {
        let possible = match op {
            FaultOp::Populate | FaultOp::Decrease => true,
            FaultOp::OfflineCopy => fault.effect == FaultEffect::Fail(Errno::ENOMEM),
        };
        if fault.calls == 0 || !possible {
            return Err(Errno::EINVAL);
        }
        let queue = self.domain_mut(id)?.faults.queue_mut(op);
        if queue.len() == MAX_PENDING {
            return Err(Errno::ENOSPC);
        }
        // INVARIANT: checked above.
        queue.push_back(fault);
        Ok(())
    }

    /// Drops every pending fault of the domain (a call in progress still stops where
    /// it was cut).
    pub fn clear_faults(&mut self, id: DomId) -> Result<(), Errno> {
        let faults = &mut self.domain_mut(id)?.faults;
        faults.populate.clear();
        faults.decrease.clear();
        faults.offline_copy.clear();
        Ok(())
    }

    /// Whether the copy that page offline is about to make of a frame domain `id`
    /// uses must find no free frame (an `offline-copy` fault), counting it down.
    pub(crate) fn offline_copy_fails(&mut self, id: DomId) -> bool {
        let Ok(dom) = self.domain_mut(id) else {
            return false;
        };
        let queue = dom.faults.queue_mut(FaultOp::OfflineCopy);
        let Some(fault) = queue.front_mut() else {
            return false;
        };
        fault.calls -= 1;
        if fault.calls == 0 {
            queue.pop_front();
        }
        true
    }

    /// Applies the domain's faults to a call of `op` over extents `start..nr`, counting
    /// it down when it starts at extent 0. The caller reports the end of the call with
    /// [`Hypervisor::fault_call_ended`] unless it continues.
    pub(crate) fn apply_fault(&mut self, id: DomId, op: FaultOp, start: u64, nr: u64) -> Applied {
        let Ok(dom) = self.domain_mut(id) else {
            return Applied::Upto(nr);
        };
        let faults = &mut dom.faults;
        if start > 0 {
            return match faults.cutting {
                Some((cut_op, done)) if cut_op == op => Applied::Upto(done.min(nr)),
                _ => Applied::Upto(nr),
            };
        }
        faults.cutting = None;
        let queue = faults.queue_mut(op);
        let Some(fault) = queue.front_mut() else {
            return Applied::Upto(nr);
        };
        fault.calls -= 1;
        let effect = fault.effect;
        if fault.calls == 0 {
            queue.pop_front();
        }
        match effect {
            FaultEffect::Fail(errno) => Applied::Fail(errno),
            FaultEffect::Stop(done) => {
                faults.cutting = Some((op, done));
                Applied::Upto(done.min(nr))
            }
        }
    }

    /// The call faults were applied to returned (did not continue).
    pub(crate) fn fault_call_ended(&mut self, id: DomId) {
        if let Ok(dom) = self.domain_mut(id) {
            dom.faults.cutting = None;
        }
    }
}
