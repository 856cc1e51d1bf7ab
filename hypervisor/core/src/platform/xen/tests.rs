//! The Xen platform hypercalls against fakes: each one's success path and its
//! refusals, with the exact error codes the guest suite expects.

use alloc::vec::Vec;

use super::console_io::{console_io, CONSOLE_CHUNK};
use super::sched_op::{sched_op, SchedOp};
use super::version::xen_version;
use super::XenPlatform;
use crate::abi::platform::{
    self as xen, consoleio, feature, hvmop, schedop, vcpuop, xenver, FeatureInfo, HvmParam,
    RegisterVcpuInfo, SchedShutdown, SingleshotTimer, VcpuTimeInfo, VCPU_SSHOTTMR_FUTURE,
};
use crate::addr::{CallerAddr, DomId, Gfn, GfnRange, Mfn, MfnRange};
use crate::domain::{Domain, DomainConfig};
use crate::error::Errno;
use crate::evtchn::abi::{
    EvtchnAllocUnbound, EvtchnBindVirq, EVTCHNOP_ALLOC_UNBOUND, EVTCHNOP_BIND_VIRQ, EVTCHNOP_CLOSE,
    EVTCHNOP_SEND, VIRQ_TIMER,
};
use crate::evtchn::NR_PORTS;
use crate::guest::GuestMemory;
use crate::heap::FrameHeap;
use crate::hv::{Config, Hypervisor};
use crate::platform::FrameBytes;
use crate::testing::{
    FakeClock, FakeConsole, FakeFrameBytes, FakeFrames, FakeGuestMemory, FakeLog,
};

const DOM: DomId = DomId(1);
const STORE_GFN: Gfn = Gfn(0xfeffc);
const BASE: u64 = 0x10_0000;
/// An address the fake memory does not map.
const BAD: CallerAddr = CallerAddr(0xdead_0000);

struct Bed {
    hv: Hypervisor,
    xen: XenPlatform<FakeClock>,
    mem: FakeGuestMemory,
    frames: FakeFrameBytes,
    log: FakeLog,
}

impl Bed {
    fn new() -> Bed {
        let mut heap = FrameHeap::new(MfnRange::new(Mfn(0x100), Mfn(0x500))).unwrap();
        heap.add_free_ram(MfnRange::new(Mfn(0x100), Mfn(0x500)))
            .unwrap();
        let mut hv = Hypervisor::new(heap, Config::default());
        let config = DomainConfig {
            id: DOM,
            max_pages: 0x200,
            memory_map: Vec::new(),
        };
        hv.create_domain(config, &mut FakeFrames::default())
            .unwrap();
        hv.populate_boot_memory(
            DOM,
            GfnRange::new(Gfn(0), Gfn(0x100)),
            &mut FakeFrames::default(),
        )
        .unwrap();
        Bed {
            hv,
            xen: XenPlatform::new(DOM, FakeClock::default(), STORE_GFN),
            mem: FakeGuestMemory::new(BASE, 0x2000),
            frames: FakeFrameBytes::default(),
            log: FakeLog::default(),
        }
    }

    fn dom(&self) -> &Domain {
        self.hv.domain(DOM).unwrap()
    }

    fn put(&mut self, at: u64, bytes: &[u8]) -> CallerAddr {
        self.mem.write(CallerAddr(at), bytes).unwrap();
        CallerAddr(at)
    }

    fn hvm(&mut self, cmd: u64, index: u32, value: u64) -> Result<u64, Errno> {
        let p = HvmParam {
            domid: DomId::SELF.0,
            index,
            value,
            ..Default::default()
        };
        let arg = self.put(BASE, &p.to_bytes());
        self.xen.hvm_op(&mut self.mem, &mut self.log, cmd, arg)?;
        Ok(self.mem.get::<HvmParam>(BASE).value)
    }

    fn vcpu(&mut self, cmd: u64, vcpu: u64, arg: CallerAddr) -> Result<i64, Errno> {
        let dom = self.hv.domain(DOM).unwrap();
        self.xen.vcpu_op(
            dom,
            &mut self.mem,
            &mut self.frames,
            &mut self.log,
            [cmd, vcpu, arg.0, 0, 0],
        )
    }

