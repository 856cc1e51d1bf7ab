//! The port table and the 2-level pending/mask rules against fake bitmaps, and
//! the hypercall decoding against fake guest memory.

use super::*;
use crate::testing::FakeGuestMemory;

/// The three bitmaps and the upcall flag as plain memory.
struct FakeBits {
    pending: [u64; 64],
    mask: [u64; 64],
    sel: u64,
    upcall: bool,
}

impl Default for FakeBits {
    fn default() -> Self {
        FakeBits {
            pending: [0; 64],
            mask: [0; 64],
            sel: 0,
            upcall: false,
        }
    }
}

impl FakeBits {
    fn word(&mut self, map: Bitmap, bit: u32) -> (&mut u64, u64) {
        let b = 1u64 << (bit % 64);
        match map {
            Bitmap::Pending => (&mut self.pending[(bit / 64) as usize], b),
            Bitmap::Mask => (&mut self.mask[(bit / 64) as usize], b),
            Bitmap::Selector => (&mut self.sel, b),
        }
    }
}

impl EventBits for FakeBits {
    fn test(&mut self, map: Bitmap, bit: u32) -> bool {
        let (w, b) = self.word(map, bit);
        *w & b != 0
    }
    fn test_and_set(&mut self, map: Bitmap, bit: u32) -> bool {
        let (w, b) = self.word(map, bit);
        let old = *w & b != 0;
        *w |= b;
        old
    }
    fn clear(&mut self, map: Bitmap, bit: u32) {
        let (w, b) = self.word(map, bit);
        *w &= !b;
    }
    fn set_upcall_pending(&mut self) {
        self.upcall = true;
    }
}

const ME: DomId = DomId(1);

#[test]
fn ports_start_at_one_and_are_reused() {
    let mut ev = EventChannels::new(ME);
    let mut bits = FakeBits::default();
    assert_eq!(ev.binding(0), Binding::Reserved);
    assert_eq!(ev.bind_virq(VIRQ_TIMER, 0), Ok(1));
    assert_eq!(ev.bind_ipi(0), Ok(2));
    assert_eq!(ev.alloc_unbound(DomId(0)), Ok(3));
    assert_eq!(ev.close(2, &mut bits), Ok(()));
    assert_eq!(ev.binding(2), Binding::Free);
    assert_eq!(ev.bind_ipi(0), Ok(2), "the lowest free port is reused");
    assert_eq!(
        ev.close(0, &mut bits),
        Err(Errno::EINVAL),
        "port 0 is reserved"
    );
    assert_eq!(ev.close(99, &mut bits), Err(Errno::EINVAL));
    assert_eq!(ev.close(NR_PORTS + 5, &mut bits), Err(Errno::EINVAL));
}

#[test]
fn virq_binding_rules() {
    let mut ev = EventChannels::new(ME);
    let mut bits = FakeBits::default();
    let timer = ev.bind_virq(VIRQ_TIMER, 0).unwrap();
    assert_eq!(ev.bind_virq(VIRQ_TIMER, 0), Err(Errno::EEXIST));
    assert_eq!(ev.bind_virq(NR_VIRQS, 0), Err(Errno::EINVAL));
    assert_eq!(ev.bind_virq(VIRQ_DEBUG, 1), Err(Errno::ENOENT), "one vCPU");
    assert_eq!(ev.virq_port(VIRQ_TIMER), Some(timer));
    ev.close(timer, &mut bits).unwrap();
    assert_eq!(ev.virq_port(VIRQ_TIMER), None);
    assert!(
        !ev.raise_virq(VIRQ_TIMER, &mut bits),
        "unbound virq is dropped"
    );
    assert_eq!(bits.pending, [0; 64]);
    let again = ev.bind_virq(VIRQ_TIMER, 0).unwrap();
    assert_eq!(again, timer);
}

#[test]
fn raise_sets_pending_selector_and_upcall_once() {
    let mut ev = EventChannels::new(ME);
    let mut bits = FakeBits::default();
    for _ in 0..70 {
        ev.bind_ipi(0).unwrap();
    }
    assert!(ev.raise(65, &mut bits));
    assert_eq!(bits.pending[1], 1 << 1);
    assert_eq!(bits.sel, 1 << 1);
    assert!(bits.upcall);
    bits.upcall = false;
    assert!(!ev.raise(65, &mut bits), "already pending: no new upcall");
    assert!(
        !ev.raise(66, &mut bits),
        "selector already set: no new upcall"
    );
    assert!(!bits.upcall);
    assert_eq!(bits.pending[1], 0b110);
    assert!(ev.raise(3, &mut bits), "another selector word");
    assert_eq!(bits.sel, 0b11);
    assert!(!ev.raise(0, &mut bits), "port 0 never fires");
    assert!(!ev.raise(500, &mut bits), "unallocated port never fires");
}

