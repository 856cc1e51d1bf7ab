//! Event channels, Xen's 2-level ABI: the port table of one domain and the
//! pending/mask decisions, over bitmaps the platform keeps in the guest-visible
//! shared info page and vcpu_info.
//!
//! A port is bound to a virtual IRQ (timer, debug, console), to an IPI, left unbound
//! for a remote domain, or held by the hypervisor itself (the xenstore port: a send
//! on it is a request the platform serves). Raising a port follows Xen's 2-level
//! rule: set `evtchn_pending[port]`; if it was clear and `evtchn_mask[port]` is
//! clear, set bit `port / 64` of the vCPU's `evtchn_pending_sel`, and if that was
//! clear, set `evtchn_upcall_pending`. The platform injects the upcall vector for as
//! long as `evtchn_upcall_pending` is set (level-triggered), so the core never
//! needs to know whether the guest can take it right now.
//!
//! The bitmaps live in guest-visible memory, so the core reaches them only through
//! [`EventBits`]; the guest is stopped whenever the core runs, so plain
//! read-modify-write is enough. One vCPU (0) exists; binding to any other is
//! `-ENOENT`. `EVTCHNOP_init_control` is `-ENOSYS`: the guest falls back to this
//! 2-level ABI.
//!
//! Locking: none; the platform owns the table next to the domain it belongs to.

pub mod abi;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;

use crate::addr::{CallerAddr, DomId};
use crate::error::Errno;
use crate::guest::{read_record, write_record, GuestMemory};
use abi::*;

/// An event channel port number.
pub type Port = u32;

/// Ports of the 2-level ABI on a 64-bit guest: 64 selector bits × 64-bit words.
pub const NR_PORTS: u32 = 64 * 64;

/// The vCPUs that exist (ebbhv runs one).
const NR_VCPUS: u32 = 1;

/// The three bitmaps of the 2-level ABI.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Bitmap {
    /// `shared_info.evtchn_pending`, indexed by port.
    Pending,
    /// `shared_info.evtchn_mask`, indexed by port.
    Mask,
    /// `vcpu_info.evtchn_pending_sel` of the notified vCPU, indexed by `port / 64`.
    Selector,
}

/// The guest-visible event state, as the platform maps it.
pub trait EventBits {
    /// Whether `bit` of `map` is set.
    fn test(&mut self, map: Bitmap, bit: u32) -> bool;

    /// Sets `bit` of `map`; returns whether it was already set.
    fn test_and_set(&mut self, map: Bitmap, bit: u32) -> bool;

    /// Clears `bit` of `map`.
    fn clear(&mut self, map: Bitmap, bit: u32);

    /// Sets the vCPU's `evtchn_upcall_pending`.
    fn set_upcall_pending(&mut self);
}

/// What a port is connected to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Binding {
    /// Not in use.
    Free,
    /// Port 0, never allocated.
    Reserved,
    /// Allocated for `remote` to bind; sends on it go nowhere.
    Unbound {
        /// The domain allowed to connect.
        remote: DomId,
    },
    /// A virtual IRQ.
    Virq(u32),
    /// An IPI to the bound vCPU.
    Ipi,
    /// The hypervisor holds the other end (a service such as xenstore).
    Hypervisor,
}

#[derive(Clone, Copy, Debug)]
struct Channel {
    binding: Binding,
    vcpu: u32,
}

const FREE: Channel = Channel {
    binding: Binding::Free,
    vcpu: 0,
};

/// What the platform must do after an event channel hypercall.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Action {
    /// Nothing: the call is complete (any upcall is already flagged in the bits).
    None,
    /// The guest sent on a port the hypervisor holds: serve that service.
    Kick(Port),
}

/// One domain's event channels.
///
/// # Invariants
///
/// `ports[0]` is [`Binding::Reserved`]; `ports.len() <= NR_PORTS`; `virqs[v]` is
/// `Some(p)` exactly when `ports[p]` is `Binding::Virq(v)`.
#[derive(Clone, Debug)]
pub struct EventChannels {
    domid: DomId,
    ports: Vec<Channel>,
    virqs: [Option<Port>; NR_VIRQS as usize],
}

