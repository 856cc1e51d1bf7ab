//! `XENMEM_increase_reservation`, `decrease_reservation` and `populate_physmap`.
//!
//! Xen's conventions, which Linux depends on: the return value is the number of
//! extents done, never an errno — a bad copy, an unknown or forbidden domain, a too
//! large order or a failing extent all return the count reached so far. Long requests
//! continue as `op | next_extent << MEMOP_EXTENT_SHIFT`, so `nr_extents` is limited to
//! what that encoding holds in 32 bits.
//!
//! The domain's own populate and decrease calls first go through the faults the host
//! injected (`hv/fault.rs`), once the request is known to be well formed.
//!
//! `mem_flags` is decided as Xen's `do_memory_op` and `propagate_node` decide it,
//! for all three ops, before any extent ([`mem_flags_satisfiable`]); the node it
//! names is compared, never used as an index (XSA-231). Bits Xen does not define
//! are ignored, as Xen ignores them.

use core::ops::Range;

use crate::abi::memory::*;
use crate::addr::{CallerAddr, DomId, Gfn, Mfn, Order, PAGE_SHIFT};
use crate::error::Error;
use crate::guest::{read_record, GuestArray, GuestMemory};
use crate::hv::{Applied, FaultOp, Hypervisor};
use crate::hypercall::{Caller, Hypercall, Outcome};
use crate::platform::FrameOps;

impl Hypervisor {
    pub(super) fn reservation_op(
        &mut self,
        caller: Caller,
        call: Hypercall,
        memory: &mut dyn GuestMemory,
        frames: &mut dyn FrameOps,
    ) -> Result<Outcome, Error> {
        let op = call.args[0] & MEMOP_CMD_MASK;
        let start_extent = call.args[0] >> MEMOP_EXTENT_SHIFT;
        let done = |count: u64| Ok(Outcome::Return(count as i64));
        let Ok(request) = read_record::<XenMemoryReservation>(memory, CallerAddr(call.args[1]))
        else {
            return done(start_extent);
        };
        if request.nr_extents > MAX_NR_EXTENTS || start_extent >= request.nr_extents {
            return done(start_extent);
        }
        let Ok(domain) = self.target_domain(caller, request.domid) else {
            return done(start_extent);
        };
        let max_order = match caller {
            Caller::Guest(_) => self.config.guest_max_order,
            Caller::ControlPlane => self.config.control_max_order,
        };
        let Some(order) = Order::new(u64::from(request.extent_order)).filter(|o| *o <= max_order)
        else {
            return done(start_extent);
        };
        // Populate-on-demand needs a PoD cache ebbhv does not have.
        if op == XENMEM_POPULATE_PHYSMAP && request.mem_flags & XENMEMF_POPULATE_ON_DEMAND != 0 {
            return done(start_extent);
        }
        if !mem_flags_satisfiable(caller, request.mem_flags, self.heap.span().end) {
            return done(start_extent);
        }
        let fault_op = match (caller, op) {
            (Caller::Guest(_), XENMEM_POPULATE_PHYSMAP) => Some(FaultOp::Populate),
            (Caller::Guest(_), XENMEM_DECREASE_RESERVATION) => Some(FaultOp::Decrease),
            _ => None,
        };
        let Some(fault_op) = fault_op else {
            let extents = start_extent..request.nr_extents;
            return self
                .reservation_extents(domain, order, extents, &request, call, memory, frames);
        };
        let end = match self.apply_fault(domain, fault_op, start_extent, request.nr_extents) {
            Applied::Upto(end) => end,
            Applied::Fail(errno) => return Ok(Outcome::Return(errno.as_return())),
        };
        let outcome = self.reservation_extents(
            domain,
            order,
            start_extent..end,
            &request,
            call,
            memory,
            frames,
        );
        if !matches!(outcome, Ok(Outcome::Continue(_))) {
            self.fault_call_ended(domain);
        }
        outcome
    }

    /// Does `extents` of a checked request and returns the count done (from extent
    /// 0), or a continuation.
    #[allow(clippy::too_many_arguments)]
    fn reservation_extents(
        &mut self,
        domain: DomId,
        order: Order,
        extents: Range<u64>,
        request: &XenMemoryReservation,
        call: Hypercall,
        memory: &mut dyn GuestMemory,
        frames: &mut dyn FrameOps,
    ) -> Result<Outcome, Error> {
        let op = call.args[0] & MEMOP_CMD_MASK;
        let done = |count: u64| Ok(Outcome::Return(count as i64));
        let list = GuestArray::<u64>::new(request.extent_start);
        let mut work = 0u64;
        for extent in extents.clone() {
            if work >= self.config.preempt_frames {
                let mut again = call;
                again.args[0] = op | extent << MEMOP_EXTENT_SHIFT;
                return Ok(Outcome::Continue(again));
            }
            let result = match op {
                XENMEM_INCREASE_RESERVATION => self.increase(domain, order, frames),
                XENMEM_DECREASE_RESERVATION => list
                    .read(memory, extent)
                    .map_err(Error::from)
                    .and_then(|gfn| self.decrease(domain, Gfn(gfn), order)),
                _ => list
                    .read(memory, extent)
                    .map_err(Error::from)
                    .and_then(|gfn| self.populate(domain, Gfn(gfn), order, frames)),
            };
            match result {
                Ok(()) => work += order.frames(),
                Err(Error::Request(_)) => return done(extent),
                Err(fatal) => return Err(fatal),
            }
        }
        done(extents.end)
    }
}

/// Whether a request's `mem_flags` asks for an allocation ebbhv can make; if not, the
/// call does no extent (returns `start_extent`), as in Xen.
///
/// - `address_bits` (the low 8 bits), when not 0: Xen refuses a limit of a page or
///   less and allocates below 2^bits otherwise, ignoring a limit above its top
///   frame. ebbhv's heap has no address zones, so any limit below the heap's end
///   (`heap_end`, one past its top frame) is refused; one at or above it is no limit.
/// - The node, `XENMEMF_node(n)`: a hint is ignored (ebbhv's heap is one node,
///   node 0). Xen lets only its control and hardware domains ask for a node: a
///   guest's exact-node request fails whatever the node; the control plane's fails
///   for a node past `MAX_NUMNODES` and, as an exact request, for any node but 0
///   (which has all the memory).
fn mem_flags_satisfiable(caller: Caller, mem_flags: u32, heap_end: Mfn) -> bool {
    let bits = mem_flags & XENMEMF_ADDRESS_BITS_MASK;
    if bits != 0 {
        // 2^bits bytes, saturated: the heap ends far below 2^63.
        let limit = 1u64 << bits.min(63);
        if bits <= PAGE_SHIFT || limit < heap_end.0.saturating_mul(1 << PAGE_SHIFT) {
            return false;
        }
    }
    let field = (mem_flags >> XENMEMF_NODE_SHIFT) & XENMEMF_NODE_MASK;
    let Some(node) = field.checked_sub(1) else {
        return true;
    };
    let exact = mem_flags & XENMEMF_EXACT_NODE_REQUEST != 0;
    match caller {
        Caller::Guest(_) => !exact,
        Caller::ControlPlane => node < MAX_NUMNODES && (!exact || node == 0),
    }
}
