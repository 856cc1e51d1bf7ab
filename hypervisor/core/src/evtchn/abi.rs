//! `EVTCHNOP_*` (`public/event_channel.h`): sub-op numbers, channel states, virtual
//! IRQ numbers and the argument structures of `HYPERVISOR_event_channel_op`.

use core::mem::{offset_of, size_of};

use crate::abi::codec::abi_record;

/// `EVTCHNOP_bind_interdomain`.
pub const EVTCHNOP_BIND_INTERDOMAIN: u64 = 0;
/// `EVTCHNOP_bind_virq`.
pub const EVTCHNOP_BIND_VIRQ: u64 = 1;
/// `EVTCHNOP_bind_pirq`.
pub const EVTCHNOP_BIND_PIRQ: u64 = 2;
/// `EVTCHNOP_close`.
pub const EVTCHNOP_CLOSE: u64 = 3;
/// `EVTCHNOP_send`.
pub const EVTCHNOP_SEND: u64 = 4;
/// `EVTCHNOP_status`.
pub const EVTCHNOP_STATUS: u64 = 5;
/// `EVTCHNOP_alloc_unbound`.
pub const EVTCHNOP_ALLOC_UNBOUND: u64 = 6;
/// `EVTCHNOP_bind_ipi`.
pub const EVTCHNOP_BIND_IPI: u64 = 7;
/// `EVTCHNOP_bind_vcpu`.
pub const EVTCHNOP_BIND_VCPU: u64 = 8;
/// `EVTCHNOP_unmask`.
pub const EVTCHNOP_UNMASK: u64 = 9;
/// `EVTCHNOP_init_control` (FIFO ABI; ebbhv offers only the 2-level ABI).
pub const EVTCHNOP_INIT_CONTROL: u64 = 11;

/// `EVTCHNSTAT_closed`.
pub const EVTCHNSTAT_CLOSED: u32 = 0;
/// `EVTCHNSTAT_unbound`.
pub const EVTCHNSTAT_UNBOUND: u32 = 1;
/// `EVTCHNSTAT_virq`.
pub const EVTCHNSTAT_VIRQ: u32 = 4;
/// `EVTCHNSTAT_ipi`.
pub const EVTCHNSTAT_IPI: u32 = 5;

/// `VIRQ_TIMER`: the vCPU's one-shot timer fired (per vCPU).
pub const VIRQ_TIMER: u32 = 0;
/// `VIRQ_DEBUG`: debug request (per vCPU).
pub const VIRQ_DEBUG: u32 = 1;
/// `VIRQ_CONSOLE`: input for the console_io console (global).
pub const VIRQ_CONSOLE: u32 = 2;
/// `VIRQ_XENOPROF` (per vCPU).
pub const VIRQ_XENOPROF: u32 = 7;
/// `VIRQ_XENPMU` (per vCPU).
pub const VIRQ_XENPMU: u32 = 13;
/// `NR_VIRQS`.
pub const NR_VIRQS: u32 = 24;

/// `struct evtchn_bind_virq` (12 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct EvtchnBindVirq {
    /// `virq` (in).
    pub virq: u32,
    /// `vcpu` (in).
    pub vcpu: u32,
    /// `port` (out).
    pub port: u32,
}
abi_record!(EvtchnBindVirq { virq, vcpu, port });
const _: () = {
    assert!(size_of::<EvtchnBindVirq>() == 12);
    assert!(offset_of!(EvtchnBindVirq, vcpu) == 4);
    assert!(offset_of!(EvtchnBindVirq, port) == 8);
};

/// `struct evtchn_bind_ipi` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct EvtchnBindIpi {
    /// `vcpu` (in).
    pub vcpu: u32,
    /// `port` (out).
    pub port: u32,
}
abi_record!(EvtchnBindIpi { vcpu, port });
const _: () = {
    assert!(size_of::<EvtchnBindIpi>() == 8);
    assert!(offset_of!(EvtchnBindIpi, port) == 4);
};

/// `struct evtchn_alloc_unbound` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct EvtchnAllocUnbound {
    /// `dom` (in): the domain the port is allocated in (`DOMID_SELF`).
    pub dom: u16,
    /// `remote_dom` (in): who may bind the other end.
    pub remote_dom: u16,
    /// `port` (out).
    pub port: u32,
}
abi_record!(EvtchnAllocUnbound {
    dom,
    remote_dom,
    port
});
const _: () = {
    assert!(size_of::<EvtchnAllocUnbound>() == 8);
    assert!(offset_of!(EvtchnAllocUnbound, remote_dom) == 2);
    assert!(offset_of!(EvtchnAllocUnbound, port) == 4);
};

/// `struct evtchn_status` (24 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct EvtchnStatus {
    /// `dom` (in).
    pub dom: u16,
    /// Padding.
    pub pad: u16,
    /// `port` (in).
    pub port: u32,
    /// `status` (out): `EVTCHNSTAT_*`.
    pub status: u32,
    /// `vcpu` (out): the vCPU the channel notifies.
    pub vcpu: u32,
    /// `u` (out): `unbound.dom` (u16), `virq` (u32), ... by status.
    pub u: u64,
}
abi_record!(EvtchnStatus {
    dom,
    pad,
    port,
    status,
    vcpu,
    u
});
const _: () = {
    assert!(size_of::<EvtchnStatus>() == 24);
    assert!(offset_of!(EvtchnStatus, port) == 4);
    assert!(offset_of!(EvtchnStatus, status) == 8);
    assert!(offset_of!(EvtchnStatus, vcpu) == 12);
    assert!(offset_of!(EvtchnStatus, u) == 16);
};

/// `struct evtchn_bind_vcpu` (8 bytes).
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct EvtchnBindVcpu {
    /// `port` (in).
    pub port: u32,
    /// `vcpu` (in).
    pub vcpu: u32,
}
abi_record!(EvtchnBindVcpu { port, vcpu });
const _: () = assert!(size_of::<EvtchnBindVcpu>() == 8);