#[test]
fn masked_port_stays_pending_until_unmask() {
    let mut ev = EventChannels::new(ME);
    let mut bits = FakeBits::default();
    let p = ev.bind_virq(VIRQ_CONSOLE, 0).unwrap();
    bits.mask[0] = 1 << p;
    assert!(!ev.raise_virq(VIRQ_CONSOLE, &mut bits));
    assert_eq!(bits.pending[0], 1 << p);
    assert_eq!(bits.sel, 0);
    assert!(!bits.upcall);
    ev.unmask(p, &mut bits).unwrap();
    assert_eq!(bits.mask[0], 0);
    assert_eq!(bits.sel, 1);
    assert!(bits.upcall);
    // Unmasking a port that is not masked delivers nothing new.
    bits.upcall = false;
    bits.sel = 0;
    ev.unmask(p, &mut bits).unwrap();
    assert!(!bits.upcall);
    assert_eq!(ev.unmask(NR_PORTS, &mut bits), Err(Errno::EINVAL));
}

#[test]
fn close_drops_pending_event() {
    let mut ev = EventChannels::new(ME);
    let mut bits = FakeBits::default();
    let p = ev.bind_ipi(0).unwrap();
    bits.mask[0] = 1 << p;
    ev.raise(p, &mut bits);
    ev.close(p, &mut bits).unwrap();
    assert_eq!(bits.pending[0], 0);
}

#[test]
fn send_by_binding() {
    let mut ev = EventChannels::new(ME);
    let mut bits = FakeBits::default();
    let store = ev.alloc_hypervisor_port().unwrap();
    let ipi = ev.bind_ipi(0).unwrap();
    let unbound = ev.alloc_unbound(DomId(0)).unwrap();
    let virq = ev.bind_virq(VIRQ_TIMER, 0).unwrap();
    assert_eq!(ev.send(store, &mut bits), Ok(Action::Kick(store)));
    assert_eq!(bits.pending[0], 0, "a kick raises nothing by itself");
    assert_eq!(ev.send(unbound, &mut bits), Ok(Action::None));
    assert_eq!(bits.pending[0], 0, "unbound sends are dropped");
    assert_eq!(ev.send(ipi, &mut bits), Ok(Action::None));
    assert_eq!(bits.pending[0], 1 << ipi);
    assert_eq!(ev.send(virq, &mut bits), Err(Errno::EINVAL));
    assert_eq!(ev.send(77, &mut bits), Err(Errno::EINVAL));
}

#[test]
fn the_hypervisor_port_cannot_be_closed() {
    let mut ev = EventChannels::new(ME);
    let mut bits = FakeBits::default();
    let store = ev.alloc_hypervisor_port().unwrap();
    assert_eq!(ev.close(store, &mut bits), Err(Errno::EINVAL));
    assert_eq!(ev.send(store, &mut bits), Ok(Action::Kick(store)));
    // The next port allocated is a new one, never the store's.
    assert_eq!(ev.bind_ipi(0), Ok(store + 1));
}

#[test]
fn status_and_bind_vcpu() {
    let mut ev = EventChannels::new(ME);
    let store = ev.alloc_hypervisor_port().unwrap();
    let timer = ev.bind_virq(VIRQ_TIMER, 0).unwrap();
    let console = ev.bind_virq(VIRQ_CONSOLE, 0).unwrap();
    let s = ev.status(timer).unwrap();
    assert_eq!((s.status, s.u, s.vcpu), (EVTCHNSTAT_VIRQ, 0, 0));
    let s = ev.status(store).unwrap();
    assert_eq!(
        (s.status, s.u),
        (EVTCHNSTAT_UNBOUND, u64::from(DomId::XEN.0))
    );
    assert_eq!(ev.status(40).unwrap().status, EVTCHNSTAT_CLOSED);
    assert_eq!(ev.status(NR_PORTS), Err(Errno::EINVAL));
    assert_eq!(ev.bind_vcpu(console, 0), Ok(()));
    assert_eq!(ev.bind_vcpu(timer, 0), Err(Errno::EINVAL), "per-vCPU virq");
    assert_eq!(ev.bind_vcpu(console, 3), Err(Errno::ENOENT));
}

#[test]
fn ports_run_out_with_enospc() {
    let mut ev = EventChannels::new(ME);
    for p in 1..NR_PORTS {
        assert_eq!(ev.bind_ipi(0), Ok(p));
    }
    assert_eq!(ev.bind_ipi(0), Err(Errno::ENOSPC));
}

/// Runs one hypercall with the argument bytes at 0x1000.
fn call(
    ev: &mut EventChannels,
    bits: &mut FakeBits,
    cmd: u64,
    arg: &[u8],
) -> (Result<Action, Errno>, Vec<u8>) {
    let mut mem = FakeGuestMemory::new(0x1000, 64);
    mem.bytes[..arg.len()].copy_from_slice(arg);
    let r = ev.hypercall(cmd, CallerAddr(0x1000), &mut mem, bits);
    (r, mem.bytes[..arg.len()].to_vec())
}