    fn evtchn(&mut self, cmd: u64, arg: CallerAddr) -> Result<Option<u32>, Errno> {
        let dom = self.hv.domain(DOM).unwrap();
        self.xen
            .event_channel_op(dom, &mut self.mem, &mut self.frames, cmd, arg)
    }

    fn bind_virq(&mut self, virq: u32) -> u32 {
        let a = EvtchnBindVirq {
            virq,
            ..Default::default()
        };
        self.mem.put(BASE, &a);
        self.evtchn(EVTCHNOP_BIND_VIRQ, CallerAddr(BASE)).unwrap();
        self.mem.get::<EvtchnBindVirq>(BASE).port
    }
}

#[test]
fn a_new_guest_finds_its_store_port_and_ring_in_its_params() {
    let mut b = Bed::new();
    let port = b.xen.store_port().unwrap();
    assert_ne!(port, 0);
    assert_eq!(
        b.hvm(hvmop::GET_PARAM, hvmop::PARAM_STORE_EVTCHN, 0),
        Ok(u64::from(port))
    );
    assert_eq!(
        b.hvm(hvmop::GET_PARAM, hvmop::PARAM_STORE_PFN, 0),
        Ok(STORE_GFN.0)
    );
}

#[test]
fn hvm_op_sets_what_the_guest_may_and_refuses_the_rest() {
    let mut b = Bed::new();
    let vector = (xen::CALLBACK_TYPE_VECTOR << 56) | 0xf3;
    assert_eq!(
        b.hvm(hvmop::SET_PARAM, hvmop::PARAM_CALLBACK_IRQ, vector),
        Ok(vector)
    );
    assert_eq!(b.xen.callback_vector(), Some(0xf3));
    assert_eq!(b.log.lines, 1);
    let before = *b.xen.params();
    for read_only in [
        hvmop::PARAM_STORE_PFN,
        hvmop::PARAM_STORE_EVTCHN,
        hvmop::PARAM_CONSOLE_PFN,
    ] {
        assert_eq!(b.hvm(hvmop::SET_PARAM, read_only, 7), Err(Errno::EPERM));
    }
    assert_eq!(*b.xen.params(), before);
    assert_eq!(
        b.hvm(hvmop::GET_PARAM, hvmop::NR_PARAMS as u32, 0),
        Err(Errno::EINVAL)
    );
    assert_eq!(b.hvm(hvmop::GET_PARAM, u32::MAX, 0), Err(Errno::EINVAL));
    assert_eq!(b.hvm(7, 0, 0), Err(Errno::ENOSYS));
    // Another domain's parameters.
    let p = HvmParam {
        domid: 5,
        index: hvmop::PARAM_CALLBACK_IRQ,
        ..Default::default()
    };
    let arg = b.put(BASE, &p.to_bytes());
    assert_eq!(
        b.xen.hvm_op(&mut b.mem, &mut b.log, hvmop::GET_PARAM, arg),
        Err(Errno::EPERM)
    );
    assert_eq!(
        b.xen.hvm_op(&mut b.mem, &mut b.log, hvmop::GET_PARAM, BAD),
        Err(Errno::EFAULT)
    );
}

