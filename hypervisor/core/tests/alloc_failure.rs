//! The core's tables that grow because of a guest are allocated fallibly: with the
//! allocator out of room, the guest's call fails with `-ENOMEM` (or waits, for a
//! xenstore request still in its ring) and nothing changes (issue 13). Without
//! `try_reserve` this test aborts.

mod common;

use std::alloc::System;

use cap::Cap;

use common::*;
use ebbhv_core::abi::memory::*;
use ebbhv_core::abi::xenstore::msg;
use ebbhv_core::addr::DomId;
use ebbhv_core::error::Errno;
use ebbhv_core::evtchn::{EventChannels, NR_PORTS};
use ebbhv_core::hypercall::Caller;
use ebbhv_core::testing::{xs_message, xs_messages, FakeRing};
use ebbhv_core::xenstore::{DomainKeys, Limits, Xenstore};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// Runs `f` with only `bytes` more for the allocator to hand out. The limit is the
/// whole process's, so the cases run one after the other in one test.
fn capped<T>(bytes: usize, f: impl FnOnce() -> T) -> T {
    ALLOCATOR
        .set_limit(ALLOCATOR.allocated() + bytes)
        .expect("the limit is above what is allocated");
    let result = f();
    ALLOCATOR
        .set_limit(usize::MAX)
        .expect("no limit is below what is allocated");
    result
}

#[test]
fn guest_grown_tables_fail_with_enomem() {
    event_channel_table_growth();
    exchange_lists();
    xenstore_request_input();
}

/// The port table doubles until the allocator refuses; that port is `-ENOMEM`.
fn event_channel_table_growth() {
    let mut table = EventChannels::new(DOM);
    let (bound, last) = capped(512, || {
        let mut bound = 0;
        loop {
            match table.alloc_unbound(DomId(0)) {
                Ok(_) => bound += 1,
                Err(e) => return (bound, e),
            }
        }
    });
    assert_eq!(last, Errno::ENOMEM);
    assert!(
        bound > 0 && bound < NR_PORTS,
        "{bound} ports before the refusal"
    );
    // The table is intact: with the allocator back, it grows on.
    let port = table.alloc_unbound(DomId(0)).unwrap();
    assert_eq!(port, bound + 1, "port 0 is reserved, 1..={bound} are taken");
}

/// 512 scattered 4 KiB frames for one 2 MiB extent: the extent lists (8 KiB of
/// ranges, 4 KiB of frame numbers) cannot be allocated, so the exchange fails
/// before it changes anything, and succeeds once they can.
fn exchange_lists() {
    let mut bed = Bed::new();
    for i in 0..512u64 {
        assert_eq!(bed.populate(0, &[0x400 + i, 0x1000 + i]), 2);
    }
    let before: Vec<_> = (0x400..0x600).map(|g| bed.mfn_of(g)).collect();
    let tot = bed.tot_pages();
    for (i, gfn) in (0x400u64..0x600).enumerate() {
        bed.mem.put(LIST + 8 * i as u64, &gfn);
    }
    bed.mem.put(LIST2, &0x400u64);
    let side = |list, n, order| XenMemoryReservation {
        extent_start: list,
        nr_extents: n,
        extent_order: order,
        domid: DomId::SELF.0,
        ..Default::default()
    };
    let exchange = XenMemoryExchange {
        input: side(LIST, 512, 0),
        output: side(LIST2, 1, 9),
        nr_exchanged: 0,
    };
    bed.mem.put(ARG, &exchange);
    let result = capped(2048, || {
        bed.memory_op(Caller::Guest(DOM), XENMEM_EXCHANGE, ARG)
    });
    assert_eq!(result, -(Errno::ENOMEM as i64));
    assert_eq!(bed.mem.get::<XenMemoryExchange>(ARG).nr_exchanged, 0);
    let after: Vec<_> = (0x400..0x600).map(|g| bed.mfn_of(g)).collect();
    assert_eq!(before, after);
    assert_eq!(bed.tot_pages(), tot);
    bed.check();
    assert_eq!(bed.memory_op(Caller::Guest(DOM), XENMEM_EXCHANGE, ARG), 0);
    assert_eq!(bed.mem.get::<XenMemoryExchange>(ARG).nr_exchanged, 512);
    bed.check();
}

/// An 800-byte xenstore write whose input buffer cannot grow waits in the ring, and
/// is answered once the allocator has room.
fn xenstore_request_input() {
    let mut store = Xenstore::new(Limits::default());
    let keys = DomainKeys {
        name: "guest",
        target_kib: 1024,
        static_max_kib: 2048,
    };
    store.introduce_domain(DOM, &keys).unwrap();
    let mut ring = FakeRing::default();
    let mut body = b"data/big\0".to_vec();
    body.extend([b'x'; 800]);
    let request = xs_message(msg::WRITE, 5, 0, &body);
    assert_eq!(ring.push_request_bytes(&request), request.len());
    capped(256, || store.serve(DOM, &mut ring).unwrap());
    assert!(ring.pop_reply_bytes().is_empty(), "no reply yet");
    store.serve(DOM, &mut ring).unwrap();
    let replies = xs_messages(&ring.pop_reply_bytes());
    assert!(
        replies
            .iter()
            .any(|(h, p)| h.req_id == 5 && h.ty == msg::WRITE && p == b"OK\0"),
        "{replies:?}"
    );
    assert_eq!(
        store.control_read(DOM, "data/big").map(|v| v.len()),
        Ok(800),
        "the whole value arrived"
    );
}