fn is_per_vcpu_virq(virq: u32) -> bool {
    matches!(virq, VIRQ_TIMER | VIRQ_DEBUG | VIRQ_XENOPROF | VIRQ_XENPMU)
}

impl EventChannels {
    /// An empty table for domain `domid`.
    pub fn new(domid: DomId) -> EventChannels {
        // INVARIANT: port 0 reserved, no virq bound.
        EventChannels {
            domid,
            ports: alloc::vec![Channel {
                binding: Binding::Reserved,
                vcpu: 0,
            }],
            virqs: [None; NR_VIRQS as usize],
        }
    }

    /// What `port` is bound to (`Free` for a port never allocated).
    pub fn binding(&self, port: Port) -> Binding {
        self.ports
            .get(port as usize)
            .map_or(Binding::Free, |c| c.binding)
    }

    /// Bytes of the hypervisor's heap the table takes (at most [`NR_PORTS`]
    /// channels).
    pub fn bytes(&self) -> usize {
        size_of::<EventChannels>() + self.ports.capacity() * size_of::<Channel>()
    }

    /// The port bound to `virq`, if any.
    pub fn virq_port(&self, virq: u32) -> Option<Port> {
        self.virqs.get(virq as usize).copied().flatten()
    }

    /// Records `port` as `virq`'s (a virq below [`NR_VIRQS`], as every binding
    /// holds).
    fn set_virq_port(&mut self, virq: u32, port: Option<Port>) {
        if let Some(slot) = self.virqs.get_mut(virq as usize) {
            *slot = port;
        }
    }

    fn alloc(&mut self, binding: Binding, vcpu: u32) -> Result<Port, Errno> {
        let channel = Channel { binding, vcpu };
        let mut slots = self.ports.iter_mut().enumerate();
        if let Some((i, slot)) = slots.find(|(_, c)| c.binding == Binding::Free) {
            *slot = channel;
            return Ok(i as Port);
        }
        if self.ports.len() as u32 >= NR_PORTS {
            return Err(Errno::ENOSPC);
        }
        // The table grows by doubling, a guest's call each time: an allocator that
        // is out of room fails the call, never the hypervisor.
        self.ports.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
        self.ports.push(channel);
        Ok(self.ports.len() as Port - 1)
    }

    fn channel_mut(&mut self, port: Port) -> Result<&mut Channel, Errno> {
        match self.ports.get_mut(port as usize) {
            Some(c) if !matches!(c.binding, Binding::Free | Binding::Reserved) => Ok(c),
            _ => Err(Errno::EINVAL),
        }
    }

    fn check_vcpu(vcpu: u32) -> Result<(), Errno> {
        if vcpu < NR_VCPUS {
            Ok(())
        } else {
            Err(Errno::ENOENT)
        }
    }

    /// Allocates a port whose other end the hypervisor holds (done at domain build
    /// for the xenstore ring).
    pub fn alloc_hypervisor_port(&mut self) -> Result<Port, Errno> {
        self.alloc(Binding::Hypervisor, 0)
    }

    /// `EVTCHNOP_bind_virq`.
    pub fn bind_virq(&mut self, virq: u32, vcpu: u32) -> Result<Port, Errno> {
        if virq >= NR_VIRQS {
            return Err(Errno::EINVAL);
        }
        Self::check_vcpu(vcpu)?;
        if !is_per_vcpu_virq(virq) && vcpu != 0 {
            return Err(Errno::EINVAL);
        }
        if self.virq_port(virq).is_some() {
            return Err(Errno::EEXIST);
        }
        let port = self.alloc(Binding::Virq(virq), vcpu)?;
        // INVARIANT: the virq and its port are recorded together.
        self.set_virq_port(virq, Some(port));
        Ok(port)
    }

    /// `EVTCHNOP_bind_ipi`.
    pub fn bind_ipi(&mut self, vcpu: u32) -> Result<Port, Errno> {
        Self::check_vcpu(vcpu)?;
        self.alloc(Binding::Ipi, vcpu)
    }