#[test]
fn xen_version_reports_version_strings_and_features() {
    let mut b = Bed::new();
    let v = xen_version(&mut b.mem, xenver::VERSION, BAD);
    assert_eq!(v, Ok(i64::from(xenver::REPORTED)));
    assert_eq!(xen_version(&mut b.mem, xenver::PAGESIZE, BAD), Ok(4096));
    assert_eq!(
        xen_version(&mut b.mem, xenver::EXTRAVERSION, CallerAddr(BASE)),
        Ok(0)
    );
    assert_eq!(&b.mem.bytes[..9], b".0-ebbhv\0");
    assert_eq!(
        xen_version(&mut b.mem, xenver::CAPABILITIES, CallerAddr(BASE)),
        Ok(0)
    );
    assert_eq!(&b.mem.bytes[..15], b"hvm-3.0-x86_64\0");
    b.mem.put(BASE, &FeatureInfo::default());
    assert_eq!(
        xen_version(&mut b.mem, xenver::GET_FEATURES, CallerAddr(BASE)),
        Ok(0)
    );
    let fi: FeatureInfo = b.mem.get(BASE);
    assert_ne!(fi.submap & feature::HVM_CALLBACK_VECTOR, 0);
    b.mem.put(
        BASE,
        &FeatureInfo {
            submap_idx: 1,
            submap: 9,
        },
    );
    assert_eq!(
        xen_version(&mut b.mem, xenver::GET_FEATURES, CallerAddr(BASE)),
        Ok(0)
    );
    assert_eq!(b.mem.get::<FeatureInfo>(BASE).submap, 0);
    // A string that runs off the caller's memory, and an unmapped one.
    let last = CallerAddr(BASE + b.mem.bytes.len() as u64 - 8);
    assert_eq!(
        xen_version(&mut b.mem, xenver::CAPABILITIES, last),
        Err(Errno::EFAULT)
    );
    assert_eq!(
        xen_version(&mut b.mem, xenver::GET_FEATURES, BAD),
        Err(Errno::EFAULT)
    );
    assert_eq!(
        xen_version(&mut b.mem, xenver::COMPILE_INFO, BAD),
        Err(Errno::ENOSYS)
    );
}

/// A console that claims to have read more than it was given.
struct BoastingConsole;

impl super::console_io::Console for BoastingConsole {
    fn write(&mut self, _: &[u8]) {}

    fn read(&mut self, buf: &mut [u8]) -> usize {
        buf.fill(b'x');
        usize::MAX
    }
}

#[test]
fn console_io_read_is_clamped_to_the_guest_buffer() {
    let mut b = Bed::new();
    let r = console_io(
        &mut b.mem,
        &mut BoastingConsole,
        [consoleio::READ, 4, BASE + 0x100, 0, 0],
    );
    assert_eq!(r, Ok(4));
    assert_eq!(&b.mem.bytes[0x100..0x105], b"xxxx\0");
}

#[test]
fn console_io_moves_at_most_one_chunk_each_way() {
    let mut b = Bed::new();
    let mut console = FakeConsole::default();
    b.put(BASE, b"hello");
    let w = console_io(&mut b.mem, &mut console, [consoleio::WRITE, 5, BASE, 0, 0]);
    assert_eq!(w, Ok(0));
    assert_eq!(console.output, b"hello");
    // A length beyond one chunk reads one chunk (the fake memory holds 8 KiB).
    let w = console_io(
        &mut b.mem,
        &mut console,
        [consoleio::WRITE, u64::MAX, BASE, 0, 0],
    );
    assert_eq!(w, Ok(0));
    assert_eq!(console.output.len(), 5 + CONSOLE_CHUNK);
    console.input = b"ls\n".to_vec();
    let r = console_io(
        &mut b.mem,
        &mut console,
        [consoleio::READ, 16, BASE + 0x100, 0, 0],
    );
    assert_eq!(r, Ok(3));
    assert_eq!(&b.mem.bytes[0x100..0x103], b"ls\n");
    let bad = [consoleio::WRITE, 5, BAD.0, 0, 0];
    assert_eq!(
        console_io(&mut b.mem, &mut console, bad),
        Err(Errno::EFAULT)
    );
    let other = [2, 5, BASE, 0, 0];
    assert_eq!(
        console_io(&mut b.mem, &mut console, other),
        Err(Errno::ENOSYS)
    );
}

#[test]
fn sched_op_decodes_yield_block_and_shutdown() {
    let mut b = Bed::new();
    assert_eq!(
        sched_op(&mut b.mem, schedop::YIELD, BAD),
        Ok(SchedOp::Yield)
    );
    assert_eq!(
        sched_op(&mut b.mem, schedop::BLOCK, BAD),
        Ok(SchedOp::Block)
    );
    let arg = b.put(BASE, &SchedShutdown { reason: 2 }.to_bytes());
    assert_eq!(
        sched_op(&mut b.mem, schedop::SHUTDOWN, arg),
        Ok(SchedOp::Shutdown(2))
    );
    assert_eq!(
        sched_op(&mut b.mem, schedop::SHUTDOWN, BAD),
        Err(Errno::EFAULT)
    );
    assert_eq!(sched_op(&mut b.mem, 9, BAD), Err(Errno::ENOSYS));
}