#[test]
fn hypercalls_decode_and_write_back() {
    let mut ev = EventChannels::new(ME);
    let mut bits = FakeBits::default();
    // bind_virq(VIRQ_TIMER, vcpu 0) → port 1 at offset 8.
    let (r, out) = call(&mut ev, &mut bits, EVTCHNOP_BIND_VIRQ, &[0; 12]);
    assert_eq!(r, Ok(Action::None));
    assert_eq!(out[8..12], 1u32.to_le_bytes());
    // bind_ipi(vcpu 0) → port 2 at offset 4.
    let (r, out) = call(&mut ev, &mut bits, EVTCHNOP_BIND_IPI, &[0; 8]);
    assert_eq!(r, Ok(Action::None));
    assert_eq!(out[4..8], 2u32.to_le_bytes());
    // alloc_unbound(DOMID_SELF, remote 0) → port 3.
    let mut a = [0u8; 8];
    a[..2].copy_from_slice(&DomId::SELF.0.to_le_bytes());
    let (r, out) = call(&mut ev, &mut bits, EVTCHNOP_ALLOC_UNBOUND, &a);
    assert_eq!(r, Ok(Action::None));
    assert_eq!(out[4..8], 3u32.to_le_bytes());
    assert_eq!(ev.binding(3), Binding::Unbound { remote: DomId(0) });
    // ... but not in another domain.
    a[..2].copy_from_slice(&7u16.to_le_bytes());
    let (r, _) = call(&mut ev, &mut bits, EVTCHNOP_ALLOC_UNBOUND, &a);
    assert_eq!(r, Err(Errno::EPERM));
    // send(2) raises the IPI.
    let (r, _) = call(&mut ev, &mut bits, EVTCHNOP_SEND, &2u32.to_le_bytes());
    assert_eq!(r, Ok(Action::None));
    assert!(bits.upcall);
    // status(1): virq 0.
    let mut s = [0u8; 24];
    s[..2].copy_from_slice(&DomId::SELF.0.to_le_bytes());
    s[4..8].copy_from_slice(&1u32.to_le_bytes());
    let (r, out) = call(&mut ev, &mut bits, EVTCHNOP_STATUS, &s);
    assert_eq!(r, Ok(Action::None));
    assert_eq!(out[8..12], EVTCHNSTAT_VIRQ.to_le_bytes());
    // close(2), unmask(2), bind_vcpu(3, 0).
    let (r, _) = call(&mut ev, &mut bits, EVTCHNOP_CLOSE, &2u32.to_le_bytes());
    assert_eq!(r, Ok(Action::None));
    let (r, _) = call(&mut ev, &mut bits, EVTCHNOP_UNMASK, &2u32.to_le_bytes());
    assert_eq!(r, Ok(Action::None));
    let (r, _) = call(
        &mut ev,
        &mut bits,
        EVTCHNOP_BIND_VCPU,
        &[3, 0, 0, 0, 0, 0, 0, 0],
    );
    assert_eq!(r, Ok(Action::None));
    // The FIFO ABI is not offered.
    let (r, _) = call(&mut ev, &mut bits, EVTCHNOP_INIT_CONTROL, &[0; 16]);
    assert_eq!(r, Err(Errno::ENOSYS));
}

/// Guest memory that reads as zeroes and refuses every write.
struct ReadOnly;

impl GuestMemory for ReadOnly {
    fn read(&mut self, _: CallerAddr, buf: &mut [u8]) -> Result<(), crate::guest::BadAddress> {
        buf.fill(0);
        Ok(())
    }
    fn write(&mut self, _: CallerAddr, _: &[u8]) -> Result<(), crate::guest::BadAddress> {
        Err(crate::guest::BadAddress)
    }
}

#[test]
fn faulting_write_back_releases_the_port() {
    let mut ev = EventChannels::new(ME);
    let mut bits = FakeBits::default();
    let r = ev.hypercall(
        EVTCHNOP_BIND_VIRQ,
        CallerAddr(0x1000),
        &mut ReadOnly,
        &mut bits,
    );
    assert_eq!(r, Err(Errno::EFAULT));
    assert_eq!(ev.virq_port(VIRQ_TIMER), None);
    assert_eq!(ev.binding(1), Binding::Free);
    let r = ev.hypercall(
        EVTCHNOP_BIND_IPI,
        CallerAddr(0x1000),
        &mut ReadOnly,
        &mut bits,
    );
    assert_eq!(r, Err(Errno::EFAULT));
    assert_eq!(ev.bind_virq(VIRQ_TIMER, 0), Ok(1));
}
