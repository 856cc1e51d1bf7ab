//! `XENMEM_exchange`, with ebbhv's semantics for translated guests (see
//! `crate::hv` exchange: input extents name guest frames given up, output extents
//! name guest frames that receive new frames).
//!
//! Xen's checks and conventions are kept: `-EPERM` above the caller's max order;
//! `-EINVAL` if `nr_exchanged` exceeds the input count, the domids differ, a side's
//! size overflows, or the two sides differ in size; `-EFAULT` on a bad handle. Progress
//! is reported per chunk through `nr_exchanged`, written back on success, on failure
//! and before a continuation (which re-issues the same call: `nr_exchanged` says
//! where to resume).

use alloc::vec::Vec;
use core::mem::offset_of;

use crate::abi::memory::XenMemoryExchange;
use crate::addr::{CallerAddr, Gfn, Order};
use crate::error::{Errno, Error};
use crate::guest::{read_record, write_record, GuestArray, GuestMemory};
use crate::hv::Hypervisor;
use crate::hypercall::{Caller, Hypercall, Outcome};
use crate::platform::FrameOps;

impl Hypervisor {
    pub(super) fn exchange_op(
        &mut self,
        caller: Caller,
        call: Hypercall,
        memory: &mut dyn GuestMemory,
        frames: &mut dyn FrameOps,
    ) -> Result<Outcome, Error> {
        let arg = CallerAddr(call.args[1]);
        let exch: XenMemoryExchange = read_record(memory, arg)?;
        let max_order = match caller {
            Caller::Guest(_) => self.config.guest_max_order,
            Caller::ControlPlane => self.config.control_max_order,
        };
        let in_order = Order::new(u64::from(exch.input.extent_order)).filter(|o| *o <= max_order);
        let out_order = Order::new(u64::from(exch.output.extent_order)).filter(|o| *o <= max_order);
        let (Some(in_order), Some(out_order)) = (in_order, out_order) else {
            return Err(Errno::EPERM.into());
        };
        let in_frames = exch.input.nr_extents.checked_mul(in_order.frames());
        let out_frames = exch.output.nr_extents.checked_mul(out_order.frames());
        if exch.nr_exchanged > exch.input.nr_extents
            || exch.input.domid != exch.output.domid
            || in_frames.is_none()
            || in_frames != out_frames
        {
            return Err(Errno::EINVAL.into());
        }
        if exch.nr_exchanged == exch.input.nr_extents {
            return Ok(Outcome::Return(0));
        }
        let domain = self.target_domain(caller, exch.input.domid)?;

        // A chunk: one extent of the larger order against 2^difference of the smaller.
        let (in_per_chunk, out_per_chunk) = if in_order <= out_order {
            (1u64 << (out_order.get() - in_order.get()), 1u64)
        } else {
            (1u64, 1u64 << (in_order.get() - out_order.get()))
        };
        let chunk_frames = in_per_chunk * in_order.frames();
        let inputs = GuestArray::<u64>::new(exch.input.extent_start);
        let outputs = GuestArray::<u64>::new(exch.output.extent_start);
        let chunks = exch.input.nr_extents / in_per_chunk;
        let mut work = 0u64;
        for chunk in exch.nr_exchanged / in_per_chunk..chunks {
            if work >= self.config.preempt_frames {
                report_progress(memory, arg, chunk * in_per_chunk)?;
                return Ok(Outcome::Continue(call));
            }
            let done = self.exchange_one_chunk(
                domain,
                (&inputs, chunk * in_per_chunk, in_per_chunk, in_order),
                (&outputs, chunk * out_per_chunk, out_per_chunk, out_order),
                memory,
                frames,
            );
            if let Err(error) = done {
                report_progress(memory, arg, chunk * in_per_chunk)?;
                return Err(error);
            }
            work += chunk_frames;
        }
        report_progress(memory, arg, exch.input.nr_extents)?;
        Ok(Outcome::Return(0))
    }

    fn exchange_one_chunk(
        &mut self,
        domain: crate::addr::DomId,
        input: (&GuestArray<u64>, u64, u64, Order),
        output: (&GuestArray<u64>, u64, u64, Order),
        memory: &mut dyn GuestMemory,
        frames: &mut dyn FrameOps,
    ) -> Result<(), Error> {
        let in_gfns = read_gfns(memory, input.0, input.1, input.2)?;
        let out_gfns = read_gfns(memory, output.0, output.1, output.2)?;
        self.exchange_chunk(domain, &in_gfns, input.3, &out_gfns, output.3, frames)
    }
}

fn read_gfns(
    memory: &mut dyn GuestMemory,
    list: &GuestArray<u64>,
    first: u64,
    count: u64,
) -> Result<Vec<Gfn>, Errno> {
    let mut gfns = Vec::new();
    // `count` is 2^(order difference), up to the caller's max order.
    gfns.try_reserve_exact(usize::try_from(count).map_err(|_| Errno::ENOMEM)?)
        .map_err(|_| Errno::ENOMEM)?;
    for i in first..first + count {
        gfns.push(list.read(memory, i).map(Gfn)?);
    }
    Ok(gfns)
}

fn report_progress(
    memory: &mut dyn GuestMemory,
    arg: CallerAddr,
    exchanged: u64,
) -> Result<(), Errno> {
    let field = arg
        .0
        .checked_add(offset_of!(XenMemoryExchange, nr_exchanged) as u64)
        .ok_or(Errno::EFAULT)?;
    write_record(memory, CallerAddr(field), &exchanged)
}