#[test]
fn vcpu_op_registers_vcpu_info_once_in_guest_ram() {
    let mut b = Bed::new();
    assert_eq!(b.vcpu(vcpuop::IS_UP, 0, BAD), Ok(1));
    assert_eq!(b.vcpu(vcpuop::IS_UP, 1, BAD), Err(Errno::ENOENT));
    let reg = |mfn, offset| {
        RegisterVcpuInfo {
            mfn,
            offset,
            rsvd: 0,
        }
        .to_bytes()
    };
    // Past the end of the page, outside guest RAM, unreadable.
    let arg = b.put(BASE, &reg(0x10, 4096 - 63));
    assert_eq!(
        b.vcpu(vcpuop::REGISTER_VCPU_INFO, 0, arg),
        Err(Errno::EINVAL)
    );
    let arg = b.put(BASE, &reg(0x1000, 0));
    assert_eq!(
        b.vcpu(vcpuop::REGISTER_VCPU_INFO, 0, arg),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        b.vcpu(vcpuop::REGISTER_VCPU_INFO, 0, BAD),
        Err(Errno::EFAULT)
    );
    assert_eq!(b.xen.vcpu_info_place(), None);

    let arg = b.put(BASE, &reg(0x10, 4096 - 64));
    assert_eq!(b.vcpu(vcpuop::REGISTER_VCPU_INFO, 0, arg), Ok(0));
    let place = b.xen.vcpu_info_place().unwrap();
    assert_eq!((place.gfn, place.offset), (Gfn(0x10), 4096 - 64));
    // The pvclock was published there at once.
    let mfn = b.dom().p2m().entry(Gfn(0x10)).unwrap().mfn;
    let mut time = [0u8; VcpuTimeInfo::SIZE];
    b.frames
        .read(mfn, 4096 - 64 + xen::VCPU_INFO_TIME, &mut time);
    assert_eq!(VcpuTimeInfo::read_from(&time).unwrap().version, 2);
    // Only once.
    let arg = b.put(BASE, &reg(0x11, 0));
    assert_eq!(
        b.vcpu(vcpuop::REGISTER_VCPU_INFO, 0, arg),
        Err(Errno::EINVAL)
    );
    assert_eq!(b.xen.vcpu_info_place(), Some(place));
}

#[test]
fn vcpu_op_writes_runstate_and_time_areas() {
    let mut b = Bed::new();
    b.xen.clocks().now_ns.set(77);
    let arg = b.put(BASE, &(BASE + 0x100).to_le_bytes());
    assert_eq!(b.vcpu(vcpuop::REGISTER_RUNSTATE_MEMORY_AREA, 0, arg), Ok(0));
    assert_eq!(b.xen.runstate_area(), Some(BASE + 0x100));
    assert_eq!(b.mem.bytes[0x108], 77);
    let arg = b.put(BASE, &BAD.0.to_le_bytes());
    let r = b.vcpu(vcpuop::REGISTER_RUNSTATE_MEMORY_AREA, 0, arg);
    assert_eq!(r, Err(Errno::EFAULT));
    // A NULL time area unregisters; a bad one faults.
    let arg = b.put(BASE, &0u64.to_le_bytes());
    assert_eq!(
        b.vcpu(vcpuop::REGISTER_VCPU_TIME_MEMORY_AREA, 0, arg),
        Ok(0)
    );
    let arg = b.put(BASE, &BAD.0.to_le_bytes());
    let r = b.vcpu(vcpuop::REGISTER_VCPU_TIME_MEMORY_AREA, 0, arg);
    assert_eq!(r, Err(Errno::EFAULT));
    assert_eq!(b.vcpu(99, 0, BAD), Err(Errno::ENOSYS));
}