    /// `EVTCHNOP_alloc_unbound` for `remote` (already resolved from `DOMID_SELF`).
    pub fn alloc_unbound(&mut self, remote: DomId) -> Result<Port, Errno> {
        self.alloc(Binding::Unbound { remote }, 0)
    }

    /// `EVTCHNOP_close`: frees the port and drops any pending event on it. A port
    /// the hypervisor holds (the xenstore's) stays: as Xen refuses a guest's close
    /// of a Xen-attached channel, it is `-EINVAL`, so a guest cannot free it and
    /// have a later port alias the hypervisor's service.
    pub fn close(&mut self, port: Port, bits: &mut dyn EventBits) -> Result<(), Errno> {
        let c = self.channel_mut(port)?;
        if c.binding == Binding::Hypervisor {
            return Err(Errno::EINVAL);
        }
        let old = c.binding;
        *c = FREE;
        if let Binding::Virq(v) = old {
            // INVARIANT: the virq goes with its port.
            self.set_virq_port(v, None);
        }
        bits.clear(Bitmap::Pending, port);
        Ok(())
    }

    /// `EVTCHNOP_send`: raises an IPI port, drops a send on an unbound port, and
    /// asks the platform to serve a hypervisor-held one.
    pub fn send(&mut self, port: Port, bits: &mut dyn EventBits) -> Result<Action, Errno> {
        match self.channel_mut(port)?.binding {
            Binding::Ipi => {
                self.raise(port, bits);
                Ok(Action::None)
            }
            Binding::Unbound { .. } => Ok(Action::None),
            Binding::Hypervisor => Ok(Action::Kick(port)),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Marks `port` pending (from the hypervisor: a virq, a reply on a service
    /// port, an IPI). Returns whether this made `evtchn_upcall_pending` necessary
    /// (it may already have been set). A port that is not bound is ignored.
    pub fn raise(&mut self, port: Port, bits: &mut dyn EventBits) -> bool {
        if matches!(self.binding(port), Binding::Free | Binding::Reserved) {
            return false;
        }
        if bits.test_and_set(Bitmap::Pending, port) || bits.test(Bitmap::Mask, port) {
            return false;
        }
        if bits.test_and_set(Bitmap::Selector, port / 64) {
            return false;
        }
        bits.set_upcall_pending();
        true
    }

    /// Raises the port bound to `virq`, if any; as [`Self::raise`].
    pub fn raise_virq(&mut self, virq: u32, bits: &mut dyn EventBits) -> bool {
        match self.virq_port(virq) {
            Some(port) => self.raise(port, bits),
            None => false,
        }
    }

    /// `EVTCHNOP_unmask`: clears the mask and delivers an event that became
    /// pending while masked.
    pub fn unmask(&mut self, port: Port, bits: &mut dyn EventBits) -> Result<(), Errno> {
        if port >= NR_PORTS {
            return Err(Errno::EINVAL);
        }
        let was_masked = bits.test(Bitmap::Mask, port);
        bits.clear(Bitmap::Mask, port);
        if was_masked
            && bits.test(Bitmap::Pending, port)
            && !bits.test_and_set(Bitmap::Selector, port / 64)
        {
            bits.set_upcall_pending();
        }
        Ok(())
    }

    /// `EVTCHNOP_bind_vcpu`: only global virqs and unbound ports may move.
    pub fn bind_vcpu(&mut self, port: Port, vcpu: u32) -> Result<(), Errno> {
        Self::check_vcpu(vcpu)?;
        let c = self.channel_mut(port)?;
        match c.binding {
            Binding::Virq(v) if !is_per_vcpu_virq(v) => c.vcpu = vcpu,
            Binding::Unbound { .. } | Binding::Hypervisor => c.vcpu = vcpu,
            _ => return Err(Errno::EINVAL),
        }
        Ok(())
    }

    /// `EVTCHNOP_status` of `port`.
    pub fn status(&self, port: Port) -> Result<EvtchnStatus, Errno> {
        if port >= NR_PORTS {
            return Err(Errno::EINVAL);
        }
        let c = self.ports.get(port as usize).copied().unwrap_or(FREE);
        let (status, u) = match c.binding {
            Binding::Free | Binding::Reserved => (EVTCHNSTAT_CLOSED, 0),
            Binding::Unbound { remote } => (EVTCHNSTAT_UNBOUND, u64::from(remote.0)),
            Binding::Hypervisor => (EVTCHNSTAT_UNBOUND, u64::from(DomId::XEN.0)),
            Binding::Virq(v) => (EVTCHNSTAT_VIRQ, u64::from(v)),
            Binding::Ipi => (EVTCHNSTAT_IPI, 0),
        };
        Ok(EvtchnStatus {
            dom: self.domid.0,
            port,
            status,
            vcpu: c.vcpu,
            u,
            ..Default::default()
        })
    }

    fn own_domain(&self, dom: u16) -> Result<(), Errno> {
        if dom == DomId::SELF.0 || dom == self.domid.0 {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }

    /// `HYPERVISOR_event_channel_op(cmd, arg)` from the domain itself: decodes the
    /// argument at `arg`, runs the operation, writes the results back. Success is
    /// always 0 for the caller; errors are `-errno`.
    pub fn hypercall(
        &mut self,
        cmd: u64,
        arg: CallerAddr,
        memory: &mut dyn GuestMemory,
        bits: &mut dyn EventBits,
    ) -> Result<Action, Errno> {
        match cmd {
            EVTCHNOP_BIND_VIRQ => {
                let mut a: EvtchnBindVirq = read_record(memory, arg)?;
                a.port = self.bind_virq(a.virq, a.vcpu)?;
                self.write_back(memory, arg, &a, a.port)
            }
            EVTCHNOP_BIND_IPI => {
                let mut a: EvtchnBindIpi = read_record(memory, arg)?;
                a.port = self.bind_ipi(a.vcpu)?;
                self.write_back(memory, arg, &a, a.port)
            }
            EVTCHNOP_ALLOC_UNBOUND => {
                let mut a: EvtchnAllocUnbound = read_record(memory, arg)?;
                self.own_domain(a.dom)?;
                let remote = if a.remote_dom == DomId::SELF.0 {
                    self.domid
                } else {
                    DomId(a.remote_dom)
                };
                a.port = self.alloc_unbound(remote)?;
                self.write_back(memory, arg, &a, a.port)
            }
            EVTCHNOP_SEND => {
                let port: u32 = read_record(memory, arg)?;
                self.send(port, bits)
            }
            EVTCHNOP_CLOSE => {
                let port: u32 = read_record(memory, arg)?;
                self.close(port, bits).map(|()| Action::None)
            }
            EVTCHNOP_UNMASK => {
                let port: u32 = read_record(memory, arg)?;
                self.unmask(port, bits).map(|()| Action::None)
            }
            EVTCHNOP_STATUS => {
                let a: EvtchnStatus = read_record(memory, arg)?;
                self.own_domain(a.dom)?;
                let mut out = self.status(a.port)?;
                out.dom = a.dom;
                write_record(memory, arg, &out)?;
                Ok(Action::None)
            }
            EVTCHNOP_BIND_VCPU => {
                let a: EvtchnBindVcpu = read_record(memory, arg)?;
                self.bind_vcpu(a.port, a.vcpu).map(|()| Action::None)
            }
            _ => Err(Errno::ENOSYS),
        }
    }

    /// Writes an op's result back; if the guest's buffer faults, the port just
    /// allocated is released again (Xen does the same), so nothing leaks.
    fn write_back<T: crate::abi::codec::AbiRecord>(
        &mut self,
        memory: &mut dyn GuestMemory,
        arg: CallerAddr,
        value: &T,
        port: Port,
    ) -> Result<Action, Errno> {
        if let Err(e) = write_record(memory, arg, value) {
            if let Some(c) = self.ports.get_mut(port as usize) {
                let old = c.binding;
                *c = FREE;
                if let Binding::Virq(v) = old {
                    self.set_virq_port(v, None);
                }
            }
            return Err(e);
        }
        Ok(Action::None)
    }
}