#[test]
fn timers_set_stop_and_fire_once() {
    let mut b = Bed::new();
    b.xen.clocks().now_ns.set(1000);
    let t = |ns, flags| {
        SingleshotTimer {
            timeout_abs_ns: ns,
            flags,
            pad: 0,
        }
        .to_bytes()
    };
    let arg = b.put(BASE, &t(500, VCPU_SSHOTTMR_FUTURE));
    assert_eq!(
        b.vcpu(vcpuop::SET_SINGLESHOT_TIMER, 0, arg),
        Err(Errno::ETIME)
    );
    assert_eq!(b.xen.timer().deadline(), None);
    let arg = b.put(BASE, &t(2000, VCPU_SSHOTTMR_FUTURE));
    assert_eq!(b.vcpu(vcpuop::SET_SINGLESHOT_TIMER, 0, arg), Ok(0));
    assert!(!b.xen.take_due_timer());
    b.xen.clocks().now_ns.set(2000);
    assert!(b.xen.take_due_timer());
    assert!(!b.xen.take_due_timer());
    assert_eq!(b.xen.set_timer_op(3000), Ok(0));
    assert_eq!(b.xen.timer().deadline(), Some(3000));
    assert_eq!(b.vcpu(vcpuop::STOP_SINGLESHOT_TIMER, 0, BAD), Ok(0));
    assert_eq!(b.xen.timer().deadline(), None);
    b.xen.set_timer_op(3000).unwrap();
    b.xen.set_timer_op(0).unwrap();
    assert_eq!(b.xen.timer().deadline(), None);
}

#[test]
fn event_channels_deliver_into_shared_info_and_refuse_the_store_port() {
    let mut b = Bed::new();
    let vector = (xen::CALLBACK_TYPE_VECTOR << 56) | 0xf3;
    b.hvm(hvmop::SET_PARAM, hvmop::PARAM_CALLBACK_IRQ, vector)
        .unwrap();
    let port = b.bind_virq(VIRQ_TIMER);
    assert_eq!(b.xen.event_channels().virq_port(VIRQ_TIMER), Some(port));
    let dom = b.hv.domain(DOM).unwrap();
    assert_eq!(b.xen.pending_upcall(dom, &mut b.frames), None);
    b.xen.raise_virq(dom, &mut b.frames, VIRQ_TIMER);
    assert_eq!(b.xen.pending_upcall(dom, &mut b.frames), Some(0xf3));
    let shared = dom.shared_info();
    let word = b.frames.read_u64(shared, xen::SHARED_INFO_EVTCHN_PENDING);
    assert_ne!(word & (1 << port), 0);

    // Sending on the store port is the store's kick; closing it is refused.
    let store = b.xen.store_port().unwrap();
    let arg = b.put(BASE, &store.to_le_bytes());
    assert_eq!(b.evtchn(EVTCHNOP_SEND, arg), Ok(Some(store)));
    assert_eq!(b.evtchn(EVTCHNOP_CLOSE, arg), Err(Errno::EINVAL));
    let arg = b.put(BASE, &NR_PORTS.to_le_bytes());
    assert!(b.evtchn(EVTCHNOP_SEND, arg).is_err());
    assert!(b.evtchn(EVTCHNOP_CLOSE, arg).is_err());
    assert_eq!(b.evtchn(EVTCHNOP_SEND, BAD), Err(Errno::EFAULT));
}

#[test]
fn event_channel_memory_stays_bounded_when_the_guest_takes_every_port() {
    let mut b = Bed::new();
    let a = EvtchnAllocUnbound {
        dom: DomId::SELF.0,
        remote_dom: DomId::SELF.0,
        ..Default::default()
    };
    let mut taken = 0;
    loop {
        b.mem.put(BASE, &a);
        if b.evtchn(EVTCHNOP_ALLOC_UNBOUND, CallerAddr(BASE)).is_err() {
            break;
        }
        taken += 1;
        assert!(taken < NR_PORTS, "more ports than the table holds");
    }
    let full = b.xen.event_channel_bytes();
    b.mem.put(BASE, &a);
    assert!(b.evtchn(EVTCHNOP_ALLOC_UNBOUND, CallerAddr(BASE)).is_err());
    assert_eq!(b.xen.event_channel_bytes(), full);
}
